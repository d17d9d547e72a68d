"""The acceptor thread of the thread and process models: accept, hand on, stop on request."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from collections.abc import Callable

__all__ = ["Acceptor", "accept_ready"]


def accept_ready(listener: socket.socket) -> socket.socket | None:
    """Accept one connection from a non-blocking listener, or ``None`` if there is none now."""
    try:
        conn, _ = listener.accept()
    except (BlockingIOError, InterruptedError, ConnectionAbortedError):
        return None  # another worker process took it, or the client gave up
    except OSError:
        # EMFILE/ENFILE: out of file descriptors. Back off instead of spinning.
        time.sleep(0.05)
        return None
    return conn


class Acceptor:
    """A thread that accepts connections on ``listener`` and passes each to ``on_connection``.

    The listener is made non-blocking and watched together with one end of a socket pair;
    :meth:`stop` writes to the other end, so a ``select`` waiting for clients returns at once.
    """

    def __init__(
        self,
        listener: socket.socket,
        on_connection: Callable[[socket.socket], None],
        name: str,
    ) -> None:
        self.listener = listener
        self._on_connection = on_connection
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._stopping = False
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self.listener.setblocking(False)
        self.thread.start()

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.listener, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while not self._stopping:
                for key, _ in selector.select():
                    if key.fileobj is self._wake_reader or self._stopping:
                        return
                    conn = accept_ready(self.listener)
                    if conn is not None:
                        self._on_connection(conn)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting and wait up to ``timeout`` seconds for the thread to end."""
        self._stopping = True
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"x")
        if self.thread.ident is not None:
            self.thread.join(timeout)
        self._wake_reader.close()
        self._wake_writer.close()
