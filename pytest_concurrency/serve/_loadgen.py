"""The load generator process (``python -m pytest_concurrency.serve._loadgen``).

It runs alone in its own interpreter so it never shares a GIL (or a core, when pinned) with
the server it measures. One event loop (uvloop when installed) drives every connection with
keep-alive HTTP/1.1; responses are parsed by httptools. Latencies are counted per microsecond
in the hot path and recorded into an HdrHistogram at the end, which is where the percentiles
come from.

Open loop (``rate`` given): virtual client ``c`` of ``C`` sends its k-th request at the
intended time ``t0 + (c + k*C) / rate``. When that time comes while the client is still waiting
for its previous response, the request goes out as soon as the response arrives and its latency
is counted from the intended time: queueing in the server is never hidden (no coordinated
omission). When the client was free, the request goes out on a timer and latency is counted
from the moment it is sent, so the generator's own timer slack (epoll has millisecond
granularity) is not blamed on the server; that slack is reported as ``send_lag``.

Closed loop (``rate`` is None): each client sends its next request as soon as it has the
previous response; latency is counted from the send.

Protocol on stdin/stdout, one JSON document per line: the parent writes the configuration;
the generator reports ``connected``, waits for ``go``, reports ``progress`` events and finally
a ``result``. End of input means the parent is gone: the generator stops at once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import json
import os
import resource
import socket
import sys
import time
from typing import Any

import httptools
from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

from pytest_concurrency.serve._procmetrics import ProcessGroup, cpu_between, raise_fd_limit

_CONNECT_CONCURRENCY = 256
_HIGHEST_US = 3_600_000_000  # one hour, in microseconds


def _new_histogram() -> HdrHistogram:
    return HdrHistogram(1, _HIGHEST_US, 3)


class _Lane:
    """One virtual client: its schedule and the connection it currently uses."""

    __slots__ = (
        "conn",
        "done",
        "failed",
        "in_flight",
        "index",
        "next_slot",
        "start",
        "timer",
        "want_send",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        self.next_slot = index
        self.conn: _Conn | None = None
        self.start = 0.0
        self.in_flight = False
        self.want_send = False
        self.done = False
        self.failed = False
        self.timer: asyncio.TimerHandle | None = None


class _Conn(asyncio.Protocol):
    __slots__ = ("closing", "gen", "lane", "parser", "transport")

    def __init__(self, gen: Generator, lane: _Lane) -> None:
        self.gen = gen
        self.lane = lane
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport = transport  # type: ignore[assignment]
        lane = self.lane
        lane.conn = self
        if lane.want_send:
            lane.want_send = False
            self.gen.write(lane)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.gen.fail(self.lane, "protocol_error")

    def on_message_complete(self) -> None:
        now = time.perf_counter()
        if not self.parser.should_keep_alive():
            # The server closes this connection: the next request waits for a new one.
            self.closing = True
            if self.transport is not None:
                self.transport.close()
        self.gen.complete(self.lane, now, self.parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.lost(self.lane, self)


class Generator:
    def __init__(self, config: dict[str, Any], loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.host: str = config["host"]
        self.port: int = config["port"]
        self.connections: int = config["connections"]
        self.rate: float | None = config["rate"]
        self.duration: float | None = config["duration"]
        self.max_requests: int | None = config["requests"]
        self.timeout: float = config["timeout"]
        self.connect_timeout: float = config["connect_timeout"]
        self.max_seconds: float = config["max_seconds"]
        self.request_bytes = _request_bytes(config)
        self.lanes = [_Lane(i) for i in range(self.connections)]
        self.latencies: dict[int, int] = {}
        self.send_lags: dict[int, int] = {}
        self.errors: collections.Counter[str] = collections.Counter()
        self.statuses: collections.Counter[int] = collections.Counter()
        self.completed = 0
        self.sent = 0
        self.running = False
        self.t0 = 0.0
        self.t_end = float("inf")
        self.last_completion = 0.0
        self.finished: asyncio.Future[None] = loop.create_future()
        self.reconnecting: set[asyncio.Task[None]] = set()
        self._first_unfinished = 0  # lanes before this index have finished (see check_finished)
        group = ProcessGroup(config["server_pids"], include_children=config["server_children"])
        group.exclude(os.getpid())
        self.group = group
        # None until a server process has been measured: a URL given without its server's
        # pids has no known memory or threads (not zero of them).
        self.rss_peak: int | None = None
        self.vsz_peak: int | None = None
        self.threads_peak: int | None = None

    # metrics -----------------------------------------------------------------------------
    def sample(self, refresh: bool = False) -> Any:
        sample = self.group.sample(refresh)
        if sample.processes:
            self.rss_peak = max(self.rss_peak or 0, sample.rss_bytes)
            self.vsz_peak = max(self.vsz_peak or 0, sample.vsz_bytes)
            self.threads_peak = max(self.threads_peak or 0, sample.threads)
        return sample

    # sending -----------------------------------------------------------------------------
    def write(self, lane: _Lane) -> None:
        conn = lane.conn
        if conn is None or conn.transport is None or conn.closing:
            lane.want_send = True
            return
        lane.in_flight = True
        self.sent += 1
        conn.transport.write(self.request_bytes)

    def send_closed(self, lane: _Lane) -> None:
        if (
            not self.running
            or (self.max_requests is not None and self.sent >= self.max_requests)
            or time.perf_counter() >= self.t_end
        ):
            lane.done = True
            self.check_finished()
            return
        lane.start = time.perf_counter()
        self.write(lane)

    def schedule_open(self, lane: _Lane) -> None:
        slot = lane.next_slot
        rate = self.rate
        assert rate is not None
        offset = slot / rate
        if (
            not self.running
            or (self.max_requests is not None and slot >= self.max_requests)
            or (self.duration is not None and offset >= self.duration)
        ):
            lane.done = True
            self.check_finished()
            return
        intended = self.t0 + offset
        delay = intended - time.perf_counter()
        if delay <= 0:
            # Due already: the previous response kept this client busy past its slot, so the
            # wait counts as latency, from the intended time.
            lane.next_slot += self.connections
            lane.start = intended
            self.write(lane)
        else:
            lane.timer = self.loop.call_later(delay, self.fire, lane, intended)

    def fire(self, lane: _Lane, intended: float) -> None:
        lane.timer = None
        if not self.running:
            lane.done = True
            self.check_finished()
            return
        now = time.perf_counter()
        lag = int((now - intended) * 1e6)
        lags = self.send_lags
        lags[lag] = lags.get(lag, 0) + 1
        lane.next_slot += self.connections
        lane.start = now
        self.write(lane)

    # receiving ---------------------------------------------------------------------------
    def complete(self, lane: _Lane, now: float, status: int) -> None:
        if not lane.in_flight:
            return
        lane.in_flight = False
        value = int((now - lane.start) * 1e6)
        latencies = self.latencies
        latencies[value] = latencies.get(value, 0) + 1
        self.completed += 1
        self.last_completion = now
        if status != 200:
            self.statuses[status] += 1
            if status >= 400:
                self.errors[f"status_{status}"] += 1
        if self.rate is None:
            self.send_closed(lane)
        else:
            self.schedule_open(lane)

    def fail(self, lane: _Lane, kind: str) -> None:
        if lane.in_flight:
            self.errors[kind] += 1
        conn = lane.conn
        if conn is not None and conn.transport is not None:
            conn.closing = True
            conn.transport.abort()

    def lost(self, lane: _Lane, conn: _Conn) -> None:
        if lane.conn is not conn:
            return
        lane.conn = None
        if lane.in_flight:
            lane.in_flight = False
            if not conn.closing:
                self.errors["connection_closed"] += 1
            # The request is lost; the client moves on to its next one.
            lane.want_send = False
            if self.running:
                self.loop.call_soon(self.next_after_failure, lane)
        if self.running and not lane.done:
            task = self.loop.create_task(self.reconnect(lane))
            self.reconnecting.add(task)
            task.add_done_callback(self.reconnecting.discard)
        else:
            self.check_finished()

    def next_after_failure(self, lane: _Lane) -> None:
        if self.rate is None:
            self.send_closed(lane)
        else:
            self.schedule_open(lane)

    async def reconnect(self, lane: _Lane) -> None:
        delay = 0.0
        while self.running and lane.conn is None and not lane.done:
            if await self.connect(lane):
                return
            delay = min(0.5, delay * 2 or 0.01)
            await asyncio.sleep(delay)

    async def connect(self, lane: _Lane) -> bool:
        try:
            await asyncio.wait_for(
                self.loop.create_connection(lambda: _Conn(self, lane), self.host, self.port),
                self.connect_timeout,
            )
        except (OSError, asyncio.TimeoutError) as error:
            kind = (
                "connect_timeout" if isinstance(error, asyncio.TimeoutError) else "connect_failed"
            )
            self.errors[kind] += 1
            return False
        return True

    def check_finished(self) -> None:
        if self.finished.done() or not self.running:
            return
        # A lane that has finished stays finished, so the scan resumes where it stopped: called
        # once per lane as the run ends, a scan from the start would cost O(connections^2)
        # (at 10,000 connections, the last second's sends would go out 400 ms late).
        lanes = self.lanes
        index = self._first_unfinished
        while index < len(lanes):
            lane = lanes[index]
            if not (lane.done or lane.failed) or lane.in_flight:
                self._first_unfinished = index
                return
            index += 1
        self._first_unfinished = index
        self.finished.set_result(None)

    # the run -------------------------------------------------------------------------------
    async def connect_all(self, emit: Any) -> tuple[int, int]:
        semaphore = asyncio.Semaphore(_CONNECT_CONCURRENCY)
        connected = 0

        async def one(lane: _Lane) -> None:
            nonlocal connected
            async with semaphore:
                if await self.connect(lane):
                    connected += 1
                else:
                    lane.failed = True

        tasks = [self.loop.create_task(one(lane)) for lane in self.lanes]
        last = time.monotonic()
        pending = set(tasks)
        while pending:
            _, pending = await asyncio.wait(pending, timeout=1.0)
            if time.monotonic() - last >= 1.0 and pending:
                last = time.monotonic()
                emit(
                    {
                        "event": "progress",
                        "phase": "connect",
                        "connected": connected,
                        "connections": self.connections,
                    }
                )
        return connected, self.connections - connected

    async def run(self, emit: Any) -> None:
        self.running = True
        now = time.perf_counter()
        # Open loop: the first slots start a little ahead, once every connection's first send
        # is scheduled (10,000 timers take tens of milliseconds to set up); starting the clock
        # before that would charge the set-up to the first second's requests as lateness.
        lead = 0.0 if self.rate is None else 0.05 + self.connections * 20e-6
        self.t0 = now + lead
        if self.duration is not None:
            self.t_end = self.t0 + self.duration
        for lane in self.lanes:
            if lane.failed:
                continue
            if self.rate is None:
                self.send_closed(lane)
            else:
                self.schedule_open(lane)
        self.check_finished()
        horizon = self.duration if self.duration is not None else self.max_seconds
        hard_deadline = now + min(horizon + self.timeout, self.max_seconds + self.timeout)
        last_progress = last_expiry = now
        # Timeouts need no finer check than a twentieth of their length; scanning every
        # connection costs a few milliseconds at 10,000 of them.
        expiry_interval = max(0.1, self.timeout / 20)
        while not self.finished.done():
            await asyncio.wait([self.finished], timeout=0.1)
            now = time.perf_counter()
            self.sample()
            if now - last_expiry >= expiry_interval:
                last_expiry = now
                self.expire(now)
            if now >= hard_deadline:
                break
            if now - last_progress >= 1.0:
                last_progress = now
                emit(
                    {
                        "event": "progress",
                        "phase": "load",
                        "elapsed": now - self.t0,
                        "completed": self.completed,
                        "horizon": horizon,
                    }
                )
        self.running = False
        for lane in self.lanes:
            if lane.timer is not None:
                lane.timer.cancel()
                lane.timer = None
            if lane.in_flight:
                lane.in_flight = False
                self.errors["timeout"] += 1
        if self.rate is not None:
            self.errors_unsent()

    def errors_unsent(self) -> None:
        """Open loop: slots whose time came but that never went out (server too slow)."""
        rate = self.rate
        assert rate is not None
        end_slots = []
        if self.duration is not None:
            end_slots.append(int(self.duration * rate))
        if self.max_requests is not None:
            end_slots.append(self.max_requests)
        if not end_slots:
            return
        total_slots = min(end_slots)
        # Slots of clients that never connected are already counted under connect_failed.
        never_connected = sum(
            len(range(lane.index, total_slots, self.connections))
            for lane in self.lanes
            if lane.failed
        )
        unsent = total_slots - self.sent - never_connected
        if unsent > 0:
            self.errors["not_sent_in_time"] += unsent

    def expire(self, now: float) -> None:
        timeout = self.timeout
        for lane in self.lanes:
            if lane.in_flight and now - lane.start > timeout:
                conn = lane.conn
                lane.in_flight = False
                self.errors["timeout"] += 1
                if conn is not None and conn.transport is not None:
                    conn.closing = True
                    conn.transport.abort()
                self.loop.call_soon(self.next_after_failure, lane)

    def histogram(self, counts: dict[int, int]) -> HdrHistogram:
        histogram = _new_histogram()
        for value, count in counts.items():
            histogram.record_value(min(max(value, 1), _HIGHEST_US), count)
        return histogram


def _request_bytes(config: dict[str, Any]) -> bytes:
    body: bytes = config["body"].encode("latin-1")
    host = config["host"]
    host_header = f"[{host}]:{config['port']}" if ":" in host else f"{host}:{config['port']}"
    lines = [f"{config['method']} {config['path']} HTTP/1.1", f"Host: {host_header}"]
    for name, value in config["headers"]:
        lines.append(f"{name}: {value}")
    if body or config["method"] in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _main(config: dict[str, Any], emit: Any) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    gen = Generator(config, loop)
    stdin_closed = loop.create_future()

    def on_stdin() -> None:
        try:
            data = os.read(0, 4096)
        except OSError:
            data = b""
        if not data and not stdin_closed.done():
            stdin_closed.set_result(None)
        elif b"go" in data and not go.done():
            go.set_result(None)

    go: asyncio.Future[None] = loop.create_future()
    loop.add_reader(0, on_stdin)
    start_sample = gen.sample(refresh=True)
    connected, failed = await gen.connect_all(emit)
    emit({"event": "connected", "connected": connected, "failed": failed})
    await asyncio.wait([go, stdin_closed], return_when=asyncio.FIRST_COMPLETED)
    if stdin_closed.done():
        raise SystemExit(3)
    connected_sample = gen.sample(refresh=True)
    # A collection pause here would delay reading responses and be charged to the server:
    # with 10,000 connections a full collection takes tens of milliseconds. Move everything
    # alive now out of the collector's sight and collect nothing until the run ends (what the
    # run allocates is freed by reference counting; the few cycles wait until then).
    gc.collect()
    gc.freeze()
    gc.disable()
    cpu_gen_0 = _cpu_self()
    run = loop.create_task(gen.run(emit))
    await asyncio.wait([run, stdin_closed], return_when=asyncio.FIRST_COMPLETED)
    gc.enable()
    gc.unfreeze()
    if stdin_closed.done():
        raise SystemExit(3)
    run.result()
    end = time.perf_counter()
    cpu_gen_1 = _cpu_self()
    end_sample = gen.sample(refresh=True)
    loop.remove_reader(0)
    for lane in gen.lanes:
        if lane.conn is not None and lane.conn.transport is not None:
            lane.conn.transport.abort()

    window_end = max(gen.last_completion, gen.t0 + (gen.duration or 0.0))
    if gen.duration is None:
        window_end = gen.last_completion or end
    elapsed = max(window_end - gen.t0, 1e-9)
    latency = gen.histogram(gen.latencies)
    lags = gen.histogram(gen.send_lags) if gen.send_lags else None
    has = latency.get_total_count() > 0

    def pct(p: float) -> float | None:
        return latency.get_value_at_percentile(p) / 1000.0 if has else None

    cpu = cpu_between(connected_sample, end_sample)
    return {
        "event": "result",
        "connections": gen.connections,
        "connected": connected,
        "rate": gen.rate,
        "elapsed": elapsed,
        "completed": gen.completed,
        "sent": gen.sent,
        "errors": dict(gen.errors),
        "statuses": {str(k): v for k, v in gen.statuses.items()},
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "p999_ms": pct(99.9),
        "max_ms": latency.get_max_value() / 1000.0 if has else None,
        "mean_ms": latency.get_mean_value() / 1000.0 if has else None,
        "send_lag_p99_ms": lags.get_value_at_percentile(99) / 1000.0 if lags else 0.0,
        "send_lag_max_ms": lags.get_max_value() / 1000.0 if lags else 0.0,
        "histogram": latency.encode().decode("ascii") if has else None,
        "server_cpu_seconds": cpu.seconds,
        "server_cpu_window_s": cpu.window_s,
        "server_cpus": cpu.cpus,
        "cpu_note": cpu.note,
        "generator_cpu_seconds": cpu_gen_1 - cpu_gen_0,
        "rss_start_bytes": start_sample.rss_bytes if start_sample.processes else None,
        "rss_connected_bytes": connected_sample.rss_bytes if connected_sample.processes else None,
        "rss_peak_bytes": gen.rss_peak,
        "vsz_peak_bytes": gen.vsz_peak,
        "threads_peak": gen.threads_peak,
        "server_processes": end_sample.processes,
    }


def main() -> int:
    config = json.loads(sys.stdin.readline())
    out = sys.stdout

    def emit(message: dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    if config.get("cpu_affinity"):
        os.sched_setaffinity(0, config["cpu_affinity"])
    try:
        raise_fd_limit(config["connections"] + 64)
    except OSError as error:
        emit({"event": "error", "error": str(error)})
        return 2
    loop_factory = None
    if config.get("use_uvloop", True):
        try:
            import uvloop

            loop_factory = uvloop.new_event_loop
        except ImportError:
            pass
    loop = loop_factory() if loop_factory else asyncio.new_event_loop()
    try:
        result = loop.run_until_complete(_main(config, emit))
    finally:
        loop.close()
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
