"""What a step is excused for: run-queue wait and thread start-up, never more than it lost."""

from __future__ import annotations

import os
import threading
import time

import pytest

from pytest_concurrency.detect import _thread_clock
from pytest_concurrency.detect._thread_clock import Reading, ThreadClock, set_reuse_for_threshold


class FakeRunqueue:
    """Stands in for the thread's ``schedstat`` file: a run-queue counter the test sets."""

    def __init__(self) -> None:
        self.seconds = 100.0
        self.reads = 0

    def runqueue_wait(self) -> float:
        self.reads += 1
        return self.seconds


@pytest.fixture
def clock() -> tuple[ThreadClock, FakeRunqueue]:
    thread_clock = ThreadClock()
    counter = FakeRunqueue()
    thread_clock.schedstat = counter  # type: ignore[assignment]
    return thread_clock, counter


def excused(
    thread_clock: ThreadClock,
    started: float,
    baseline: Reading,
    thread_start_wait: float,
) -> float:
    """What a step that began at ``started`` (perf_counter) and ends now is excused for."""
    wall = time.perf_counter() - started
    return thread_clock.waited_since(baseline, thread_start_wait, started, wall)


def burn_cpu(seconds: float) -> None:
    deadline = time.thread_time() + seconds
    while time.thread_time() < deadline:
        pass


def test_a_wait_the_counter_reports_in_a_sleeping_step_is_excused(
    clock: tuple[ThreadClock, FakeRunqueue],
) -> None:
    thread_clock, counter = clock
    start = time.perf_counter()
    baseline = thread_clock.baseline(start)
    time.sleep(0.05)  # off the CPU: any wait up to the whole step is believable
    counter.seconds += 0.03
    assert excused(thread_clock, start, baseline, 0.0) == pytest.approx(0.03)


def test_never_more_is_excused_than_the_step_spent_off_the_cpu(
    clock: tuple[ThreadClock, FakeRunqueue],
) -> None:
    """A counter that over-reports (seen on virtual machines) cannot hide a CPU-bound block."""
    thread_clock, counter = clock
    start = time.perf_counter()
    baseline = thread_clock.baseline(start)
    burn_cpu(0.02)
    counter.seconds += 1.0  # claims a second of waiting
    waited = excused(thread_clock, start, baseline, 0.0)
    assert 0.0 <= waited <= time.perf_counter() - start - 0.02


def test_a_reused_reading_does_not_excuse_the_time_before_the_step(
    clock: tuple[ThreadClock, FakeRunqueue],
) -> None:
    thread_clock, counter = clock
    first = time.perf_counter()
    thread_clock.baseline(first)
    later = first + _thread_clock.REUSE_S / 2
    baseline = thread_clock.baseline(later)
    assert counter.reads == 1  # read once for both steps
    assert later - baseline[0] == pytest.approx(_thread_clock.REUSE_S / 2)
    time.sleep(0.02)
    counter.seconds += 0.01
    assert excused(thread_clock, later, baseline, 0.0) == pytest.approx(
        0.01 - _thread_clock.REUSE_S / 2
    )


def test_a_reading_older_than_the_reuse_limit_is_taken_again(
    clock: tuple[ThreadClock, FakeRunqueue],
) -> None:
    thread_clock, counter = clock
    now = time.perf_counter()
    thread_clock.baseline(now)
    counter.seconds += 0.5
    baseline = thread_clock.baseline(now + _thread_clock.REUSE_S * 2)
    assert counter.reads == 2
    assert baseline[1] == counter.seconds
    assert baseline[0] == now + _thread_clock.REUSE_S * 2


def test_time_waiting_for_a_started_thread_is_excused(
    clock: tuple[ThreadClock, FakeRunqueue],
) -> None:
    thread_clock, _ = clock
    start = time.perf_counter()
    baseline = thread_clock.baseline(start)
    thread_clock.thread_start_wait = 0.25
    time.sleep(0.02)
    thread_clock.thread_start_wait += 0.015  # what Thread.start() waited, as its hook records
    assert excused(thread_clock, start, baseline, 0.25) == pytest.approx(0.015)


@pytest.mark.parametrize(
    ("threshold_s", "reuse_s"),
    [(0.01, 0.001), (0.05, 0.005), (1.0, 0.005), (float("inf"), 0.005)],
)
def test_readings_are_reused_for_a_tenth_of_the_threshold_at_most_5_ms(
    threshold_s: float, reuse_s: float
) -> None:
    before = _thread_clock.REUSE_S
    try:
        set_reuse_for_threshold(threshold_s)
        assert round(_thread_clock.REUSE_S, 6) == reuse_s
    finally:
        _thread_clock.REUSE_S = before


def test_each_thread_and_a_forked_child_get_a_clock_of_their_own() -> None:
    main = _thread_clock.current()
    assert _thread_clock.current() is main
    in_thread: list[ThreadClock] = []
    worker = threading.Thread(target=lambda: in_thread.append(_thread_clock.current()))
    worker.start()
    worker.join()
    assert len(in_thread) == 1
    assert in_thread[0] is not main
    # A forked child's main thread is not the thread whose schedstat file the clock reads.
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write_end, b"own" if _thread_clock.current() is not main else b"inherited")
        os._exit(0)
    os.close(write_end)
    try:
        answer = os.read(read_end, 16)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    assert answer == b"own"
