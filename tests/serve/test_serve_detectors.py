"""The detectors see into the processes a server starts: isolated servers and workers.

The plugin watches the test process; a handler running in an isolated server or in a worker of
the ``processes`` model runs elsewhere. Those processes run the detectors themselves, with the
plugin's settings, and the ``serve`` fixture fails the test with what they found.
"""

from __future__ import annotations

import httpx
import pytest

from pytest_concurrency.serve import MODELS, ServeConfigError, start_server

APP = """
import asyncio
import subprocess
import threading
import time

import anyio

async def blocking(request):
    time.sleep(0.3)  # blocks the loop
    return "done"

def leaks_a_thread(request):
    threading.Thread(target=time.sleep, args=(5,), daemon=True).start()  # never joined
    return "ok"

async def leaks_a_task(request):
    asyncio.get_running_loop().create_task(asyncio.sleep(5))  # never awaited
    return "ok"

def leaks_a_process(request):
    subprocess.Popen(["sleep", "5"])  # never waited for
    return "ok"

async def clean(request):
    await anyio.sleep(0.001)
    return "ok"

def clean_sync(request):
    time.sleep(0.001)
    return "ok"
"""


def line_of(marker: str) -> int:
    """The line of ``app.py`` that carries ``marker`` (pytester strips the leading newline)."""
    lines = APP.strip("\n").splitlines()
    return next(number for number, line in enumerate(lines, 1) if marker in line)


BLOCKING_LINE = line_of("# blocks the loop")
THREAD_LINE = line_of("threading.Thread(")
TASK_LINE = line_of("create_task(")
PROCESS_LINE = line_of("subprocess.Popen(")
THREAD_LEAK = (
    f"  - thread * running sleep(), daemon, started at app.py:{THREAD_LINE}: threading.Thread(*"
)


def run(pytester: pytest.Pytester, test: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(app=APP)
    pytester.makepyfile("import httpx\nimport pytest\n\n" + test)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


BLOCKED_WORKER = """
@pytest.mark.parametrize("isolated", [False, True], ids=["in-process", "isolated"])
def test_blocked(serve, isolated):
    server = serve("app:blocking", "processes", workers=1, isolated=isolated)
    assert httpx.get(server.url).text == "done"
"""


def test_a_handler_blocking_a_worker_loop_fails_the_test_naming_the_line(pytester):
    result = run(pytester, BLOCKED_WORKER)
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_blocked?in-process?*",
            "processes server: worker process *: asyncio event loop in thread "
            "'concurrency-serve-processes-loop' blocked for * (threshold 50 ms)*",
            f"*app.py:{BLOCKING_LINE}: time.sleep(0.3)  # blocks the loop",
            "*ERROR at teardown of test_blocked?isolated?*",
            "processes server (isolated): worker process *: asyncio event loop in thread*",
            f"*app.py:{BLOCKING_LINE}: time.sleep(0.3)  # blocks the loop",
        ]
    )


def test_worker_loops_are_watched_at_the_plugins_threshold(pytester):
    result = run(pytester, BLOCKED_WORKER, "--loop-lag-ms=5000")
    result.assert_outcomes(passed=2)


def test_worker_loop_blocks_are_warnings_in_warn_mode_pointing_at_the_blocking_line(pytester):
    result = run(pytester, BLOCKED_WORKER, "--concurrency-mode=warn")
    result.assert_outcomes(passed=2, warnings=2)
    result.stdout.fnmatch_lines(
        [
            f"*app.py:{BLOCKING_LINE}: LoopLagWarning: processes server: worker process *: "
            "asyncio event loop*"
        ]
    )


def test_warn_mode_with_the_warnings_made_errors_fails_the_test_cleanly(pytester):
    result = run(
        pytester,
        BLOCKED_WORKER,
        "--concurrency-mode=warn",
        "-W",
        "error::pytest_concurrency.LoopLagWarning",
    )
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_blocked?in-process?*",
            "processes server: worker process *: asyncio event loop in thread*",
            f"*app.py:{BLOCKING_LINE}: time.sleep(0.3)  # blocks the loop",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_leaks_in_server_processes_warn_in_warn_mode_pointing_at_the_line_that_made_them(
    pytester,
):
    test = """
@pytest.mark.parametrize("isolated", [False, True], ids=["worker", "isolated"])
def test_leaky(serve, isolated):
    server = serve("app:leaks_a_thread", "processes", workers=1, isolated=isolated)
    assert httpx.get(server.url).text == "ok"
"""
    result = run(pytester, test, "--concurrency-mode=warn")
    result.assert_outcomes(passed=2, warnings=2)
    result.stdout.fnmatch_lines(
        [f"*app.py:{THREAD_LINE}: LeakWarning: the processes server (worker process *) left*"]
    )
    assert "_plugin.py" not in result.stdout.str()


@pytest.mark.parametrize(
    ("handler", "model", "isolated", "report"),
    [
        (
            "leaks_a_thread",
            "threads",
            True,
            [
                "the threads server (isolated, pid *) left 1 thread running after it ended "
                "(checked after a 100 ms grace period):",
                THREAD_LEAK,
                "  Or mark the test @pytest.mark.allow_leaks('threads').",
            ],
        ),
        (
            "leaks_a_task",
            "asyncio",
            True,
            [
                "the asyncio server (isolated, pid *) left 1 task running after it ended*",
                f"  - task * running sleep(), created at app.py:{TASK_LINE}: "
                "asyncio.get_running_loop()*still pending when its runner shut the event loop*",
            ],
        ),
        (
            "leaks_a_process",
            "threadpool",
            True,
            [
                "the threadpool server (isolated, pid *) left 1 process running after it ended*",
                f"  - process pid * running 'sleep 5', started at app.py:{PROCESS_LINE}: "
                "subprocess.Popen(*",
            ],
        ),
        (
            "leaks_a_thread",
            "processes",
            False,
            [
                "the processes server (worker process *) left 1 thread running after it ended*",
                THREAD_LEAK,
            ],
        ),
        (
            "leaks_a_thread",
            "asyncio+processes",
            False,
            [
                "the asyncio+processes server (pool process *) left 1 thread running after it "
                "ended*",
                THREAD_LEAK,
            ],
        ),
    ],
    ids=["isolated-thread", "isolated-task", "isolated-process", "worker-thread", "pool-thread"],
)
def test_what_a_handler_leaves_running_in_a_server_process_fails_the_test(
    pytester, handler, model, isolated, report
):
    result = run(
        pytester,
        f"""
def test_leaky(serve):
    server = serve("app:{handler}", "{model}", isolated={isolated}, workers=1)
    assert httpx.get(server.url).text == "ok"

@pytest.mark.allow_leaks
def test_allowed(serve):
    server = serve("app:{handler}", "{model}", isolated={isolated}, workers=1)
    assert httpx.get(server.url).text == "ok"
""",
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_leaky*", *report])
    assert "of test_allowed" not in result.stdout.str()


def test_a_server_s_own_threads_and_processes_are_never_reported(pytester):
    models = [name for name, info in MODELS.items() if info.available]
    result = run(
        pytester,
        f"""
@pytest.mark.parametrize("model", {models!r})
def test_clean(serve, model):
    handler = "app:clean" if model in {[m for m in models if "async" in MODELS[m].kinds]!r} else (
        "app:clean_sync"
    )
    server = serve(handler, model, isolated=True, workers=2)
    with httpx.Client(base_url=server.url) as client:
        for _ in range(5):
            assert client.get("/").text == "ok"

def test_clean_workers_in_process(serve):
    server = serve("app:clean", "processes", workers=2)
    assert httpx.get(server.url).text == "ok"
""",
    )
    result.assert_outcomes(passed=len(models) + 1)


def test_an_isolated_server_reports_its_findings_on_the_handle(tmp_path, monkeypatch):
    (tmp_path / "leaky_app.py").write_text(APP.strip("\n"))
    monkeypatch.syspath_prepend(str(tmp_path))
    server = start_server(
        "leaky_app:leaks_a_thread", "threads", isolated=True, watch_leaks=["threads"]
    )
    with server:
        assert httpx.get(server.url).text == "ok"
    assert server.loop_blocks == []
    [report] = server.leaks
    assert "the threads server (isolated, pid" in report
    assert f"leaky_app.py:{THREAD_LINE}: threading.Thread(target=time.sleep" in report


def test_the_asyncio_processes_pool_reports_what_its_work_left_running_on_the_handle(
    tmp_path, monkeypatch
):
    (tmp_path / "leaky_app.py").write_text(APP.strip("\n"))
    monkeypatch.syspath_prepend(str(tmp_path))
    # Two pool processes, one request: one of them leaks, both are asked when the server stops.
    server = start_server(
        "leaky_app:leaks_a_thread", "asyncio+processes", workers=2, watch_leaks=["threads"]
    )
    with server:
        assert httpx.get(server.url).text == "ok"
    [report] = server.leaks
    assert "the asyncio+processes server (pool process" in report
    assert f"leaky_app.py:{THREAD_LINE}: threading.Thread(target=time.sleep" in report


def test_watching_is_for_processes_of_the_server_s_own():
    with pytest.raises(ServeConfigError, match="are for the processes a server starts"):
        start_server("fixtures.serve.clean_io:handle", "asyncio", watch_loop_ms=50)
    with pytest.raises(ServeConfigError, match="watch_leaks: unknown kind 'fibers'"):
        start_server("fixtures.serve.clean_io:handle", "asyncio", watch_leaks=["fibers"])
