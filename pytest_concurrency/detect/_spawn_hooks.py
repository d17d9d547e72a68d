"""Hooks that record threads and child processes for their owner when they are started.

``threading.Thread.start`` covers every Python thread (executors and timers included);
``subprocess.Popen`` covers ``subprocess.run`` and asyncio's subprocesses; and
``multiprocessing``'s ``BaseProcess.start`` covers ``Process``, ``Pool`` and
``ProcessPoolExecutor`` workers, whatever the start method. uvloop spawns its subprocesses
through libuv, never through ``Popen``: its ``subprocess_exec`` and ``subprocess_shell`` are
wrapped to record the child they return (see :func:`uvloop_subprocess_patches`).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Sequence
from time import perf_counter
from typing import Any

from pytest_concurrency.detect import _leaks, _ownership
from pytest_concurrency.detect._leaks import TARGET_ATTRIBUTE
from pytest_concurrency.detect._patches import Patch
from pytest_concurrency.detect._runtime import internal_error
from pytest_concurrency.detect._thread_clock import current as current_clock
from pytest_concurrency.detect._watchdog import INTERNAL_ATTRIBUTE


def _thread_start_patch() -> Patch:
    original = threading.Thread.start

    def start(self: threading.Thread) -> None:
        if _ownership.tracking and not getattr(self, INTERNAL_ATTRIBUTE, False):
            try:
                _record_thread(self)
            except Exception as exc:
                internal_error("leak", exc)
        began = perf_counter()
        try:
            original(self)
        finally:
            # start() waits for the new thread to be scheduled: not the caller's doing.
            current_clock().thread_start_wait += perf_counter() - began

    return Patch(threading.Thread, "start", start)


def _record_thread(thread: threading.Thread) -> None:
    if _leaks.current_allow.allows(_leaks.thread_names(thread)):
        # A pool worker runs work for whoever submits it; it owns nothing itself.
        _ownership.adopt_thread(thread, None)
        return
    owner = _ownership.track("thread", thread, skip=2)
    if owner is not None:
        _ownership.adopt_thread(thread, owner)


def _popen_patch() -> Patch:
    original = subprocess.Popen.__init__

    def __init__(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if _ownership.tracking:
            try:
                _ownership.track("process", self, skip=1)
            except Exception as exc:
                internal_error("leak", exc)

    return Patch(subprocess.Popen, "__init__", __init__)


def _process_start_patch() -> Patch:
    # Looked up in sys.modules: this runs right after the module is first imported, when its
    # package (itself still importing) does not have it as an attribute yet.
    process = sys.modules["multiprocessing.process"]
    original = process.BaseProcess.start

    def start(self: Any) -> None:
        # start() deletes the target (to avoid a reference cycle); keep it to name the leak.
        setattr(self, TARGET_ATTRIBUTE, getattr(self, "_target", None))
        original(self)
        if _ownership.tracking:
            try:
                _ownership.track("process", self, skip=1)
            except Exception as exc:
                internal_error("leak", exc)

    return Patch(process.BaseProcess, "start", start)


class LoopSubprocess:
    """A child process an event loop spawned itself, seen through its transport.

    It answers like ``subprocess.Popen`` does for the leak check (``pid``, ``args``,
    ``poll()``). The loop reaps its children only while it runs, so once the loop has stopped
    the transport may never learn the exit status: ``poll()`` then asks the system whether
    that process (same pid, same start time) is still alive.
    """

    def __init__(self, transport: Any, args: str | bytes | Sequence[Any]) -> None:
        # Imported here: loading psutil costs more than the rest of the plugin's start-up,
        # and only a loop that spawns a child needs it.
        import psutil

        self._psutil = psutil
        self.pid: int = transport.get_pid()
        self.args = args
        self._transport = transport
        try:
            self._process: psutil.Process | None = psutil.Process(self.pid)
        except psutil.Error:  # already gone
            self._process = None

    def poll(self) -> int | None:
        """The exit status, a negative number when it is gone but unknown, None while running."""
        returncode: int | None = self._transport.get_returncode()
        if returncode is not None:
            return returncode
        if self._process is None:
            return -1
        psutil = self._psutil
        try:
            running = self._process.is_running()  # False too if the pid was reused
            if running and self._process.status() != psutil.STATUS_ZOMBIE:
                return None
        except psutil.Error:
            pass
        return -1


def uvloop_subprocess_patches(loop_class: type) -> list[Patch]:
    """Record the children that uvloop's ``subprocess_exec`` and ``subprocess_shell`` spawn."""
    patches = []
    for name in ("subprocess_exec", "subprocess_shell"):
        original = getattr(loop_class, name, None)
        if original is None:
            continue

        async def spawn(
            self: Any, protocol_factory: Any, *args: Any, _original: Any = original, **kwargs: Any
        ) -> Any:
            transport, protocol = await _original(self, protocol_factory, *args, **kwargs)
            if _ownership.tracking:
                try:
                    command = args[0] if len(args) == 1 and isinstance(args[0], str) else args
                    child = LoopSubprocess(transport, command)
                    _ownership.track("process", child, skip=1)
                except Exception as exc:
                    # Its lock guards one list append, once per detector failure.
                    internal_error("leak", exc)  # noqa: CC107
            return transport, protocol

        spawn.__name__ = spawn.__qualname__ = name
        spawn.__doc__ = original.__doc__
        patches.append(Patch(loop_class, name, spawn))
    return patches


class SpawnHooks:
    """Thread, subprocess and multiprocessing creation hooks.

    ``multiprocessing`` is hooked only once something imports it (importing it costs several
    milliseconds, which a session that never uses it should not pay); see :meth:`refresh`.
    """

    def __init__(self) -> None:
        self.patches: list[Patch] = []
        self._multiprocessing_hooked = False

    def install(self) -> None:
        self.patches = [_thread_start_patch(), _popen_patch()]
        for patch in self.patches:
            patch.apply()
        self.refresh()

    def refresh(self) -> None:
        """Hook ``multiprocessing`` if it has been imported since the last call."""
        if self._multiprocessing_hooked or "multiprocessing.process" not in sys.modules:
            return
        patch = _process_start_patch()
        patch.apply()
        self.patches.append(patch)
        self._multiprocessing_hooked = True

    def uninstall(self) -> None:
        for patch in reversed(self.patches):
            patch.restore()
        self.patches = []
        self._multiprocessing_hooked = False
