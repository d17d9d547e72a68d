"""``trio``: one trio event loop in one thread, one task per connection."""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

import trio

from pytest_concurrency.serve._app import HandlerKind, coerce_response
from pytest_concurrency.serve._http import Response, error_response_bytes
from pytest_concurrency.serve.models._base import set_nodelay
from pytest_concurrency.serve.models._loop_thread import LoopThreadEngine

__all__ = ["TrioEngine"]

_RECV_SIZE = 65536


class TrioEngine(LoopThreadEngine):
    """trio has no callback protocols: each connection is a task reading its socket."""

    kinds: ClassVar[frozenset[HandlerKind]] = frozenset({"async"})
    loop_name = "trio"
    anyio_backend = "trio"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._token: trio.lowlevel.TrioToken | None = None
        self._cancel_scope: trio.CancelScope | None = None
        self._sockets: set[trio.socket.SocketType] = set()

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as error:
            self._loop_ended(error)
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self.bound_listener.listen(self.options.backlog)
        listener = trio.socket.from_stdlib_socket(self.bound_listener)
        try:
            async with trio.open_nursery() as nursery:
                self._cancel_scope = nursery.cancel_scope
                nursery.start_soon(self._tick)
                nursery.start_soon(self._accept, listener, nursery)
                self._ready.set()
        finally:
            listener.close()

    async def _accept(self, listener: trio.socket.SocketType, nursery: trio.Nursery) -> None:
        while True:
            try:
                sock, _ = await listener.accept()
            except OSError:
                # Out of file descriptors or a connection reset before accept: keep serving.
                await trio.sleep(0.05)
                continue
            set_nodelay(sock)  # type: ignore[arg-type]
            nursery.start_soon(self._connection, sock)

    async def _connection(self, sock: trio.socket.SocketType) -> None:
        app = self.app
        handler = app.handler
        parser = app.new_parser()
        self._sockets.add(sock)
        self._connections_open += 1
        self._connections_total += 1
        try:
            while True:
                try:
                    data = await sock.recv(_RECV_SIZE)
                except OSError:
                    return
                if not data:
                    return
                requests = parser.feed(data)
                if parser.interim:
                    await _send_all(sock, parser.interim)
                    parser.interim = b""
                while requests:
                    for request in requests:
                        try:
                            response = await handler(request)
                            if type(response) is not Response:  # else a call less per request
                                response = coerce_response(response)
                        except Exception as error:
                            response = app.failure(request, error)
                        out, keep_alive = parser.encode(request, response)
                        self._requests += 1
                        await _send_all(sock, out)
                        if not keep_alive:
                            return
                    requests = parser.resume() if parser.pauses else []
                rejected = parser.error
                if rejected is not None:  # after answering the requests that came before it
                    self._bad_requests += 1
                    await _send_all(sock, error_response_bytes(rejected.status, rejected.message))
                    return
        except OSError:  # the client went away while we answered
            return
        except Exception as bug:  # in the nursery, it would end the whole server
            app.connection_failure(bug, self.name)
        finally:
            self._connections_open -= 1
            self._sockets.discard(sock)
            parser.close()
            sock.close()

    async def _tick(self) -> None:
        interval = self.options.lag_interval
        clock = trio.current_time
        while True:
            started = clock()
            await trio.sleep(interval)
            lag = clock() - started - interval
            if lag > self._lag_max:
                self._lag_max = lag

    def _request_stop_threadsafe(self) -> None:
        token, scope = self._token, self._cancel_scope
        if token is not None and scope is not None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(scope.cancel)


async def _send_all(sock: trio.socket.SocketType, data: bytes) -> None:
    view = memoryview(data)
    while view:
        sent = await sock.send(view)
        view = view[sent:]
