"""Markers, command-line options, ini options, warn mode and bad values."""

from __future__ import annotations

from pathlib import Path

import pytest
from inner import INI, InnerRun, run_suite

CASES = "markers/test_marker_cases.py"


@pytest.fixture(scope="module")
def defaults(tmp_path_factory: pytest.TempPathFactory) -> InnerRun:
    return run_suite(tmp_path_factory.mktemp("defaults"), "markers")


def test_allow_loop_lag_allows_a_block(defaults: InnerRun) -> None:
    assert defaults.case("test_allow_loop_lag_allows_any_block").outcome == "passed"


def test_allow_loop_lag_with_ms_raises_the_threshold(defaults: InnerRun) -> None:
    assert defaults.case("test_allow_loop_lag_with_a_higher_threshold").outcome == "passed"


def test_allow_loop_lag_with_ms_still_fails_longer_blocks(defaults: InnerRun) -> None:
    case = defaults.case("test_allow_loop_lag_below_the_block_still_fails")
    assert case.outcome == "failed", case.text
    assert "(threshold 100 ms" in case.text


def test_default_grace_period_does_not_cover_a_thread_ending_200_ms_late(
    defaults: InnerRun,
) -> None:
    case = defaults.case("test_thread_ending_after_200_ms")
    assert case.outcome == "error", case.text
    assert "thread 'slow-to-end'" in case.text


@pytest.mark.parametrize(
    ("test", "message"),
    [
        ("test_bad_allow_loop_lag_argument", "allow_loop_lag(ms=...) expects a number"),
        ("test_bad_allow_leaks_kind", "allow_leaks: unknown kind 'sockets'"),
    ],
)
def test_bad_marker_arguments_fail_the_test_with_a_clear_message(
    defaults: InnerRun, test: str, message: str
) -> None:
    case = defaults.case(test)
    assert case.outcome == "error", case.text
    assert message in case.text
    # One clean error at setup: no traceback through the plugin or pytest, and no second
    # error at teardown from a plugin whose part of the setup was skipped.
    assert "site-packages" not in case.text
    assert "pytest_concurrency" not in case.text
    assert f"ERROR at teardown of {test}" not in defaults.output
    assert "KeyError" not in defaults.output


def test_the_report_header_shows_the_settings(defaults: InnerRun) -> None:
    assert (
        "concurrency-guard: loop-lag 50 ms, leak-check tasks,threads,processes "
        "(grace 100 ms), mode fail" in defaults.output
    )


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> InnerRun:
    """The same suite with every knob turned on the command line."""
    return run_suite(
        tmp_path_factory.mktemp("tuned"),
        "markers",
        "--loop-lag-ms=1000",
        "--leak-check=tasks,processes",
        "--leak-grace-ms=2000",
    )


def test_loop_lag_ms_option_sets_the_threshold(tuned: InnerRun) -> None:
    assert tuned.case("test_plain_block").outcome == "passed"
    assert "concurrency-guard: loop-lag 1000 ms" in tuned.output


def test_allow_loop_lag_with_ms_applies_even_below_the_default(tuned: InnerRun) -> None:
    assert tuned.case("test_allow_loop_lag_below_the_block_still_fails").outcome == "failed"


def test_leak_check_option_selects_the_kinds(tuned: InnerRun) -> None:
    assert tuned.case("test_plain_thread_leak").outcome == "passed"


def test_leak_grace_ms_option_waits_for_things_finishing(tmp_path: Path) -> None:
    run = run_suite(tmp_path, "markers", "--leak-grace-ms=2000", "-k", "after_200_ms")
    assert run.case("test_thread_ending_after_200_ms").outcome == "passed"


def test_ini_options_configure_the_plugin(tmp_path: Path) -> None:
    ini = INI + "loop_lag_ms = 0\nleak_check = none\nleak_allow =\n    cache-warmer-*\n"
    run = run_suite(tmp_path, "markers", "-k", "plain", ini=ini)
    assert run.case("test_plain_block").outcome == "passed"
    assert run.case("test_plain_thread_leak").outcome == "passed"
    assert "concurrency-guard: loop-lag off, leak-check none, mode fail" in run.output


def test_leak_allow_patterns_match_thread_names(tmp_path: Path) -> None:
    ini = INI + "leak_allow =\n    cache-warmer-*\n"
    run = run_suite(tmp_path, "markers", "-k", "pattern or plain_thread", ini=ini)
    assert run.case("test_allowed_by_pattern").outcome == "passed"
    assert run.case("test_plain_thread_leak").outcome == "error"


def test_command_line_wins_over_the_ini_file(tmp_path: Path) -> None:
    run = run_suite(
        tmp_path, "markers", "--loop-lag-ms=50", "-k", "plain_block", ini=INI + "loop_lag_ms = 0\n"
    )
    assert run.case("test_plain_block").outcome == "failed"


def test_warn_mode_reports_findings_as_warnings_and_passes(tmp_path: Path) -> None:
    run = run_suite(tmp_path, "markers", "--concurrency-mode=warn", "-k", "plain")
    assert run.case("test_plain_block").outcome == "passed"
    assert run.case("test_plain_thread_leak").outcome == "passed"
    assert "LoopLagWarning: asyncio event loop blocked for" in run.output
    assert (
        "LeakWarning: test markers/test_marker_cases.py::test_plain_thread_leak left 1 thread"
        in run.output
    )
    assert f"{run.line(CASES, 'blocks: marker case')}: time.sleep(BLOCK_S)" in run.output
    # Each warning is attributed to the user's line, not to the plugin.
    assert f"{run.line(CASES, 'blocks: marker case')}: LoopLagWarning" in run.output
    assert f"{run.line(CASES, 'leaks: marker case')}: LeakWarning" in run.output
    assert "pytest_concurrency" not in run.output


def test_warn_mode_with_warnings_as_errors_fails_cleanly(tmp_path: Path) -> None:
    run = run_suite(
        tmp_path,
        "markers",
        "--concurrency-mode=warn",
        "-W",
        "error::pytest.PytestWarning",
        "-k",
        "plain_block",
    )
    case = run.case("test_plain_block")
    assert case.outcome == "failed", case.text
    assert "asyncio event loop blocked for" in case.text
    assert "pytest_concurrency" not in case.text


def test_findings_of_an_xfail_test_that_passed_fail_it(defaults: InnerRun) -> None:
    """The test did not fail as expected: the findings are shown, not taken for its xfail."""
    case = defaults.case("test_xfail_strict_that_passes_but_blocks")
    assert case.outcome == "failed", case.text
    assert "asyncio event loop blocked for" in case.text


def test_findings_of_an_xfail_test_fail_it_when_they_are_the_first_of_the_session(
    tmp_path: Path,
) -> None:
    """What turns an xfail back into a failure is set up by the first finding, in time for it."""
    run = run_suite(tmp_path, "markers", "-k", "xfail_strict_that_passes")
    case = run.case("test_xfail_strict_that_passes_but_blocks")
    assert case.outcome == "failed", case.text
    assert "asyncio event loop blocked for" in case.text


def test_xfail_test_that_fails_on_its_own_stays_an_expected_failure(defaults: InnerRun) -> None:
    assert defaults.case("test_xfail_that_fails_on_its_own_and_blocks").outcome == "skipped"


def test_plugin_can_be_turned_off(tmp_path: Path) -> None:
    run = run_suite(tmp_path, "markers", "-p", "no:concurrency", "-k", "plain")
    assert run.case("test_plain_block").outcome == "passed"
    assert run.case("test_plain_thread_leak").outcome == "passed"
    assert "concurrency-guard:" not in run.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--loop-lag-ms=fast"], "--loop-lag-ms / loop_lag_ms: expected a number of milliseconds"),
        (["--loop-lag-ms=-5"], "--loop-lag-ms / loop_lag_ms: expected a number of milliseconds"),
        (["--leak-check=tasks,sockets"], "--leak-check / leak_check: unknown kind 'sockets'"),
        (["--leak-grace-ms=soon"], "--leak-grace-ms / leak_grace_ms: expected a number"),
        (["--concurrency-mode=loud"], "invalid choice: 'loud'"),
    ],
)
def test_bad_option_value_is_a_usage_error(tmp_path: Path, args: list[str], message: str) -> None:
    run = run_suite(tmp_path, "markers", *args)
    assert run.returncode == 4, run.output
    assert message in run.output
    assert "site-packages" not in run.output
    assert "pytest_concurrency" not in run.output


def test_bad_ini_value_is_a_usage_error(tmp_path: Path) -> None:
    run = run_suite(tmp_path, "markers", ini=INI + "concurrency_mode = loud\n")
    assert run.returncode == 4, run.output
    assert "concurrency_mode: expected one of fail, warn, got 'loud'" in run.output
