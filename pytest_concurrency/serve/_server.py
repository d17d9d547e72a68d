"""Start a server under a model, in this process or in a subprocess, and hand back a handle."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from types import TracebackType
from typing import Any

from pytest_concurrency.serve._app import (
    App,
    HandlerError,
    HandlerKind,
    ServeConfigError,
    handler_kind,
    resolve_handler,
)
from pytest_concurrency.serve._procmetrics import ProcessGroup
from pytest_concurrency.serve._watch import Findings, WatchSettings, leak_kinds
from pytest_concurrency.serve.models import engine_class, models_running, require_model
from pytest_concurrency.serve.models._base import (
    Engine,
    EngineStats,
    ServeOptions,
    ServerStartError,
    ServerStopError,
)

__all__ = [
    "ModelError",
    "ServerHandle",
    "ServerStats",
    "check_loopback",
    "handler_spec",
    "start_server",
]

_KIND_WORDS = {
    "sync": "sync handlers (def handle(request))",
    "async": "async handlers (async def handle(request))",
}


class ModelError(ServeConfigError):
    """The model cannot run this handler; the message names the models that can."""


_OWN_ERRORS: dict[str, type[Exception]] = {
    error.__name__: error
    for error in (ModelError, ServeConfigError, ServerStartError, ServerStopError)
}
"""Errors an isolated server raises in the caller as themselves (by class name)."""


@dataclass(frozen=True)
class ServerStats:
    """Live metrics of a running server (``handle.stats()``)."""

    requests: int
    """Responses sent for well-formed requests (500s included)."""
    bad_requests: int
    """Malformed requests, answered with a 4xx before closing the connection."""
    handler_errors: int
    """Requests whose handler raised."""
    connections_open: int
    connections_total: int
    loop_lag_max_ms: float | None
    """Largest event-loop lag since the last ``reset_peaks()`` (``None``: the model has no loop)."""
    rss_bytes: int
    """Resident memory of the server's processes (this whole process when in-process)."""
    vsz_bytes: int
    """Virtual memory of the server's processes."""
    threads: int
    cpu_seconds: float
    processes: int


def check_loopback(host: str) -> None:
    """Servers and load stay on this machine: refuse any non-loopback address."""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ServeConfigError(f"host must be a loopback address (127.0.0.1, ::1), got {host!r}")


def handler_spec(handler: str | Callable[..., Any]) -> str:
    """``"module:function"`` for a handler that a fresh interpreter can import."""
    if isinstance(handler, str):
        return handler
    module = getattr(handler, "__module__", None)
    qualname = getattr(handler, "__qualname__", None)
    if module and qualname and module != "__main__" and "<" not in qualname:
        return f"{module}:{qualname}"
    raise ServeConfigError(
        "isolated=True runs the handler in a new interpreter: give it as "
        "'module:function' (a closure, lambda or __main__ function cannot be imported there)"
    )


def _check_kind(model: str, kind: HandlerKind, handler_name: str) -> None:
    info = require_model(model)
    if kind in info.kinds:
        return
    runs = " and ".join(_KIND_WORDS[k] for k in sorted(info.kinds))
    raise ModelError(
        f"model {model!r} runs {runs}, but {handler_name} is "
        f"{'async def' if kind == 'async' else 'a plain def'}; models that run "
        f"{kind} handlers: {', '.join(models_running(kind))}"
    )


def _bind(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=backlog)
    except OSError as error:
        raise ServerStartError(f"cannot listen on {host}:{port}: {error}") from None


class _InProcess:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def engine_stats(self) -> EngineStats:
        return self.engine.stats()

    def reset_peaks(self) -> None:
        self.engine.reset_peaks()

    def pids(self) -> list[int]:
        return [os.getpid(), *self.engine.child_pids()]

    def stop(self) -> None:
        self.engine.stop()

    def findings(self) -> Findings:
        return self.engine.findings()


class _Isolated:
    """A server in a subprocess, driven over a JSON-lines pipe (see ``_isolated.py``)."""

    def __init__(self, config: dict[str, Any], startup_timeout: float) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self.found = Findings()
        self.final: EngineStats | None = None
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pytest_concurrency.serve._isolated"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        try:
            self._send(config)
            ready = self._receive(startup_timeout)
        except BaseException:
            self._kill()
            raise
        if ready.get("event") != "ready":
            self._kill()
            raise _start_error(ready)
        self.port: int = ready["port"]
        self.child_pids: list[int] = ready["pids"]

    def _send(self, message: dict[str, Any] | str) -> None:
        assert self.process.stdin is not None
        line = message if isinstance(message, str) else json.dumps(message)
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def _receive(self, timeout: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise ServerStopError(
                    f"isolated server (pid {self.process.pid}) did not answer within {timeout:g} s"
                )
            chunk = os.read(fd, 65536)
            if not chunk:
                code = self.process.wait(5)
                raise ServerStartError(
                    f"isolated server exited with code {code} (its stderr is above)"
                )
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message

    def _command(self, command: str) -> dict[str, Any]:
        with self._lock:
            self._send(command)
            return self._receive(30.0)

    def engine_stats(self) -> EngineStats:
        if self.final is not None:
            return self.final
        return _stats_from_json(self._command("stats")["stats"])

    def reset_peaks(self) -> None:
        self._command("reset")

    def pids(self) -> list[int]:
        return [self.process.pid, *self.child_pids]

    def findings(self) -> Findings:
        return self.found

    def stop(self) -> None:
        if self.process.poll() is not None and self.final is not None:
            return
        try:
            with self._lock:
                self._send("stop")
                answer = self._receive(60.0)
        except (OSError, ServerStopError, ServerStartError) as error:
            self._kill()
            raise ServerStopError(f"isolated server did not stop cleanly: {error}") from None
        self.final = _stats_from_json(answer["stats"])
        self.found = Findings.from_json(answer.get("findings"))
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self._kill()
        self._close_pipes()
        if answer.get("problem"):
            raise ServerStopError(answer["problem"])

    def _kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._close_pipes()

    def _close_pipes(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def _start_error(answer: dict[str, Any]) -> Exception:
    """The exception an isolated server failed to start with, as in-process would raise it.

    The project's own error types are raised again as themselves; anything else (an error of
    the handler's module at import, say) becomes a ServerStartError naming its type.
    """
    message = answer.get("error")
    if not message:
        return ServerStartError(f"isolated server did not start: {answer}")
    kind = answer.get("type", "")
    same = _OWN_ERRORS.get(kind)
    if same is not None:
        return same(message)
    return ServerStartError(f"{kind}: {message}" if kind else message)


def stats_to_json(stats: EngineStats) -> dict[str, Any]:
    """EngineStats as JSON-able data (for the isolated server's pipe)."""
    data = asdict(stats)
    return data


def _stats_from_json(data: dict[str, Any]) -> EngineStats:
    errors = [HandlerError(**error) for error in data.pop("errors", [])]
    return EngineStats(**data, errors=errors)


@dataclass
class ServerHandle:
    """A running server: where it listens, which model serves, and its live metrics.

    Use it as a context manager (``with start_server(...) as server:``) or call :meth:`stop`.
    The ``serve`` fixture stops it for you at teardown.
    """

    model: str
    host: str
    port: int
    handler: str
    """The handler's ``module:qualname``."""
    isolated: bool
    fail_on_handler_error: bool = True
    """The ``serve`` fixture fails the test when the handler raised (see ``handler_errors``)."""
    _backend: Any = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)
    _group: ProcessGroup | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def pids(self) -> list[int]:
        """The processes whose CPU and memory count as the server's."""
        pids: list[int] = self._backend.pids()
        return pids

    def stats(self) -> ServerStats:
        """Counters, loop lag and process metrics, read now."""
        engine = self._backend.engine_stats()
        if self._group is None:
            self._group = ProcessGroup(self.pids)
        sample = self._group.sample()
        return ServerStats(
            requests=engine.requests,
            bad_requests=engine.bad_requests,
            handler_errors=engine.handler_errors,
            connections_open=engine.connections_open,
            connections_total=engine.connections_total,
            loop_lag_max_ms=engine.loop_lag_max_ms,
            rss_bytes=sample.rss_bytes,
            vsz_bytes=sample.vsz_bytes,
            threads=sample.threads,
            cpu_seconds=sample.cpu_seconds,
            processes=sample.processes,
        )

    def reset_peaks(self) -> None:
        """Start measuring the loop lag peak afresh (``load()`` does this before measuring)."""
        self._backend.reset_peaks()

    @property
    def handler_errors(self) -> list[HandlerError]:
        """The first exceptions the handler raised (each answered with a 500)."""
        errors: list[HandlerError] = self._backend.engine_stats().errors
        return errors

    @property
    def loop_blocks(self) -> list[str]:
        """Event-loop blocks the detectors found in the server's own processes (an isolated
        server, the ``processes`` model's workers), once it has stopped."""
        findings: Findings = self._backend.findings()
        return list(findings.loop_blocks)

    @property
    def leaks(self) -> list[str]:
        """What the handlers left running in the server's own processes (an isolated server,
        the ``processes`` model's workers, the ``asyncio+processes`` pool), checked when it
        stopped."""
        findings: Findings = self._backend.findings()
        return list(findings.leaks)

    @property
    def findings(self) -> Findings:
        """Loop blocks and leaks found in the server's own processes (after stop)."""
        found: Findings = self._backend.findings()
        return found

    @property
    def stopped(self) -> bool:
        return self._stopped

    def stop(self) -> None:
        """Stop serving and release everything; raises ServerStopError naming what hung."""
        if self._stopped:
            return
        self._stopped = True
        self._backend.stop()

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_server(
    handler: str | Callable[..., Any],
    model: str = "asyncio",
    *,
    isolated: bool = False,
    host: str = "127.0.0.1",
    port: int = 0,
    workers: int | None = None,
    pool_size: int = 256,
    http: str = "httptools",
    backlog: int = 4096,
    max_header_bytes: int = 64 * 1024,
    max_body_bytes: int = 1024 * 1024,
    shutdown_timeout: float = 5.0,
    cpu_affinity: list[int] | None = None,
    startup_timeout: float = 30.0,
    fail_on_handler_error: bool = True,
    watch_loop_ms: float | None = None,
    watch_leaks: bool | Iterable[str] = False,
    leak_grace_ms: float = 100.0,
    leak_allow: Iterable[str] = (),
) -> ServerHandle:
    """Start ``handler`` under ``model`` on a free loopback port; return once it accepts.

    ``handler`` is a callable, or ``"module:function"``. ``isolated=True`` serves from a fresh
    subprocess (the handler must then be importable by name), so memory figures are the
    server's alone; ``cpu_affinity`` pins that subprocess to CPUs. ``workers`` sizes the
    ``processes`` and ``asyncio+processes`` models (default: the CPU count), ``pool_size`` the
    ``threadpool`` model. ``http`` picks the parser (``httptools`` or ``h11``).

    The test process's detectors cannot see into the processes a server starts, so those
    processes run them themselves when asked: ``watch_loop_ms`` reports every event-loop step
    of that many milliseconds or more, ``watch_leaks`` (True, or some of ``"tasks"``,
    ``"threads"``, ``"processes"``) what the handlers left running when the server stopped
    (after ``leak_grace_ms``; ``leak_allow`` patterns are never reported). Both apply to an
    isolated server and to the ``processes`` model's workers, ``watch_leaks`` also to the
    ``asyncio+processes`` pool (its loop runs here); their findings are on the
    handle (``loop_blocks``, ``leaks``) once it has stopped, and fail the test under the
    ``serve`` fixture, which passes the plugin's settings.
    """
    info = require_model(model)
    check_loopback(host)
    if http not in ("httptools", "h11"):
        raise ServeConfigError(f"http must be 'httptools' or 'h11', got {http!r}")
    if workers is not None and workers < 1:
        raise ServeConfigError(f"workers must be at least 1, got {workers}")
    if pool_size < 1:
        raise ServeConfigError(f"pool_size must be at least 1, got {pool_size}")
    watch = WatchSettings(
        loop_ms=watch_loop_ms,
        leak_kinds=leak_kinds(watch_leaks),
        leak_grace_ms=leak_grace_ms,
        leak_allow=tuple(leak_allow),
    )
    options = ServeOptions(
        workers=workers,
        pool_size=pool_size,
        backlog=backlog,
        shutdown_timeout=shutdown_timeout,
    )
    if isolated:
        spec = handler_spec(handler)
        if not info.available:
            engine_class(model)  # raises the "install the extra" error
        config = {
            "handler": spec,
            "model": model,
            "host": host,
            "port": port,
            "http": http,
            "max_header_bytes": max_header_bytes,
            "max_body_bytes": max_body_bytes,
            "options": {k: v for k, v in asdict(options).items() if k != "watch"},
            "cpu_affinity": cpu_affinity,
            "sys_path": sys.path,
            "watch": watch.to_json(),
        }
        backend = _Isolated(config, startup_timeout)
        return ServerHandle(model, host, backend.port, spec, True, fail_on_handler_error, backend)
    if cpu_affinity is not None:
        raise ServeConfigError("cpu_affinity pins a server process: it needs isolated=True")
    if watch.active and not info.watches_workers:
        raise ServeConfigError(
            "watch_loop_ms and watch_leaks are for the processes a server starts (isolated=True, "
            "the processes model's workers, the asyncio+processes pool); in this process, the "
            "plugin watches loops and "
            "leaks (outside pytest: pytest_concurrency.detect.watch_loop and watch_leaks)"
        )
    options = replace(options, watch=watch)
    function = resolve_handler(handler)
    app = App(function, http=http, max_head=max_header_bytes, max_body=max_body_bytes)
    _check_kind(model, handler_kind(function), app.name)
    engine_type = engine_class(model)
    listener = _bind(host, port, backlog)
    bound_port = listener.getsockname()[1]
    engine = engine_type(model, app, listener, options)
    try:
        engine.start()
    except BaseException:
        listener.close()
        raise
    return ServerHandle(
        model, host, bound_port, app.name, False, fail_on_handler_error, _InProcess(engine)
    )
