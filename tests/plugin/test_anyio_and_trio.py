"""anyio's pytest plugin (on asyncio, uvloop and trio) and pytest-trio."""

from __future__ import annotations

import pytest
from inner import InnerRun, run_suite

ANYIO = "anyio/test_anyio_cases.py"
TRIO = "trio/test_trio_cases.py"
LOOP_OF_BACKEND = {"asyncio": "asyncio", "uvloop": "uvloop", "trio": "trio"}


@pytest.fixture(scope="module")
def anyio_session(tmp_path_factory: pytest.TempPathFactory) -> InnerRun:
    return run_suite(tmp_path_factory.mktemp("anyio"), "anyio")


@pytest.fixture(scope="module")
def trio_session(tmp_path_factory: pytest.TempPathFactory) -> InnerRun:
    return run_suite(tmp_path_factory.mktemp("trio"), "trio")


@pytest.fixture(params=["asyncio", "uvloop", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize(
    ("test", "tag"),
    [
        ("test_sleep_in_the_test", "blocks: sleep"),
        ("test_pure_python_cpu_loop", "blocks: cpu"),
        ("test_blocking_helper_in_a_child_task", "blocks: helper"),
    ],
)
def test_anyio_blocking_test_fails_naming_the_line(
    anyio_session: InnerRun, backend: str, test: str, tag: str
) -> None:
    case = anyio_session.case(f"{test}[{backend}]")
    assert case.outcome == "failed", case.text
    assert f"{LOOP_OF_BACKEND[backend]} event loop blocked for" in case.text
    assert f"{anyio_session.line(ANYIO, tag)}: " in case.text


def test_anyio_report_names_the_test_not_the_runner_task(
    anyio_session: InnerRun, backend: str
) -> None:
    text = anyio_session.case(f"test_sleep_in_the_test[{backend}]").text
    assert "running test_sleep_in_the_test()" in text


@pytest.mark.parametrize(
    "test",
    [
        "test_awaited_sleep_passes",
        "test_to_thread_passes",
        "test_task_group_passes",
        # anyio's runner task, created under hypothesis's @given wrapper, is not the test's
        "test_property_based_passes",
        "test_to_process_passes",
    ],
)
def test_anyio_clean_test_passes(anyio_session: InnerRun, backend: str, test: str) -> None:
    case = anyio_session.case(f"{test}[{backend}]")
    assert case.outcome == "passed", case.text


@pytest.mark.parametrize(
    ("test", "tag"),
    [
        ("test_sleep_in_the_test", "blocks: sleep"),
        ("test_pure_python_cpu_loop", "blocks: cpu"),
        ("test_blocking_in_a_nursery_child", "blocks: child"),
    ],
)
def test_pytest_trio_blocking_test_fails_naming_the_line(
    trio_session: InnerRun, test: str, tag: str
) -> None:
    case = trio_session.case(test)
    assert case.outcome == "failed", case.text
    assert "trio event loop blocked for" in case.text
    assert f"{trio_session.line(TRIO, tag)}: " in case.text


def test_pytest_trio_report_names_the_nursery_child(trio_session: InnerRun) -> None:
    assert "in task 'the-child'" in trio_session.case("test_blocking_in_a_nursery_child").text


@pytest.mark.parametrize(
    "test", ["test_awaited_sleep_passes", "test_to_thread_passes", "test_nursery_passes"]
)
def test_pytest_trio_clean_test_passes(trio_session: InnerRun, test: str) -> None:
    case = trio_session.case(test)
    assert case.outcome == "passed", case.text
