"""The load generator measures what a server with a known behaviour really does."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import anyio
import pytest

from fixtures.serve import clean_io
from pytest_concurrency.serve import LoadReport, Request, Response, ServeConfigError, run_load
from pytest_concurrency.serve._procmetrics import ProcessSample, cpu_between

DELAY_MS = 50


async def fixed_delay(request: Request) -> Response:
    await anyio.sleep(DELAY_MS / 1000)
    return Response(b"ok")


def test_percentiles_match_a_server_with_a_fixed_delay(serve, load):
    server = serve(fixed_delay, "asyncio")
    report: LoadReport = load(server, connections=8, rate=80, requests=120)
    assert report.errors == {}
    assert report.requests == 120
    # Nothing can answer faster than the delay; a busy 2-core machine adds a few ms (timer
    # granularity, scheduling), so only the upper bound gets a generous margin.
    assert DELAY_MS <= report.p50_ms <= DELAY_MS + 20
    assert report.p50_ms <= report.p90_ms <= report.p99_ms <= report.p999_ms <= report.max_ms
    assert report.p99_ms <= DELAY_MS + 60
    hist = report.histogram
    assert hist.get_total_count() == 120
    assert hist.get_min_value() >= DELAY_MS * 1000  # microseconds
    assert report.offered_rps == 80
    assert 60 <= report.achieved_rps <= 90


def test_closed_loop_throughput_follows_littles_law(serve, load):
    server = serve(fixed_delay, "trio")
    report = load(server, connections=10, requests=100)
    assert report.offered_rps is None
    assert report.errors == {}
    # N clients waiting 50 ms each: at most N / 0.05 = 200 requests per second.
    assert 100 <= report.achieved_rps <= 200


class StallOnce:
    """Holds the whole event loop for 300 ms on the 20th request."""

    def __init__(self) -> None:
        self.count = 0  # only the event loop thread touches it

    async def __call__(self, request: Request) -> Response:
        self.count += 1
        if self.count == 20:
            time.sleep(0.3)  # noqa: ASYNC251 - the stall under test
        return Response(b"ok")


@pytest.mark.allow_loop_lag
def test_open_loop_counts_queueing_from_the_intended_send_time(serve, load):
    """No coordinated omission: requests due during a stall carry the time they waited.

    At 100 requests/s over 5 connections, about 30 requests fall due during a 300 ms stall.
    A closed-loop view would charge the stall to only the 5 requests in flight.
    """
    server = serve(StallOnce(), "asyncio")
    report = load(server, connections=5, rate=100, requests=150)
    hist = report.histogram
    delayed = hist.get_total_count() - hist.get_count_at_value(0)
    slow = sum(
        item.count_at_value_iterated_to
        for item in hist.get_recorded_iterator()
        if item.value_iterated_to >= 100_000  # >= 100 ms
    )
    assert delayed == 150
    print(f"{slow} of {delayed} requests waited >= 100 ms")
    assert slow >= 15, f"only {slow} requests show the stall: queueing was hidden"
    assert report.max_ms >= 250
    assert report.loop_lag_max_ms is not None
    assert report.loop_lag_max_ms >= 250


def test_report_carries_server_process_metrics(serve, load):
    server = serve("fixtures.serve.clean_io:handle_sync", "threads", isolated=True)
    report = load(server, connections=20, rate=200, duration=0.5, path="/?ms=1")
    assert report.errors == {}
    assert report.cpu_us_per_request is not None
    assert report.cpu_us_per_request > 0
    # One thread per connection: VSZ reserves a stack per thread, RSS grows far less.
    assert report.threads_peak >= 20
    assert report.vsz_peak_bytes > report.rss_peak_bytes
    assert report.rss_connected_bytes >= report.rss_start_bytes > 0
    assert report.loop_lag_max_ms is None  # no event loop in this model
    assert "req/s achieved" in str(report)


def test_errors_are_counted_by_kind(serve, load):
    def sometimes_fails(request: Request) -> Response:
        return Response("no", status=503) if request.query.get("fail") else Response("ok")

    server = serve(sometimes_fails, "threadpool")
    report = load(server, connections=2, requests=10, path="/?fail=1")
    assert report.errors == {"status_503": 10}
    assert report.statuses == {503: 10}


def test_a_target_without_a_server_counts_connect_failures(load):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    report = load(f"http://127.0.0.1:{port}", connections=3, requests=3, timeout=2)
    assert report.errors == {"connect_failed": 3}
    assert report.requests == 0


UNKNOWN_WITHOUT_PIDS = (
    "server_cpu_seconds",
    "cpu_us_per_request",
    "server_cores",
    "rss_start_bytes",
    "rss_connected_bytes",
    "rss_peak_bytes",
    "vsz_peak_bytes",
    "memory_per_connection_bytes",
    "threads_peak",
)


def test_a_url_without_server_pids_has_unknown_server_figures_not_zeros(serve, load):
    server = serve(clean_io.handle_sync, "threads")
    report = load(server.url, connections=2, requests=20, path="/?ms=1")
    assert report.requests == 20
    assert {name: getattr(report, name) for name in UNKNOWN_WITHOUT_PIDS} == dict.fromkeys(
        UNKNOWN_WITHOUT_PIDS
    )
    assert "server: - CPU/request, - cores, RSS peak - (VSZ -), - threads" in str(report)
    assert "server CPU not stated: the server's processes are not known" in str(report)
    measured = load(server.url, connections=2, requests=20, path="/?ms=1", server_pids=server.pids)
    assert (measured.rss_peak_bytes or 0) > 0
    assert (measured.threads_peak or 0) >= 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"connections": 2}, "a load must be bounded"),
        ({"connections": 0, "requests": 1}, "connections must be between 1 and"),
        ({"connections": 1, "requests": 1, "rate": -5}, "rate must be positive"),
        ({"connections": 1, "duration": 99999}, "duration must be between"),
    ],
)
def test_bad_load_arguments_get_a_clear_error(kwargs, message):
    with pytest.raises(ServeConfigError, match=message):
        run_load("http://127.0.0.1:9", **kwargs)


def test_load_targets_only_loopback():
    with pytest.raises(ServeConfigError, match="loopback"):
        run_load("http://10.1.2.3:80", connections=1, requests=1)


def test_sync_sample_handler_waits(serve, load):
    server = serve(clean_io.handle_sync, "threads")
    report = load(server, connections=4, requests=20, path="/?ms=20")
    assert report.p50_ms >= 20


def test_a_server_that_stops_mid_load_gives_errors_not_a_hang(serve, load):
    """Connections reset and refused: counted by kind, and the run still ends on time."""
    server = serve(clean_io.handle_sync, "threads")
    stopper = threading.Timer(0.4, server.stop)
    stopper.start()
    try:
        report = load(server, connections=5, rate=100, duration=1.5, path="/?ms=1", timeout=2)
    finally:
        stopper.join()
    assert 0 < report.requests < 150
    assert set(report.errors) <= {"connection_closed", "connect_failed", "not_sent_in_time"}
    assert report.error_count > 0
    assert report.duration_s < 10


def test_the_end_of_a_run_is_checked_in_linear_time() -> None:
    # Every lane that finishes asks whether the run is over; with 10,000 connections a scan
    # from the first lane each time made the last second's requests go out 400 ms late.
    from pytest_concurrency.serve._loadgen import Generator, _Lane

    class CountingLanes(list[_Lane]):
        reads = 0

        def __getitem__(self, index: Any) -> Any:
            CountingLanes.reads += 1
            return super().__getitem__(index)

    lanes = CountingLanes(_Lane(i) for i in range(5_000))
    finished = asyncio.new_event_loop()
    try:
        generator = Generator.__new__(Generator)
        generator.lanes = lanes
        generator.running = True
        generator.finished = finished.create_future()
        generator._first_unfinished = 0
        for lane in lanes:
            lane.done = True
            generator.check_finished()
        assert generator.finished.done()
        assert CountingLanes.reads <= 3 * len(lanes)
    finally:
        finished.close()


def burn_2ms(request: Request) -> Response:
    """Uses 2 ms of CPU on its thread, however busy the machine is."""
    end = time.thread_time() + 0.002
    while time.thread_time() < end:
        pass
    return Response(b"ok")


def test_server_cpu_of_a_short_run_is_measured_precisely(serve, load):
    server = serve("tests.serve.test_load_generator:burn_2ms", "threads", isolated=True)
    report = load(server, connections=2, requests=20)
    assert report.requests == 20
    assert report.cpu_note is None
    assert report.server_cpus is not None
    assert report.server_cores is not None
    # Each request burnt 2 ms of its thread's CPU: a lower bound no clock tick can round away.
    assert report.cpu_us_per_request is not None
    assert report.cpu_us_per_request >= 2000
    assert report.server_cores <= report.server_cpus


def sample(cpu_by_pid: dict[int, float], tick: float = 0.0, at: float = 0.0) -> ProcessSample:
    return ProcessSample(
        rss_bytes=1,
        vsz_bytes=1,
        threads=1,
        cpu_seconds=sum(cpu_by_pid.values()),
        processes=len(cpu_by_pid),
        cpu_by_pid=cpu_by_pid,
        cpu_tick_s=tick,
        cpus=2,
        started=at,
        ended=at,
    )


def test_cpu_counted_in_clock_ticks_is_stated_only_when_they_matter_less_than_10_percent():
    coarse = cpu_between(sample({1: 1.00}, tick=0.01), sample({1: 1.05}, tick=0.01, at=1.0))
    assert coarse.seconds is None
    assert coarse.note is not None
    assert "50 ms of CPU, counted in 10 ms clock ticks: at least 200 ms" in coarse.note
    enough = cpu_between(sample({1: 1.0}, tick=0.01), sample({1: 1.3}, tick=0.01, at=1.0))
    assert enough.seconds == pytest.approx(0.3)
    precise = cpu_between(sample({1: 1.0}), sample({1: 1.000_05}, at=1.0))
    assert precise.seconds == pytest.approx(0.000_05)


def test_cpu_is_never_stated_as_more_cores_than_the_server_may_use():
    usage = cpu_between(sample({1: 0.0}), sample({1: 0.5}, at=0.1))  # 5 cores on 2 CPUs
    assert usage.seconds is None
    assert usage.cores is None
    assert usage.note is not None
    assert "measured 5.00 cores on a server that may use 2 CPU(s)" in usage.note


def test_a_process_that_appears_counts_from_zero_and_one_that_vanishes_voids_the_figure():
    grown = cpu_between(sample({1: 1.0}), sample({1: 1.2, 2: 0.1}, at=1.0))
    assert grown.seconds == pytest.approx(0.3)
    shrunk = cpu_between(sample({1: 1.0, 2: 0.1}), sample({1: 1.2}, at=1.0))
    assert shrunk.seconds is None
    assert shrunk.note is not None
    assert "2 exited during the run" in shrunk.note
