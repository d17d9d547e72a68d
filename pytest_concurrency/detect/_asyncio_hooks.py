"""Hooks into asyncio and uvloop: time every loop step, track tasks, see loops shut down.

asyncio's own loops run every callback and task step through ``asyncio.events.Handle._run``,
so one patch times them all. uvloop's handles are compiled and never pass through it; but
every callback reaches a uvloop loop through its Python-visible scheduling methods
(``call_soon``, ``call_later``... task steps included, since C tasks look ``call_soon`` up on
the loop), so on uvloop each scheduled callback is wrapped in a timed step instead.

uvloop also calls protocol methods (``data_received`` and the like) straight from compiled
code; the protocol factories given to its ``create_server``, ``create_connection``... are
wrapped so that each protocol they make has its callbacks timed as steps too.

A loop is watched from the first time it runs (``run_forever``, which ``run_until_complete``
and every runner use) until it is closed or garbage-collected.

Tasks are recorded for their owner at ``create_task``. A runner that finishes (``asyncio.run``,
``asyncio.Runner``, ``uvloop.run``, anyio's runner, the ``Runner`` backport pytest-asyncio
uses before Python 3.11) cancels the tasks still pending on its loop
before closing it, which would hide them from a later check; the hooks mark those tasks as
leaked just before that happens, and likewise for a loop closed with tasks still pending.
"""

from __future__ import annotations

import asyncio
import asyncio.base_events
import asyncio.events
import asyncio.runners
import os
import sys
import weakref
from collections.abc import Callable
from typing import Any

from pytest_concurrency.detect import _leaks, _ownership, _steps
from pytest_concurrency.detect._frames import add_step_boundary
from pytest_concurrency.detect._patches import Patch
from pytest_concurrency.detect._runtime import internal_error
from pytest_concurrency.detect._spawn_hooks import uvloop_subprocess_patches
from pytest_concurrency.detect._steps import StepMonitor, describe_callback

_RUNNER_SHUTDOWN = "still pending when its runner shut the event loop down (which cancelled it)"
_LOOP_CLOSED = "still pending when its event loop was closed"

# Modules that carry their own copy of asyncio's "cancel every remaining task" runner step.
CANCEL_ALL_TASKS = (
    ("asyncio.runners", "_cancel_all_tasks"),
    ("uvloop", "_cancel_all_tasks"),
    ("anyio._backends._asyncio", "_cancel_all_tasks"),  # Python < 3.11
    ("backports.asyncio.runner.runner", "_cancel_all_tasks"),  # pytest-asyncio, Python < 3.11
)


def loop_kind(loop: object) -> str:
    module = type(loop).__module__ or ""
    return "uvloop" if module.startswith("uvloop") else "asyncio"


def _describe(what: object) -> _steps.Describe:
    callback = getattr(what, "_callback", what)  # an asyncio Handle, or a uvloop callback
    return describe_callback(callback)


def attach(loop: Any) -> None:
    """Start watching ``loop``'s steps (idempotent), timed on the calling thread."""
    key = id(loop)
    monitor = _steps.active.get(key)
    if monitor is not None:
        monitor.bind_to_current_thread()
        return
    try:
        ref = weakref.ref(loop, _steps.monitor_finalizer(key))
    except TypeError:
        return  # a loop class without weak references cannot be tracked safely
    monitor = StepMonitor(loop_kind(loop), key, _describe)
    _loop_refs[key] = ref
    monitor.register()


def detach(loop: Any) -> None:
    key = id(loop)
    monitor = _steps.active.get(key)
    if monitor is not None:
        monitor.unregister()
    _loop_refs.pop(key, None)


_loop_refs: dict[int, weakref.ReferenceType[Any]] = {}


def abandon_pending(loop: Any, why: str) -> None:
    """Mark tracked tasks still pending on ``loop`` as leaked, before a runner cancels them.

    Not while an exception propagates out of the runner: when the main coroutine failed, or a
    ``KeyboardInterrupt`` stopped the loop, the tasks still pending were interrupted, not left
    behind (a test expecting that exception would otherwise be blamed for every task it had).
    """
    if not _ownership.tracking or not _ownership.tasks_recorded() or sys.exc_info()[0] is not None:
        return
    # Only recorded tasks can be reported: look at those (asyncio.all_tasks would go through
    # every task alive in the process).
    for record in _ownership.recorded_tasks():
        if record.abandoned is not None:
            continue
        task = record.ref()
        if task is not None and not task.done() and task.get_loop() is loop:
            record.abandoned = (_leaks.describe(record, why), _leaks.names_of(record))


# --- asyncio's own loops -------------------------------------------------------------------

_LOOP_CLEAN_UP = frozenset(
    id(method.__code__)
    for method in (
        asyncio.base_events.BaseEventLoop.shutdown_asyncgens,
        getattr(asyncio.base_events.BaseEventLoop, "shutdown_default_executor", None),
    )
    if method is not None
)
"""The loop's own clean-up coroutines, which every runner runs as a task while it shuts its
loop down: never left behind by a test, so not worth a look at the stack. (The functions
live as long as asyncio, so their code's ``id`` stays theirs.)"""


def _handle_run_patch() -> Patch:
    _run = _steps.timed_handle_run(asyncio.events.Handle._run)
    add_step_boundary(_run.__code__)
    # The original runs the callback itself: a stack that ends there holds no code of it.
    add_step_boundary(function="_run", file_suffix=os.path.join("asyncio", "events.py"))
    return Patch(asyncio.events.Handle, "_run", _run)


def _loop_patches(loop_class: Any) -> list[Patch]:
    run_forever = loop_class.run_forever
    close = loop_class.close
    create_task = loop_class.create_task

    def patched_run_forever(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _steps.settings.enabled:
            try:
                attach(self)
            except Exception as exc:
                internal_error("loop-lag", exc)
        return run_forever(self, *args, **kwargs) if args or kwargs else run_forever(self)

    def patched_close(self: Any) -> Any:
        if _ownership.tracking and not self.is_running():
            try:
                abandon_pending(self, _LOOP_CLOSED)
            except Exception as exc:
                internal_error("leak", exc)
        try:
            return close(self)
        finally:
            detach(self)

    def patched_create_task(self: Any, coro: Any, *args: Any, **kwargs: Any) -> Any:
        # Nearly every caller passes the coroutine alone: then a plain call is cheaper.
        task = (
            create_task(self, coro, *args, **kwargs) if args or kwargs else create_task(self, coro)
        )
        if _ownership.tracking:
            runs = getattr(coro, "cr_code", None)
            if id(runs) not in _LOOP_CLEAN_UP:
                try:
                    _ownership.track("task", task, skip=1, loop=self, runs=runs)
                except Exception as exc:
                    internal_error("leak", exc)
        return task

    # Frames outside a running loop belong to the code that started the loop, not to the
    # code that made something during one of its steps.
    add_step_boundary(patched_run_forever.__code__)
    return [
        Patch(loop_class, "run_forever", patched_run_forever),
        Patch(loop_class, "close", patched_close),
        Patch(loop_class, "create_task", patched_create_task),
    ]


# --- uvloop ----------------------------------------------------------------------------------


def _timed(key: int, callback: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a uvloop callback so that running it is one timed step."""

    def step(*args: Any) -> Any:
        monitor = _steps.active.get(key)
        if monitor is None or not _steps.settings.enabled:
            return callback(*args)
        previous = monitor.begin(callback)
        try:
            return callback(*args)
        finally:
            try:
                monitor.end(previous)
            except Exception as exc:
                internal_error("loop-lag", exc)

    add_step_boundary(step.__code__)
    return step


def _uvloop_patches(loop_class: type) -> list[Patch]:
    patches = []

    def with_context(name: str, leading: int) -> Patch:
        original = getattr(loop_class, name)

        def scheduler(self: Any, *args: Any, **kwargs: Any) -> Any:
            if _steps.settings.enabled and len(args) > leading:
                args = (*args[:leading], _timed(id(self), args[leading]), *args[leading + 1 :])
            return original(self, *args, **kwargs)

        scheduler.__name__ = scheduler.__qualname__ = name
        scheduler.__doc__ = original.__doc__
        return Patch(loop_class, name, scheduler)

    # (method, index of the callback argument)
    for name, leading in (
        ("call_soon", 0),
        ("call_soon_threadsafe", 0),
        ("call_later", 1),
        ("call_at", 1),
        ("add_reader", 1),
        ("add_writer", 1),
    ):
        if hasattr(loop_class, name):
            patches.append(with_context(name, leading))
    return patches


_PROTOCOL_CALLBACKS = (
    "connection_made",
    "connection_lost",
    "data_received",
    "eof_received",
    "get_buffer",
    "buffer_updated",
    "pause_writing",
    "resume_writing",
    "datagram_received",
    "error_received",
    "pipe_data_received",
    "pipe_connection_lost",
    "process_exited",
)

# Loop methods whose first argument is a protocol factory.
_PROTOCOL_FACTORY_METHODS = (
    "create_server",
    "create_connection",
    "create_unix_server",
    "create_unix_connection",
    "connect_accepted_socket",
    "create_datagram_endpoint",
    "connect_read_pipe",
    "connect_write_pipe",
    "subprocess_exec",
    "subprocess_shell",
)


def _timed_protocol_factory(key: int, factory: Callable[[], Any]) -> Callable[[], Any]:
    def make_protocol() -> Any:
        protocol = factory()
        for name in _PROTOCOL_CALLBACKS:
            method = getattr(protocol, name, None)
            if method is None:
                continue
            try:
                setattr(protocol, name, _timed(key, method))
            except (AttributeError, TypeError):  # __slots__ or a read-only attribute
                return protocol
        return protocol

    return make_protocol


def _uvloop_factory_patches(loop_class: type) -> list[Patch]:
    patches = []
    for name in _PROTOCOL_FACTORY_METHODS:
        original = getattr(loop_class, name, None)
        if original is None:
            continue

        def with_timed_protocols(
            self: Any, *args: Any, _original: Any = original, **kwargs: Any
        ) -> Any:
            if _steps.settings.enabled and args and callable(args[0]):
                args = (_timed_protocol_factory(id(self), args[0]), *args[1:])
            return _original(self, *args, **kwargs)

        with_timed_protocols.__name__ = with_timed_protocols.__qualname__ = name
        with_timed_protocols.__doc__ = original.__doc__
        patches.append(Patch(loop_class, name, with_timed_protocols))
    return patches


# --- runners -----------------------------------------------------------------------------------


def _cancel_all_tasks_patch(module: Any, name: str) -> Patch:
    original = getattr(module, name)

    def cancel_all_tasks(loop: Any) -> Any:
        if _ownership.tracking:
            try:
                abandon_pending(loop, _RUNNER_SHUTDOWN)
            except Exception as exc:
                internal_error("leak", exc)
        return original(loop)

    return Patch(module, name, cancel_all_tasks)


class AsyncioHooks:
    """All asyncio and uvloop patches, applied and restored together."""

    def __init__(self) -> None:
        self.patches: list[Patch] = []
        self._hooked: set[str] = set()

    def install(self) -> None:
        self._apply([_handle_run_patch(), *_loop_patches(asyncio.base_events.BaseEventLoop)])
        self.refresh()

    def refresh(self) -> None:
        """Hook uvloop and the runners' cancel-all step in modules imported since last time."""
        uvloop = sys.modules.get("uvloop")
        if uvloop is not None and "uvloop" not in self._hooked and hasattr(uvloop, "Loop"):
            self._hooked.add("uvloop")
            self._apply(
                [
                    *_loop_patches(uvloop.Loop),
                    *_uvloop_patches(uvloop.Loop),
                    *_uvloop_factory_patches(uvloop.Loop),
                    *uvloop_subprocess_patches(uvloop.Loop),
                ]
            )
        for module_name, attribute in CANCEL_ALL_TASKS:
            key = f"{module_name}.{attribute}"
            module = sys.modules.get(module_name)
            if key in self._hooked or module is None or not hasattr(module, attribute):
                continue
            self._hooked.add(key)
            self._apply([_cancel_all_tasks_patch(module, attribute)])

    def _apply(self, patches: list[Patch]) -> None:
        for patch in patches:
            patch.apply()
            self.patches.append(patch)

    def uninstall(self) -> None:
        for patch in reversed(self.patches):
            patch.restore()
        self.patches = []
        self._hooked.clear()
