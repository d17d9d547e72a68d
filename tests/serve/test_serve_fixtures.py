"""The fixtures, the marker and the options, seen from a user's test suite (inner sessions)."""

from __future__ import annotations

import pytest

HANDLERS = """
import anyio
import pytest

async def async_hello(request):
    await anyio.sleep(0)
    return "hello"

def sync_hello(request):
    return "hello"
"""


def test_server_runs_each_test_under_every_model_it_can(pytester):
    pytester.makepyfile(
        HANDLERS
        + """
import httpx

@pytest.fixture
def handler():
    return async_hello

def test_hello(server, concurrency_model):
    assert server.model == concurrency_model
    assert httpx.get(server.url).text == "hello"
"""
    )
    result = pytester.runpytest_subprocess("-v", "-rs")
    result.stdout.fnmatch_lines(
        [
            "*test_hello?asyncio? PASSED*",
            "*test_hello?uvloop? PASSED*",
            "*test_hello?trio? PASSED*",
            "*test_hello?processes? PASSED*",
            "*test_hello?asyncio+processes? PASSED*",
            "*the threads model does not run async handlers; models that do: asyncio, uvloop,*",
        ]
    )
    result.assert_outcomes(passed=5, skipped=2)


def test_marker_chooses_the_models(pytester):
    pytester.makepyfile(
        HANDLERS
        + """
@pytest.fixture
def handler():
    return sync_hello

@pytest.mark.concurrency_models("threads", "threadpool")
def test_hello(server):
    pass

@pytest.mark.concurrency_models("threads")
def test_model_only(concurrency_model):
    assert concurrency_model == "threads"
"""
    )
    result = pytester.runpytest_subprocess("-v")
    result.stdout.fnmatch_lines(
        [
            "*test_hello?threads? PASSED*",
            "*test_hello?threadpool? PASSED*",
            "*test_model_only?threads? PASSED*",
        ]
    )
    result.assert_outcomes(passed=3)


def test_naming_a_model_that_cannot_run_the_handler_is_an_error(pytester):
    pytester.makepyfile(
        HANDLERS
        + """
@pytest.fixture
def handler():
    return async_hello

@pytest.mark.concurrency_models("threadpool")
def test_hello(server):
    pass
"""
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*the threadpool model does not run async handlers; models that do: asyncio,*"]
    )


@pytest.mark.parametrize(
    ("how", "args"),
    [("ini", ()), ("option", ("--concurrency-models=trio,asyncio",))],
)
def test_ini_and_command_line_choose_the_models(pytester, how, args):
    if how == "ini":
        pytester.makeini("[pytest]\nconcurrency_models = trio asyncio\n")
    pytester.makepyfile(
        """
def test_model(concurrency_model):
    pass
"""
    )
    result = pytester.runpytest_subprocess("-v", *args)
    result.stdout.fnmatch_lines(["*test_model?trio? PASSED*", "*test_model?asyncio? PASSED*"])
    result.assert_outcomes(passed=2)


def test_an_unknown_model_name_is_a_usage_error(pytester):
    pytester.makepyfile("def test_model(concurrency_model):\n    pass\n")
    result = pytester.runpytest_subprocess("--concurrency-models=threads,fibers")
    result.stderr.fnmatch_lines(
        [
            "ERROR: --concurrency-models: unknown concurrency model 'fibers'; "
            "choose from threads, threadpool, asyncio, uvloop, trio, processes, asyncio+processes"
        ]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_an_unknown_model_in_the_marker_fails_only_that_test_in_one_line(pytester):
    pytester.makepyfile(
        HANDLERS
        + """
@pytest.fixture
def handler():
    return sync_hello

@pytest.mark.concurrency_models("nope")
def test_typo(server):
    pass

@pytest.mark.concurrency_models("threads", "fibers")
def test_model_typo(concurrency_model):
    pass

def test_unrelated():
    pass

@pytest.mark.concurrency_models("threads")
def test_fine(concurrency_model):
    pass
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=2)
    valid = "choose from threads, threadpool, asyncio, uvloop, trio, processes, asyncio+processes"
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_typo*",
            "@pytest.mark.concurrency_models on test_typo: unknown concurrency model 'nope'; "
            + valid,
            "*ERROR at setup of test_model_typo*",
            "@pytest.mark.concurrency_models on test_model_typo: unknown concurrency model "
            "'fibers'; " + valid,
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert "_plugin.py" not in result.stdout.str()


def test_a_handler_exception_fails_the_test_with_its_traceback(pytester):
    pytester.makepyfile(
        """
import httpx

def broken(request):
    raise LookupError("no such item")  # the handler bug

def test_broken(serve):
    server = serve(broken, "threadpool")
    assert httpx.get(server.url + "/items/7").status_code == 500

def test_expected_failures(serve):
    server = serve(broken, "threads", fail_on_handler_error=False)
    assert httpx.get(server.url).status_code == 500
"""
    )
    result = pytester.runpytest_subprocess("-rA")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_broken*",
            "*threadpool server at http://127.0.0.1:*: handler raised while serving GET /items/7:",
            '*raise LookupError("no such item")  # the handler bug*',
            "LookupError: no such item",
        ]
    )


def test_server_without_a_handler_fixture_explains_what_to_define(pytester):
    pytester.makepyfile("def test_x(server):\n    pass\n")
    result = pytester.runpytest_subprocess("--concurrency-models=asyncio")
    result.stdout.fnmatch_lines(["*the server fixture serves your handler fixture: define one*"])


BLOCKING = """
import time
import httpx

async def blocking(request):
    time.sleep(0.2)  # blocks the loop
    return "done"
"""


def test_a_handler_blocking_the_asyncio_loop_fails_the_test_naming_the_line(pytester):
    pytester.makepyfile(
        BLOCKING
        + """
def test_blocked(serve):
    server = serve(blocking, "asyncio")
    assert httpx.get(server.url).text == "done"
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*asyncio event loop in thread 'concurrency-serve-asyncio-loop' blocked for *",
            "*test_a_handler_blocking_the_asyncio_loop_fails_the_test_naming_the_line.py:5: "
            "time.sleep(0.2)  # blocks the loop*",
        ]
    )


def test_an_isolated_server_reports_its_blocked_loop_at_teardown(pytester):
    pytester.makepyfile(blocking_app=BLOCKING)
    pytester.makepyfile(
        """
import httpx

def test_blocked(serve):
    server = serve("blocking_app:blocking", "asyncio", isolated=True)
    assert httpx.get(server.url).text == "done"
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*asyncio server (isolated): asyncio event loop in thread*blocked for *",
            "*blocking_app.py:5: time.sleep(0.2)  # blocks the loop*",
        ]
    )
