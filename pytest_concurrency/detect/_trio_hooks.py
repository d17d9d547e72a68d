"""Hooks into trio: an instrument that times every task step of every run.

trio announces each task step to its instruments (``before_task_step`` / ``after_task_step``),
which is exactly the step boundary we need. The instrument is added to every run by wrapping
``trio.run`` and ``trio.lowlevel.start_guest_run`` (the latter is how anyio's pytest plugin
runs trio, in guest mode on top of a host loop). In guest mode task steps run on the host's
thread, so a step on another thread than the last one rebinds the timer to it.

trio's structured concurrency means a task cannot outlive its nursery, so trio needs no task
leak check; its worker threads are reused (trio's thread cache) and allowed by default.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from threading import get_ident as _get_ident
from typing import Any

from pytest_concurrency.detect import _steps
from pytest_concurrency.detect._frames import add_step_boundary
from pytest_concurrency.detect._patches import Patch
from pytest_concurrency.detect._runtime import internal_error
from pytest_concurrency.detect._steps import StepMonitor, describe_task


class StepTimer:
    """A trio instrument that times task steps for one run."""

    def __init__(self) -> None:
        self.monitor = StepMonitor("trio", id(self), describe_task)
        self._previous: _steps.Step | None = None

    def before_run(self) -> None:
        self.monitor.register()

    def after_run(self) -> None:
        self.monitor.unregister()

    def before_task_step(self, task: Any) -> None:
        if _steps.settings.enabled:
            if self.monitor.thread_id != _get_ident():
                self.monitor.bind_to_current_thread()
            self._previous = self.monitor.begin(task)

    def after_task_step(self, task: Any) -> None:
        if self.monitor.current is None:
            return
        try:
            self.monitor.end(self._previous)
        except Exception as exc:
            internal_error("loop-lag", exc)
        self._previous = None


def _with_instrument(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def run(*args: Any, **kwargs: Any) -> Any:
        if _steps.settings.enabled:
            kwargs["instruments"] = (*kwargs.get("instruments", ()), StepTimer())
        return original(*args, **kwargs)

    return run


class TrioHooks:
    """Add the step timer to every trio run started while installed."""

    def __init__(self) -> None:
        self.patches: list[Patch] = []

    def install(self) -> None:
        try:
            import trio
            import trio.lowlevel
        except ImportError:
            return
        # trio runs every task step from its scheduler loop; sampled stacks end there.
        add_step_boundary(
            function="unrolled_run", file_suffix=os.path.join("trio", "_core", "_run.py")
        )
        self.patches = [
            Patch(trio, "run", _with_instrument(trio.run)),
            Patch(
                trio.lowlevel, "start_guest_run", _with_instrument(trio.lowlevel.start_guest_run)
            ),
        ]
        for patch in self.patches:
            patch.apply()

    def uninstall(self) -> None:
        for patch in reversed(self.patches):
            patch.restore()
        self.patches = []
