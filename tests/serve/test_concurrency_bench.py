"""The concurrency-bench command: its output, its JSON schema, its chart and its errors."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from pytest_concurrency import bench
from pytest_concurrency.serve import LoadReport

TINY = bench.Profile(
    "tiny",
    io=(bench.IoRun(connections=20, rate=200, duration=0.3),),
    saturation_connections=10,
    saturation_duration=0.3,
    cpu_duration=0.3,
    timeout=5.0,
)


@pytest.fixture(scope="module")
def tiny_run() -> bench.Bench:
    run = bench.Bench(
        TINY, ["asyncio", "threads"], ["io", "cpu-hash"], lambda *args, **kwargs: None, pin=False
    )
    run.run()
    return run


def test_json_has_exactly_the_documented_schema(tiny_run):
    document = json.loads(json.dumps(bench.to_json(tiny_run)))
    assert set(document) == {"machine", "runs"}
    assert document["machine"]["cpus"] >= 1
    assert document["machine"]["cpu_hash_rounds_64k"] >= 1
    runs = document["runs"]
    assert [(r["workload"], r["model"], r["offered_rps"]) for r in runs] == [
        ("io", "asyncio", 200),
        ("io", "asyncio", None),
        ("cpu-hash", "asyncio", None),
        ("io", "threads", 200),
        ("io", "threads", None),
        ("cpu-hash", "threads", None),
    ]
    for run in runs:
        assert tuple(run) == bench.RUN_KEYS
        assert run["errors"] == 0
        assert run["achieved_rps"] > 0
        assert run["p50_ms"] <= run["p90_ms"] <= run["p99_ms"] <= run["max_ms"]
        assert run["vsz_peak_mb"] > run["rss_peak_mb"] > 0
    for saturation in (runs[1], runs[4]):
        assert saturation["server_cpus"] == len(os.sched_getaffinity(0))  # not pinned
        assert 0 < saturation["server_cores"] <= saturation["server_cpus"]
    asyncio_io, threads_io = runs[0], runs[3]
    assert asyncio_io["loop_lag_max_ms"] is not None
    assert threads_io["loop_lag_max_ms"] is None
    assert threads_io["threads_peak"] > 20  # a thread per connection


def test_unknown_figures_are_null_in_json_and_a_dash_in_the_table(tiny_run):
    unknown = dict.fromkeys(
        (
            "server_cpu_seconds",
            "cpu_us_per_request",
            "rss_start_bytes",
            "rss_connected_bytes",
            "rss_peak_bytes",
            "vsz_peak_bytes",
            "threads_peak",
        )
    )
    run = bench.Bench(TINY, ["asyncio"], ["io"], lambda *args, **kwargs: None, pin=False)
    for result in tiny_run.results[:2]:
        assert result.report is not None
        run.results.append(
            dataclasses.replace(result, report=dataclasses.replace(result.report, **unknown))
        )
    document = json.loads(json.dumps(bench.to_json(run)))
    for entry in document["runs"]:
        assert tuple(entry) == bench.RUN_KEYS
        assert entry["cpu_us_per_request"] is None
        assert entry["rss_peak_mb"] is entry["vsz_peak_mb"] is entry["threads_peak"] is None
    row = next(line for line in bench.render(run).splitlines() if line.startswith("asyncio "))
    assert row.split()[6:11] == ["-"] * 5  # CPU/req, RSS, VSZ, RSS/conn, threads


def test_table_puts_the_design_documents_claims_beside_the_measurements(tiny_run):
    table = bench.render(tiny_run)
    assert "I/O-bound: 20 connections, 200 req/s offered (open loop), 10 ms of I/O" in table
    asyncio_row = next(line for line in table.splitlines() if line.startswith("asyncio "))
    assert "| 11 ms" in asyncio_row  # the document's claimed p50 for asyncio
    assert "25MB" in asyncio_row
    assert "RSS peak" in table
    assert "VSZ peak" in table
    assert "CPU-bound, hashlib SHA-256" in table


def test_saturation_is_a_closed_loop_without_waits_that_says_what_limited_it(tiny_run):
    table = bench.render(tiny_run)
    assert (
        "Saturation: 10 connections, closed loop (each client sends as soon as it has its "
        "answer), no I/O wait" in table
    )
    section = table.split("Saturation:")[1].split("\n\n")[0]
    assert "limited by" in section.splitlines()[1]
    assert "limited by: the server's CPU when it used 90% or more of the CPUs it may use" in section
    saturation = [r for r in tiny_run.results if r.kind == "saturation"]
    assert [r.report.offered_rps for r in saturation if r.report] == [None, None]


def test_what_limited_a_run_is_read_from_the_cores_used():
    report = bench_report(server_cpu_seconds=0.95, server_cpu_window_s=1.0, server_cpus=1)
    assert bench.limited_by(report) == "server CPU (0.95 of 1)"
    report = bench_report(
        server_cpu_seconds=0.4, server_cpu_window_s=1.0, server_cpus=1, generator_cpu_seconds=0.97
    )
    assert bench.limited_by(report) == "load generator (0.97 of 1)"
    report = bench_report(server_cpu_seconds=0.6, server_cpu_window_s=1.0, server_cpus=2)
    assert bench.limited_by(report) == "neither (server 0.60 of 2, load generator 0.10 of 1)"
    report = bench_report(server_cpu_seconds=None, server_cpu_window_s=1.0, server_cpus=2)
    assert bench.limited_by(report) == "unknown (server CPU not measured)"


def bench_report(**values: Any) -> LoadReport:
    fields = {field.name: None for field in dataclasses.fields(LoadReport)}
    fields.update(
        url="http://127.0.0.1:1",
        connections=1,
        connected=1,
        achieved_rps=1.0,
        duration_s=1.0,
        requests=1,
        errors={},
        statuses={},
        send_lag_p99_ms=0.0,
        send_lag_max_ms=0.0,
        generator_cpu_seconds=0.1,
    )
    fields.update(values)
    return LoadReport(**fields)


def test_plot_writes_a_png(tiny_run, tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    path = tmp_path / "bench.png"
    bench.plot(tiny_run, path, pyplot)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_concurrency.bench", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--models", "threads,fibers"],
            "concurrency-bench: error: argument --models: unknown model 'fibers'; "
            "choose from threads, threadpool, asyncio, uvloop, trio, processes, asyncio+processes",
        ),
        (
            ["--workloads", "disk"],
            "concurrency-bench: error: argument --workloads: unknown workload 'disk'; "
            "choose from io, cpu-hash, cpu-python",
        ),
        (
            ["--json", "/no/such/dir/out.json"],
            "concurrency-bench: error: --json /no/such/dir/out.json: directory /no/such/dir "
            "does not exist",
        ),
    ],
)
def test_bad_arguments_get_one_line_and_exit_2(args, message):
    completed = run_cli(*args)
    assert completed.returncode == 2
    assert completed.stderr.strip() == message
    assert completed.stdout == ""


def test_plot_without_matplotlib_is_a_one_line_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert bench.main(["--plot", str(tmp_path / "x.png"), "--quick"]) == 2
    assert capsys.readouterr().err == (
        "concurrency-bench: error: --plot needs matplotlib: "
        "pip install 'pytest-concurrency-guard[plot]'\n"
    )
