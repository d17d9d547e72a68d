"""What the event-loop models share: one loop, in a thread of its own, started and stopped.

:class:`LoopThreadEngine` starts the loop thread and waits until the server accepts
connections (raising the loop's start-up error, if any, in the caller), stops it with a
bounded wait that names where a stuck loop is stuck, and keeps the largest loop lag seen.
"""

from __future__ import annotations

import abc
import contextlib
import importlib
import sys
import threading
import traceback
from typing import Any, ClassVar

from pytest_concurrency.serve.models._base import Engine, ServerStartError, ServerStopError

__all__ = ["LoopThreadEngine", "preload_anyio_backend"]


def preload_anyio_backend(name: str) -> None:
    """Import anyio's backend for ``name`` now, outside any event loop.

    anyio imports it on the first anyio call in a loop, which takes tens of milliseconds:
    done there, it is a loop step that blocks (and the first request pays for it).
    """
    with contextlib.suppress(ImportError):
        importlib.import_module(f"anyio._backends._{name}")


class LoopThreadEngine(Engine):
    """An engine whose event loop runs in a thread of its own.

    Subclasses implement :meth:`_run` (run the loop until stopped, setting ``_ready`` once
    connections are accepted and calling :meth:`_loop_ended` with any exception that ends
    it; ``_ready`` must be set when the thread ends) and :meth:`_request_stop_threadsafe`.
    """

    anyio_backend: ClassVar[str]
    """The anyio backend the loop runs handlers on (imported before the loop starts)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._stop_problem: str | None = None
        self._lag_max = 0.0

    @abc.abstractmethod
    def _run(self) -> None:
        """The loop thread's body."""

    @abc.abstractmethod
    def _request_stop_threadsafe(self) -> None:
        """Ask the running loop, from another thread, to stop serving."""

    def _loop_ended(self, error: BaseException) -> None:
        """Record why the loop ended: a start-up error before it served, else a stop problem."""
        if not self._ready.is_set():
            self._startup_error = error
        else:
            self._stop_problem = "".join(traceback.format_exception(error))

    def start(self) -> None:
        preload_anyio_backend(self.anyio_backend)
        self._thread = threading.Thread(
            target=self._run, name=self.thread_name("loop"), daemon=True
        )
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            error = self._startup_error
            raise ServerStartError(
                f"{self.name} server failed to start: {type(error).__name__}: {error}"
            ) from error

    def stop(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._request_stop_threadsafe()
        timeout = self.options.shutdown_timeout + 5.0
        thread.join(timeout)
        self._thread = None
        if thread.is_alive():
            raise ServerStopError(
                f"the {self.name} event loop thread {thread.name!r} did not stop within "
                f"{timeout:g} s; it is stuck here:\n" + _thread_stack(thread)
            )
        if self._stop_problem is not None:
            raise ServerStopError(self._stop_problem)

    def loop_lag_max_ms(self) -> float | None:
        return self._lag_max * 1000.0

    def reset_peaks(self) -> None:
        self._lag_max = 0.0


def _thread_stack(thread: threading.Thread) -> str:
    frame = sys._current_frames().get(thread.ident or -1)
    if frame is None:
        return "  (no stack available)"
    return "".join(traceback.format_stack(frame))
