"""Per-thread time that a loop step spends waiting through no fault of its own.

On a busy machine a step's wall time includes time the step's own code did not cause:

* **run-queue wait**: the thread was ready to run but the operating system ran something else
  (read from Linux's per-thread ``schedstat``, which counts it exactly);
* **thread start-up**: ``Thread.start()`` waits until the new thread is scheduled, which
  takes microseconds on an idle machine and tens of milliseconds on a loaded one (asyncio's
  ``to_thread`` and executor shutdown both start threads from the loop thread).

The step timer subtracts both, so that a step is blamed only for what its code did: run on
the CPU, sleep, or wait for I/O. Reading ``schedstat`` costs about a microsecond per step; on
systems without it, only thread start-up is subtracted.
"""

from __future__ import annotations

import contextlib
import os
import threading


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

    def __del__(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


class ThreadClock(threading.local):
    """Per-thread counters; each thread sees its own."""

    def __init__(self) -> None:
        self.thread_start_wait = 0.0
        self.schedstat = _SchedstatFile()

    def not_our_doing(self) -> float:
        """Seconds of run-queue wait and thread start-up so far on this thread."""
        return self.schedstat.runqueue_wait() + self.thread_start_wait


clock = ThreadClock()
