"""Cost of the runtime detectors on a suite of small async tests (run by ``make bench-detect``).

Generates a suite of small pytest-asyncio tests, then runs it in separate pytest processes,
interleaved round by round so that machine noise hits every configuration alike:

* ``baseline``: the plugin off (``-p no:concurrency``);
* ``concurrency-guard``: the plugin at its default settings;
* ``pyleak``: pyleak's pytest plugin on every test (its ``no_leaks`` marker), ours off;
* ``asyncio debug``: ``PYTHONASYNCIODEBUG=1``, ours off;
* ``blockbuster``: blockbuster active around every test, ours off (when installed).

Prints the median wall time and CPU time of each, as a ratio to the baseline, and writes the
raw numbers to ``bench-results/detect.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

TEST_TEMPLATE = '''
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
'''

HEADER = '''
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
'''

CONFTEST = '''
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
'''

INI = """[pytest]
asyncio_default_fixture_loop_scope = function
"""


@dataclass
class Config:
    name: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)


def write_suite(root: Path, modules: int, tests_per_module: int) -> int:
    (root / "pytest.ini").write_text(INI)
    (root / "conftest.py").write_text(CONFTEST)
    count = 0
    for m in range(modules):
        body = [HEADER]
        for _ in range(tests_per_module // 2):
            body.append(TEST_TEMPLATE.format(n=count))
            count += 2
        (root / f"test_module_{m:02d}.py").write_text(textwrap.dedent("".join(body)))
    return count


def run_once(root: Path, config: Config) -> tuple[float, float]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **config.env}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *config.args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{config.name}: the suite failed:\n{result.stdout[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--modules", type=int, default=10)
    parser.add_argument("--tests-per-module", type=int, default=60)
    parser.add_argument("--output", default="bench-results/detect.json")
    options = parser.parse_args()

    configs = [
        Config("baseline (plugin off)", ["-p", "no:concurrency"]),
        Config("concurrency-guard (defaults)", []),
        Config("pyleak (no_leaks on every test)", ["-p", "no:concurrency"], {"BENCH_PYLEAK": "1"}),
        Config("asyncio debug mode", ["-p", "no:concurrency"], {"PYTHONASYNCIODEBUG": "1"}),
    ]
    if find_spec("blockbuster") is not None:
        configs.append(
            Config("blockbuster (every test)", ["-p", "no:concurrency"], {"BENCH_BLOCKBUSTER": "1"})
        )
    if find_spec("pyleak") is None:
        configs = [c for c in configs if not c.name.startswith("pyleak")]

    with tempfile.TemporaryDirectory(prefix="bench-detect-") as tmp:
        root = Path(tmp)
        tests = write_suite(root, options.modules, options.tests_per_module)
        print(f"suite: {tests} async tests in {options.modules} modules; {options.rounds} rounds")
        for config in configs:  # warm-up: imports, .pyc-free page cache
            run_once(root, config)
        for round_number in range(1, options.rounds + 1):
            for config in configs:
                wall, cpu = run_once(root, config)
                config.walls.append(wall)
                config.cpus.append(cpu)
            print(f"  round {round_number}/{options.rounds} done", flush=True)

    base_wall = statistics.median(configs[0].walls)
    base_cpu = statistics.median(configs[0].cpus)
    print()
    print(f"| configuration | wall (median of {options.rounds}) | vs baseline | CPU | vs baseline |")
    print("|---|---|---|---|---|")
    for config in configs:
        wall, cpu = statistics.median(config.walls), statistics.median(config.cpus)
        print(
            f"| {config.name} | {wall:.2f} s | {wall / base_wall:.2f}x | {cpu:.2f} s "
            f"| {cpu / base_cpu:.2f}x |"
        )
    output = Path(options.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        json.dumps(
            {
                "machine": {
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "platform": platform.platform(),
                },
                "tests": tests,
                "rounds": options.rounds,
                "runs": [
                    {"name": c.name, "wall_s": c.walls, "cpu_s": c.cpus} for c in configs
                ],
            },
            indent=2,
        )
    )
    print(f"\nraw numbers: {output}")


if __name__ == "__main__":
    main()
