"""``asyncio+processes``: an event loop for I/O, a process pool for the CPU-bound part.

This is the shape the design document recommends for CPU work. The loop reads, parses and
writes every connection. A sync handler runs entirely in a ``ProcessPoolExecutor`` of
``workers`` processes (the CPU count by default), so the loop never computes; an async handler
runs on the loop and sends its CPU-bound part to the same pool with
:func:`pytest_concurrency.serve.offload_cpu`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, ClassVar

import psutil

from pytest_concurrency.serve._app import HandlerKind, coerce_response
from pytest_concurrency.serve._http import Request, Response
from pytest_concurrency.serve._offload import set_current_executor
from pytest_concurrency.serve.models._base import ServerStopError
from pytest_concurrency.serve.models.asyncio_loop import AsyncioEngine, RemoteHandlerError
from pytest_concurrency.serve.models.processes import fork_context, quiet_fork_warning

__all__ = ["AsyncioProcessesEngine"]

# The handler, installed in each pool process by the initializer. With the fork start method
# the initializer's arguments are inherited, not pickled, so closures work too.
_worker_handler: Callable[[Request], Any] | None = None


def _install_handler(handler: Callable[[Request], Any]) -> None:
    global _worker_handler
    _worker_handler = handler
    # The parent stops the pool in order; Ctrl-C must not kill workers mid-request.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_handler(request: Request) -> Response | str:
    """Runs in a pool process: the response, or the traceback text if the handler raised."""
    assert _worker_handler is not None
    try:
        return coerce_response(_worker_handler(request))
    except Exception:
        return traceback.format_exc()


def _ready() -> int:
    return os.getpid()


class AsyncioProcessesEngine(AsyncioEngine):
    """asyncio for I/O plus a ProcessPoolExecutor for the handler's CPU work."""

    kinds: ClassVar[frozenset[HandlerKind]] = frozenset({"sync", "async"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pool: ProcessPoolExecutor | None = None
        self._pool_pids: list[int] = []

    @property
    def worker_count(self) -> int:
        return self.options.workers or os.cpu_count() or 1

    def start(self) -> None:
        context = fork_context()
        before = {child.pid for child in psutil.Process().children()}
        self._pool = ProcessPoolExecutor(
            max_workers=self.worker_count,
            mp_context=context,
            initializer=_install_handler,
            initargs=(self.app.handler,),
        )
        with quiet_fork_warning():
            # With fork, the first submit starts every worker: do it now, not on a request.
            self._pool.submit(_ready).result(timeout=30)
        self._pool_pids = [
            child.pid for child in psutil.Process().children() if child.pid not in before
        ]
        try:
            super().start()
        except BaseException:
            self._shutdown_pool()
            raise

    def prepare(self, loop: asyncio.AbstractEventLoop) -> None:
        pool = self._pool
        assert pool is not None
        set_current_executor(pool)
        if self.app.kind == "sync":
            run_in_executor = loop.run_in_executor

            async def call(request: Request) -> Response:
                outcome = await run_in_executor(pool, _run_handler, request)
                if isinstance(outcome, str):
                    raise RemoteHandlerError(outcome)
                return outcome

            self._call: Callable[[Request], Awaitable[Any]] = call

    def finish(self) -> None:
        set_current_executor(None)

    def child_pids(self) -> list[int]:
        return list(self._pool_pids)

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            self._shutdown_pool()

    def _shutdown_pool(self) -> None:
        pool = self._pool
        if pool is None:
            return
        self._pool = None
        # shutdown(wait=True) has no timeout; a handler that never returns must not hang us.
        waiter = threading.Thread(
            target=pool.shutdown,
            kwargs={"wait": True, "cancel_futures": True},
            name=self.thread_name("pool-shutdown"),
            daemon=True,
        )
        waiter.start()
        waiter.join(self.options.shutdown_timeout)
        if waiter.is_alive():
            for pid in self._pool_pids:
                with contextlib.suppress(psutil.Error):
                    psutil.Process(pid).kill()
            waiter.join(5.0)
            raise ServerStopError(
                f"the {self.name} server's pool processes {self._pool_pids} still computed "
                f"{self.options.shutdown_timeout:g} s after stop; killed them"
            )
