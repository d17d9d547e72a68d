"""``asyncio+processes``: an event loop for I/O, a process pool for the CPU-bound part.

This is the shape the design document recommends for CPU work. The loop reads, parses and
writes every connection. A sync handler runs entirely in a ``ProcessPoolExecutor`` of
``workers`` processes (the CPU count by default), so the loop never computes; an async handler
runs on the loop and sends its CPU-bound part to the same pool with
:func:`pytest_concurrency.serve.offload_cpu`.

The loop runs in the calling process, where the plugin's detectors see it. The pool processes
watch for leaks themselves when asked (``watch_leaks``): what the work they ran left running
is collected from each of them when the server stops.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
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
from pytest_concurrency.serve._watch import Findings, WatchSettings, watching
from pytest_concurrency.serve.models._base import ServerStopError
from pytest_concurrency.serve.models.asyncio_loop import AsyncioEngine, RemoteHandlerError
from pytest_concurrency.serve.models.processes import fork_context, quiet_fork_warning

__all__ = ["AsyncioProcessesEngine"]

# The handler, installed in each pool process by the initializer. With the fork start method
# the initializer's arguments are inherited, not pickled, so closures work too.
_worker_handler: Callable[[Request], Any] | None = None
# In a pool process that watches for leaks: the watch (closed by _collect_findings), what it
# found, and the barrier that makes every pool process take one _collect_findings call.
_worker_watch: contextlib.ExitStack | None = None
_worker_findings = Findings()
_worker_barrier: Any = None


def _install_handler(
    handler: Callable[[Request], Any], watch: WatchSettings, barrier: Any = None
) -> None:
    global _worker_handler, _worker_watch, _worker_findings, _worker_barrier
    _worker_handler = handler
    # The parent stops the pool in order; Ctrl-C must not kill workers mid-request.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if watch.leak_kinds:
        # No loop runs here: only what the pool's work starts is watched.
        settings = dataclasses.replace(watch, loop_ms=None)
        owner = f"the asyncio+processes server (pool process {os.getpid()})"
        _worker_watch = contextlib.ExitStack()
        _worker_findings = _worker_watch.enter_context(watching(settings, owner))
        _worker_barrier = barrier


def _collect_findings(timeout: float) -> Findings:
    """Runs once in each pool process when the server stops: end the leak watch, return what
    it found. The barrier holds each call until every pool process has one, so that no process
    takes two (a process still busy with a handler lets the others go after ``timeout``)."""
    with contextlib.suppress(threading.BrokenBarrierError):
        _worker_barrier.wait(timeout)
    if _worker_watch is not None:
        _worker_watch.close()
    return _worker_findings


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
        self._findings = Findings()

    @property
    def worker_count(self) -> int:
        return self.options.workers or os.cpu_count() or 1

    def start(self) -> None:
        context = fork_context()
        before = {child.pid for child in psutil.Process().children()}
        watch = self.options.watch
        barrier = context.Barrier(self.worker_count) if watch.leak_kinds else None
        self._pool = ProcessPoolExecutor(
            max_workers=self.worker_count,
            mp_context=context,
            initializer=_install_handler,
            initargs=(self.app.handler, watch, barrier),
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

    def findings(self) -> Findings:
        return self._findings

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
        if self.options.watch.leak_kinds:
            self._collect_findings(pool)
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

    def _collect_findings(self, pool: ProcessPoolExecutor) -> None:
        """Ask each pool process what the work it ran left running (see _collect_findings)."""
        timeout = self.options.shutdown_timeout
        with contextlib.suppress(RuntimeError):  # the pool is already broken
            calls = [pool.submit(_collect_findings, timeout) for _ in range(self.worker_count)]
            done, _ = concurrent.futures.wait(calls, timeout=timeout + 5.0)
            for call in done:
                if call.exception() is None:
                    self._findings.add(call.result())
