"""The step timer's hand-over to a test phase: a block in another thread is not lost."""

from __future__ import annotations

import threading
import time

import pytest

from pytest_concurrency.detect import _steps


@pytest.mark.allow_loop_lag  # the block is this test's own, on purpose
def test_a_phase_end_waits_for_a_loop_step_in_another_thread_that_already_blocked() -> None:
    # A server thread's step blocks, sends its response, and only then ends and reports: the
    # test may be ending its phase in between. The phase must get the report all the same.
    listener = _steps.LagListener(20)
    _steps.add_listener(listener)
    in_step = threading.Event()

    def loop_thread() -> None:
        monitor = _steps.StepMonitor("asyncio", id(in_step), _steps.describe_callback)
        monitor.register()
        previous = monitor.begin(print)
        in_step.set()
        time.sleep(0.3)  # the block, with the response already sent
        monitor.end(previous)
        monitor.unregister()

    thread = threading.Thread(target=loop_thread)
    thread.start()
    try:
        in_step.wait(5)
        time.sleep(0.1)  # past the threshold, the step still running
        _steps.wait_for_blocked_steps(5.0)
        assert len(listener.events) == 1
        assert listener.events[0].duration_ms >= 20
    finally:
        thread.join()
        _steps.remove_listener(listener)


def test_waiting_for_blocked_steps_returns_at_once_when_none_runs() -> None:
    listener = _steps.LagListener(20)
    _steps.add_listener(listener)
    monitor = _steps.StepMonitor("asyncio", id(listener), _steps.describe_callback)
    monitor.register()
    try:
        started = time.perf_counter()
        _steps.wait_for_blocked_steps(5.0)  # a registered loop between steps
        assert time.perf_counter() - started < 1.0
        assert listener.events == []
    finally:
        monitor.unregister()
        _steps.remove_listener(listener)
