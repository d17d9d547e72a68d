"""Hooks that record threads and child processes for their owner when they are started.

``threading.Thread.start`` covers every Python thread (executors and timers included);
``subprocess.Popen`` covers ``subprocess.run`` and asyncio's subprocesses; and
``multiprocessing``'s ``BaseProcess.start`` covers ``Process``, ``Pool`` and
``ProcessPoolExecutor`` workers, whatever the start method.
"""

from __future__ import annotations

import multiprocessing.process
import subprocess
import threading
from time import perf_counter
from typing import Any

from pytest_concurrency.detect import _leaks, _ownership
from pytest_concurrency.detect._leaks import TARGET_ATTRIBUTE
from pytest_concurrency.detect._patches import Patch
from pytest_concurrency.detect._runtime import internal_error
from pytest_concurrency.detect._thread_clock import clock
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
            clock.thread_start_wait += perf_counter() - began

    return Patch(threading.Thread, "start", start)


def _record_thread(thread: threading.Thread) -> None:
    if _leaks.current_allow.allows(_leaks.thread_names(thread)):
        # A pool worker runs work for whoever submits it; it owns nothing itself.
        _ownership.adopt_thread(thread, None)
        return
    owner = _ownership.track("thread", _ownership.weak(thread), skip=2)
    if owner is not None:
        _ownership.adopt_thread(thread, owner)


def _popen_patch() -> Patch:
    original = subprocess.Popen.__init__

    def __init__(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if _ownership.tracking:
            try:
                _ownership.track("process", _ownership.strong(self), skip=1)
            except Exception as exc:
                internal_error("leak", exc)

    return Patch(subprocess.Popen, "__init__", __init__)


def _process_start_patch() -> Patch:
    original = multiprocessing.process.BaseProcess.start

    def start(self: multiprocessing.process.BaseProcess) -> None:
        # start() deletes the target (to avoid a reference cycle); keep it to name the leak.
        setattr(self, TARGET_ATTRIBUTE, getattr(self, "_target", None))
        original(self)
        if _ownership.tracking:
            try:
                _ownership.track("process", _ownership.strong(self), skip=1)
            except Exception as exc:
                internal_error("leak", exc)

    return Patch(multiprocessing.process.BaseProcess, "start", start)


class SpawnHooks:
    def __init__(self) -> None:
        self.patches: list[Patch] = []

    def install(self) -> None:
        self.patches = [_thread_start_patch(), _popen_patch(), _process_start_patch()]
        for patch in self.patches:
            patch.apply()

    def uninstall(self) -> None:
        for patch in reversed(self.patches):
            patch.restore()
        self.patches = []
