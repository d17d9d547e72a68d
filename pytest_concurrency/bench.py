"""``concurrency-bench``: threads, async or processes? Measured on this machine.

Reproduces the two benchmark tables of the design document the project started from, for
every concurrency model, with the document's claimed figures printed beside the measured ones:

- I/O-bound: N keep-alive connections, 10 ms of simulated I/O per request, at a stated offered
  load (open loop, latency from the intended send time). The server is pinned to one core and
  the load generator to another.
- Saturation: the same server, closed loop with no I/O wait, so that the server's core is the
  limit and not the load; the table says what the limit was (server cores used out of those it
  may use, or the load generator's).
- CPU-bound: 10 concurrent clients, each request about 10 ms of work on this machine: SHA-256
  (hashlib releases the GIL) and a pure-Python loop (it does not).

Every server runs isolated in its own process, so its memory is its own. Memory is reported as
RSS (resident) and VSZ (virtual, which counts reserved thread stacks) separately.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn, Protocol

import psutil

from pytest_concurrency.serve import (
    MODELS,
    LoadError,
    LoadReport,
    ServeConfigError,
    ServerStartError,
    ServerStopError,
    run_load,
    start_server,
)
from pytest_concurrency.serve._procmetrics import raise_fd_limit
from pytest_concurrency.serve.workloads import hash_work, python_work

__all__ = ["main"]

WORKLOADS = ("io", "cpu-hash", "cpu-python")
IO_MS = 10
SATURATION_PATH = "/io?ms=0"
"""Saturation requests wait for nothing: only the server's CPU can limit the throughput."""
LIMIT_SHARE = 0.9
"""A run is limited by a CPU when it used at least this share of the CPUs it may use."""
CPU_TARGET_MS = 10.0
CPU_CLIENTS = 10
RUN_KEYS = (
    "workload",
    "model",
    "connections",
    "offered_rps",
    "achieved_rps",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "max_ms",
    "errors",
    "cpu_us_per_request",
    "rss_peak_mb",
    "vsz_peak_mb",
    "threads_peak",
    "loop_lag_max_ms",
    "server_cores",
    "server_cpus",
)
"""The keys of every entry of ``runs`` in ``--json`` output, in order."""


# What the design document claims, by (table, model). Its I/O table is for 10,000 clients
# with 10 ms of I/O and states no offered load; its CPU table is for a hash, 10,000 requests.
@dataclass(frozen=True)
class Claim:
    p50: str
    p99: str
    memory: str
    cpu: str
    per_connection: str = "-"


IO_CLAIMS = {
    "threads": Claim("14 ms", "95 ms", "10GB+", "2 ms/req", "1-8 MB"),
    "asyncio": Claim("11 ms", "18 ms", "25MB", "0.3 ms/req", "~2 KB"),
}
CPU_CLAIMS = {
    "asyncio": Claim("120 ms", "200 ms", "25MB", "1 core (GIL)"),
    "processes": Claim("35 ms", "55 ms", "400MB", "4 cores"),
    "asyncio+processes": Claim("35 ms", "55 ms", "400MB", "4 cores"),
}
CLAIM_LABELS = {
    ("io", "threads"): "Python threads (GIL)",
    ("io", "asyncio"): "Python asyncio",
    ("cpu", "asyncio"): "Python asyncio (single)",
    ("cpu", "processes"): "Python multiprocessing",
    ("cpu", "asyncio+processes"): "Python multiprocessing",
}


@dataclass(frozen=True)
class IoRun:
    connections: int
    rate: float
    duration: float


@dataclass(frozen=True)
class Profile:
    name: str
    io: tuple[IoRun, ...]
    saturation_connections: int
    saturation_duration: float
    cpu_duration: float
    timeout: float

    @property
    def max_connections(self) -> int:
        return max([run.connections for run in self.io] + [self.saturation_connections])


QUICK = Profile(
    "quick",
    io=(IoRun(connections=500, rate=1000, duration=1.0),),
    saturation_connections=200,
    saturation_duration=1.0,
    cpu_duration=1.0,
    timeout=5.0,
)
FULL = Profile(
    "full",
    io=(
        IoRun(connections=1000, rate=2000, duration=5.0),
        IoRun(connections=10_000, rate=10_000, duration=10.0),
    ),
    saturation_connections=1000,
    saturation_duration=5.0,
    cpu_duration=5.0,
    timeout=10.0,
)


@dataclass
class Result:
    """One measured run: the JSON fields plus what the table and the chart need."""

    workload: str
    model: str
    report: LoadReport | None
    offered_rps: float | None
    connections: int
    kind: str  # "offered", "saturation" or "cpu"
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        report = self.report
        if report is None:
            values: dict[str, Any] = dict.fromkeys(RUN_KEYS)
            values.update(
                workload=self.workload,
                model=self.model,
                connections=self.connections,
                offered_rps=self.offered_rps,
                errors=None,
            )
            return values
        return {
            "workload": self.workload,
            "model": self.model,
            "connections": self.connections,
            "offered_rps": self.offered_rps,
            "achieved_rps": round(report.achieved_rps, 1),
            "p50_ms": _round(report.p50_ms),
            "p90_ms": _round(report.p90_ms),
            "p99_ms": _round(report.p99_ms),
            "max_ms": _round(report.max_ms),
            "errors": report.error_count,
            "cpu_us_per_request": _round(report.cpu_us_per_request, 1),
            "rss_peak_mb": _mb(report.rss_peak_bytes),
            "vsz_peak_mb": _mb(report.vsz_peak_bytes),
            "threads_peak": report.threads_peak,
            "loop_lag_max_ms": _round(report.loop_lag_max_ms),
            "server_cores": _round(report.server_cores),
            "server_cpus": report.server_cpus,
        }


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _mb(num_bytes: int | None) -> float | None:
    return None if num_bytes is None else round(num_bytes / 2**20, 1)


@dataclass
class Calibration:
    hash_rounds: int
    hash_ms: float
    python_n: int
    python_ms: float


class Progress(Protocol):
    def __call__(self, message: str, transient: bool = False) -> None: ...


@dataclass
class Bench:
    profile: Profile
    models: list[str]
    workloads: list[str]
    progress: Progress
    pin: bool
    results: list[Result] = field(default_factory=list)
    calibration: Calibration | None = None
    load_average_start: float = field(default_factory=lambda: round(os.getloadavg()[0], 2))

    @property
    def server_cpus(self) -> list[int] | None:
        return [0] if self.pin else None

    @property
    def load_cpus(self) -> list[int] | None:
        return [1] if self.pin else None

    def steps(self) -> int:
        per_model = 0
        if "io" in self.workloads:
            per_model += len(self.profile.io) + 1
        per_model += sum(1 for w in self.workloads if w != "io")
        return per_model * len(self.models)

    def run(self) -> None:
        if any(w != "io" for w in self.workloads):
            self.calibration = calibrate()
            cal = self.calibration
            self.progress(
                f"calibrated: hash {cal.hash_rounds} x 64 KiB = {cal.hash_ms:.1f} ms, "
                f"pure-Python loop {cal.python_n} iterations = {cal.python_ms:.1f} ms"
            )
        step = 0
        total = self.steps()
        for model in self.models:
            info = MODELS[model]
            handler = (
                "pytest_concurrency.serve.workloads:handle"
                if "async" in info.kinds
                else "pytest_concurrency.serve.workloads:handle_sync"
            )
            if not info.available:
                self.progress(f"skipping {model}: needs {info.requires!r} ({info.extra} extra)")
                step += self._steps_for_model()
                continue
            if "io" in self.workloads:
                step = self._io(model, handler, step, total)
            cpu_workloads = [w for w in self.workloads if w != "io"]
            if cpu_workloads:
                step = self._cpu(model, handler, cpu_workloads, step, total)

    def _steps_for_model(self) -> int:
        return self.steps() // max(1, len(self.models))

    def _start(self, model: str, handler: str, pinned: bool) -> Any:
        return start_server(
            handler,
            model,
            isolated=True,
            cpu_affinity=self.server_cpus if pinned else None,
            backlog=8192,
        )

    def _measure(
        self,
        label: str,
        step: int,
        total: int,
        server: Any,
        **load: Any,
    ) -> LoadReport:
        prefix = f"[{step:>2}/{total}] {label}"
        self.progress(prefix)

        def on_event(event: dict[str, Any]) -> None:
            if event.get("phase") == "connect":
                self.progress(
                    f"{prefix}: connecting {event['connected']}/{event['connections']}", True
                )
            elif event.get("phase") == "load":
                self.progress(
                    f"{prefix}: {event['elapsed']:.0f}/{event['horizon']:.0f} s, "
                    f"{event['completed']} responses",
                    True,
                )

        return run_load(server, progress=on_event, timeout=self.profile.timeout, **load)

    def _io(self, model: str, handler: str, step: int, total: int) -> int:
        profile = self.profile
        try:
            server = self._start(model, handler, pinned=True)
        except (ServerStartError, ServeConfigError) as error:
            for run in profile.io:
                self.results.append(
                    Result("io", model, None, run.rate, run.connections, "offered", str(error))
                )
            self.results.append(
                Result(
                    "io",
                    model,
                    None,
                    None,
                    profile.saturation_connections,
                    "saturation",
                    str(error),
                )
            )
            return step + len(profile.io) + 1
        with server:
            for run in profile.io:
                step += 1
                self._record(
                    Result("io", model, None, run.rate, run.connections, "offered"),
                    f"io {model}: {run.connections} connections at {run.rate:g} req/s "
                    f"for {run.duration:g} s",
                    step,
                    total,
                    server,
                    connections=run.connections,
                    rate=run.rate,
                    duration=run.duration,
                    path=f"/io?ms={IO_MS}",
                    cpu_affinity=self.load_cpus,
                )
            step += 1
            self._record(
                Result("io", model, None, None, profile.saturation_connections, "saturation"),
                f"io {model}: saturation, {profile.saturation_connections} connections, "
                f"closed loop with no I/O wait for {profile.saturation_duration:g} s",
                step,
                total,
                server,
                connections=profile.saturation_connections,
                duration=profile.saturation_duration,
                path=SATURATION_PATH,
                cpu_affinity=self.load_cpus,
            )
        return step

    def _cpu(self, model: str, handler: str, workloads: list[str], step: int, total: int) -> int:
        cal = self.calibration
        assert cal is not None
        try:
            server = self._start(model, handler, pinned=False)
        except (ServerStartError, ServeConfigError) as error:
            for workload in workloads:
                self.results.append(
                    Result(workload, model, None, None, CPU_CLIENTS, "cpu", str(error))
                )
            return step + len(workloads)
        with server:
            for workload in workloads:
                step += 1
                path = (
                    f"/hash?rounds={cal.hash_rounds}"
                    if workload == "cpu-hash"
                    else f"/python?n={cal.python_n}"
                )
                self._record(
                    Result(workload, model, None, None, CPU_CLIENTS, "cpu"),
                    f"{workload} {model}: {CPU_CLIENTS} clients, closed loop for "
                    f"{self.profile.cpu_duration:g} s",
                    step,
                    total,
                    server,
                    connections=CPU_CLIENTS,
                    duration=self.profile.cpu_duration,
                    path=path,
                )
        return step

    def _record(
        self, result: Result, label: str, step: int, total: int, server: Any, **load: Any
    ) -> None:
        try:
            result.report = self._measure(label, step, total, server, **load)
        except (LoadError, ServeConfigError, OSError) as error:
            result.error = str(error)
            self.progress(f"  failed: {error}")
        self.results.append(result)


def calibrate() -> Calibration:
    """Size both CPU workloads to about 10 ms on this machine (median of a few timings)."""

    def per_unit(function: Callable[[int], object], units: int) -> float:
        # The fastest of several timings: other work on the machine only ever slows one down.
        timings = []
        for _ in range(9):
            started = time.perf_counter()
            function(units)
            timings.append((time.perf_counter() - started) / units)
        return min(timings)

    hash_unit = per_unit(hash_work, 50)
    python_unit = per_unit(python_work, 50_000)
    rounds = max(1, round(CPU_TARGET_MS / 1000 / hash_unit))
    n = max(1000, round(CPU_TARGET_MS / 1000 / python_unit))
    return Calibration(rounds, rounds * hash_unit * 1000, n, n * python_unit * 1000)


# --------------------------------------------------------------------------------------
# machine description, table, JSON, chart


def machine_info(bench: Bench) -> dict[str, Any]:
    cpu_model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass

    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "uvloop": version("uvloop"),
        "trio": version("trio"),
        "httptools": version("httptools"),
        "profile": bench.profile.name,
        "server_cpus": bench.server_cpus,
        "load_generator_cpus": bench.load_cpus,
        "io_ms_per_request": IO_MS,
        "load_average_start": bench.load_average_start,
        "load_average_end": round(os.getloadavg()[0], 2),
    }
    if bench.calibration is not None:
        info["cpu_hash_rounds_64k"] = bench.calibration.hash_rounds
        info["cpu_hash_ms"] = round(bench.calibration.hash_ms, 2)
        info["cpu_python_iterations"] = bench.calibration.python_n
        info["cpu_python_ms"] = round(bench.calibration.python_ms, 2)
    return info


def _fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value / 1000:.1f} s"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _fmt_mb(num_bytes: int | None) -> str:
    if num_bytes is None:
        return "-"
    mb = num_bytes / 2**20
    return f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb:.0f} MB"


def _fmt_kb(num_bytes: float | None) -> str:
    return "-" if num_bytes is None else f"{num_bytes / 1024:.1f} KB"


def _table(headers: Sequence[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def render(bench: Bench) -> str:
    cpus = os.cpu_count() or 1
    machine = machine_info(bench)
    lines = [
        f"concurrency-bench, {bench.profile.name} profile: {cpus} CPUs ({machine['cpu_model']}), "
        f"{machine['memory_gb']} GB, Python {machine['python']}, HTTP/1.1 keep-alive (httptools), "
        f"load average {machine['load_average_start']:g} at start",
        "Memory: RSS = resident (what the server really uses), VSZ = virtual (includes every "
        "thread's reserved stack); design-document figures in the 'claimed' columns.",
        "",
    ]
    pinned = (
        "server pinned to CPU 0, load generator to CPU 1"
        if bench.pin
        else "server and load generator not pinned"
    )
    io_results = [r for r in bench.results if r.workload == "io"]
    for run in bench.profile.io:
        rows = []
        for result in io_results:
            if result.kind != "offered" or result.connections != run.connections:
                continue
            claim = IO_CLAIMS.get(result.model)
            rows.append(_io_row(result, claim))
        if not rows:
            continue
        lines.append(
            f"I/O-bound: {run.connections:,} connections, {run.rate:,.0f} req/s offered "
            f"(open loop), {IO_MS} ms of I/O per request, server on 1 core ({pinned})"
        )
        errors_note = _errors_note(
            [r for r in io_results if r.kind == "offered" and r.connections == run.connections]
        )
        lines += _table(
            [
                "model",
                "achieved",
                "p50 ms",
                "p99 ms",
                "max ms",
                "errors",
                "CPU/req",
                "RSS peak",
                "VSZ peak",
                "RSS/conn",
                "threads",
                "loop lag",
                "| claimed p50",
                "p99",
                "memory",
                "CPU",
                "per conn",
            ],
            rows,
            right={1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
        )
        lines += errors_note
        lines += _cpu_notes(
            [r for r in io_results if r.kind == "offered" and r.connections == run.connections]
        )
        lines.append("")
    saturation = [r for r in io_results if r.kind == "saturation"]
    if saturation:
        where = "server on 1 core" if bench.pin else f"server not pinned, {cpus} cores"
        lines.append(
            f"Saturation: {bench.profile.saturation_connections:,} connections, closed loop "
            f"(each client sends as soon as it has its answer), no I/O wait, {where}"
        )
        rows = []
        for result in saturation:
            report = result.report
            if report is None:
                rows.append([result.model, "failed: " + (result.error or "?")[:60]] + [""] * 4)
                continue
            rows.append(
                [
                    result.model,
                    f"{report.achieved_rps:,.0f}/s",
                    f"{_us(report.cpu_us_per_request)}",
                    _cores_of(report),
                    limited_by(report),
                    _fmt_ms(report.p50_ms),
                ]
            )
        lines += _table(
            ["model", "max req/s", "CPU/req", "cores used", "limited by", "p50 ms"],
            rows,
            right={1, 2, 3, 5},
        )
        lines.append(
            f"  limited by: the server's CPU when it used {LIMIT_SHARE:.0%} or more of the CPUs "
            f"it may use, else the load generator's (one thread) when it used {LIMIT_SHARE:.0%} "
            "of a core; "
            "otherwise neither was (other work on the machine, or a GIL-bound server on more "
            "than one CPU)"
        )
        lines += _cpu_notes(saturation)
        lines.append("")
    for workload, title in (
        ("cpu-hash", "CPU-bound, hashlib SHA-256 (releases the GIL)"),
        ("cpu-python", "CPU-bound, pure-Python loop (holds the GIL)"),
    ):
        results = [r for r in bench.results if r.workload == workload]
        if not results:
            continue
        cal = bench.calibration
        size = ""
        if cal is not None:
            size = (
                f", {cal.hash_ms:.0f} ms of work per request"
                if workload == "cpu-hash"
                else f", {cal.python_ms:.0f} ms of work per request"
            )
        lines.append(
            f"{title}: {CPU_CLIENTS} clients, closed loop{size}, {cpus} cores, server not pinned"
        )
        rows = []
        for result in results:
            claim = CPU_CLAIMS.get(result.model) if workload == "cpu-hash" else None
            rows.append(_cpu_row(result, claim))
        lines += _table(
            [
                "model",
                "req/s",
                "p50 ms",
                "p99 ms",
                "cores used",
                "RSS peak",
                "VSZ peak",
                "threads",
                "| claimed p50",
                "p99",
                "memory",
                "cores",
            ],
            rows,
            right={1, 2, 3, 4, 5, 6, 7},
        )
        lines += _cpu_notes(results)
        lines.append("")
    if any(CLAIM_LABELS):
        lines.append(
            "claimed: the design document's table rows ("
            + "; ".join(
                f"{model} ({'I/O' if table == 'io' else 'CPU'}) = '{label}'"
                for (table, model), label in CLAIM_LABELS.items()
            )
            + "); it states no offered load and, for CPU, 4 cores."
        )
    failures = [r for r in bench.results if r.error]
    for result in failures:
        lines.append(f"failed: {result.workload} {result.model}: {result.error}")
    return "\n".join(lines)


def _errors_note(results: list[Result]) -> list[str]:
    """One line per run that had errors, by kind (the table shows only the count)."""
    notes = []
    for result in results:
        if result.report is not None and result.report.errors:
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(result.report.errors.items()))
            notes.append(f"  errors of {result.model}: {kinds}")
    return notes


def limited_by(report: LoadReport) -> str:
    """What limited a closed-loop run: the server's CPU, the load generator's, or neither."""
    cores, cpus = report.server_cores, report.server_cpus
    if cores is not None and cpus and cores >= LIMIT_SHARE * cpus:
        return f"server CPU ({cores:.2f} of {cpus})"
    # The generator is one event loop in one thread: one core is all it can ever use.
    generator = report.generator_cpu_seconds / report.duration_s if report.duration_s else 0.0
    if generator >= LIMIT_SHARE:
        return f"load generator ({generator:.2f} of 1)"
    if cores is None:
        return "unknown (server CPU not measured)"
    return f"neither (server {cores:.2f} of {cpus}, load generator {generator:.2f} of 1)"


def _cores_of(report: LoadReport) -> str:
    if report.server_cores is None:
        return "-"
    if report.server_cpus is None:
        return f"{report.server_cores:.2f}"
    return f"{report.server_cores:.2f}/{report.server_cpus}"


def _cpu_notes(results: list[Result]) -> list[str]:
    """Why a run's CPU figures are missing, one line each."""
    return [
        f"  CPU of {r.model} not stated: {r.report.cpu_note}"
        for r in results
        if r.report is not None and r.report.cpu_note
    ]


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} us"


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def _io_row(result: Result, claim: Claim | None) -> list[str]:
    report = result.report
    claimed = (
        ["| " + claim.p50, claim.p99, claim.memory, claim.cpu, claim.per_connection]
        if claim
        else ["| -", "-", "-", "-", "-"]
    )
    if report is None:
        return [result.model, "failed", "", "", "", "", "", "", "", "", "", "", *claimed]
    return [
        result.model,
        f"{report.achieved_rps:,.0f}/s",
        _fmt_ms(report.p50_ms),
        _fmt_ms(report.p99_ms),
        _fmt_ms(report.max_ms),
        str(report.error_count),
        _us(report.cpu_us_per_request),
        _fmt_mb(report.rss_peak_bytes),
        _fmt_mb(report.vsz_peak_bytes),
        _fmt_kb(report.memory_per_connection_bytes),
        _count(report.threads_peak),
        "-" if report.loop_lag_max_ms is None else f"{report.loop_lag_max_ms:.0f} ms",
        *claimed,
    ]


def _cpu_row(result: Result, claim: Claim | None) -> list[str]:
    report = result.report
    claimed = (
        ["| " + claim.p50, claim.p99, claim.memory, claim.cpu] if claim else ["| -", "-", "-", "-"]
    )
    if report is None:
        return [result.model, "failed", "", "", "", "", "", "", *claimed]
    return [
        result.model,
        f"{report.achieved_rps:,.0f}",
        _fmt_ms(report.p50_ms),
        _fmt_ms(report.p99_ms),
        _cores_of(report),
        _fmt_mb(report.rss_peak_bytes),
        _fmt_mb(report.vsz_peak_bytes),
        _count(report.threads_peak),
        *claimed,
    ]


def to_json(bench: Bench) -> dict[str, Any]:
    return {
        "machine": machine_info(bench),
        "runs": [result.to_json() for result in bench.results],
    }


def plot(bench: Bench, path: Path, pyplot: Any) -> None:
    """Latency percentiles per model, memory per connection, saturation throughput."""
    figure, axes = pyplot.subplots(1, 3, figsize=(17, 5.5))
    main_run = bench.profile.io[-1] if bench.profile.io else None
    offered = [
        r
        for r in bench.results
        if r.kind == "offered" and main_run and r.connections == main_run.connections and r.report
    ]
    models = [r.model for r in offered]
    ax = axes[0]
    width = 0.27
    for index, name in enumerate(("p50", "p90", "p99")):
        values = [getattr(r.report, f"{name}_ms") or 0.0 for r in offered]
        ax.bar([i + (index - 1) * width for i in range(len(models))], values, width, label=name)
    ax.set_yscale("log")
    ax.set_xticks(range(len(models)), models, rotation=30, ha="right")
    ax.set_ylabel("latency (ms, log scale)")
    if main_run:
        ax.set_title(
            f"I/O latency: {main_run.connections:,} conns, {main_run.rate:,.0f} req/s offered"
        )
    ax.legend()

    ax = axes[1]
    per_conn = [
        (r.model, (r.report.memory_per_connection_bytes or 0.0) / 1024) for r in offered if r.report
    ]
    ax.bar([m for m, _ in per_conn], [v for _, v in per_conn], color="tab:green")
    ax.set_ylabel("RSS per idle connection (KB)")
    ax.set_title("Memory per connection (resident)")
    ax.tick_params(axis="x", rotation=30)

    ax = axes[2]
    saturation = [r for r in bench.results if r.kind == "saturation" and r.report]
    ax.bar(
        [r.model for r in saturation],
        [r.report.achieved_rps if r.report else 0.0 for r in saturation],
        color="tab:orange",
    )
    ax.set_ylabel("requests per second")
    ax.set_title(
        f"Saturation, no I/O wait ({bench.profile.saturation_connections} conns, closed loop)"
    )
    ax.tick_params(axis="x", rotation=30)
    figure.suptitle(
        f"concurrency-bench ({bench.profile.name}), {os.cpu_count()} CPUs, "
        f"{IO_MS} ms I/O per request"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)


# --------------------------------------------------------------------------------------
# command line


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"concurrency-bench: error: {message}\n")


def _parse_list(value: str, valid: Sequence[str], what: str) -> list[str]:
    names = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [name for name in names if name not in valid]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(map(repr, unknown)) or repr(value)}; "
            f"choose from {', '.join(valid)}"
        )
    return list(dict.fromkeys(names))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="concurrency-bench",
        description="Threads, async or processes? Serve the same workloads under every "
        "concurrency model and compare latency, throughput, CPU and memory on this machine.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the quick profile (under a minute on 2 cores): 500 connections at 1,000 req/s; "
        "default is the full profile up to 10,000 connections (several minutes)",
    )
    parser.add_argument(
        "--models",
        type=lambda v: _parse_list(v, list(MODELS), "model"),
        default=list(MODELS),
        metavar="NAMES",
        help=f"comma-separated models (default: all: {', '.join(MODELS)})",
    )
    parser.add_argument(
        "--workloads",
        type=lambda v: _parse_list(v, WORKLOADS, "workload"),
        default=list(WORKLOADS),
        metavar="NAMES",
        help=f"comma-separated workloads (default: all: {', '.join(WORKLOADS)})",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write results as JSON")
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="PATH",
        help="write a PNG chart (needs matplotlib: pip install 'pytest-concurrency-guard[plot]')",
    )
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="do not pin the server and the load generator to separate CPUs",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def _check_output(path: Path | None, option: str) -> str | None:
    if path is None:
        return None
    parent = path.resolve().parent
    if not parent.is_dir():
        return f"{option} {path}: directory {parent} does not exist"
    if not os.access(parent, os.W_OK):
        return f"{option} {path}: directory {parent} is not writable"
    if path.is_dir():
        return f"{option} {path}: is a directory"
    return None


def _progress_printer(quiet: bool) -> Progress:
    tty = sys.stderr.isatty()
    state = {"overwrite": False}

    def show(message: str, transient: bool = False) -> None:
        if quiet:
            return
        if tty:
            prefix = "\r\033[K" if state["overwrite"] else ""
            sys.stderr.write(prefix + message + ("" if transient else "\n"))
            state["overwrite"] = transient
        elif not transient:
            sys.stderr.write(message + "\n")
        sys.stderr.flush()

    return show


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``concurrency-bench``; returns the exit status."""
    args = build_parser().parse_args(argv)
    for problem in (_check_output(args.json, "--json"), _check_output(args.plot, "--plot")):
        if problem:
            print(f"concurrency-bench: error: {problem}", file=sys.stderr)
            return 2
    pyplot: Any = None
    if args.plot is not None:
        try:
            matplotlib = importlib.import_module("matplotlib")
            matplotlib.use("Agg")
            pyplot = importlib.import_module("matplotlib.pyplot")
        except ImportError:
            print(
                "concurrency-bench: error: --plot needs matplotlib: "
                "pip install 'pytest-concurrency-guard[plot]'",
                file=sys.stderr,
            )
            return 2
    profile = QUICK if args.quick else FULL
    try:
        raise_fd_limit(profile.max_connections + 1024)
    except OSError as error:
        print(f"concurrency-bench: error: {error}", file=sys.stderr)
        return 2
    pin = (
        not args.no_pin and len(os.sched_getaffinity(0)) >= 2 and {0, 1} <= os.sched_getaffinity(0)
    )
    bench = Bench(profile, args.models, args.workloads, _progress_printer(args.quiet), pin)
    if bench.load_average_start > 1.0 and not args.quiet:
        print(
            f"concurrency-bench: note: the machine is busy (load average "
            f"{bench.load_average_start:g}); figures will be noisier",
            file=sys.stderr,
        )
    interrupted = False
    started = time.monotonic()
    try:
        bench.run()
    except KeyboardInterrupt:
        interrupted = True
        print("\nconcurrency-bench: interrupted; results so far:", file=sys.stderr)
    except (ServerStopError, ServerStartError) as error:
        print(f"concurrency-bench: error: {error}", file=sys.stderr)
        return 1
    print(render(bench))
    print(f"\n({time.monotonic() - started:.0f} s)")
    if args.json is not None:
        args.json.write_text(json.dumps(to_json(bench), indent=2) + "\n")
        print(f"wrote {args.json}")
    if args.plot is not None and pyplot is not None:
        plot(bench, args.plot, pyplot)
        print(f"wrote {args.plot}")
    if interrupted:
        return 130
    return 1 if any(result.error for result in bench.results) else 0


if __name__ == "__main__":
    sys.exit(main())
