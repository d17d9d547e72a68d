"""What every concurrency model implements: an :class:`Engine` serving one listening socket."""

from __future__ import annotations

import abc
import contextlib
import select
import socket
import threading
from dataclasses import dataclass, field
from typing import ClassVar

from pytest_concurrency.serve._app import App, HandlerError, HandlerKind
from pytest_concurrency.serve._watch import Findings, WatchSettings

__all__ = [
    "Engine",
    "EngineStats",
    "ServeOptions",
    "ServerStartError",
    "ServerStopError",
    "send_all_nonblocking",
    "set_nodelay",
]

THREAD_PREFIX = "concurrency-serve"
"""Every thread a server starts has a name beginning with this."""


class ServerStartError(RuntimeError):
    """The server could not start; the message says why."""


class ServerStopError(RuntimeError):
    """Something the server started did not stop in time; the message names it."""


@dataclass(frozen=True)
class ServeOptions:
    """Model options shared by all engines (each uses the ones that concern it)."""

    workers: int | None = None
    """Worker processes (``processes``, ``asyncio+processes``); ``None`` means the CPU count."""
    pool_size: int = 256
    """Threads in the ``threadpool`` model's ThreadPoolExecutor."""
    backlog: int = 4096
    """Listen backlog (the kernel caps it at ``net.core.somaxconn``)."""
    shutdown_timeout: float = 5.0
    """Seconds to wait for in-flight handlers when stopping."""
    lag_interval: float = 0.01
    """How often (seconds) event-loop models tick to measure loop lag."""
    watch: WatchSettings = field(default_factory=WatchSettings)
    """Detectors that worker processes run around their server (``processes``)."""


@dataclass
class EngineStats:
    """Counters a running server keeps (summed over worker processes where there are some)."""

    requests: int = 0
    """Responses sent for well-formed requests (including 500s)."""
    bad_requests: int = 0
    """Malformed requests answered with a 4xx and a closed connection."""
    handler_errors: int = 0
    """Requests whose handler raised (answered with 500)."""
    connections_open: int = 0
    connections_total: int = 0
    loop_lag_max_ms: float | None = None
    """Largest event-loop lag since the last reset (``None`` for models without a loop)."""
    errors: list[HandlerError] = field(default_factory=list)

    def add(self, other: EngineStats) -> None:
        self.requests += other.requests
        self.bad_requests += other.bad_requests
        self.handler_errors += other.handler_errors
        self.connections_open += other.connections_open
        self.connections_total += other.connections_total
        if other.loop_lag_max_ms is not None:
            self.loop_lag_max_ms = max(self.loop_lag_max_ms or 0.0, other.loop_lag_max_ms)
        self.errors.extend(other.errors)


class Engine(abc.ABC):
    """A concurrency model serving HTTP on an already listening socket.

    ``start()`` returns once the server accepts connections; ``stop()`` closes the listener
    and every connection, waits for in-flight handlers up to ``shutdown_timeout`` and raises
    :class:`ServerStopError` naming whatever is still running. Engines own the listener.
    Without a listener (``None``) an engine serves only connections handed to ``adopt()``.
    """

    kinds: ClassVar[frozenset[HandlerKind]]
    """The handler kinds this model runs."""

    def __init__(
        self, name: str, app: App, listener: socket.socket | None, options: ServeOptions
    ) -> None:
        self.name = name
        self.app = app
        self.listener = listener
        self.options = options
        self._lock = threading.Lock()
        self._requests = 0
        self._bad_requests = 0
        self._connections_open = 0
        self._connections_total = 0

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def stop(self) -> None: ...

    @property
    def bound_listener(self) -> socket.socket:
        """The listener, for models that always accept themselves."""
        if self.listener is None:
            raise ServerStartError(f"the {self.name} model needs a listening socket")
        return self.listener

    def adopt(self, sock: socket.socket) -> None:
        """Serve a connection accepted elsewhere (the ``processes`` model's workers)."""
        raise NotImplementedError(f"the {self.name} engine cannot adopt connections")

    def loop_lag_max_ms(self) -> float | None:
        """Largest loop lag since the last :meth:`reset_peaks`, if the model has a loop."""
        return None

    def reset_peaks(self) -> None:  # noqa: B027 - models without a loop have no peaks
        """Start measuring peaks (loop lag) afresh."""

    def child_pids(self) -> list[int]:
        """Processes the server started (their CPU and memory belong to the server)."""
        return []

    def findings(self) -> Findings:
        """What the detectors in the server's worker processes found (complete after stop)."""
        return Findings()

    def requests_served(self) -> int:
        """Responses sent so far (models counting per connection override this)."""
        return self._requests

    def stats(self) -> EngineStats:
        return EngineStats(
            requests=self.requests_served(),
            bad_requests=self._bad_requests,
            handler_errors=self.app.error_count,
            connections_open=self._connections_open,
            connections_total=self._connections_total,
            loop_lag_max_ms=self.loop_lag_max_ms(),
            errors=self.app.errors,
        )

    def thread_name(self, role: str) -> str:
        return f"{THREAD_PREFIX}-{self.name}-{role}"


def set_nodelay(sock: socket.socket) -> None:
    """Responses go out in one write; never let Nagle hold back the last segment."""
    with contextlib.suppress(OSError):  # not TCP: nothing to do
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def send_all_nonblocking(sock: socket.socket, data: bytes, timeout: float) -> None:
    """``sendall`` for a non-blocking socket: wait for room when the send buffer is full."""
    try:
        sent = sock.send(data)  # the usual case: the whole response fits at once
    except BlockingIOError:
        sent = 0
    if sent == len(data):
        return
    view = memoryview(data)[sent:]
    while view:
        try:
            sent = sock.send(view)
        except BlockingIOError:
            _, writable, _ = select.select([], [sock], [], timeout)
            if not writable:
                raise TimeoutError("client does not read its responses") from None
            continue
        view = view[sent:]
