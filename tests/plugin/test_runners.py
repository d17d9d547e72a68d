"""Loops the test starts itself (asyncio.run, asyncio.Runner, uvloop.run, trio.run, a loop in
another thread, a fixture's loop) and unittest-style tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from inner import InnerRun, run_suite

CASES = "runners/test_runner_cases.py"


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> InnerRun:
    return run_suite(tmp_path_factory.mktemp("runners"), "runners")


@pytest.mark.parametrize(
    ("test", "loop", "tag"),
    [
        ("test_asyncio_run_blocks", "asyncio", "blocks: asyncio main"),
        ("test_asyncio_runner_blocks", "asyncio", "blocks: asyncio main"),
        ("test_uvloop_run_blocks", "uvloop", "blocks: asyncio main"),
        ("test_uvloop_callback_blocks", "uvloop", "blocks: uvloop callback"),
        ("test_uvloop_protocol_callback_blocks", "uvloop", "blocks: uvloop protocol"),
        ("test_trio_run_blocks", "trio", "blocks: trio main"),
        ("TestIsolatedAsyncio.test_unittest_blocks", "asyncio", "blocks: unittest"),
    ],
)
def test_loop_started_by_the_test_is_watched(
    session: InnerRun, test: str, loop: str, tag: str
) -> None:
    case = session.case(test)
    if case.outcome == "skipped":  # asyncio.Runner is new in Python 3.11
        assert sys.version_info < (3, 11)
        return
    assert case.outcome == "failed", case.text
    assert f"{loop} event loop blocked for" in case.text
    assert f"{session.line(CASES, tag)}: " in case.text


def test_loop_in_another_thread_is_watched_and_named(session: InnerRun) -> None:
    case = session.case("test_loop_in_another_thread_blocks")
    assert case.outcome == "failed", case.text
    assert "asyncio event loop in thread 'loop-thread' blocked for" in case.text
    assert f"{session.line(CASES, 'blocks: asyncio main')}: " in case.text


def test_blocking_fixture_fails_the_setup_phase(session: InnerRun) -> None:
    case = session.case("test_blocking_fixture_fails_the_setup")
    assert case.outcome == "error", case.text
    assert "failed on setup" in case.text
    assert f"{session.line(CASES, 'blocks: fixture setup')}: " in case.text


def test_unittest_test_case_leaking_a_thread_fails(session: InnerRun) -> None:
    case = session.case("TestPlainUnittest.test_unittest_leaks_a_thread")
    assert case.outcome == "error", case.text
    assert f"started at {session.line(CASES, 'leaks: unittest')}" in case.text


@pytest.mark.parametrize(
    "test",
    [
        "test_asyncio_run_passes",
        "test_uvloop_run_passes",
        "test_trio_run_passes",
        "TestIsolatedAsyncio.test_unittest_passes",
        "TestPlainUnittest.test_unittest_joins_passes",
        # asyncio.run cancels what was pending when the expected exception left main()
        "test_tasks_interrupted_by_an_exception_are_not_leaks_passes",
    ],
)
def test_clean_test_passes(session: InnerRun, test: str) -> None:
    case = session.case(test)
    assert case.outcome == "passed", case.text


def test_block_in_a_c_function_callback_fails_saying_no_stack_was_taken(session: InnerRun) -> None:
    case = session.case("test_c_function_callback_blocks")
    assert case.outcome == "failed", case.text
    assert "asyncio event loop blocked for" in case.text
    assert "in callback sleep()" in case.text
    assert "no stack could be taken while the loop was blocked" in case.text


def test_block_in_library_code_alone_fails_showing_the_library_frames(session: InnerRun) -> None:
    case = session.case("test_library_callback_blocks")
    assert case.outcome == "failed", case.text
    assert "in callback run()" in case.text
    assert "no user code on the loop thread's stack; innermost frames:" in case.text
    assert "subprocess.py:" in case.text


def test_the_plugins_own_thread_is_invisible_to_tests(tmp_path: Path) -> None:
    """The stack sampler starts with the first loop, yet a test counting threads sees only
    its own (run alone, so that no earlier test left a worker pool behind)."""
    run = run_suite(tmp_path, "runners", "-k", "no_thread_but_the_main_one")
    case = run.case("test_no_thread_but_the_main_one_is_visible_passes")
    assert case.outcome == "passed", case.text
