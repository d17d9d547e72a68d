"""Shared loops, xdist, and a detector that fails: results stay the user's own."""

from __future__ import annotations

from pathlib import Path

from inner import run_suite


def test_task_leaked_on_a_shared_loop_is_reported_on_that_test_only(tmp_path: Path) -> None:
    run = run_suite(tmp_path, "shared_loop")
    assert run.case("test_uses_the_ticker_passes").outcome == "passed"
    leaked = run.case("test_leaks_a_task_on_the_shared_loop")
    assert leaked.outcome == "error", leaked.text
    assert "task 'left-behind'" in leaked.text
    assert (
        f"created at {run.line('shared_loop/test_shared_loop_cases.py', 'leaks: shared loop task')}"
        in leaked.text
    )
    after = run.case("test_after_the_leak_passes")
    assert after.outcome == "passed", after.text


def test_a_failing_detector_switches_off_and_says_so(tmp_path: Path) -> None:
    run = run_suite(tmp_path, "broken")
    assert run.case("test_blocks_while_the_detector_is_broken_passes").outcome == "passed"
    own = run.case("test_own_failure_is_kept")
    assert own.outcome == "failed"
    assert "the user's own assertion" in own.text
    assert run.case("test_leak_detector_still_works").outcome == "error"
    assert (
        "the loop-lag detector failed and was switched off: RuntimeError: simulated detector bug"
        in run.output
    )


def test_a_failing_leak_check_switches_off_and_says_so(tmp_path: Path) -> None:
    run = run_suite(tmp_path, "broken_leaks")
    assert run.case("test_leaks_while_the_check_is_broken_passes").outcome == "passed"
    own = run.case("test_own_failure_is_kept")
    assert own.outcome == "failed"
    assert "the user's own assertion" in own.text
    assert run.case("test_lag_detector_still_works").outcome == "failed"
    assert "the leak detector failed and was switched off: RuntimeError" in run.output


def test_the_hooks_never_trip_blockbuster(tmp_path: Path) -> None:
    run = run_suite(tmp_path, "with_blockbuster")
    case = run.case("test_tasks_and_threads_under_blockbuster_passes")
    assert case.outcome == "passed", case.text
    leaked = run.case("test_leaked_task_under_blockbuster")
    assert "task 'left-under-blockbuster'" in leaked.text
    assert "ConcurrencyGuardWarning" not in run.output


def test_xdist_gives_every_test_the_same_outcome_and_message(tmp_path: Path) -> None:
    serial = run_suite(tmp_path / "serial", "leaks")
    parallel = run_suite(tmp_path / "parallel", "leaks", "-n", "2")
    assert "2 workers" in parallel.output
    assert {n: c.outcome for n, c in parallel.cases.items()} == {
        n: c.outcome for n, c in serial.cases.items()
    }
    leaked = parallel.case("test_leaked_thread")
    assert f"started at {parallel.line('leaks/test_leak_cases.py', 'leaks: thread')}" in leaked.text
