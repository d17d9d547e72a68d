"""``run_load()``: drive a server from a separate process and report what it measured."""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pytest_concurrency.serve._app import ServeConfigError
from pytest_concurrency.serve._procmetrics import raise_fd_limit
from pytest_concurrency.serve._server import ServerHandle, check_loopback

__all__ = ["LoadError", "LoadReport", "run_load"]

_MAX_CONNECTIONS = 60_000
_MAX_SECONDS = 3600.0


class LoadError(RuntimeError):
    """The load generator could not run; the message says why."""


@dataclass(frozen=True)
class LoadReport:
    """What one load run measured. Times are milliseconds, memory bytes, rates per second.

    Latency percentiles come from an HdrHistogram of every completed request (``histogram``
    decodes it). ``cpu_us_per_request`` is the server's CPU time (user + system, all its
    processes, read from the kernel's per-process CPU clocks to the nanosecond) during the run
    divided by the completed requests; ``cpu_note`` says why it is None when it could not be
    stated honestly (see ``_procmetrics.cpu_between``). For an in-process server,
    the process is the test process itself, so memory includes pytest: use ``isolated=True``
    for memory figures that are the server's alone. Server figures are ``None`` when unknown:
    a URL target given without ``server_pids`` has no known CPU, memory or threads.
    """

    url: str
    model: str | None
    connections: int
    """Connections the generator held open (``connected`` of them succeeded)."""
    connected: int
    offered_rps: float | None
    """The open-loop rate; ``None`` for a closed loop."""
    achieved_rps: float
    duration_s: float
    requests: int
    """Responses received."""
    errors: dict[str, int]
    """Failures by kind: ``timeout``, ``connection_closed``, ``connect_failed``,
    ``protocol_error``, ``status_<code>`` for 4xx/5xx, ``not_sent_in_time`` (open loop:
    requests whose turn came but whose connection was still waiting at the end)."""
    statuses: dict[int, int]
    """Responses by status, other than 200."""
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    max_ms: float | None
    mean_ms: float | None
    send_lag_p99_ms: float
    """Open loop: how late the generator's own timers fired (not counted in latency)."""
    send_lag_max_ms: float
    cpu_us_per_request: float | None
    server_cpu_seconds: float | None
    """The server's CPU time over ``server_cpu_window_s`` (None: see ``cpu_note``)."""
    server_cpu_window_s: float | None
    """Wall time between the two CPU readings (connections open, then the end of the run)."""
    server_cpus: int | None
    """CPUs the server's processes may run on (their affinity)."""
    cpu_note: str | None
    """Why the server's CPU figures are None, when they are."""
    generator_cpu_seconds: float
    rss_start_bytes: int | None
    """Server RSS before the connections were opened."""
    rss_connected_bytes: int | None
    """Server RSS with every connection open and idle, before the first request."""
    rss_peak_bytes: int | None
    vsz_peak_bytes: int | None
    threads_peak: int | None
    loop_lag_max_ms: float | None
    """Largest event-loop lag in the server during the run (``None``: no loop)."""
    histogram_encoded: str | None = field(default=None, repr=False)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def server_cores(self) -> float | None:
        """Average number of cores the server used during the run (None: unknown)."""
        window = self.server_cpu_window_s
        if self.server_cpu_seconds is None or not window:
            return None
        return self.server_cpu_seconds / window

    @property
    def memory_per_connection_bytes(self) -> float | None:
        """Resident memory each idle connection added to the server (None: unknown)."""
        if not self.connected or self.rss_connected_bytes is None or self.rss_start_bytes is None:
            return None
        return (self.rss_connected_bytes - self.rss_start_bytes) / self.connected

    @property
    def histogram(self) -> Any:
        """The latency HdrHistogram (microseconds), decoded on demand."""
        from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

        if self.histogram_encoded is None:
            return None
        return HdrHistogram.decode(self.histogram_encoded.encode("ascii"))

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "histogram_encoded"}
        data["statuses"] = {str(k): v for k, v in self.statuses.items()}
        return data

    def __str__(self) -> str:
        offered = f"{self.offered_rps:g} req/s offered" if self.offered_rps else "closed loop"

        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f}"

        lag = (
            "" if self.loop_lag_max_ms is None else f", loop lag max {self.loop_lag_max_ms:.1f} ms"
        )

        def unknown_or(value: float | None, text: str) -> str:
            return "-" if value is None else text.format(value)

        def mb(value: int | None, digits: str) -> str:
            return unknown_or(None if value is None else value / 2**20, f"{{:{digits}}} MB")

        cpu = unknown_or(self.cpu_us_per_request, "{:.0f} us")
        cores = unknown_or(self.server_cores, "{:.2f}")
        if self.server_cpus is not None and self.server_cores is not None:
            cores += f" (of {self.server_cpus} allowed)"
        rss, vsz = mb(self.rss_peak_bytes, ".1f"), mb(self.vsz_peak_bytes, ".0f")
        threads = unknown_or(self.threads_peak, "{}")
        errors = ", ".join(f"{k}={v}" for k, v in sorted(self.errors.items())) or "none"
        return (
            f"{self.model or self.url}: {self.connections} connections, {offered}, "
            f"{self.achieved_rps:.0f} req/s achieved over {self.duration_s:.1f} s\n"
            f"  latency ms p50 {ms(self.p50_ms)}  p90 {ms(self.p90_ms)}  p99 {ms(self.p99_ms)}"
            f"  p99.9 {ms(self.p999_ms)}  max {ms(self.max_ms)}\n"
            f"  server: {cpu} CPU/request, {cores} cores, RSS peak {rss} (VSZ {vsz}), "
            f"{threads} threads{lag}\n"
            + (f"  server CPU not stated: {self.cpu_note}\n" if self.cpu_note else "")
            + f"  errors: {errors}"
        )


def _validate(
    connections: int,
    rate: float | None,
    duration: float | None,
    requests: int | None,
    timeout: float,
) -> None:
    if not 1 <= connections <= _MAX_CONNECTIONS:
        raise ServeConfigError(
            f"connections must be between 1 and {_MAX_CONNECTIONS}, got {connections}"
        )
    if rate is not None and not rate > 0:
        raise ServeConfigError(f"rate must be positive (or None for a closed loop), got {rate}")
    if duration is None and requests is None:
        raise ServeConfigError("a load must be bounded: give duration=SECONDS or requests=COUNT")
    if duration is not None and not 0 < duration <= _MAX_SECONDS:
        raise ServeConfigError(f"duration must be between 0 and {_MAX_SECONDS:g} s, got {duration}")
    if requests is not None and requests < 1:
        raise ServeConfigError(f"requests must be at least 1, got {requests}")
    if not timeout > 0:
        raise ServeConfigError(f"timeout must be positive, got {timeout}")


def run_load(
    target: ServerHandle | str,
    *,
    connections: int = 10,
    rate: float | None = None,
    duration: float | None = None,
    requests: int | None = None,
    path: str = "/",
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    timeout: float = 10.0,
    connect_timeout: float = 10.0,
    cpu_affinity: list[int] | None = None,
    server_pids: list[int] | None = None,
    wait_accepted: bool = True,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> LoadReport:
    """Load ``target`` (a server handle or a loopback URL) from a separate process.

    ``rate`` requests per second in an open loop, or a closed loop when ``rate`` is None; stop
    after ``duration`` seconds or ``requests`` requests, whichever comes first (one of them is
    required). ``timeout`` bounds each request. ``cpu_affinity`` pins the generator.
    ``server_pids`` names the processes of a server given by URL (they and their children are
    measured: CPU per request, memory, threads). ``progress`` receives the generator's progress
    events (dictionaries).
    """
    _validate(connections, rate, duration, requests, timeout)
    handle = target if isinstance(target, ServerHandle) else None
    if handle is not None:
        host, port, model = handle.host, handle.port, handle.model
        url = handle.url
        pids = handle.pids
        children = handle.isolated
    else:
        parts = urlsplit(str(target))
        if parts.scheme != "http" or not parts.hostname or parts.port is None:
            raise ServeConfigError(
                f"target must be a server handle or http://HOST:PORT, got {target!r}"
            )
        host, port, model, url = parts.hostname, parts.port, None, str(target)
        pids, children = list(server_pids or []), True
    check_loopback(host)
    if handle is not None and not handle.isolated:
        # The server shares this process: it needs a descriptor per connection too.
        raise_fd_limit(connections + 256)
    config = {
        "host": host,
        "port": port,
        "path": path,
        "method": method.upper(),
        "headers": list((headers or {}).items()),
        "body": body.decode("latin-1"),
        "connections": connections,
        "rate": rate,
        "duration": duration,
        "requests": requests,
        "timeout": timeout,
        "connect_timeout": connect_timeout,
        "cpu_affinity": cpu_affinity,
        "server_pids": pids,
        "server_children": children,
        "max_seconds": duration if duration is not None else _MAX_SECONDS,
    }
    horizon = (duration if duration is not None else _MAX_SECONDS) + timeout
    # Connecting is bounded by connect_timeout per batch of 256; add generous slack.
    deadline = time.monotonic() + horizon + connect_timeout * (connections / 256 + 2) + 60.0
    errors_file = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest_concurrency.serve._loadgen"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errors_file,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    lines = _LineReader(process.stdout.fileno())
    result: dict[str, Any] | None = None
    loop_lag: float | None = None
    try:
        process.stdin.write(json.dumps(config).encode() + b"\n")
        process.stdin.flush()
        while result is None:
            line = lines.readline(deadline)
            if line is None:
                break
            event = json.loads(line)
            kind = event.get("event")
            if kind == "connected":
                if handle is not None:
                    if wait_accepted:
                        _wait_accepted(handle, event["connected"], deadline)
                    handle.reset_peaks()
                process.stdin.write(b"go\n")
                process.stdin.flush()
            elif kind == "progress":
                if progress is not None:
                    progress(event)
            elif kind == "error":
                raise LoadError(f"load generator: {event['error']}")
            elif kind == "result":
                result = event
        if result is not None and handle is not None and not handle.stopped:
            loop_lag = handle.stats().loop_lag_max_ms
    finally:
        if process.poll() is None:
            try:
                process.stdin.close()
                process.wait(5.0)
            except (OSError, subprocess.TimeoutExpired):
                process.kill()
                process.wait()
        errors_file.seek(0)
        stderr = errors_file.read().decode(errors="replace")
        errors_file.close()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
    if result is None:
        last = stderr.strip().splitlines()[-1] if stderr.strip() else "no output"
        raise LoadError(f"load generator failed (exit code {process.returncode}): {last}")
    completed = result["completed"]
    return LoadReport(
        url=url,
        model=model,
        connections=result["connections"],
        connected=result["connected"],
        offered_rps=rate,
        achieved_rps=completed / result["elapsed"] if result["elapsed"] else 0.0,
        duration_s=result["elapsed"],
        requests=completed,
        errors=result["errors"],
        statuses={int(k): v for k, v in result["statuses"].items()},
        p50_ms=result["p50_ms"],
        p90_ms=result["p90_ms"],
        p99_ms=result["p99_ms"],
        p999_ms=result["p999_ms"],
        max_ms=result["max_ms"],
        mean_ms=result["mean_ms"],
        send_lag_p99_ms=result["send_lag_p99_ms"],
        send_lag_max_ms=result["send_lag_max_ms"],
        cpu_us_per_request=(result["server_cpu_seconds"] / completed * 1e6)
        if completed and result["server_cpu_seconds"] is not None
        else None,
        server_cpu_seconds=result["server_cpu_seconds"],
        server_cpu_window_s=result["server_cpu_window_s"],
        server_cpus=result["server_cpus"],
        cpu_note=result["cpu_note"],
        generator_cpu_seconds=result["generator_cpu_seconds"],
        rss_start_bytes=result["rss_start_bytes"],
        rss_connected_bytes=result["rss_connected_bytes"],
        rss_peak_bytes=result["rss_peak_bytes"],
        vsz_peak_bytes=result["vsz_peak_bytes"],
        threads_peak=result["threads_peak"],
        loop_lag_max_ms=loop_lag,
        histogram_encoded=result["histogram"],
    )


def _wait_accepted(handle: ServerHandle, connected: int, deadline: float) -> None:
    """Wait until the server has accepted the connections (thread-per-connection is slow)."""
    last_count, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = handle._backend.engine_stats().connections_open
        if count >= connected:
            return
        if count != last_count:
            last_count, last_change = count, time.monotonic()
        elif time.monotonic() - last_change > 5.0:
            return  # no progress: some connections were refused or dropped
        time.sleep(0.05)


class _LineReader:
    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = b""

    def readline(self, deadline: float) -> bytes | None:
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LoadError("load generator did not finish in time")
            ready, _, _ = select.select([self._fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self._fd, 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line
