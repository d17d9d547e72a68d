"""The watchdog thread: samples the stack of a loop thread while one of its steps runs long.

Step timing (``_steps``) knows exactly how long a step took, but only once it has ended, when
the blocking line is gone from the stack. The watchdog closes that gap: it wakes when the
oldest running step reaches half the threshold and then every quarter threshold, and records
the loop thread's stack. It sleeps without a deadline while no loop is being watched, so it
costs nothing between tests or when detection is off.
"""

from __future__ import annotations

import math
import sys
import threading
from time import perf_counter

from pytest_concurrency.detect import _steps
from pytest_concurrency.detect._frames import walk

THREAD_NAME = "concurrency-guard-watchdog"
INTERNAL_ATTRIBUTE = "_concurrency_guard_internal"
_MIN_INTERVAL_S = 0.001


class Watchdog:
    """One daemon thread per process, started on first use."""

    def __init__(self) -> None:
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def ensure_started(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping = False
            thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
            setattr(thread, INTERNAL_ATTRIBUTE, True)
            self._thread = thread
            thread.start()

    def poke(self) -> None:
        """Re-read the monitors now (a loop started or the threshold changed)."""
        self._wake.set()

    def stop(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
            self._stopping = True
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)

    def _run(self) -> None:
        while not self._stopping:
            try:
                timeout = self._tick()
            except Exception as exc:  # never let the sampler die silently
                _steps.disable(f"the stack sampler failed: {exc!r}")
                timeout = None
            self._wake.wait(timeout)
            self._wake.clear()

    def _tick(self) -> float | None:
        """Sample every step that has run past half the threshold; return the next wake-up.

        A sample taken well after it was due means the watchdog could not run: the loop
        thread most likely held the GIL (a long C call), and the sample shows where it went on
        right after. Such samples are marked late, and the report says so.
        """
        settings = _steps.settings
        if not settings.enabled or not _steps.active:
            return None
        threshold = settings.threshold_s
        if math.isinf(threshold):
            return None
        sample_after = threshold / 2.0
        sample_every = max(threshold / 4.0, _MIN_INTERVAL_S)
        now = perf_counter()
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
_steps.set_watchdog_poke(watchdog.poke)
