"""The watchdog thread: samples the stack of a loop thread while one of its steps runs long.

Step timing (``_steps``) knows exactly how long a step took, but only once it has ended, when
the blocking line is gone from the stack. The watchdog closes that gap: it wakes when the
oldest running step reaches half the threshold and then every quarter threshold, and records
the loop thread's stack. It sleeps without a deadline while no loop has been watched for
:data:`LINGER_S`, so it costs nothing when detection is off or no loop runs.

In between it wakes every half threshold. That keeps it ready for the next loop without being
woken: a suite of short async tests starts a loop per test, and waking a sleeping thread (and
handing it the GIL) for each of them costs more than the tests' own work.
"""

from __future__ import annotations

import _thread
import math
import os
import sys
import threading
from time import perf_counter

from pytest_concurrency.detect import _steps
from pytest_concurrency.detect._frames import walk

INTERNAL_ATTRIBUTE = "_concurrency_guard_internal"
_MIN_INTERVAL_S = 0.001
LINGER_S = 1.0
"""How long the watchdog keeps waking periodically after the last watched loop stopped."""


class Watchdog:
    """One daemon thread per process, started when the first watched loop starts.

    It is a bare interpreter thread, not a :class:`threading.Thread`: it never shows in
    ``threading.enumerate()`` or ``threading.active_count()``, so tests that check which
    threads run see only their own.
    """

    def __init__(self) -> None:
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._running = False
        self._exited = threading.Event()
        self._stopping = False
        self._asleep = True
        """True while waiting without a deadline: a loop that starts must wake it."""
        self._last_active = -math.inf
        os.register_at_fork(after_in_child=self._forgotten_in_child)

    def _forgotten_in_child(self) -> None:
        # Threads do not survive fork: a child process starts its own when it needs one.
        self._running = False
        self._asleep = True
        self._wake = threading.Event()
        self._lock = threading.Lock()

    def ensure_started(self) -> None:
        with self._lock:
            if self._running:
                return
            self._stopping = False
            self._asleep = True
            self._exited.clear()
            self._running = True
            _thread.start_new_thread(self._main, ())

    def poke(self) -> None:
        """Re-read the monitors now (the threshold changed)."""
        self._wake.set()

    def loop_started(self) -> None:
        """A loop registered: start the watchdog, or wake it if it sleeps without a deadline."""
        if not self._running:
            self.ensure_started()
        if self._asleep:
            self._wake.set()

    def stop(self) -> None:
        with self._lock:
            was_running, self._running = self._running, False
            self._stopping = True
        self._wake.set()
        if was_running and _thread.get_ident() != self._ident:
            self._exited.wait(timeout=2.0)

    _ident = -1

    def _main(self) -> None:
        self._ident = _thread.get_ident()
        try:
            self._run()
        finally:
            self._exited.set()

    def _run(self) -> None:
        while not self._stopping:
            # Cleared before looking, so that a poke arriving while we look is not lost.
            self._wake.clear()
            try:
                timeout = self._tick()
                if timeout is None:
                    self._asleep = True
                    # Look once more after saying so: a loop registered in between either
                    # shows up here or saw the flag and pokes (see loop_started).
                    if _steps.active and _steps.settings.enabled:
                        self._asleep = False
                        timeout = _MIN_INTERVAL_S
                else:
                    self._asleep = False
            except Exception as exc:  # never let the sampler die silently
                _steps.disable(f"the stack sampler failed: {exc!r}")
                self._asleep = True
                timeout = None
            self._wake.wait(timeout)

    def _tick(self) -> float | None:
        """Sample every step that has run past half the threshold; return the next wake-up.

        A sample taken well after it was due means the watchdog could not run: the loop
        thread most likely held the GIL (a long C call), and the sample shows where it went on
        right after. Such samples are marked late, and the report says so.
        """
        settings = _steps.settings
        threshold = settings.threshold_s
        if not settings.enabled or math.isinf(threshold):
            return None
        now = perf_counter()
        sample_after = threshold / 2.0
        if not _steps.active:
            return sample_after if now - self._last_active < LINGER_S else None
        self._last_active = now
        sample_every = max(threshold / 4.0, _MIN_INTERVAL_S)
        next_wake = sample_after
        tolerance = max(threshold / 4.0, 0.005)
        frames = None
        for monitor in list(_steps.active.values()):
            step = monitor.current
            if step is None:
                continue
            elapsed = now - step[1]
            if elapsed < sample_after:
                next_wake = min(next_wake, sample_after - elapsed)
                continue
            next_wake = min(next_wake, sample_every)
            if len(monitor.samples) >= _steps.MAX_SAMPLES_PER_STEP:
                continue
            last_seq, last_at = monitor.last_sample
            due = last_at + sample_every if last_seq == step[0] else step[1] + sample_after
            monitor.last_sample = (step[0], now)
            if frames is None:
                frames = sys._current_frames()
            stack = walk(frames.get(step[3]))
            # Keep the sample only if the same step was still running after we walked it.
            if stack and monitor.current is step:
                monitor.samples.append((step[0], stack, now - due >= tolerance))
        return max(next_wake, _MIN_INTERVAL_S)


watchdog = Watchdog()
_steps.set_watchdog_pokes(watchdog.poke, watchdog.loop_started)
