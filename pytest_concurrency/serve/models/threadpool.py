"""``threadpool``: a selector thread reads every connection; a bounded pool runs the requests.

The selector thread accepts, reads and parses; each complete request goes to a
``ThreadPoolExecutor`` of ``pool_size`` threads (256 by default). One connection's requests run
one after another on one worker at a time, so pipelined responses keep their order. Workers
write the response themselves. When every worker is busy, requests queue: that is the pool
starvation this model exists to show.
"""

from __future__ import annotations

import collections
import contextlib
import selectors
import socket
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from pytest_concurrency.serve._app import HandlerKind
from pytest_concurrency.serve._http import Request, error_response_bytes
from pytest_concurrency.serve._parsers import BadRequest, RequestParser
from pytest_concurrency.serve.models._acceptor import accept_ready
from pytest_concurrency.serve.models._base import (
    Engine,
    ServerStopError,
    send_all_nonblocking,
    set_nodelay,
)

__all__ = ["ThreadpoolEngine"]

_RECV_SIZE = 65536
_SEND_TIMEOUT = 30.0
_ACCEPT = object()
_WAKE = object()


class _Connection:
    __slots__ = (
        "busy",
        "closed",
        "eof",
        "lock",
        "parser",
        "pending",
        "registered",
        "rejected",
        "served",
        "sock",
    )

    def __init__(self, sock: socket.socket, parser: RequestParser) -> None:
        self.sock = sock
        self.parser = parser
        self.pending: collections.deque[Request | BadRequest] = collections.deque()
        self.lock = threading.Lock()
        self.busy = False  # a worker owns the connection's queue
        self.eof = False  # the client finished sending (or reading stopped)
        self.closed = False
        self.registered = True  # in the selector; only the selector thread changes this
        self.rejected = False  # the parser's error is queued
        self.served = 0  # responses sent, counted by the worker that owns the queue


class ThreadpoolEngine(Engine):
    """Selector + ThreadPoolExecutor: few threads, shared by all connections."""

    kinds: ClassVar[frozenset[HandlerKind]] = frozenset({"sync"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pool = ThreadPoolExecutor(
            max_workers=self.options.pool_size,
            thread_name_prefix=self.thread_name("worker"),
        )
        self._selector_thread: threading.Thread | None = None
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._stopping = False
        self._connections: set[_Connection] = set()
        # Workers never close a socket the selector may still watch (its file descriptor
        # could be reused at once); they queue it here for the selector thread.
        self._retired: collections.deque[_Connection] = collections.deque()

    def start(self) -> None:
        self.bound_listener.setblocking(False)
        self._selector_thread = threading.Thread(
            target=self._select_loop, name=self.thread_name("selector"), daemon=True
        )
        self._selector_thread.start()

    # selector thread -------------------------------------------------------------------
    def _select_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.bound_listener, selectors.EVENT_READ, _ACCEPT)
            selector.register(self._wake_reader, selectors.EVENT_READ, _WAKE)
            while not self._stopping:
                for key, _ in selector.select():
                    data = key.data
                    if self._stopping:
                        return
                    if data is _WAKE:
                        self._close_retired(selector)
                    elif data is _ACCEPT:
                        self._accept(selector)
                    else:
                        try:
                            self._read(selector, data)
                        except Exception as bug:  # it would end the selector thread
                            self.app.connection_failure(bug, self.name)
                            self._abandon(selector, data)

    def _accept(self, selector: selectors.BaseSelector) -> None:
        for _ in range(64):  # accept a burst, then let reads run
            sock = accept_ready(self.bound_listener)
            if sock is None:
                return
            sock.setblocking(False)
            set_nodelay(sock)
            connection = _Connection(sock, self.app.new_parser())
            with self._lock:
                self._connections.add(connection)
                self._connections_open += 1
                self._connections_total += 1
            selector.register(sock, selectors.EVENT_READ, connection)

    def _read(self, selector: selectors.BaseSelector, connection: _Connection) -> None:
        if not connection.registered:
            return  # closed by _close_retired earlier in the same batch of events
        sock = connection.sock
        try:
            data = sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        with connection.lock:
            if not data:
                selector.unregister(sock)
                connection.registered = False
                connection.eof = True
                if not connection.busy:
                    self._close(connection)
                return
            parser = connection.parser
            # The requests this read completed (often none: only part of one came). The
            # parser's list: never changed in place here.
            requests: Sequence[Request | BadRequest] = parser.feed(data)
            if parser.interim:
                interim, parser.interim = parser.interim, b""
                with contextlib.suppress(OSError):
                    sock.send(interim)
            if parser.error is not None:
                # Read no more; answer what came before the error, then the error.
                selector.unregister(sock)
                connection.registered = False
                connection.eof = True
                if not connection.rejected:
                    connection.rejected = True
                    requests = [*requests, parser.error]
            if not requests:
                return
            if connection.busy:  # its worker answers these after the ones it has
                connection.pending.extend(requests)
                return
            connection.busy = True
        try:  # noqa: SIM105 - cheaper than a context manager, on every request
            self._pool.submit(self._work, connection, requests)
        except RuntimeError:
            pass  # the pool is shutting down; stop() closes the rest

    def _abandon(self, selector: selectors.BaseSelector, connection: _Connection) -> None:
        """Stop serving ``connection`` after a failure of ours (selector thread)."""
        with connection.lock:
            if connection.registered:
                selector.unregister(connection.sock)
                connection.registered = False
            connection.eof = True
            connection.pending.clear()
            if not connection.busy:
                self._close(connection)

    def _close_retired(self, selector: selectors.BaseSelector) -> None:
        try:
            while self._wake_reader.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        while self._retired:
            connection = self._retired.popleft()
            with connection.lock:
                if connection.registered:
                    selector.unregister(connection.sock)
                    connection.registered = False
                self._close(connection)

    # pool workers ----------------------------------------------------------------------
    def _work(self, connection: _Connection, requests: Sequence[Request | BadRequest]) -> None:
        """Answer ``requests`` of ``connection`` in order, then those queued meanwhile, until
        its queue is empty (the worker owns the connection until then)."""
        app = self.app
        parser = connection.parser
        lock = connection.lock
        pending = connection.pending
        sock = connection.sock
        try:
            while True:
                # Written out, not split into helpers: this runs for every request.
                for request in requests:
                    if connection.closed or self._stopping:
                        break
                    if isinstance(request, BadRequest):
                        with self._lock:
                            self._bad_requests += 1
                        self._send(
                            connection, error_response_bytes(request.status, request.message)
                        )
                        self._retire(connection)
                        return
                    response = app.call_sync(request)
                    if parser.pauses:  # h11: encoding moves its state on, as reading does
                        with lock:
                            out, keep_alive = parser.encode(request, response)
                            pending.extend(parser.resume())
                            if parser.error is not None and not connection.rejected:
                                connection.rejected = True  # found by resume(): h11 is lazy
                                pending.append(parser.error)
                    else:
                        out, keep_alive = parser.encode(request, response)
                    # Only the worker that owns the queue (busy) counts; readers only read.
                    connection.served += 1
                    try:
                        sent = sock.send(out)  # the usual case: all of it at once
                    except BlockingIOError:
                        sent = 0
                    except (OSError, ValueError):  # reset, or closed by stop()
                        sent = -1
                    if (
                        sent < 0
                        or (sent < len(out) and not self._send(connection, out[sent:]))
                        or not keep_alive
                    ):
                        self._retire(connection)
                        return
                with lock:
                    if connection.closed or not pending:
                        connection.busy = False
                        if connection.eof and not connection.closed:
                            self._close(connection)  # already unregistered by the selector
                        return
                    requests = list(pending)
                    pending.clear()
        except Exception as bug:  # the pool would keep it in a future nobody reads
            app.connection_failure(bug, self.name)
            self._retire(connection)

    def _retire(self, connection: _Connection) -> None:
        """Hand a connection that must close to the selector thread (from a worker)."""
        with connection.lock:
            connection.busy = False
            connection.pending.clear()
            if not connection.registered:
                self._close(connection)
                return
        self._retired.append(connection)
        # OSError: stopping; stop() closes every connection.
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"c")

    def _send(self, connection: _Connection, data: bytes) -> bool:
        try:
            send_all_nonblocking(connection.sock, data, _SEND_TIMEOUT)
        except (OSError, ValueError):  # reset, timed out, or closed by stop()
            return False
        return True

    def _close(self, connection: _Connection) -> None:
        """Close ``connection``; the caller holds ``connection.lock``."""
        if connection.closed:
            return
        connection.closed = True
        connection.sock.close()
        connection.parser.close()
        with self._lock:
            self._connections.discard(connection)
            self._connections_open -= 1
            self._requests += connection.served

    def requests_served(self) -> int:
        with self._lock:
            return self._requests + sum(c.served for c in self._connections)

    # lifecycle -------------------------------------------------------------------------
    def stop(self) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"x")
        if self._selector_thread is not None:
            self._selector_thread.join(5.0)
        self.bound_listener.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with connection.lock:
                connection.pending.clear()
                if not connection.busy:
                    self._close(connection)
                else:
                    # Wake a worker blocked on a full send buffer; it closes the socket.
                    with contextlib.suppress(OSError):
                        connection.sock.shutdown(socket.SHUT_RDWR)
        # ThreadPoolExecutor.shutdown(wait=True) has no timeout: wait for it in a helper.
        waiter = threading.Thread(
            target=self._pool.shutdown, name=self.thread_name("shutdown"), daemon=True
        )
        waiter.start()
        waiter.join(self.options.shutdown_timeout)
        self._wake_reader.close()
        self._wake_writer.close()
        for connection in connections:
            with connection.lock:
                self._close(connection)
        if waiter.is_alive():
            raise ServerStopError(
                f"the {self.name} server's workers still run {self.options.shutdown_timeout:g} s "
                f"after stop (a handler that never returns?); threads "
                + ", ".join(
                    t.name for t in threading.enumerate() if t.name.startswith(self.thread_name(""))
                )
            )
        if self._selector_thread is not None and self._selector_thread.is_alive():
            raise ServerStopError(f"the {self.name} server's selector thread did not stop")
