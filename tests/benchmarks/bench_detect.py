"""The runtime detectors, measured (run by ``make bench-detect``).

**Precision**: a suite of clean async tests and of tests that block their loop for 10-30 ms
(``time.sleep``, a pure-Python loop that burns exactly that much CPU time, a C call holding the
GIL), run at ``--loop-lag-ms=10`` while two CPU hogs keep both cores busy. Counts the blocks
caught and the clean tests wrongly failed. A block's size is what its own code costs: the
sleep, or the CPU time the loop or C call used (measured in the test; a C call sized for 10 ms
that used less CPU time on the busy machine is reported apart, not counted as a miss).
pyleak's blocking detector (a ping watchdog) runs on the same suite at the same threshold.

**Cost**: a suite of small pytest-asyncio tests run in separate pytest processes, interleaved
round by round so that machine noise hits every configuration alike:

* ``baseline``: the plugin off (``-p no:concurrency``);
* ``concurrency-guard``: the plugin at its default settings;
* ``pyleak``: pyleak's pytest plugin on every test (its ``no_leaks`` marker), ours off;
* ``asyncio debug``: pytest-asyncio's ``--asyncio-debug``, ours off;
* ``blockbuster``: blockbuster active around every test, ours off.

Then each configuration runs again at the same time as a baseline run, both pinned to one CPU
(``--side-by-side-rounds``): what slows a shared machine down slows both alike, so their ratio
of CPU time moves by well under 1% from round to round, where runs one after the other move by
10-40%.

**Instructions**: the same cost suite with the plugin off and on, each run once under
valgrind's callgrind, which counts the instructions the interpreter executes. The count does
not depend on what else the machine is doing, so it shows the plugin's own work exactly (it
leaves out what instructions do not show: cache misses, waiting for the GIL). Skipped when
valgrind is not installed.

**CPU-bound blocks under load**: 150 tests that each burn 12 ms of CPU in one loop step, with
both cores busy, three runs: how many are caught.

**Cost of one loop step**: CPU time per empty callback of an asyncio loop, with the loop-lag
hooks off and on (``watch_loop``), in this process.

Prints the tables and writes the raw numbers to ``bench-results/detect.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

INI = """[pytest]
asyncio_default_fixture_loop_scope = function
"""

# --- precision ------------------------------------------------------------------------------

PRECISION_HEADER = '''
import asyncio
import os
import time

import pytest

SUM_PER_MS = int(os.environ["BENCH_SUM_PER_MS"])
if os.environ.get("BENCH_PYLEAK"):
    DETECTOR = pytest.mark.no_leaks("blocking", blocking_threshold=0.01)
else:
    DETECTOR = pytest.mark.asyncio


def burn(ms):
    """A pure-Python loop that runs until this thread has used ``ms`` of CPU time."""
    deadline = time.thread_time() + ms / 1000
    while time.thread_time() < deadline:
        pass


def c_call(ms):
    sum(range(SUM_PER_MS * ms))


async def small_work(i):
    await asyncio.sleep(0.001)
    return sum(range(200)) + i
'''

PRECISION_BLOCK = """
@DETECTOR
@pytest.mark.asyncio
async def test_block_{kind}_{ms}ms(record_property):
    await asyncio.sleep(0)
    start = time.thread_time()
    {statement}
    record_property("cpu_ms", (time.thread_time() - start) * 1000)
    await asyncio.sleep(0)
"""

PRECISION_CLEAN = """
@DETECTOR
@pytest.mark.asyncio
async def test_clean_{n}():
    for i in range(20):
        await small_work(i)
    await asyncio.gather(*(small_work(i) for i in range(10)))
    await asyncio.to_thread(time.sleep, 0.002)
"""

BLOCK_STATEMENTS = {
    "sleep": "time.sleep({ms} / 1000)",
    "cpu": "burn({ms})",
    "ccall": "c_call({ms})",
}
BLOCK_SIZES_MS = [10, 12, 15, 20, 30]


def calibrate() -> int:
    """How many numbers ``sum(range(n))`` adds up per millisecond of CPU time."""
    n, best = 5_000_000, float("inf")
    for _ in range(5):
        start = time.thread_time()
        sum(range(n))
        best = min(best, time.thread_time() - start)
    return int(n / (best * 1000))


def write_precision_suite(root: Path, clean: int) -> int:
    (root / "pytest.ini").write_text(INI)
    body = [PRECISION_HEADER]
    for kind, statement in BLOCK_STATEMENTS.items():
        for ms in BLOCK_SIZES_MS:
            body.append(PRECISION_BLOCK.format(kind=kind, ms=ms, statement=statement.format(ms=ms)))
    body.extend(PRECISION_CLEAN.format(n=n) for n in range(clean))
    (root / "test_precision.py").write_text(textwrap.dedent("".join(body)))
    return len(BLOCK_STATEMENTS) * len(BLOCK_SIZES_MS)


@dataclass
class Outcome:
    failed: bool
    cpu_ms: float | None


def run_suite(root: Path, args: list[str], env: dict[str, str]) -> dict[str, Outcome]:
    report = root / "report.xml"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    subprocess.run(
        [*command, f"--junitxml={report}", *args],
        cwd=root,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **env},
        capture_output=True,
        text=True,
        check=False,
    )
    outcomes = {}
    for case in ElementTree.parse(report).iter("testcase"):
        cpu = [
            float(p.get("value", "0")) for p in case.iter("property") if p.get("name") == "cpu_ms"
        ]
        outcomes[case.get("name", "")] = Outcome(
            failed=any(child.tag in ("failure", "error") for child in case),
            cpu_ms=cpu[0] if cpu else None,
        )
    return outcomes


def block_size_ms(name: str, outcome: Outcome) -> float:
    """What a block test really cost: its sleep, or the CPU time it used."""
    ms = float(name.rsplit("_", 1)[1].removesuffix("ms"))
    if name.startswith("test_block_sleep_") or outcome.cpu_ms is None:
        return ms
    return outcome.cpu_ms


@contextlib.contextmanager
def cpu_hogs(count: int = 2) -> Iterator[None]:
    """Processes that keep ``count`` cores busy for as long as the block runs."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def run_precision(rounds: int, clean: int, threshold_ms: float = 10.0) -> dict[str, object]:
    sum_per_ms = calibrate()
    print(f"calibrated: sum() adds {sum_per_ms} numbers per ms of CPU")
    env = {"BENCH_SUM_PER_MS": str(sum_per_ms)}
    detectors = {
        "concurrency-guard": ([f"--loop-lag-ms={threshold_ms:g}", "--leak-check=none"], env)
    }
    if find_spec("pyleak") is not None:
        detectors["pyleak"] = (["-p", "no:concurrency"], {**env, "BENCH_PYLEAK": "1"})
    tally = {
        name: {"blocks": 0, "caught": 0, "clean_failed": 0, "below": 0, "missed": []}
        for name in detectors
    }
    with cpu_hogs(), tempfile.TemporaryDirectory(prefix="bench-precision-") as tmp:
        root = Path(tmp)
        write_precision_suite(root, clean)
        for round_number in range(1, rounds + 1):
            for name, (args, extra) in detectors.items():
                counts = tally[name]
                for test, outcome in run_suite(root, args, extra).items():
                    if test.startswith("test_clean_"):
                        counts["clean_failed"] += outcome.failed
                    elif block_size_ms(test, outcome) < threshold_ms:
                        counts["below"] += 1  # the busy machine made this one smaller
                    else:
                        counts["blocks"] += 1
                        counts["caught"] += outcome.failed
                        if not outcome.failed:
                            size = block_size_ms(test, outcome)
                            counts["missed"].append(f"{test} ({size:.1f} ms)")
                print(
                    f"  round {round_number}: {name}: caught {counts['caught']}/"
                    f"{counts['blocks']} blocks so far, {counts['clean_failed']} clean "
                    "tests failed",
                    flush=True,
                )
    print()
    print(
        f"| detector at {threshold_ms:g} ms | blocks of 10-30 ms caught | clean tests failed "
        "| missed |"
    )
    print("|---|---|---|---|")
    for name, counts in tally.items():
        print(
            f"| {name} | {counts['caught']}/{counts['blocks']} "
            f"| {counts['clean_failed']}/{clean * rounds} "
            f"| {', '.join(counts['missed']) or '-'} |"
        )
    return {"clean": clean, "rounds": rounds, "threshold_ms": threshold_ms, "results": tally}


# --- CPU-bound blocks under load ----------------------------------------------------------------


def run_cpu_burns(runs: int, tests: int, ms: int = 12, threshold_ms: float = 10.0) -> list[int]:
    """Many tests that each burn ``ms`` of CPU in one step, with both cores busy.

    The precision suite has few CPU-bound blocks; this one has enough of them to show a miss
    rate of a few percent (which subtracting a run-queue wait larger than the step's time off
    the CPU once caused). Returns the number caught in each run.
    """
    env = {"BENCH_SUM_PER_MS": str(calibrate())}
    caught = []
    with cpu_hogs(), tempfile.TemporaryDirectory(prefix="bench-burns-") as tmp:
        root = Path(tmp)
        (root / "pytest.ini").write_text(INI)
        body = [PRECISION_HEADER]
        for n in range(tests):
            statement = BLOCK_STATEMENTS["cpu"].format(ms=ms)
            body.append(PRECISION_BLOCK.format(kind=f"cpu{n}", ms=ms, statement=statement))
        (root / "test_burns.py").write_text(textwrap.dedent("".join(body)))
        args = [f"--loop-lag-ms={threshold_ms:g}", "--leak-check=none"]
        for run in range(1, runs + 1):
            outcomes = run_suite(root, args, env)
            caught.append(sum(outcome.failed for outcome in outcomes.values()))
            print(f"  run {run}: {caught[-1]}/{tests} blocks of {ms} ms of CPU caught", flush=True)
    return caught


# --- cost of one loop step ------------------------------------------------------------------------


def _chained_callbacks(count: int) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        left = [count]

        def callback() -> None:
            left[0] -= 1
            if left[0]:
                loop.call_soon(callback)
            else:
                done.set_result(None)

        loop.call_soon(callback)
        await done

    asyncio.run(main())


def run_step_cost(rounds: int, callbacks: int = 200_000) -> dict[str, list[float]]:
    """CPU time per loop step (an empty callback), with the loop-lag hooks off and on."""
    from pytest_concurrency.detect import watch_loop

    per_step: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(rounds):
        for name in per_step:
            start = time.process_time()
            if name == "on":
                with watch_loop(threshold_ms=50):
                    _chained_callbacks(callbacks)
            else:
                _chained_callbacks(callbacks)
            per_step[name].append((time.process_time() - start) / callbacks * 1e6)
    for name, values in per_step.items():
        print(f"  hooks {name}: {' '.join(f'{v:.2f}' for v in values)} us per step")
    return per_step


# --- cost -------------------------------------------------------------------------------------

COST_HEADER = """
import asyncio

import pytest
import pytest_asyncio


async def work(value):
    await asyncio.sleep(0)
    return value * 2


@pytest_asyncio.fixture
async def resource():
    state = {"open": True}
    yield state
    state["open"] = False
"""

COST_TESTS = """
@pytest.mark.asyncio
async def test_small_{n}():
    await asyncio.sleep(0)
    results = await asyncio.gather(work({n}), work({n} + 1))
    assert results == [{n} * 2, ({n} + 1) * 2]


@pytest.mark.asyncio
async def test_task_{n}(resource):
    task = asyncio.create_task(work({n}))
    assert await task == {n} * 2
    assert resource["open"]
"""

COST_CONFTEST = """
import os

import pytest

if os.environ.get("BENCH_PYLEAK"):
    def pytest_collection_modifyitems(items):
        for item in items:
            item.add_marker(pytest.mark.no_leaks)

if os.environ.get("BENCH_BLOCKBUSTER"):
    from blockbuster import blockbuster_ctx

    @pytest.fixture(autouse=True)
    def _blockbuster():
        with blockbuster_ctx() as bb:
            yield bb
"""


@dataclass
class Config:
    name: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    max_rounds: int = 1_000  # pyleak's sleep after every test makes each of its runs long
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    together: list[float] = field(default_factory=list)
    """CPU time of this configuration over the baseline's, run side by side on one CPU."""


def write_cost_suite(root: Path, modules: int, tests_per_module: int) -> int:
    (root / "pytest.ini").write_text(INI)
    (root / "conftest.py").write_text(COST_CONFTEST)
    count = 0
    for m in range(modules):
        body = [COST_HEADER]
        for _ in range(tests_per_module // 2):
            body.append(COST_TESTS.format(n=count))
            count += 2
        (root / f"test_module_{m:02d}.py").write_text(textwrap.dedent("".join(body)))
    return count


def _pytest_command(config: Config) -> tuple[list[str], dict[str, str]]:
    # Bytecode is cached as in any real project: pytest rewrites the asserts of every module
    # of a plugin's distribution, and without the cache each run would compile them again.
    env = {**os.environ, **config.env}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *config.args]
    return command, env


def run_once(root: Path, config: Config) -> tuple[float, float]:
    command, env = _pytest_command(config)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{config.name}: the suite failed:\n{result.stdout[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def run_side_by_side(root: Path, configs: list[Config], cpu: int) -> list[float]:
    """Run ``configs`` at the same time, all pinned to one CPU; return the CPU time of each.

    Whatever slows the machine down while they run (other tenants of a shared host, frequency
    changes) slows them alike, so it cancels out of their ratio; run one after the other, the
    same suite's time moves by 10-40% here from run to run.
    """
    processes = []
    for config in configs:
        command, env = _pytest_command(config)
        processes.append(
            subprocess.Popen(
                command,
                cwd=root,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
            )
        )
    times = []
    failed = []
    for config, process in zip(configs, processes, strict=True):
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            failed.append(f"{config.name}: the suite failed (exit {process.returncode})")
        times.append(usage.ru_utime + usage.ru_stime)
    if failed:  # after every run has ended: none is left running
        raise SystemExit("; ".join(failed))
    return times


def run_cost(
    rounds: int,
    modules: int,
    tests_per_module: int,
    plugin_only: bool = False,
    side_by_side_rounds: int = 0,
    self_check: bool = False,
) -> dict[str, object]:
    off = ["-p", "no:concurrency"]
    configs = [
        Config("baseline (plugin off)", off),
        Config("concurrency-guard (defaults)", []),
    ]
    if self_check:  # how far the ratios move when nothing differs
        configs.insert(1, Config("baseline against itself", off))
    if plugin_only:
        configs.append(Config("leak detector only (--loop-lag-ms=0)", ["--loop-lag-ms=0"]))
        configs.append(Config("loop-lag detector only (--leak-check=none)", ["--leak-check=none"]))
    else:
        configs.append(Config("asyncio debug mode", [*off, "--asyncio-debug"]))
    if find_spec("pyleak") is not None and not plugin_only:
        configs.append(
            Config("pyleak (no_leaks on every test)", off, {"BENCH_PYLEAK": "1"}, max_rounds=2)
        )
    if find_spec("blockbuster") is not None and not plugin_only:
        configs.append(Config("blockbuster (every test)", off, {"BENCH_BLOCKBUSTER": "1"}))

    with tempfile.TemporaryDirectory(prefix="bench-detect-") as tmp:
        root = Path(tmp)
        tests = write_cost_suite(root, modules, tests_per_module)
        base = configs[0]
        print(f"cost: {tests} async tests in {modules} modules, {rounds} rounds")
        for config in configs:  # warm-up: imports and page cache
            if config.max_rounds >= rounds:
                run_once(root, config)
        for round_number in range(1, rounds + 1):
            # Every other round in reverse order, so that a drift of the machine's speed
            # during a round does not always favour the same configuration.
            for config in configs if round_number % 2 else configs[::-1]:
                if round_number > config.max_rounds:
                    continue
                wall, cpu = run_once(root, config)
                config.walls.append(wall)
                config.cpus.append(cpu)
            print(f"  round {round_number}/{rounds} done", flush=True)
        # The same pairs side by side: each configuration together with a baseline run, both
        # pinned to one CPU (the first or the second, alternately).
        paired = [c for c in configs[1:] if c.max_rounds >= rounds]
        for round_number in range(1, side_by_side_rounds + 1):
            for config in paired:
                baseline_cpu, config_cpu = run_side_by_side(
                    root, [base, config], cpu=round_number % 2
                )
                config.together.append(config_cpu / baseline_cpu)
            print(f"  side by side: round {round_number}/{side_by_side_rounds} done", flush=True)

    print()
    print(
        "Each configuration runs once per round, one after the other with the baseline; the "
        "ratios are the median over rounds of (this run / the baseline's run in the same round), "
        "and the fastest run of each against the baseline's fastest."
    )
    print(
        "| configuration | wall (fastest) | wall vs baseline (median of rounds) | "
        "wall vs baseline (fastest) | CPU (fastest) | CPU vs baseline (median of rounds) | runs |"
    )
    print("|---|---|---|---|---|---|---|")
    for config in configs:
        wall_ratio = statistics.median(
            w / b for w, b in zip(config.walls, base.walls, strict=False)
        )
        cpu_ratio = statistics.median(c / b for c, b in zip(config.cpus, base.cpus, strict=False))
        print(
            f"| {config.name} | {min(config.walls):.2f} s | {wall_ratio:.2f}x "
            f"| {min(config.walls) / min(base.walls):.2f}x | {min(config.cpus):.2f} s "
            f"| {cpu_ratio:.2f}x | {len(config.walls)} |"
        )
    if side_by_side_rounds:
        print()
        print(
            "Side by side: each configuration and a baseline run at the same time on one CPU; "
            "CPU time of the configuration over the baseline's (the target is on wall time: "
            "this suite keeps its CPU busy, so its wall time is its CPU time when run alone)."
        )
        print("| configuration | CPU vs baseline, median of rounds | range | rounds |")
        print("|---|---|---|---|")
        for config in configs[1:]:
            if config.together:
                print(
                    f"| {config.name} | {statistics.median(config.together):.3f}x "
                    f"| {min(config.together):.3f}-{max(config.together):.3f} "
                    f"| {len(config.together)} |"
                )
    return {
        "tests": tests,
        "rounds": rounds,
        "runs": [
            {
                "name": c.name,
                "wall_s": c.walls,
                "cpu_s": c.cpus,
                "side_by_side_cpu_ratio": c.together,
            }
            for c in configs
        ],
    }


def count_instructions(root: Path, args: list[str], suite: list[str]) -> int:
    """Instructions executed by one pytest run of ``suite`` under callgrind (after a warm-up
    run, so that bytecode is cached as in the timed runs)."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, *suite]
    subprocess.run(command, cwd=root, env=env, capture_output=True, check=False)
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    for line in result.stderr.splitlines():
        if "Collected :" in line:
            return int(line.split(":")[-1].strip())
    raise SystemExit(f"callgrind gave no instruction count:\n{result.stderr[-2000:]}")


def run_instructions(modules: int, tests_per_module: int) -> dict[str, object]:
    """Instructions of the cost suite with the plugin off and on, and of a one-test suite
    (start-up alone), which splits the difference into start-up and per-test work."""
    off = ["-p", "no:concurrency"]
    with tempfile.TemporaryDirectory(prefix="bench-detect-ir-") as tmp:
        root = Path(tmp)
        tests = write_cost_suite(root, modules, tests_per_module)
        one = ["test_module_00.py::test_small_0"]
        counts = {
            "suite_off": count_instructions(root, off, []),
            "suite_on": count_instructions(root, [], []),
            "one_off": count_instructions(root, off, one),
            "one_on": count_instructions(root, [], one),
        }
    start_up = counts["one_on"] - counts["one_off"]
    per_test = (counts["suite_on"] - counts["suite_off"] - start_up) / (tests - 1)
    per_test_off = (counts["suite_off"] - counts["one_off"]) / (tests - 1)
    ratio = counts["suite_on"] / counts["suite_off"]
    millions = {name: f"{count / 1e6:,.0f} M" for name, count in counts.items()}
    print("| run | instructions, plugin off | plugin on | ratio |")
    print("|---|---|---|---|")
    print(f"| {tests} tests | {millions['suite_off']} | {millions['suite_on']} | {ratio:.3f}x |")
    print(
        f"| one test (start-up) | {millions['one_off']} | {millions['one_on']} "
        f"| {counts['one_on'] / counts['one_off']:.3f}x |"
    )
    print(
        f"plugin start-up: {start_up / 1e6:.0f} M instructions; per test: {per_test / 1e3:.0f} K "
        f"(a test of this suite costs {per_test_off / 1e3:.0f} K with the plugin off)"
    )
    return {"tests": tests, "counts": counts, "ratio": ratio, "per_test": per_test}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--precision-rounds", type=int, default=3)
    parser.add_argument("--precision-clean", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=7, help="rounds of the cost benchmark")
    parser.add_argument(
        "--side-by-side-rounds",
        type=int,
        default=10,
        help="cost: rounds in which each configuration runs at the same time as a baseline "
        "run, on one CPU (0: none)",
    )
    parser.add_argument("--modules", type=int, default=10)
    parser.add_argument("--tests-per-module", type=int, default=60)
    parser.add_argument("--skip-precision", action="store_true")
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument(
        "--plugin-only",
        action="store_true",
        help="cost: only the baseline and the plugin, whole and one detector at a time (many "
        "rounds fit in a few minutes)",
    )
    parser.add_argument(
        "--self-check",
        action="store_true",
        help="cost: also run the baseline against itself, to see how far ratios move when "
        "nothing differs",
    )
    parser.add_argument("--burn-runs", type=int, default=3, help="runs of the CPU-burn suite")
    parser.add_argument("--burn-tests", type=int, default=150)
    parser.add_argument("--skip-burns", action="store_true")
    parser.add_argument("--skip-step-cost", action="store_true")
    parser.add_argument("--skip-instructions", action="store_true")
    parser.add_argument("--output", default="bench-results/detect.json")
    options = parser.parse_args()

    report: dict[str, object] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        }
    }
    if not options.skip_precision:
        print(f"precision: threshold 10 ms, two CPU hogs, {os.cpu_count()} CPUs")
        report["precision"] = run_precision(options.precision_rounds, options.precision_clean)
        print()
    if not options.skip_burns:
        print("CPU-bound blocks under load: threshold 10 ms, two CPU hogs")
        report["cpu_burns"] = run_cpu_burns(options.burn_runs, options.burn_tests)
        print()
    if not options.skip_step_cost:
        print("cost of one loop step (200,000 empty callbacks), watch_loop off and on")
        report["step_cost_us"] = run_step_cost(3)
        print()
    if not options.skip_cost:
        report["cost"] = run_cost(
            options.rounds,
            options.modules,
            options.tests_per_module,
            options.plugin_only,
            options.side_by_side_rounds,
            options.self_check,
        )
        print()
    if not options.skip_instructions:
        if shutil.which("valgrind") is None:
            print("instructions: skipped (valgrind is not installed)")
        else:
            print("instructions executed (valgrind's callgrind), plugin off and on")
            report["instructions"] = run_instructions(options.modules, options.tests_per_module)
    output = Path(options.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2))
    print(f"\nraw numbers: {output}")


if __name__ == "__main__":
    main()
