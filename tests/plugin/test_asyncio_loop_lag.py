"""pytest-asyncio tests, each run on asyncio's loop and on uvloop: a blocked loop fails the
test and names the line, a leaked task fails it and names where it was created, clean tests
pass."""

from __future__ import annotations

import pytest
from inner import InnerRun, run_suite

CASES = "asyncio/test_asyncio_cases.py"


@pytest.fixture(params=["asyncio", "uvloop"])
def loop(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> InnerRun:
    return run_suite(tmp_path_factory.mktemp("asyncio"), "asyncio")


@pytest.mark.parametrize(
    ("test", "tag"),
    [
        ("test_sleep_in_the_test", "blocks: sleep"),
        ("test_blocking_helper_function", "blocks: helper"),
        ("test_pure_python_cpu_loop", "blocks: cpu"),
        ("test_blocking_c_call_holding_the_gil", "blocks: c call"),
        ("test_blocking_socket_read", "blocks: recv"),
        ("test_blocking_callback", "blocks: callback"),
        ("test_blocking_in_a_child_task", "blocks: child task"),
        ("TestInAClass.test_method_blocks", "blocks: method"),
    ],
)
def test_blocking_test_fails_naming_the_blocking_line(
    session: InnerRun, loop: str, test: str, tag: str
) -> None:
    case = session.case(f"{test}[{loop}]")
    assert case.outcome == "failed", case.text
    assert f"{loop} event loop blocked for" in case.text
    assert "(threshold 50 ms" in case.text
    assert f"{session.line(CASES, tag)}: " in case.text


def test_the_report_lists_the_innermost_user_frame_first(session: InnerRun, loop: str) -> None:
    text = session.case(f"test_blocking_helper_function[{loop}]").text
    helper = text.index(session.line(CASES, "blocks: helper"))
    caller = text.index(session.line(CASES, "blocks: helper caller"))
    assert helper < caller


def test_a_c_call_holding_the_gil_is_named_as_such(session: InnerRun, loop: str) -> None:
    text = session.case(f"test_blocking_c_call_holding_the_gil[{loop}]").text
    assert "the loop thread held the GIL during the block" in text
    assert f"is on or just before {session.line(CASES, 'blocks: c call')}" in text


def test_a_sleep_is_not_mistaken_for_a_c_call(session: InnerRun, loop: str) -> None:
    assert "held the GIL" not in session.case(f"test_sleep_in_the_test[{loop}]").text


def test_the_report_shows_the_source_line(session: InnerRun, loop: str) -> None:
    text = session.case(f"test_sleep_in_the_test[{loop}]").text
    assert f"{session.line(CASES, 'blocks: sleep')}: time.sleep(BLOCK_S)" in text


def test_the_report_names_the_blocking_callback(session: InnerRun, loop: str) -> None:
    assert "in callback blocking_callback()" in session.case(f"test_blocking_callback[{loop}]").text


def test_the_report_names_the_running_task(session: InnerRun, loop: str) -> None:
    text = session.case(f"test_blocking_in_a_child_task[{loop}]").text
    assert "running test_blocking_in_a_child_task.<locals>.worker()" in text


def test_the_report_says_how_long_the_loop_was_blocked(session: InnerRun, loop: str) -> None:
    text = session.case(f"test_sleep_in_the_test[{loop}]").text
    blocked_ms = int(text.split("blocked for ", 1)[1].split(" ms", 1)[0])
    assert blocked_ms >= 270  # 300 ms, less any garbage collection


@pytest.mark.parametrize(
    "test",
    [
        "test_awaited_sleep_passes",
        "test_to_thread_passes",
        "test_run_in_executor_passes",
        "test_gathered_tasks_pass",
        "test_cancelled_and_awaited_task_passes",
        "test_clean_fixture_passes",
        "test_joined_thread_passes",
        "test_awaited_subprocess_passes",
        "test_subprocess_run_in_a_thread_passes",
    ],
)
def test_clean_async_test_passes(session: InnerRun, loop: str, test: str) -> None:
    case = session.case(f"{test}[{loop}]")
    assert case.outcome == "passed", case.text


def test_task_group_test_passes(session: InnerRun, loop: str) -> None:
    assert session.case(f"test_task_group_passes[{loop}]").outcome in ("passed", "skipped")


def test_leaked_task_fails_naming_its_creation_line(session: InnerRun, loop: str) -> None:
    case = session.case(f"test_leaked_task[{loop}]")
    assert case.outcome == "error", case.text
    assert "left 1 task running" in case.text
    assert f"created at {session.line(CASES, 'leaks: task')}: " in case.text
    assert "running test_leaked_task.<locals>.forever()" in case.text
    assert f"suspended at {session.line(CASES, 'suspended: leaked task')}" in case.text
    assert "still pending when its runner shut the event loop down" in case.text


def test_task_leaked_by_a_function_fixture_is_blamed_on_the_test(
    session: InnerRun, loop: str
) -> None:
    case = session.case(f"test_leaked_task_from_a_fixture[{loop}]")
    assert case.outcome == "error", case.text
    assert f"test {CASES}::test_leaked_task_from_a_fixture[{loop}] left 1 task" in case.text
    assert f"created at {session.line('asyncio/conftest.py', 'leaks: fixture task')}" in case.text
