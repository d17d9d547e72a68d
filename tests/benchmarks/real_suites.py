"""Run the test suites of real async projects under the plugin (``make bench-real-suites``).

For each project (anyio, httpx and starlette, at pinned versions), this downloads its source
distribution from PyPI (which ships its tests), installs it with its test dependencies into a
separate virtual environment beside this project (installed from this checkout), and runs its
suite:

* without network: inside ``unshare -n`` with only the loopback interface up, and with the
  project's own ``network`` tests deselected, so that nothing can leave the machine;
* with the plugin off (``-p no:concurrency``) and on at its defaults, interleaved, several
  rounds, to compare results and wall time;
* once more in warn mode at ``--loop-lag-ms=10``, to list every step of 10 ms or more with its
  line (how the default threshold was chosen).

Every alarm the plugin raises at its defaults is printed with its message, for triage.
Needs ``unshare`` and permission to create a network namespace (root, or user namespaces).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
import venv
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROJECTS = {
    "anyio": {
        "version": "4.16.0",
        "requirements": [
            "blockbuster>=1.5.29",
            "hypothesis>=4.18.2",
            "psutil>=5.9",
            "pytest-mock>=3.14",
            "pytest-timeout>=2.4.0",
            "trustme>=1.0.0",
            "truststore>=0.9.1",
            "uvloop>=0.22.1",
        ],
    },
    "httpx": {
        "version": "0.28.1",
        "requirements": [
            "httpx[brotli,cli,http2,socks,zstd]==0.28.1",
            "uvicorn",
            "trustme",
            "chardet",
            "cryptography",
        ],
    },
    "starlette": {
        "version": "1.10.0",
        # No network tests and no `network` marker (which its strict markers would reject).
        "deselect": [],
        "requirements": [
            "starlette[full]==1.10.0",
            "httpx2[zstd]>=2.0.0",
            "blockbuster>=1.5.23",
            "importlib-metadata>=9.0.1",
            "opentelemetry-sdk>=1.44.0",
            "pytest-codspeed>=4.1.1",
            "pytest>=9.1.1",
            "trio>=0.34.0",
        ],
    },
}


@dataclass
class Run:
    outcomes: dict[str, str]
    wall_s: float
    cpu_s: float  # user + system time of the test run and everything it started
    output: str


def prepare(workdir: Path, name: str) -> tuple[Path, Path]:
    """The project's unpacked sources and a virtual environment to run them in."""
    spec = PROJECTS[name]
    version = str(spec["version"])
    python = workdir / "venv" / "bin" / "python"
    if not python.exists():
        print(f"creating {workdir / 'venv'}", flush=True)
        venv.create(workdir / "venv", with_pip=True)
        pip(python, "install", "--upgrade", "pip")
        pip(python, "install", "-e", str(REPO))
    source = workdir / f"{name}-{version}"
    if not source.exists():
        pip(
            python,
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            f"{name}=={version}",
            "-d",
            str(workdir / "sdists"),
        )
        archive = next((workdir / "sdists").glob(f"{name}-{version}.tar.gz"))
        with tarfile.open(archive) as tar:
            tar.extractall(workdir, filter="data")
    pip(python, "install", f"{name}=={version}", *spec["requirements"])  # type: ignore[misc]
    return source, python


def pip(python: Path, *args: str) -> None:
    subprocess.run([str(python), "-m", "pip", "--quiet", *args], check=True)


DESELECT_NETWORK = ["-m", "not network"]


def run_suite(source: Path, python: Path, deselect: list[str], *args: str) -> Run:
    report = source / "report.xml"
    inner = " ".join(
        [
            "ip link set lo up &&",
            str(python),
            "-m pytest -p no:cacheprovider -q",
            *(f"'{a}'" for a in deselect),
            f"--junitxml={report}",
            *(f"'{a}'" for a in args),
        ]
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    completed = subprocess.run(
        ["unshare", "-n", "bash", "-c", inner],
        cwd=source,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(read_outcomes(report), wall, cpu, completed.stdout + completed.stderr)


def read_outcomes(report: Path) -> dict[str, str]:
    import xml.etree.ElementTree as ElementTree

    outcomes: dict[str, str] = {}
    if not report.exists():
        return outcomes
    for case in ElementTree.parse(report).iter("testcase"):
        key = f"{case.get('classname')}::{case.get('name')}"
        tags = {child.tag for child in case}
        outcomes[key] = (
            "failed"
            if "failure" in tags
            else "error"
            if "error" in tags
            else "skipped"
            if "skipped" in tags
            else "passed"
        )
    return outcomes


FINDING = re.compile(
    r"^(?:\w+ event loop.* blocked for \d+ ms|test .* left \d+ .* running|"
    r"fixture .* left \d+ .* running)",
    re.M,
)


def alarms(run: Run) -> list[str]:
    """Every finding of ours in a run's output, with its first lines."""
    found = []
    for match in FINDING.finditer(run.output):
        block = run.output[match.start() :].split("\n")
        found.append("\n".join(line for line in block[:6] if not line.startswith("  Fix")))
    return found


def lag_distribution(run: Run) -> list[tuple[int, str, str]]:
    """(ms, test, innermost user line) of every LoopLagWarning in a warn-mode run."""
    summary = run.output.split("warnings summary", 1)[-1]
    rows = []
    for block in re.split(r"\n(?=\S)", summary):
        match = re.search(r"blocked for (\d+) ms", block)
        if not match:
            continue
        test = block.splitlines()[0].strip()
        lines = [m.group(1) for m in re.finditer(r"\n\s{6}(\S+:\d+: .*)", block)]
        rows.append((int(match.group(1)), test, lines[0] if lines else "(no user code)"))
    return sorted(rows, reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("projects", nargs="*", default=list(PROJECTS))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workdir", default=os.path.expanduser("~/.cache/concurrency-guard-real"))
    parser.add_argument("--output", default="bench-results/real-suites.json")
    options = parser.parse_args()
    if shutil.which("unshare") is None:
        raise SystemExit("real_suites: needs `unshare` (util-linux) to run the suites offline")

    results = {}
    for name in options.projects:
        workdir = Path(options.workdir) / name
        workdir.mkdir(parents=True, exist_ok=True)
        source, python = prepare(workdir, name)
        deselect = list(PROJECTS[name].get("deselect", DESELECT_NETWORK))
        off_runs, on_runs = [], []
        for round_number in range(1, options.rounds + 1):
            off_runs.append(run_suite(source, python, deselect, "-p", "no:concurrency"))
            on_runs.append(run_suite(source, python, deselect))
            print(
                f"{name} round {round_number}: off {off_runs[-1].wall_s:.1f} s "
                f"({off_runs[-1].cpu_s:.1f} s CPU), on {on_runs[-1].wall_s:.1f} s "
                f"({on_runs[-1].cpu_s:.1f} s CPU)",
                flush=True,
            )
        warn = run_suite(
            source,
            python,
            deselect,
            "--loop-lag-ms=10",
            "--concurrency-mode=warn",
            "-W",
            "always::pytest_concurrency.LoopLagWarning",
            "-W",
            "always::pytest_concurrency.LeakWarning",
        )
        on = on_runs[-1]
        # Tests whose outcome differs with the plugin on in every round: flaky tests of the
        # project itself (it has some, depending on garbage-collection timing) drop out.
        changed = {
            test: (off_runs[-1].outcomes.get(test), outcome)
            for test, outcome in on.outcomes.items()
            if all(r.outcomes.get(test) == outcome for r in on_runs)
            and all(r.outcomes.get(test) not in (outcome, None) for r in off_runs)
        }
        distribution = lag_distribution(warn)
        off_wall = statistics.median(r.wall_s for r in off_runs)
        on_wall = statistics.median(r.wall_s for r in on_runs)
        off_cpu = statistics.median(r.cpu_s for r in off_runs)
        on_cpu = statistics.median(r.cpu_s for r in on_runs)
        print(f"\n## {name} {PROJECTS[name]['version']}")
        print(
            f"tests run: {len(on.outcomes)}; median wall off {off_wall:.1f} s, on "
            f"{on_wall:.1f} s ({on_wall / off_wall:.2f}x); CPU off {off_cpu:.1f} s, on "
            f"{on_cpu:.1f} s ({on_cpu / off_cpu:.2f}x)"
        )
        print(f"tests whose outcome changed with the plugin on: {len(changed)}")
        for test, (before, after) in sorted(changed.items()):
            print(f"  {test}: {before} -> {after}")
        print("alarms at the defaults:")
        for alarm in alarms(on):
            print("  " + alarm.replace("\n", "\n  "))
        print("steps of 10 ms or more (warn mode, --loop-lag-ms=10):")
        for threshold in (10, 20, 30, 50, 100):
            print(f"  >= {threshold} ms: {sum(1 for ms, _, _ in distribution if ms >= threshold)}")
        for ms, test, line in distribution:
            print(f"  {ms:5d} ms  {test}\n           {line}")
        results[name] = {
            "version": PROJECTS[name]["version"],
            "tests": len(on.outcomes),
            "wall_off_s": [r.wall_s for r in off_runs],
            "wall_on_s": [r.wall_s for r in on_runs],
            "cpu_off_s": [r.cpu_s for r in off_runs],
            "cpu_on_s": [r.cpu_s for r in on_runs],
            "changed": changed,
            "alarms": alarms(on),
            "steps_10ms_or_more": distribution,
        }
    output = Path(options.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2))
    print(f"\nraw numbers: {output}")


if __name__ == "__main__":
    sys.exit(main())
