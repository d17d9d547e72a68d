"""The servers tests/benchmarks/bench_serve.py compares do the same work on both sides."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from pytest_concurrency.serve import run_load
from pytest_concurrency.serve._procmetrics import process_cpu_seconds

BENCHMARKS = Path(__file__).resolve().parents[2] / "tests" / "benchmarks"


@contextmanager
def bench_server(script: str, *arguments: str) -> Iterator[tuple[str, int]]:
    """``minimal_servers.py`` or ``real_server.py``: it prints its port, serves until stdin
    closes, and must then exit cleanly."""
    process = subprocess.Popen(
        [sys.executable, str(BENCHMARKS / script), *arguments],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.stdin.close()
        process.stdout.close()
        try:
            assert process.wait(10) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def pool_cpu(pids: list[int]) -> float:
    return sum(process_cpu_seconds(pid) or 0.0 for pid in pids)


def test_the_minimal_asyncio_processes_server_sends_work_to_its_pool():
    with bench_server("minimal_servers.py", "asyncio+processes") as (url, pid):
        pool = [child.pid for child in psutil.Process(pid).children()]
        assert pool  # forked before serving, as the real model's
        before = pool_cpu(pool)
        report = run_load(url, connections=4, requests=40, path="/?ms=1", server_pids=[pid])
        assert report.errors == {}
        assert report.requests == 40
        assert pool_cpu(pool) > before  # the pool did the requests' CPU part


def test_the_real_asyncio_processes_server_sends_the_bench_handlers_work_to_its_pool(
    serve, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    server = serve("bench_handlers:offload_io", "asyncio+processes", isolated=True, workers=2)
    pool = server.pids[1:]
    assert len(pool) == 2
    before = pool_cpu(pool)
    report = run_load(server, connections=4, requests=40, path="/?ms=1")
    assert report.errors == {}
    assert report.requests == 40
    assert pool_cpu(pool) > before


@pytest.mark.parametrize("lag_interval", [[], ["0.5"]])
def test_the_real_server_script_serves_in_its_own_process_until_stdin_closes(lag_interval):
    # What section 2b of bench_serve.py counts the instructions of, beside minimal_servers.py.
    with bench_server("real_server.py", "asyncio", *lag_interval) as (url, pid):
        report = run_load(url, connections=2, requests=10, path="/?ms=1", server_pids=[pid])
        assert report.errors == {}
        assert report.requests == 10
