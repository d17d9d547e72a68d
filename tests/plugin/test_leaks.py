"""Threads and processes left behind: named where they were started, never blamed on the
wrong test, checked for wide fixtures when their scope ends."""

from __future__ import annotations

import pytest
from inner import InnerRun, run_suite

CASES = "leaks/test_leak_cases.py"
CONFTEST = "leaks/conftest.py"
LOOP_CASES = "leaks/test_loop_subprocesses.py"


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> InnerRun:
    return run_suite(tmp_path_factory.mktemp("leaks"), "leaks")


@pytest.mark.parametrize(
    ("test", "kind", "tag", "what"),
    [
        (
            "test_leaked_thread",
            "thread",
            "leaks: thread",
            "thread 'sleeper' running sleep(), daemon",
        ),
        ("test_leaked_process", "process", "leaks: process", "while os.getppid() == parent"),
        ("test_leaked_multiprocessing_process", "process", "leaks: mp process", "'mp-sleeper'"),
        ("test_executor_never_shut_down", "thread", "leaks: executor", "ThreadPoolExecutor-"),
    ],
)
def test_leak_fails_the_test_naming_what_and_where(
    session: InnerRun, test: str, kind: str, tag: str, what: str
) -> None:
    case = session.case(test)
    assert case.outcome == "error", case.text
    assert "failed on teardown" in case.text
    assert f"left 1 {kind} running" in case.text
    assert what in case.text
    assert f"started at {session.line(CASES, tag)}: " in case.text


def test_leaked_multiprocessing_process_is_named_by_its_target(session: InnerRun) -> None:
    assert "running sleep()" in session.case("test_leaked_multiprocessing_process").text


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize(
    ("test", "tag", "what"),
    [
        ("test_loop_subprocess_left_running", "leaks: loop exec", "while os.getppid() == parent"),
        ("test_loop_shell_left_running", "leaks: loop shell", "running 'exec sleep 30'"),
    ],
)
def test_subprocess_of_an_event_loop_is_a_leak_named_by_its_command(
    session: InnerRun, loop: str, test: str, tag: str, what: str
) -> None:
    """uvloop spawns through libuv, not Popen; its children are caught all the same, and
    asyncio's child-watcher thread, which ends with its process, is not reported besides."""
    case = session.case(f"{test}[{loop}]")
    assert case.outcome == "error", case.text
    assert "left 1 process running" in case.text
    assert what in case.text
    assert f"started at {session.line(LOOP_CASES, tag)}: " in case.text
    assert "thread" not in case.text.split("Fix:")[0]


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize(
    "test",
    [
        "test_loop_subprocess_waited_passes",
        "test_loop_subprocess_ending_after_the_loop_closed_passes",
    ],
)
def test_finished_subprocess_of_an_event_loop_passes(
    session: InnerRun, loop: str, test: str
) -> None:
    case = session.case(f"{test}[{loop}]")
    assert case.outcome == "passed", case.text


@pytest.mark.parametrize(
    "test",
    [
        "test_thread_ending_within_the_grace_period_passes",
        "test_process_ending_within_the_grace_period_passes",
        "test_terminated_process_passes",
        "test_shut_down_executor_passes",
        "test_first_use_of_a_module_server_passes",
        "test_second_use_of_a_module_server_passes",
        "test_allowed_to_leak_anything_passes",
    ],
)
def test_clean_test_passes(session: InnerRun, test: str) -> None:
    case = session.case(test)
    assert case.outcome == "passed", case.text


def test_a_test_that_fails_keeps_its_own_failure_and_reports_the_leak(session: InnerRun) -> None:
    case = session.case("test_a_test_that_fails_and_leaks")
    assert case.phases == ["failure", "error"], case.text
    assert "the test's own failure" in case.text
    assert f"started at {session.line(CASES, 'leaks: also fails')}" in case.text


def test_leak_is_reported_once_not_on_the_following_tests(session: InnerRun) -> None:
    spawner = session.case("test_leak_that_keeps_spawning")
    assert spawner.outcome == "error", spawner.text
    assert f"started at {session.line(CASES, 'leaks: spawner')}" in spawner.text
    after = session.case("test_after_the_spawner_passes")
    assert after.outcome == "passed", after.text


def test_module_fixture_leak_is_reported_when_its_scope_ends_naming_the_fixture(
    session: InnerRun,
) -> None:
    case = session.case("test_uses_the_forgotten_server")
    assert case.phases == ["error"], case.text
    assert "fixture 'forgotten_server' (module scope) left 1 thread running" in case.text
    assert f"started at {session.line(CONFTEST, 'leaks: module fixture thread')}" in case.text
    assert "test leaks/" not in case.text  # not blamed on the test
    # A marker on a test cannot allow a fixture's leak, so the advice does not suggest one.
    assert "allow_leaks" not in case.text
    assert "leak_allow ini option" in case.text


def test_allow_leaks_with_a_kind_allows_only_that_kind(session: InnerRun) -> None:
    case = session.case("test_allowed_threads_but_not_processes")
    assert case.outcome == "error", case.text
    assert "left 1 process running" in case.text
    assert "- thread" not in case.text


OWNERSHIP = "leaks/test_task_ownership.py"


def test_tasks_made_by_a_leaked_task_are_not_blamed_on_later_tests(session: InnerRun) -> None:
    leaker = session.case("test_leaves_a_spawning_task")
    assert leaker.outcome == "error", leaker.text
    where = session.line(OWNERSHIP, "leaks: spawner")
    assert f"task 'spawner' running spawn_children_forever(), created at {where}" in leaker.text
    after = session.case("test_after_the_spawning_task_passes")
    assert after.outcome == "passed", after.text


def test_tasks_made_by_a_module_fixture_task_belong_to_the_fixture(session: InnerRun) -> None:
    case = session.case("test_job_handled_by_a_module_fixture_task_passes")
    assert case.outcome == "passed", case.text
    assert "job-handler" not in session.output


@pytest.mark.parametrize(
    "test",
    [
        "test_connection_handler_left_running",
        "test_connection_handler_left_running_under_asyncio_run",
    ],
)
def test_task_the_loop_made_for_a_user_callback_is_a_leak(session: InnerRun, test: str) -> None:
    """asyncio.start_server's loop makes a task per connection for the user's handler."""
    case = session.case(test)
    assert case.outcome == "error", case.text
    assert "left 1 task running" in case.text
    assert "running handle_connection()" in case.text
    assert f"suspended at {session.line(OWNERSHIP, 'leaks: connection handler')}" in case.text
    # Created by the loop's streams code, not by the line that started the loop.
    assert "asyncio.run(serve_one_connection())" not in case.text


def test_a_thread_left_running_is_reported_without_its_loops_own_task(session: InnerRun) -> None:
    """The portal thread's event loop runs a task of anyio's; the thread is the leak."""
    case = session.case("test_blocking_portal_left_open")
    assert case.outcome == "error", case.text
    assert "left 1 thread running" in case.text
    assert f"started at {session.line(OWNERSHIP, 'leaks: portal')}" in case.text
    assert "runners.py" not in case.text
