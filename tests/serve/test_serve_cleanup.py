"""Nothing outlives a test: no server, thread, process or port, even when the test fails.

Each inner session starts servers under every model, fails (or is interrupted), and then a
``pytest_unconfigure`` hook, which runs after every fixture is torn down, records what is
still there.
"""

from __future__ import annotations

import json

import pytest

CHECKER = """
import json, os, socket, threading
import psutil

def pytest_unconfigure(config):
    ports = json.loads(open("ports.json").read()) if os.path.exists("ports.json") else []
    open_ports = []
    for port in ports:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                open_ports.append(port)
    state = {
        "threads": [
            t.name for t in threading.enumerate() if t.name.startswith("concurrency-serve")
        ],
        "children": [p.pid for p in psutil.Process().children(recursive=True)],
        "open_ports": open_ports,
        "ports": ports,
    }
    open("state.json", "w").write(json.dumps(state))
"""

TESTS = """
import json
import pytest
import anyio
from pytest_concurrency.serve import MODELS

def sync_handler(request):
    return "ok"

async def async_handler(request):
    await anyio.sleep(0)
    return "ok"

def start_everything(serve):
    handles = [
        serve(async_handler if "async" in info.kinds else sync_handler, model=name)
        for name, info in MODELS.items()
    ]
    handles.append(serve("helpers:handle", "processes", isolated=True))
    with open("ports.json", "w") as out:
        json.dump([h.port for h in handles], out)
    return handles

def test_fails_with_servers_running(serve):
    start_everything(serve)
    assert False, "the test fails while its servers run"
"""

INTERRUPTED = TESTS.replace(
    'assert False, "the test fails while its servers run"', "raise KeyboardInterrupt"
)


@pytest.mark.parametrize("body", [TESTS, INTERRUPTED], ids=["failing", "interrupted"])
def test_nothing_is_left_after_a_failing_or_interrupted_test(pytester, body):
    pytester.makeconftest(CHECKER)
    pytester.makepyfile(helpers="def handle(request):\n    return 'ok'\n", test_inner=body)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    if body is TESTS:
        result.assert_outcomes(failed=1)
    else:
        result.stdout.fnmatch_lines(["*KeyboardInterrupt*"])
    state = json.loads((pytester.path / "state.json").read_text())
    assert len(state["ports"]) == 8  # seven models in-process, one isolated
    assert state["open_ports"] == []
    assert state["threads"] == []
    assert state["children"] == []


def test_workers_stop_when_their_server_process_dies():
    """A server killed outright (SIGKILL, OOM) leaves no orphaned worker behind."""
    import os
    import signal
    import time

    import psutil

    from pytest_concurrency.serve import ServerStopError, start_server

    server = start_server("fixtures.serve.clean_io:handle", "processes", isolated=True, workers=2)
    parent, *workers = server.pids
    assert len(workers) == 2
    os.kill(parent, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(psutil.pid_exists(pid) for pid in workers):
        time.sleep(0.05)
    alive = [
        pid
        for pid in workers
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ]
    with pytest.raises(ServerStopError, match="did not stop cleanly"):
        server.stop()
    assert alive == []
