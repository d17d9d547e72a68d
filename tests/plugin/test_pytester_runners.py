"""One small test file per runner, written and run with pytester: the same blocking code fails
under every runner with the same ``file:line``, and the same clean code passes.

The larger sample suites in ``fixtures/detect`` cover each runner case by case; this module
checks the runners against each other on identical code.
"""

from __future__ import annotations

import textwrap

import pytest

# How each runner runs `body` (an async function body) as a test: the loop it uses, the test
# file around the body, and how code yields to that loop.
ASYNCIO_YIELD = "await asyncio.sleep(0)"
TRIO_YIELD = "await trio.sleep(0)"
RUNNERS = {
    "pytest-asyncio": (
        "asyncio",
        ASYNCIO_YIELD,
        """
        import asyncio, time, pytest

        @pytest.mark.asyncio
        async def test_case():
        {body}
        """,
    ),
    "anyio-asyncio": (
        "asyncio",
        ASYNCIO_YIELD,
        """
        import asyncio, time, pytest

        @pytest.mark.anyio
        @pytest.mark.parametrize("anyio_backend", ["asyncio"])
        async def test_case(anyio_backend):
        {body}
        """,
    ),
    "anyio-trio": (
        "trio",
        TRIO_YIELD,
        """
        import time, pytest, trio

        @pytest.mark.anyio
        @pytest.mark.parametrize("anyio_backend", ["trio"])
        async def test_case(anyio_backend):
        {body}
        """,
    ),
    "pytest-trio": (
        "trio",
        TRIO_YIELD,
        """
        import time, pytest, trio

        @pytest.mark.trio
        async def test_case():
        {body}
        """,
    ),
    "asyncio.run": (
        "asyncio",
        ASYNCIO_YIELD,
        """
        import asyncio, time

        async def case():
        {body}

        def test_case():
            asyncio.run(case())
        """,
    ),
    "uvloop.run": (
        "uvloop",
        ASYNCIO_YIELD,
        """
        import asyncio, time, uvloop

        async def case():
        {body}

        def test_case():
            uvloop.run(case())
        """,
    ),
}

# The blocking code, and the start of the line the report must name.
BLOCKING = {
    "sleep": ("time.sleep(0.3)", "time.sleep(0.3)"),
    "cpu loop": (
        "deadline = time.perf_counter() + 0.3\nwhile time.perf_counter() < deadline: pass",
        "while time.perf_counter() < deadline",
    ),
    "helper function": ("slow_helper()", "time.sleep(0.4)"),
}
HELPER = """

def slow_helper():
    time.sleep(0.4)
"""


def write_case(pytester: pytest.Pytester, runner: str, body: str) -> str:
    """Write the test file; returns the kind of loop the runner uses."""
    loop, _, template = RUNNERS[runner]
    indented = textwrap.indent(body, "    ")
    source = textwrap.dedent(template).replace("{body}", indented) + HELPER
    pytester.makepyfile(test_runner=source)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return loop


def line_of(pytester: pytest.Pytester, start: str) -> int:
    source = (pytester.path / "test_runner.py").read_text().splitlines()
    return next(i for i, line in enumerate(source, 1) if line.strip().startswith(start))


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("kind", BLOCKING)
def test_blocking_code_fails_under_every_runner_naming_the_line(
    pytester: pytest.Pytester, runner: str, kind: str
) -> None:
    code, blocking_line = BLOCKING[kind]
    loop = write_case(pytester, runner, f"{RUNNERS[runner][1]}\n{code}")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    line = line_of(pytester, blocking_line)
    result.stdout.fnmatch_lines(
        [f"{loop} event loop blocked for * ms (threshold 50 ms*", f"    test_runner.py:{line}: *"]
    )


@pytest.mark.parametrize("runner", RUNNERS)
def test_clean_code_passes_under_every_runner(pytester: pytest.Pytester, runner: str) -> None:
    if RUNNERS[runner][1] == TRIO_YIELD:
        body = "await trio.sleep(0.01)\nawait trio.to_thread.run_sync(time.sleep, 0.3)"
    else:
        body = "await asyncio.sleep(0.01)\nawait asyncio.to_thread(time.sleep, 0.3)"
    write_case(pytester, runner, body)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


@pytest.mark.parametrize("runner", [r for r in RUNNERS if RUNNERS[r][1] == ASYNCIO_YIELD])
def test_leaked_task_fails_under_every_asyncio_runner(
    pytester: pytest.Pytester, runner: str
) -> None:
    write_case(
        pytester,
        runner,
        "asyncio.get_running_loop().create_task(asyncio.sleep(3600), name='orphan')\n"
        "await asyncio.sleep(0)",
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    line = line_of(pytester, "asyncio.get_running_loop().create_task")
    result.stdout.fnmatch_lines(
        [
            "*left 1 task running*",
            f"*task 'orphan' running sleep(), created at test_runner.py:{line}:*",
        ]
    )
