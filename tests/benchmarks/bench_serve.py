"""Benchmarks of the servers and the load generator (``make bench-serve``).

Every figure is measured side by side in one run against a baseline, and reported as a ratio
where the target is one:

1. HTTP parser: server CPU per request with httptools and with h11 (asyncio model).
2. Server overhead: CPU per request of each model against its minimal hand-written server
   (``minimal_servers.py``), at 2,000 req/s offered over 1,000 keep-alive connections with
   10 ms of I/O per request; and the p50 latency of that run (target: at most 11.5 ms). Each
   pair runs alone, one after the other (latency, and a CPU ratio shown for comparison), and
   side by side: both servers at once on the server CPU, each loaded by its own generator, so
   that the shared machine's noise cancels out of their CPU ratio, which is the one judged.
   ``--self-check`` runs each minimal server against itself instead.
   ``asyncio+processes`` sends a small CPU part of each request to its pool in these pairs (its
   minimal server does too); its p50 is measured with the I/O on its loop, as it serves I/O.
2b. The same overhead in instructions per request under callgrind (needs valgrind), for the
   event-loop models: deterministic, where CPU time on a shared machine moves by 10-20% from
   run to run.
3. 10,000 connections at 10,000 req/s, server on one core: p99 of uvloop and asyncio (targets
   20 ms and 30 ms), and resident memory per idle connection of the event-loop models (target:
   at most 6 KB), beside the minimal servers.
4. The load generator against wrk, both on one core against a server that answers at once:
   requests per second, and requests per CPU-second of the generator (target: 40,000).

Servers run in their own process pinned to CPU 0, load generators pinned to CPU 1. Repeated
runs alternate between the real and the minimal server; medians are reported. The machine's
load average is printed: on a busy machine every figure is noisier.

    python tests/benchmarks/bench_serve.py [--quick] [--sections 1,2,2b,3,4] [--json PATH]
        [--models threadpool,uvloop] [--pairs N] [--self-check]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from pytest_concurrency.serve import (  # noqa: E402
    MODELS,
    LoadReport,
    ServerHandle,
    run_load,
    start_server,
)
from pytest_concurrency.serve._procmetrics import raise_fd_limit  # noqa: E402

SERVER_CPU = [0]
LOAD_CPU = [1]

# The handler each model runs: it does exactly what the minimal server does.
HANDLERS = {
    "threads": "bench_handlers:sync_io",
    "threadpool": "bench_handlers:sync_io",
    "asyncio": "bench_handlers:asyncio_io",
    "uvloop": "bench_handlers:asyncio_io",
    "trio": "bench_handlers:trio_io",
    "processes": "bench_handlers:asyncio_io",
    "asyncio+processes": "bench_handlers:offload_io",
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def server_process(
    command: list[str], stop_timeout: float = 10.0, **popen: Any
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """Run a server script that prints its port and serves until its stdin closes (as
    ``minimal_servers.py`` and ``real_server.py`` do); yield the port and the process."""
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, **popen)
    try:
        assert process.stdout is not None
        yield int(process.stdout.readline()), process
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(stop_timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def minimal_server(model: str) -> Iterator[tuple[str, list[int]]]:
    """A minimal server of ``model`` in a subprocess pinned to the server CPU."""
    with server_process(
        [sys.executable, str(HERE / "minimal_servers.py"), model],
        preexec_fn=lambda: os.sched_setaffinity(0, SERVER_CPU),
    ) as (port, process):
        yield f"http://127.0.0.1:{port}", [process.pid]


@contextmanager
def real_server(model: str, **options: Any) -> Iterator[ServerHandle]:
    handler = options.pop("handler", HANDLERS[model])
    with start_server(handler, model, isolated=True, cpu_affinity=SERVER_CPU, **options) as server:
        yield server


def measure(server: Callable[[], Any], **load: Any) -> LoadReport:
    """Load a real server (a handle: loop lag is measured too) or a minimal one (a URL)."""
    with server() as target:
        return _load(target, **load)


def measure_together(*servers: Callable[[], Any], **load: Any) -> list[LoadReport]:
    """Load several servers at once, each by its own generator process.

    The servers share the server core, and whatever else slows the machine down while they
    run slows them all alike: it cancels out of the ratio of their CPU per request. Run one
    after the other, the same server's CPU per request moves by 10-30% on a shared machine.
    """
    with ExitStack() as stack:
        targets = [stack.enter_context(server()) for server in servers]
        reports: list[LoadReport | None] = [None] * len(targets)
        failures: list[BaseException] = []

        def run(index: int) -> None:
            try:
                reports[index] = _load(targets[index], **load)
            except BaseException as failure:  # re-raised below, in the calling thread
                failures.append(failure)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(targets))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]
        return [report for report in reports if report is not None]


def _load(target: Any, **load: Any) -> LoadReport:
    if isinstance(target, ServerHandle):
        return run_load(target, cpu_affinity=LOAD_CPU, **load)
    url, pids = target
    return run_load(url, server_pids=pids, cpu_affinity=LOAD_CPU, **load)


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


@dataclass
class Options:
    reps: int
    overhead_reps: int
    duration: float
    big_duration: float
    quick: bool
    models: tuple[str, ...] = tuple(MODELS)
    """The models sections 2 and 2b measure (``--models``)."""
    self_check: bool = False
    """Section 2 measures each minimal server against itself (``--self-check``)."""


# 1. parser -----------------------------------------------------------------------------------
def bench_parsers(opts: Options) -> dict[str, Any]:
    log("1. HTTP parser overhead: asyncio model, 2,000 req/s over 100 connections, 10 ms I/O")
    results: dict[str, list[float | None]] = {"httptools": [], "h11": []}
    for rep in range(opts.reps):
        for parser in ("httptools", "h11"):
            report = measure(
                lambda parser=parser: real_server("asyncio", http=parser),
                connections=100,
                rate=2000,
                duration=opts.duration,
                path="/?ms=10",
            )
            results[parser].append(report.cpu_us_per_request)
            log(f"   rep {rep + 1} {parser}: {fmt(report.cpu_us_per_request, 0)} us/request")
    httptools, h11 = median(results["httptools"]), median(results["h11"])
    ratio = h11 / httptools if httptools and h11 else None
    print("\n### 1. HTTP parser: server CPU per request (asyncio, 2,000 req/s, 100 connections)")
    print("| parser | CPU per request (median) |\n|---|---|")
    print(f"| httptools | {fmt(httptools, 0)} us |\n| h11 | {fmt(h11, 0)} us ({fmt(ratio, 2)}x) |")
    return {"httptools_us": httptools, "h11_us": h11, "h11_over_httptools": ratio}


def _ratios(pairs: list[tuple[LoadReport, LoadReport]]) -> list[float]:
    """CPU per request of the first of each pair over the second's."""
    return [
        a.cpu_us_per_request / b.cpu_us_per_request
        for a, b in pairs
        if a.cpu_us_per_request and b.cpu_us_per_request
    ]


def _range(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}" if values else "-"


# 2. overhead against the minimal servers and p50 at 2,000 req/s / 1,000 connections ----------
def bench_overhead(opts: Options) -> dict[str, Any]:
    log("2. Server overhead: 2,000 req/s over 1,000 connections, 10 ms I/O, each model")
    rows = {}
    for model in opts.models:
        if not MODELS[model].available:
            log(f"   {model}: not installed, skipped")
            continue
        ours: list[LoadReport] = []
        minimal: list[LoadReport] = []
        together: list[tuple[LoadReport, LoadReport]] = []
        minimal_server_ = functools.partial(minimal_server, model)
        reference = minimal_server_ if opts.self_check else functools.partial(real_server, model)
        for rep in range(opts.overhead_reps):
            load = {"connections": 1000, "rate": 2000, "duration": opts.duration, "path": "/?ms=10"}
            # Alone, for latency: alternate which goes first, so that a pair's first run is not
            # always the real one.
            if rep % 2 == 0:
                ours.append(measure(reference, **load))
                minimal.append(measure(minimal_server_, **load))
            else:
                minimal.append(measure(minimal_server_, **load))
                ours.append(measure(reference, **load))
            # Side by side, for CPU per request: both at once on the server core.
            pair = measure_together(reference, minimal_server_, **load)
            together.append((pair[0], pair[1]))
            log(
                f"   {model} rep {rep + 1}: side by side {fmt(pair[0].cpu_us_per_request, 0)} vs "
                f"{fmt(pair[1].cpu_us_per_request, 0)} us/request; alone "
                f"{fmt(ours[-1].cpu_us_per_request, 0)} vs "
                f"{fmt(minimal[-1].cpu_us_per_request, 0)} us/request, p50 "
                f"{fmt(ours[-1].p50_ms, 2)} vs {fmt(minimal[-1].p50_ms, 2)} ms"
            )
        # Under asyncio+processes the pairs above offload a small CPU part per request, so
        # that both servers pay for the pool. A request of 10 ms of I/O has no CPU part: the
        # model serves it on its loop (as concurrency-bench does), and that is its p50.
        on_loop: list[LoadReport] = []
        if model == "asyncio+processes":
            for rep in range(opts.overhead_reps):
                on_loop.append(
                    measure(
                        lambda model=model: real_server(model, handler=HANDLERS["asyncio"]),
                        **load,
                    )
                )
                p50 = fmt(on_loop[-1].p50_ms, 2)
                log(f"   {model} rep {rep + 1}, I/O on the loop: p50 {p50} ms")
        ratios = _ratios(together)
        alone = _ratios(list(zip(ours, minimal, strict=False)))
        rows[model] = {
            "cpu_us": median([a.cpu_us_per_request for a, _ in together]),
            "minimal_cpu_us": median([b.cpu_us_per_request for _, b in together]),
            "ratio": median(list(ratios)),
            "ratio_per_pair": [round(r, 3) for r in ratios],
            "ratio_alone": median(list(alone)),
            "ratio_alone_per_pair": [round(r, 3) for r in alone],
            "p50_ms": median([r.p50_ms for r in on_loop or ours]),
            "p99_ms": median([r.p99_ms for r in on_loop or ours]),
            "p50_offloading_ms": median([r.p50_ms for r in ours]) if on_loop else None,
            "minimal_p50_ms": median([r.p50_ms for r in minimal]),
            "errors": sum(r.error_count for r in ours),
            "achieved_rps": median([r.achieved_rps for r in ours]),
        }
    title = "the minimal server against itself (--self-check)" if opts.self_check else "each model"
    print(
        "\n### 2. Server overhead and latency: 2,000 req/s offered over 1,000 connections, "
        f"10 ms of I/O, server on 1 core: {title}"
    )
    print(
        "| model | CPU/request | minimal server | ratio, side by side (target <= 1.25) "
        "| range | ratio, one after the other | range | p50 (target <= 11.5 ms) | p99 "
        "| minimal p50 |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    for model, row in rows.items():
        ratio = row["ratio"]
        verdict = "met" if ratio is not None and ratio <= 1.25 else "MISSED"
        p50 = row["p50_ms"]
        p50_verdict = "met" if p50 is not None and p50 <= 11.5 else "MISSED"
        print(
            f"| {model} | {fmt(row['cpu_us'], 0)} us | {fmt(row['minimal_cpu_us'], 0)} us | "
            f"{fmt(ratio, 2)} ({verdict}) | {_range(row['ratio_per_pair'])} | "
            f"{fmt(row['ratio_alone'], 2)} | {_range(row['ratio_alone_per_pair'])} | "
            f"{fmt(p50, 2)} ms ({p50_verdict}) | "
            f"{fmt(row['p99_ms'], 1)} ms | {fmt(row['minimal_p50_ms'], 2)} ms |"
        )
    for model, row in rows.items():
        if row["p50_offloading_ms"] is not None:
            print(
                f"\n{model}: p50 and p99 are of 10 ms of I/O served on its loop; with a small CPU "
                f"part sent to its pool on every request (the pairs above), p50 "
                f"{fmt(row['p50_offloading_ms'], 2)} ms against {fmt(row['minimal_p50_ms'], 2)} ms "
                "for its minimal server, which does the same."
            )
    return rows


# 2b. instructions per request ----------------------------------------------------------------
INSTRUCTION_MODELS = ("asyncio", "uvloop", "trio")
"""The models whose count does not depend on timing: one loop thread does all the work. Under
valgrind, time runs some fifty times slower, and threads waiting for the GIL past its switch
interval force switches whose cost depends on timing: two runs of the threads model counted
16,000 and 32,000 instructions per request."""
VALGRIND_SLOWDOWN = 50
"""About how much slower Python runs under callgrind. Our event-loop servers wake every 10 ms
to measure their loop lag (0.05 wake-ups per request at 2,000 req/s); under callgrind that
interval is stretched as much, else the wake-ups would be fifty times too many per request (at
10 ms, they added 10,000 instructions per request to uvloop's count)."""


def closed_loop_requests(port: int, connections: int, per_connection: int) -> None:
    """Send ``per_connection`` requests of 1 ms of I/O, one after another, on each of
    ``connections`` keep-alive connections at once (bounded in count and time)."""
    request = b"GET /?ms=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    failures: list[BaseException] = []

    def one_connection() -> None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for _ in range(per_connection):
                    sock.sendall(request)
                    received = b""
                    while not received.endswith(b"\r\n\r\nok"):
                        chunk = sock.recv(4096)
                        if not chunk:
                            raise ConnectionError("the server closed the connection")
                        received += chunk
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=one_connection) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"instruction count: a request failed: {failures[0]!r}")


def count_instructions(
    script: str, model: str, connections: int, per_connection: int, *extra: str
) -> int:
    """Instructions executed by ``script MODEL *extra`` (a server) under callgrind while it
    answers ``connections * per_connection`` requests, start-up and shutdown included."""
    with tempfile.TemporaryDirectory(prefix="bench-serve-ir-") as tmp:
        log_path = Path(tmp) / "callgrind.log"
        command = [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            f"--log-file={log_path}",
            sys.executable,
            str(HERE / script),
            model,
            *extra,
        ]
        # Under valgrind, stopping takes as long as anything else: fifty times longer.
        with server_process(
            command, stop_timeout=120, cwd=HERE, env={**os.environ, "PYTHONHASHSEED": "0"}
        ) as (port, _):
            closed_loop_requests(port, connections, per_connection)
        found = re.search(r"Collected : (\d+)", log_path.read_text())
        if found is None:
            raise SystemExit(f"instruction count: no total from callgrind for {script} {model}")
        return int(found.group(1))


def bench_instructions(opts: Options) -> dict[str, Any]:
    """Instructions per request of each event-loop model and of its minimal server.

    Nearly deterministic where CPU time is not: the difference between two runs that differ
    only in the number of requests leaves start-up and shutdown out. Closed loop, 20
    connections.
    """
    connections = 20
    few, many = (20, 70) if opts.quick else (20, 120)
    reps = 1 if opts.quick else 3
    log(f"2b. Instructions per request under callgrind: {connections} connections, closed loop")
    if shutil.which("valgrind") is None:
        log("   valgrind is not installed: skipped")
        return {}
    rows: dict[str, Any] = {}
    for model in INSTRUCTION_MODELS:
        if model not in opts.models or not MODELS[model].available:
            continue
        per_request = {}
        for name, script, extra in (
            ("ours", "real_server.py", [str(VALGRIND_SLOWDOWN * 0.01)]),
            ("minimal", "minimal_servers.py", []),
        ):
            # The least of several runs: what varies is extra work now and then (a run's
            # start-up has been seen to cost 4% more), never less work.
            low = min(
                count_instructions(script, model, connections, few, *extra) for _ in range(reps)
            )
            high = min(
                count_instructions(script, model, connections, many, *extra) for _ in range(reps)
            )
            per_request[name] = (high - low) / (connections * (many - few))
        rows[model] = {
            "instructions_per_request": round(per_request["ours"]),
            "minimal_instructions_per_request": round(per_request["minimal"]),
            "ratio": per_request["ours"] / per_request["minimal"],
        }
        log(
            f"   {model}: {per_request['ours']:,.0f} vs {per_request['minimal']:,.0f} "
            "instructions per request"
        )
    print(
        f"\n### 2b. Instructions per request under callgrind: {connections} connections, closed "
        "loop, 1 ms of I/O\n| model | ours | minimal server | ratio (target <= 1.25) |\n"
        "|---|---|---|---|"
    )
    for model, row in rows.items():
        verdict = "met" if row["ratio"] <= 1.25 else "MISSED"
        print(
            f"| {model} | {row['instructions_per_request']:,} | "
            f"{row['minimal_instructions_per_request']:,} | {row['ratio']:.2f} ({verdict}) |"
        )
    return rows


# 3. 10,000 connections -------------------------------------------------------------------------
def bench_10k(opts: Options) -> dict[str, Any]:
    connections = 2000 if opts.quick else 10_000
    rate = 2000 if opts.quick else 10_000
    log(f"3. {connections:,} connections at {rate:,} req/s, server on 1 core")
    rows = {}
    for model in ("uvloop", "asyncio", "trio"):
        if not MODELS[model].available:
            continue
        ours, minimal = [], []
        for rep in range(max(1, opts.reps // 2)):
            load = {
                "connections": connections,
                "rate": rate,
                "duration": opts.big_duration,
                "path": "/?ms=10",
                "timeout": 20.0,
            }
            ours.append(measure(lambda model=model: real_server(model), **load))
            minimal.append(measure(lambda model=model: minimal_server(model), **load))
            log(
                f"   {model} rep {rep + 1}: p50 {fmt(ours[-1].p50_ms)} p99 {fmt(ours[-1].p99_ms)} "
                f"ms, {ours[-1].achieved_rps:.0f} req/s, server {fmt(ours[-1].server_cores, 2)} "
                f"cores, loop lag max {fmt(ours[-1].loop_lag_max_ms, 0)} ms, generator "
                f"{ours[-1].generator_cpu_seconds / ours[-1].duration_s:.2f} cores, send lag max "
                f"{fmt(ours[-1].send_lag_max_ms, 0)} ms, load {os.getloadavg()[0]:.2f}, "
                f"{fmt((ours[-1].memory_per_connection_bytes or 0) / 1024)} KB/conn; minimal "
                f"p99 {fmt(minimal[-1].p99_ms)} ms, "
                f"{fmt((minimal[-1].memory_per_connection_bytes or 0) / 1024)} KB/conn"
            )
        rows[model] = {
            "p50_ms": median([r.p50_ms for r in ours]),
            "p99_ms": median([r.p99_ms for r in ours]),
            "max_ms": median([r.max_ms for r in ours]),
            "achieved_rps": median([r.achieved_rps for r in ours]),
            "errors": sum(r.error_count for r in ours),
            "cpu_us": median([r.cpu_us_per_request for r in ours]),
            "kb_per_connection": median(
                [(r.memory_per_connection_bytes or 0) / 1024 for r in ours]
            ),
            "rss_peak_mb": median([(r.rss_peak_bytes or 0) / 2**20 for r in ours]),
            "minimal_p99_ms": median([r.p99_ms for r in minimal]),
            "minimal_kb_per_connection": median(
                [(r.memory_per_connection_bytes or 0) / 1024 for r in minimal]
            ),
            "loop_lag_max_ms": median([r.loop_lag_max_ms for r in ours]),
            "server_cores": median([r.server_cores for r in ours]),
            "generator_cores": median([r.generator_cpu_seconds / r.duration_s for r in ours]),
            "send_lag_max_ms": median([r.send_lag_max_ms for r in ours]),
        }
    targets = {"uvloop": 20.0, "asyncio": 30.0}
    print(
        f"\n### 3. {connections:,} connections at {rate:,} req/s offered, 10 ms of I/O, "
        "server on 1 core"
    )
    print(
        "| model | achieved | p50 | p99 (target) | max | CPU/request | RSS per idle connection "
        "(target <= 6 KB) | minimal: p99, RSS/conn |\n|---|---|---|---|---|---|---|---|"
    )
    for model, row in rows.items():
        target = targets.get(model)
        p99 = row["p99_ms"]
        p99_text = f"{fmt(p99)} ms"
        if target is not None:
            met = p99 is not None and p99 <= target
            p99_text += f" (<= {target:g}: {'met' if met else 'MISSED'})"
        kb = row["kb_per_connection"]
        kb_verdict = "met" if kb is not None and kb <= 6.0 else "MISSED"
        print(
            f"| {model} | {fmt(row['achieved_rps'], 0)}/s | {fmt(row['p50_ms'])} ms | "
            f"{p99_text} | {fmt(row['max_ms'])} ms | {fmt(row['cpu_us'], 0)} us | "
            f"{fmt(kb, 2)} KB ({kb_verdict}) | {fmt(row['minimal_p99_ms'])} ms, "
            f"{fmt(row['minimal_kb_per_connection'], 2)} KB |"
        )
    return {"connections": connections, "rate": rate, "models": rows}


# 4. load generator against wrk ----------------------------------------------------------------
def _ensure_wrk() -> str | None:
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("   wrk not found: installing the Debian package (apt-get install -y wrk)")
        subprocess.run(
            ["apt-get", "install", "-y", "wrk"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        return shutil.which("wrk")
    return None


def _run_wrk(wrk: str, url: str, connections: int, seconds: float) -> tuple[float, float]:
    """(requests per second, CPU seconds) of one wrk run pinned to the load CPU."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", url + "/"],
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=lambda: os.sched_setaffinity(0, LOAD_CPU),
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not found:
        raise RuntimeError(f"cannot read wrk output:\n{out}")
    return float(found.group(1)), cpu


def bench_generator(opts: Options) -> dict[str, Any]:
    log("4. Load generator against wrk: 100 connections, closed loop, a server answering at once")
    wrk = _ensure_wrk()
    ours: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    with minimal_server("blast") as (url, pids):
        for rep in range(opts.reps):
            report = run_load(
                url,
                connections=100,
                duration=opts.duration,
                cpu_affinity=LOAD_CPU,
                server_pids=pids,
            )
            ours.append((report.achieved_rps, report.generator_cpu_seconds / report.duration_s))
            log(
                f"   rep {rep + 1} ours: {report.achieved_rps:.0f} req/s using "
                f"{ours[-1][1]:.2f} of its core (server used {fmt(report.server_cores, 2)})"
            )
            if wrk:
                rps, cpu = _run_wrk(wrk, url, 100, opts.duration)
                theirs.append((rps, cpu / opts.duration))
                log(f"   rep {rep + 1} wrk:  {rps:.0f} req/s using {theirs[-1][1]:.2f} of its core")
    result: dict[str, Any] = {
        "ours_rps": median([r for r, _ in ours]),
        "ours_core_fraction": median([c for _, c in ours]),
        "ours_rps_per_cpu_second": median([r / c for r, c in ours if c]),
    }
    print("\n### 4. Load generator: one core, 100 connections, closed loop, server answers at once")
    print("| generator | req/s | share of its core used | req per CPU-second (target >= 40,000) |")
    print("|---|---|---|---|")
    capacity = result["ours_rps_per_cpu_second"]
    verdict = "met" if capacity and capacity >= 40_000 else "MISSED"
    print(
        f"| pytest-concurrency-guard | {fmt(result['ours_rps'], 0)} | "
        f"{fmt(result['ours_core_fraction'], 2)} | {fmt(capacity, 0)} ({verdict}) |"
    )
    if wrk:
        result.update(
            wrk_rps=median([r for r, _ in theirs]),
            wrk_core_fraction=median([c for _, c in theirs]),
            wrk_rps_per_cpu_second=median([r / c for r, c in theirs if c]),
        )
        print(
            f"| wrk 4 (-t1) | {fmt(result['wrk_rps'], 0)} | {fmt(result['wrk_core_fraction'], 2)} "
            f"| {fmt(result['wrk_rps_per_cpu_second'], 0)} |"
        )
    else:
        print("\nwrk is not installed (and could not be installed): comparison skipped.")
    return result


SECTIONS = {
    "1": bench_parsers,
    "2": bench_overhead,
    "2b": bench_instructions,
    "3": bench_10k,
    "4": bench_generator,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs, 2,000 connections")
    parser.add_argument(
        "--sections", default="1,2,2b,3,4", help="comma-separated: 1,2,2b,3,4 (default: all)"
    )
    parser.add_argument("--json", type=Path, help="also write the numbers as JSON")
    parser.add_argument(
        "--models",
        help=f"comma-separated models for sections 2 and 2b (default: {','.join(MODELS)})",
    )
    parser.add_argument(
        "--pairs", type=int, help="pairs of runs per model in section 2 (default: 7; --quick: 2)"
    )
    parser.add_argument(
        "--self-check",
        action="store_true",
        help="section 2: measure each minimal server against itself, to see how far its "
        "ratios move when nothing differs",
    )
    args = parser.parse_args()
    models = tuple(MODELS)
    if args.models:
        models = tuple(name.strip() for name in args.models.split(","))
        unknown = [name for name in models if name not in MODELS]
        if unknown:
            parser.error(f"unknown model {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    if args.pairs is not None and args.pairs < 1:
        parser.error("--pairs must be at least 1")
    if len(os.sched_getaffinity(0)) < 2:
        print("bench_serve needs 2 CPUs (server and load generator on separate cores)")
        return 2
    raise_fd_limit(12_000)
    opts = (
        Options(reps=2, overhead_reps=2, duration=2.0, big_duration=4.0, quick=True)
        if args.quick
        else Options(reps=5, overhead_reps=7, duration=3.0, big_duration=10.0, quick=False)
    )
    opts = replace(
        opts,
        models=models,
        overhead_reps=args.pairs or opts.overhead_reps,
        self_check=args.self_check,
    )
    load_before = os.getloadavg()[0]
    print(
        f"## bench_serve ({'quick' if args.quick else 'full'}): {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}, load average {load_before:.2f} at start"
    )
    if load_before > 1.0:
        log(f"warning: the machine is busy (load average {load_before:.2f}); figures are noisier")
    started = time.monotonic()
    results: dict[str, Any] = {"load_average_start": load_before}
    for key in args.sections.split(","):
        results[key] = SECTIONS[key.strip()](opts)
    results["load_average_end"] = os.getloadavg()[0]
    results["seconds"] = round(time.monotonic() - started)
    print(f"\n(load average {results['load_average_end']:.2f} at the end; {results['seconds']} s)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
