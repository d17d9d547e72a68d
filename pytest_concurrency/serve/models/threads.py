"""``threads``: one OS thread per connection, blocking reads and writes.

An acceptor thread waits on the listener (with a wake-up socket so ``stop()`` can interrupt
it) and starts a thread per accepted connection. Each thread costs about 16-20 KB of resident
memory and reserves its full stack (8 MB by default) of *virtual* memory: load reports keep
RSS and VSZ apart for that reason.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import sys
import threading
import time
import traceback
from typing import Any, ClassVar

from pytest_concurrency.serve._app import HandlerKind
from pytest_concurrency.serve._http import error_response_bytes
from pytest_concurrency.serve.models._acceptor import Acceptor
from pytest_concurrency.serve.models._base import Engine, ServerStopError, set_nodelay

__all__ = ["ThreadsEngine", "stuck_threads_report"]

_RECV_SIZE = 65536


def stuck_threads_report(threads: list[threading.Thread], limit: int = 3) -> str:
    """Where each of the first ``limit`` threads is stuck, for a stop error."""
    frames = sys._current_frames()
    parts = []
    for thread in threads[:limit]:
        frame = frames.get(thread.ident or -1)
        stack = "".join(traceback.format_stack(frame)) if frame else "  (no stack)\n"
        parts.append(f"thread {thread.name!r}:\n{stack}")
    return "".join(parts)


class _Connection:
    """A connection's thread and how many responses it sent (counted without a lock)."""

    __slots__ = ("served", "thread")

    def __init__(self, thread: threading.Thread) -> None:
        self.thread = thread
        self.served = 0


class ThreadsEngine(Engine):
    """Thread per connection: simple, preemptive, and expensive per connection."""

    kinds: ClassVar[frozenset[HandlerKind]] = frozenset({"sync"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._acceptor: Acceptor | None = None
        self._stopping = False
        self._connections: dict[socket.socket, _Connection] = {}
        self._ids = itertools.count(1)

    def start(self) -> None:
        if self.listener is None:
            return
        self._acceptor = Acceptor(self.listener, self.adopt, self.thread_name("acceptor"))
        self._acceptor.start()

    def adopt(self, conn: socket.socket) -> None:
        if self._stopping:
            conn.close()
            return
        conn.setblocking(True)
        set_nodelay(conn)
        record = _Connection(threading.Thread())
        thread = threading.Thread(
            target=self._serve_connection,
            args=(conn, record),
            name=self.thread_name(f"conn-{next(self._ids)}"),
            daemon=True,
        )
        record.thread = thread
        with self._lock:
            self._connections[conn] = record
            self._connections_open += 1
            self._connections_total += 1
        try:
            thread.start()
        except RuntimeError:  # can't start new thread: the process hit its thread limit
            with self._lock:
                del self._connections[conn]
                self._connections_open -= 1
                conn.close()

    def _serve_connection(self, conn: socket.socket, record: _Connection) -> None:
        app = self.app
        parser = app.new_parser()
        lock = self._lock
        try:
            while True:
                data = conn.recv(_RECV_SIZE)
                if not data:
                    return
                requests = parser.feed(data)
                if parser.interim:
                    conn.sendall(parser.interim)
                    parser.interim = b""
                while requests:
                    for request in requests:
                        out, keep_alive = parser.encode(request, app.call_sync(request))
                        record.served += 1
                        conn.sendall(out)
                        if not keep_alive:
                            return
                    requests = parser.resume() if parser.pauses else []
                rejected = parser.error
                if rejected is not None:  # after answering the requests that came before it
                    with lock:
                        self._bad_requests += 1
                    conn.sendall(error_response_bytes(rejected.status, rejected.message))
                    return
        except OSError:  # reset by the client, or shut down by stop()
            return
        except Exception as bug:  # never let one connection's failure pass unseen
            app.connection_failure(bug, self.name)
        finally:
            parser.close()
            with lock:
                self._connections.pop(conn, None)
                self._connections_open -= 1
                self._requests += record.served
                conn.close()

    def requests_served(self) -> int:
        with self._lock:
            return self._requests + sum(r.served for r in self._connections.values())

    def stop(self) -> None:
        self._stopping = True
        if self._acceptor is not None:
            self._acceptor.stop()
        if self.listener is not None:
            self.listener.close()
        with self._lock:
            connections = list(self._connections.items())
            for conn, _ in connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + self.options.shutdown_timeout
        for _, record in connections:
            record.thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [record.thread for _, record in connections if record.thread.is_alive()]
        if self._acceptor is not None and self._acceptor.thread.is_alive():
            stuck.insert(0, self._acceptor.thread)
        if stuck:
            raise ServerStopError(
                f"{len(stuck)} thread(s) of the {self.name} server still run "
                f"{self.options.shutdown_timeout:g} s after stop (a handler that never "
                f"returns?):\n{stuck_threads_report(stuck)}"
            )
