"""Per-thread time that a loop step spends waiting through no fault of its own.

On a busy machine a step's wall time includes time the step's own code did not cause:

* **run-queue wait**: the thread was ready to run but the operating system ran something else
  (read from Linux's per-thread ``schedstat``, which counts it exactly);
* **thread start-up**: ``Thread.start()`` waits until the new thread is scheduled, which
  takes microseconds on an idle machine and tens of milliseconds on a loaded one (asyncio's
  ``to_thread`` and executor shutdown both start threads from the loop thread).

The step timer subtracts both, so that a step is blamed only for what its code did: run on
the CPU, sleep, or wait for I/O. On systems without ``schedstat`` only thread start-up is
subtracted.

The run-queue counter is not always consistent with the thread's own clocks: on virtual
machines its per-CPU clocks can disagree, and a step has been seen to "wait" 16 ms in 23 ms
of wall time while it used 12 ms of CPU. What is subtracted is therefore never more than the
time the thread spent off the CPU during the step (wall time minus its CPU time).

Reading ``schedstat`` costs more than timing a step, so a loop running steps back to back
does not read it for each one: a step starting within :data:`REUSE_S` of the last reading
uses that reading as its baseline, and the time between the two (during which the thread may
have waited too) is not subtracted. The subtraction can therefore fall short by at most that
much, and never exceeds the wait that happened within the step: a block is never hidden.
:data:`REUSE_S` follows the threshold (a tenth of it, at most 5 ms), so that the shortfall
stays small next to what counts as a block.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Callable

REUSE_S = 0.001
"""How old a ``schedstat`` reading a step may use as its baseline (seconds); see
:func:`set_reuse_for_threshold`."""
MAX_REUSE_S = 0.005


def set_reuse_for_threshold(threshold_s: float) -> None:
    """Let steps reuse a reading up to a tenth of the loop-lag threshold old (at most 5 ms)."""
    global REUSE_S
    REUSE_S = min(MAX_REUSE_S, threshold_s / 10.0) if math.isfinite(threshold_s) else MAX_REUSE_S


class _SchedstatFile:
    """An open ``/proc/.../schedstat`` of one thread, closed when that thread's state goes."""

    def __init__(self) -> None:
        self.fd = -1
        try:
            self.fd = os.open(f"/proc/self/task/{threading.get_native_id()}/schedstat", os.O_RDONLY)
        except (OSError, AttributeError):
            self.fd = -1

    def runqueue_wait(self) -> float:
        """Seconds this thread has spent runnable but not running, since it started."""
        if self.fd < 0:
            return 0.0
        try:
            return int(os.pread(self.fd, 64, 0).split()[1]) / 1e9
        except (OSError, ValueError, IndexError):
            return 0.0

    def __del__(
        self,
        _close: Callable[[int], None] = os.close,
        _suppress: type[contextlib.suppress] = contextlib.suppress,
    ) -> None:
        # Bound at definition: at interpreter exit, module globals may already be gone.
        if self.fd >= 0:
            with _suppress(OSError):
                _close(self.fd)
            self.fd = -1


Reading = tuple[float, float, float]
"""When it was taken (``perf_counter``), the run-queue counter and the thread's CPU time."""


class ThreadClock:
    """One thread's counters: what its loop steps may subtract.

    :func:`current` gives the calling thread's own. The step timer keeps the clock of the
    thread its loop runs on, so that a step reads plain attributes rather than thread-local
    storage.
    """

    __slots__ = ("reading", "schedstat", "thread_start_wait")

    def __init__(self) -> None:
        self.thread_start_wait = 0.0
        self.schedstat = _SchedstatFile()
        self.reading: Reading = (-math.inf, 0.0, 0.0)
        """The latest reading; a step may use it while it is at most :data:`REUSE_S` old."""

    def read(self, now: float) -> Reading:
        """Take a fresh reading at ``now`` and keep it as :attr:`reading`."""
        self.reading = (now, self.schedstat.runqueue_wait(), time.thread_time())
        return self.reading

    def baseline(self, now: float) -> Reading:
        """The reading for a step starting at ``now``: the latest one unless it is more than
        :data:`REUSE_S` old, else a fresh one. (The step timer inlines this.)"""
        reading = self.reading
        return reading if now - reading[0] <= REUSE_S else self.read(now)

    def waited_since(
        self, baseline: Reading, thread_start_wait: float, started: float, wall: float
    ) -> float:
        """Seconds of run-queue wait and thread start-up in a step of ``wall`` seconds that
        started at ``started``.

        ``baseline`` comes from :meth:`baseline`, ``thread_start_wait`` is the counter's
        value when the step began. The run-queue part leaves out the baseline's age (it may
        predate the step by that much), and the total is at most the step's time off the CPU
        (the baseline's CPU time is older still, so that bound errs the same way): the result
        never exceeds what really happened.
        """
        read_at, runqueue, cpu = baseline
        age = started - read_at
        in_step = max(0.0, self.schedstat.runqueue_wait() - runqueue - age)
        waited = in_step + self.thread_start_wait - thread_start_wait
        off_cpu = wall - (time.thread_time() - cpu)
        return max(0.0, min(waited, off_cpu))


_per_thread = threading.local()


def _forget_in_child() -> None:
    # The forking thread's clock reads that thread's schedstat file, not the child's.
    _per_thread.__dict__.pop("clock", None)


os.register_at_fork(after_in_child=_forget_in_child)


def current() -> ThreadClock:
    """The calling thread's clock, made on first use (and gone with the thread)."""
    try:
        return _per_thread.clock  # type: ignore[no-any-return]
    except AttributeError:
        clock = _per_thread.clock = ThreadClock()
        return clock
