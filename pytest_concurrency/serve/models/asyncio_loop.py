"""``asyncio``: one event loop in one thread serves every connection.

Each connection is an ``asyncio.Protocol`` (the cheapest way asyncio offers to read a socket);
a burst of requests on a connection runs in one task, so idle connections cost no task at all.
The same engine, with another loop, is the ``uvloop`` model, and with a process pool it is the
``asyncio+processes`` model.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ClassVar

from pytest_concurrency.serve._app import HandlerKind, coerce_response
from pytest_concurrency.serve._http import Request, Response, error_response_bytes
from pytest_concurrency.serve._parsers import BadRequest, RequestParser
from pytest_concurrency.serve.models._loop_thread import LoopThreadEngine

__all__ = ["AsyncioEngine", "RemoteHandlerError"]

# Stop reading from a connection that pipelines more than this many requests ahead.
_MAX_PIPELINED = 32
# Connections accepted per loop step.
_ACCEPT_BURST = 32


class RemoteHandlerError(Exception):
    """A handler failed in another process; carries the traceback text from there."""

    def __init__(self, remote_traceback: str) -> None:
        super().__init__(remote_traceback)
        self.remote_traceback = remote_traceback


class _HttpProtocol(asyncio.Protocol):
    __slots__ = (
        "_drain_waiter",
        "_engine",
        "_loop",
        "_parser",
        "_pending",
        "_reading_paused",
        "_task",
        "_transport",
        "_write_paused",
    )

    def __init__(self, engine: AsyncioEngine, loop: asyncio.AbstractEventLoop) -> None:
        self._engine = engine
        self._loop = loop
        self._parser: RequestParser = engine.app.new_parser()
        self._pending: collections.deque[Request] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self._transport: asyncio.Transport | None = None
        self._write_paused = False
        self._reading_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None

    # connection events -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        engine = self._engine
        engine._protocols.add(self)
        engine._connections_open += 1
        engine._connections_total += 1

    def connection_lost(self, exc: Exception | None) -> None:
        engine = self._engine
        engine._protocols.discard(self)
        engine._connections_open -= 1
        self._parser.close()
        task = self._task
        if task is not None:
            # The client is gone: nobody will read the answer of an in-flight handler. The
            # engine keeps the task until it ends, to wait for it when the server stops.
            task.cancel()
            if not task.done():
                engine._orphans.add(task)
                task.add_done_callback(engine._orphans.discard)
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        try:
            requests = parser.feed(data)
            transport = self._transport
            assert transport is not None
            if parser.interim:
                transport.write(parser.interim)
                parser.interim = b""
            if requests:
                pending = self._pending
                pending.extend(requests)
                if self._task is None:
                    self._task = self._loop.create_task(self._serve())
                if not self._reading_paused and len(pending) > _MAX_PIPELINED:
                    self._reading_paused = True
                    transport.pause_reading()
            if parser.error is not None:
                if self._task is None:
                    self._reject(parser.error)
                elif not self._reading_paused:
                    # The task answers the requests before the error, then rejects.
                    self._reading_paused = True
                    transport.pause_reading()
        except Exception as bug:  # asyncio would only log it and close
            self._fail(bug)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    # serving ---------------------------------------------------------------------------
    def _reject(self, error: BadRequest) -> None:
        """Send the error's response and close (every earlier request has been answered)."""
        transport = self._transport
        assert transport is not None
        if transport.is_closing():
            return
        self._engine._bad_requests += 1
        transport.write(error_response_bytes(error.status, error.message))
        transport.close()

    def _fail(self, bug: Exception) -> None:
        """A failure of the server's own code: record it and drop this connection."""
        engine = self._engine
        engine.app.connection_failure(bug, engine.name)
        self._pending.clear()
        self.abort()

    async def _serve(self) -> None:
        engine = self._engine
        call = engine._call
        pending = self._pending
        parser = self._parser
        transport = self._transport
        assert transport is not None
        try:
            while pending:
                request = pending.popleft()
                try:
                    response = await call(request)
                    if type(response) is not Response:  # else a call less per request
                        response = coerce_response(response)
                except Exception as error:
                    response = engine.app.failure(request, _remote_text(error))
                data, keep_alive = parser.encode(request, response)
                engine._requests += 1
                if transport.is_closing():
                    return
                transport.write(data)
                if not keep_alive:
                    transport.close()
                    return
                if parser.pauses:
                    pending.extend(parser.resume())
                if (
                    self._reading_paused
                    and len(pending) < _MAX_PIPELINED // 4
                    and parser.error is None
                ):
                    self._reading_paused = False
                    transport.resume_reading()
                if self._write_paused:
                    self._drain_waiter = self._loop.create_future()
                    await self._drain_waiter
                    self._drain_waiter = None
            if parser.error is not None:  # after answering the requests that came before it
                self._reject(parser.error)
        except Exception as bug:  # a task's exception would only be logged
            self._fail(bug)
        finally:
            self._task = None


class _LagTicker:
    """Measures the loop's lag: a timer due every ``interval`` notes how late it ran.

    A timer callback rather than a task that sleeps: no task step and no future per tick.
    """

    __slots__ = ("_engine", "_handle", "_interval", "_loop")

    def __init__(
        self, engine: AsyncioEngine, loop: asyncio.AbstractEventLoop, interval: float
    ) -> None:
        self._engine = engine
        self._loop = loop
        self._interval = interval
        due = loop.time() + interval
        self._handle: asyncio.TimerHandle | None = loop.call_at(due, self._tick, due)

    def _tick(self, due: float) -> None:
        now = self._loop.time()
        engine = self._engine
        if now - due > engine._lag_max:
            engine._lag_max = now - due
        due = now + self._interval
        self._handle = self._loop.call_at(due, self._tick, due)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def _remote_text(error: Exception) -> Exception | str:
    if isinstance(error, RemoteHandlerError):
        return error.remote_traceback
    return error


class AsyncioEngine(LoopThreadEngine):
    """One event loop, in a thread of its own, serving every connection."""

    kinds: ClassVar[frozenset[HandlerKind]] = frozenset({"async"})
    loop_name = "asyncio"
    anyio_backend = "asyncio"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_future: asyncio.Future[None] | None = None
        self._protocols: set[_HttpProtocol] = set()
        # Requests in flight run in their connection's task (``_HttpProtocol._task``); a task
        # whose connection is gone is kept here until it ends.
        self._orphans: set[asyncio.Task[None]] = set()
        self._adopting: set[asyncio.Task[Any]] = set()
        self._call: Callable[[Request], Awaitable[Any]] = self.app.handler

    # hooks for the models built on this engine -----------------------------------------
    def new_loop(self) -> asyncio.AbstractEventLoop:
        """The event loop to run (uvloop overrides this)."""
        return asyncio.new_event_loop()

    def prepare(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called in the loop thread before serving (asyncio+processes overrides this)."""

    def finish(self) -> None:
        """Called in the loop thread after serving, while the loop still runs."""

    # lifecycle -------------------------------------------------------------------------
    def _run(self) -> None:
        runner = _new_runner(self._new_current_loop)
        try:
            runner.get_loop()
        except BaseException as error:
            self._loop_ended(error)
            self._ready.set()
            return
        try:
            runner.run(self._main())
        except BaseException as error:
            self._loop_ended(error)
        finally:
            try:
                # Cancels the tasks handlers left behind, as asyncio.run does: the leak
                # detector sees them there, still pending, and reports them.
                runner.close()
            finally:
                asyncio.set_event_loop(None)
                self._ready.set()

    def _new_current_loop(self) -> asyncio.AbstractEventLoop:
        loop = self.new_loop()
        asyncio.set_event_loop(loop)
        return loop

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._stop_future = loop.create_future()
        self.prepare(loop)
        server = None
        if self.listener is not None:
            # asyncio accepts up to ``backlog`` connections in one callback; a storm of
            # thousands would hold the loop for the whole burst. Accept at most _ACCEPT_BURST
            # per step, then restore the kernel's listen backlog (asyncio re-listened).
            server = await loop.create_server(
                lambda: _HttpProtocol(self, loop), sock=self.listener, backlog=_ACCEPT_BURST
            )
            self.listener.listen(self.options.backlog)
        ticker = _LagTicker(self, loop, self.options.lag_interval)
        self._ready.set()
        try:
            await self._stop_future
        finally:
            if server is not None:
                server.close()
            protocols = list(self._protocols)
            tasks = [p._task for p in protocols if p._task is not None and not p._task.done()]
            tasks += [task for task in self._orphans if not task.done()]
            for protocol in protocols:
                protocol.abort()
            for task in tasks:
                task.cancel()
            if tasks:
                _, still_running = await asyncio.wait(tasks, timeout=self.options.shutdown_timeout)
                if still_running:
                    self._stop_problem = (
                        f"{len(still_running)} handler task(s) of the {self.name} server "
                        f"ignored cancellation for {self.options.shutdown_timeout:g} s:\n"
                        + "\n".join(_task_stack(task) for task in list(still_running)[:3])
                    )
            ticker.stop()
            self.finish()

    def adopt(self, sock: socket.socket) -> None:
        """Serve a connection accepted elsewhere (thread-safe)."""
        loop = self._loop
        if loop is None:
            sock.close()
            return
        try:
            loop.call_soon_threadsafe(self._adopt, sock)
        except RuntimeError:  # the loop has closed
            sock.close()

    def _adopt(self, sock: socket.socket) -> None:
        loop = self._loop
        assert loop is not None
        task = loop.create_task(
            loop.connect_accepted_socket(lambda: _HttpProtocol(self, loop), sock)
        )
        self._adopting.add(task)
        task.add_done_callback(self._adopted)

    def _adopted(self, task: asyncio.Task[Any]) -> None:
        self._adopting.discard(task)
        if not task.cancelled() and task.exception() is not None:
            pass  # the client was gone before we could serve it

    def _request_stop(self) -> None:
        future = self._stop_future
        if future is not None and not future.done():
            future.set_result(None)

    def _request_stop_threadsafe(self) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # RuntimeError: the loop already closed
                loop.call_soon_threadsafe(self._request_stop)


class _Runner:
    """``asyncio.Runner`` for Python 3.10, which lacks it: the same shutdown steps."""

    def __init__(self, loop_factory: Callable[[], asyncio.AbstractEventLoop]) -> None:
        self._factory = loop_factory
        self._loop: asyncio.AbstractEventLoop | None = None

    def get_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = self._factory()
        return self._loop

    def run(self, coroutine: Coroutine[Any, Any, None]) -> None:
        self.get_loop().run_until_complete(coroutine)

    def close(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            _cancel_remaining(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


def _new_runner(loop_factory: Callable[[], asyncio.AbstractEventLoop]) -> Any:
    runner_class = getattr(asyncio, "Runner", None)  # Python 3.11+
    if runner_class is None:
        return _Runner(loop_factory)
    return runner_class(loop_factory=loop_factory)


def _cancel_remaining(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


def _task_stack(task: asyncio.Task[Any]) -> str:
    """Where a task is: its own frame, and the line of user code it is suspended at (the
    handler's, which its own frame only awaits)."""
    # Imported here: only a failing stop needs it.
    from pytest_concurrency.detect._leaks import suspended_at

    lines = [f"  task {task.get_name()}:"]
    for frame in task.get_stack():
        lines.append(f"    {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
    where = suspended_at(task.get_coro())
    if where is not None:
        lines.append(f"    suspended at {where.describe()}")
    return "\n".join(lines)
