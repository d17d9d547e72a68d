"""Linter benchmark: concurrency-lint side by side with flake8-async and ruff.

    python tests/benchmarks/bench_lint.py [--skip-robustness | --robustness-only |
                                           --single-file-only]
                                          [--site-packages PATH]... [--repeat N]

1. Fetches the sources of trio and aiohttp (pinned sdists, with ``pip download`` into a
   cache directory, unpacked once) and lints each tree with ``flake8 --select ASYNC``
   (flake8-async), ``ruff check --select ASYNC`` and ``concurrency-lint``: cold (empty
   cache), warm (unchanged tree, cache filled) and cold on one core.
2. Lints one 3,000-line file as pre-commit passes it (one file name, from the project
   root, cache empty), start-up included, and again warm.
3. Lints every ``.py`` file of this environment's site-packages (or of each
   ``--site-packages`` directory given, for a bigger environment), without excludes, and
   reports files per second and every file that could not be parsed, with the reason.

CPU seconds are the user + system time of the command and all its worker processes
(``RUSAGE_CHILDREN``), so tools that fan out over the cores are charged for all of them.
Every tool runs with its bytecode cached, as an installed package has it: the linter's
package is byte-compiled first, and ``PYTHONDONTWRITEBYTECODE`` is not passed on (with
it and no ``__pycache__``, each start of an editable install compiles the linter anew).
Tools run one after the other on the same tree; every number is a median of ``--repeat``
runs except the flake8-async runs on whole trees (one run: they take minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
SOURCES = {
    # name: (distribution, version, directory to lint inside the sdist)
    "trio": ("trio", "0.35.0", "src"),
    "aiohttp": ("aiohttp", "3.14.5", "."),
}
SINGLE_FILE = ("trio", "src/trio/_core/_run.py")
CACHE_HOME = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
WORK = CACHE_HOME / "pytest-concurrency-guard" / "bench-lint"


@dataclass
class Run:
    cpu: float
    wall: float
    status: int
    stdout: str


#: The environment of every measured command: bytecode is cached, as in real use.
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def compile_linter() -> None:
    """Byte-compile the linter's package (an editable install has no bytecode until run)."""
    import compileall

    import concurrency_lint

    compileall.compile_dir(Path(concurrency_lint.__file__).parent, quiet=1)


def measure(command: list[str], cwd: Path) -> Run:
    """Run a command; CPU time includes every process it started and waited for."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(
        command, cwd=cwd, env=ENV, capture_output=True, text=True, check=False, timeout=3600
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if completed.returncode not in (0, 1) or "Traceback" in completed.stderr:
        sys.exit(f"{command[0]} failed ({completed.returncode}): {completed.stderr[-2000:]}")
    return Run(cpu, wall, completed.returncode, completed.stdout)


def median_run(command: list[str], cwd: Path, repeat: int, before: object = None) -> Run:
    runs = []
    for _ in range(repeat):
        if callable(before):
            before()
        runs.append(measure(command, cwd))
    runs.sort(key=lambda run: run.cpu)
    return runs[len(runs) // 2]


def fetch_sources() -> dict[str, Path]:
    """Download and unpack the pinned sdists once; return the directory of each tree."""
    downloads = WORK / "downloads"
    trees: dict[str, Path] = {}
    for name, (distribution, version, inner) in SOURCES.items():
        unpacked = WORK / "src" / f"{distribution}-{version}"
        if not unpacked.exists():
            downloads.mkdir(parents=True, exist_ok=True)
            archive = next(downloads.glob(f"{distribution}-{version}.tar.gz"), None)
            if archive is None:
                print(f"downloading the {distribution} {version} sdist ...", file=sys.stderr)
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "pip",
                        "download",
                        "--quiet",
                        "--no-deps",
                        "--no-binary",
                        ":all:",
                        f"{distribution}=={version}",
                        "-d",
                        str(downloads),
                    ],
                    check=True,
                )
                archive = next(downloads.glob(f"{distribution}-{version}.tar.gz"))
            partial = Path(tempfile.mkdtemp(dir=WORK))
            with tarfile.open(archive) as tar:
                tar.extractall(partial, filter="data")
            (WORK / "src").mkdir(exist_ok=True)
            (partial / f"{distribution}-{version}").rename(unpacked)
            shutil.rmtree(partial)
        trees[name] = (unpacked / inner).resolve()
    return trees


def python_lines(root: Path) -> tuple[int, int]:
    files = [root] if root.is_file() else list(root.rglob("*.py"))
    lines = sum(path.read_bytes().count(b"\n") for path in files)
    return len(files), lines


def ours(*arguments: str) -> list[str]:
    return [str(BIN / "concurrency-lint"), "--isolated", "--quiet", *arguments]


def flake8(*paths: str) -> list[str]:
    return [str(BIN / "flake8"), "--isolated", "--select", "ASYNC", *paths]


def ruff(*paths: str) -> list[str]:
    return [
        str(BIN / "ruff"), "check", "--isolated", "--no-cache", "--select", "ASYNC",
        "--output-format", "concise", *paths,
    ]  # fmt: skip


def reported(run: Run, ours_json: bool = False) -> list[tuple[str, int, str]]:
    """``(path, line, code)`` of every finding in a tool's output."""
    if ours_json:
        return [
            (os.path.normpath(f["path"]), f["line"], f["code"])
            for f in json.loads(run.stdout or "[]")
        ]
    found = []
    for line in run.stdout.splitlines():
        parts = line.split(":", 3)
        if len(parts) == 4 and parts[1].isdigit():
            found.append((os.path.normpath(parts[0]), int(parts[1]), parts[3].split()[0]))
    return found


def count(run: Run, ours_json: bool = False) -> int:
    return len(reported(run, ours_json))


def overlap(name: str, flake: Run, ruff_run: Run, cold: Run) -> None:
    """Blocking calls in async code: which tool reports which lines."""
    ours_lines = {(path, line) for path, line, code in reported(cold, True) if code < "CC2"}
    for tool, run in (("flake8-async", flake), ("ruff", ruff_run)):
        theirs = {(path, line) for path, line, code in reported(run) if code.startswith("ASYNC2")}
        print(
            f"{name}, blocking calls in async code (their ASYNC2xx, our CC1xx): {tool} "
            f"{len(theirs)} lines, concurrency-lint {len(ours_lines)}; both "
            f"{len(theirs & ours_lines)}, only {tool} {sorted(theirs - ours_lines)}.\n"
        )


def whole_trees(trees: dict[str, Path], repeat: int) -> None:
    print("## Whole trees\n")
    print(
        "| tree | files | lines | tool | CPU s | lines per CPU s | wall s | CPU vs flake8-async "
        "| findings |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, tree in trees.items():
        files, lines = python_lines(tree)
        cache = WORK / "cache" / name

        def clear(cache: Path = cache) -> None:
            shutil.rmtree(cache, ignore_errors=True)

        flake = measure(flake8("."), tree)
        ruff_run = median_run(ruff("."), tree, repeat)
        rows = [
            ("flake8 --select ASYNC", flake, count(flake)),
            ("ruff check --select ASYNC", ruff_run, count(ruff_run)),
        ]
        cold = median_run(
            ours("--format", "json", "--cache-dir", str(cache), "."), tree, repeat, clear
        )
        rows.append(("concurrency-lint, cold", cold, count(cold, True)))
        warm = median_run(ours("--format", "json", "--cache-dir", str(cache), "."), tree, repeat)
        rows.append(("concurrency-lint, warm cache", warm, count(warm, True)))
        one_core = median_run(ours("--format", "json", "--no-cache", "--jobs", "1", "."), tree, 1)
        rows.append(("concurrency-lint, cold, --jobs 1", one_core, count(one_core, True)))
        for tool, run, found in rows:
            print(
                f"| {name} | {files} | {lines} | {tool} | {run.cpu:.2f} | {lines / run.cpu:,.0f} "
                f"| {run.wall:.2f} | {run.cpu / flake.cpu:.3f} | {found} |"
            )
        machine_parallelism()
        print(
            f"\n{name}: cold run costs 1/{flake.cpu / cold.cpu:.1f} of flake8-async's CPU; "
            f"warm rerun is {cold.cpu / warm.cpu:.1f}x cheaper than cold; two cores cut the "
            f"wall time {one_core.wall / cold.wall:.2f}x.\n"
        )
        codes = Counter(finding["code"] for finding in json.loads(cold.stdout or "[]"))
        print(f"{name} findings per code: {dict(sorted(codes.items()))}\n")
        overlap(name, flake, ruff_run, cold)


def single_file(trees: dict[str, Path], repeat: int) -> None:
    name, relative = SINGLE_FILE
    root = trees[name]
    if root.name == "src":
        root = root.parent
    _, lines = python_lines(root / relative)
    cache = WORK / "cache" / "single"

    def clear() -> None:
        shutil.rmtree(cache, ignore_errors=True)

    print(f"## One {lines}-line file as pre-commit passes it ({name}: {relative})\n")
    print("| tool | CPU s (start-up included) | wall s |")
    print("|---|---|---|")
    startup = median_run(ours("--version"), root, repeat)
    runs = [
        ("python start-up + `concurrency-lint --version`", startup),
        ("flake8 --select ASYNC", median_run(flake8(relative), root, repeat)),
        ("ruff check --select ASYNC", median_run(ruff(relative), root, repeat)),
        (
            "concurrency-lint, cold (reads the modules it imports too)",
            median_run(ours("--cache-dir", str(cache), relative), root, repeat, clear),
        ),
        (
            "concurrency-lint, warm cache",
            median_run(ours("--cache-dir", str(cache), relative), root, repeat),
        ),
        (
            "concurrency-lint, cold, --no-follow-imports",
            median_run(ours("--no-cache", "--no-follow-imports", relative), root, repeat),
        ),
    ]
    for tool, run in runs:
        print(f"| {tool} | {run.cpu:.2f} | {run.wall:.2f} |")
    print()


def _spin(iterations: int) -> int:
    total = 0
    for number in range(iterations):
        total += number
    return total


def machine_parallelism() -> None:
    """How much faster two processes are than one on this machine, right now: the most
    any tool's ``--jobs 2`` can gain here."""
    import multiprocessing

    work = 15_000_000
    start = time.perf_counter()
    _spin(work)
    one = time.perf_counter() - start
    with multiprocessing.get_context("fork").Pool(2) as pool:
        start = time.perf_counter()
        pool.map(_spin, [work, work])
        two = time.perf_counter() - start
    print(
        f"Baseline: two processes of a pure-Python loop get through twice the work "
        f"{2 * one / two:.2f}x faster than one process (2.00 on two free cores).\n"
    )


def libcst_parse_rate(trees: dict[str, Path]) -> None:
    code = (
        "import pathlib, sys, time, libcst\n"
        "files = sorted(pathlib.Path(sys.argv[1]).rglob('*.py'))\n"
        "texts = [f.read_text(encoding='utf-8') for f in files]\n"
        "lines = sum(t.count('\\n') for t in texts)\n"
        "start = time.process_time()\n"
        "for t in texts: libcst.parse_module(t)\n"
        "print(f'{lines / (time.process_time() - start):,.0f}')\n"
    )
    rate = subprocess.run(
        [sys.executable, "-c", code, str(trees["trio"])], capture_output=True, text=True, check=True
    ).stdout.strip()
    print(
        f"Reference: a bare libcst parse of trio's sources runs at {rate} lines per CPU second.\n"
    )


def fix_round_trip(trees: dict[str, Path]) -> None:
    """Apply every fix (unsafe ones too) to a copy of each tree; the code must still compile."""
    print("## Autofix round trip on the real trees\n")
    for name, tree in trees.items():
        copy = Path(tempfile.mkdtemp(dir=WORK)) / name
        shutil.copytree(tree, copy)
        try:
            before = {path: path.read_bytes() for path in copy.rglob("*.py")}
            found = json.loads(measure(ours("--no-cache", "--format", "json", "."), copy).stdout)
            fixable = sum(1 for finding in found if finding["fix_available"])
            measure(ours("--no-cache", "--fix", "--unsafe-fixes", "."), copy)
            changed = [path for path, data in before.items() if path.read_bytes() != data]
            for path in changed:
                compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
            after = json.loads(measure(ours("--no-cache", "--format", "json", "."), copy).stdout)
            still_fixable = sum(1 for finding in after if finding["fix_available"])
            print(
                f"{name}: {fixable} fixable findings; `--fix --unsafe-fixes` changed "
                f"{len(changed)} files, all of which still compile; findings {len(found)} -> "
                f"{len(after)}, fixable left: {still_fixable}.\n"
            )
        finally:
            shutil.rmtree(copy.parent)


def robustness(site_packages: list[Path]) -> None:
    """Every file of site-packages, then the standard library (its test suite has bad files)."""
    corpora = [("site-packages", root, "") for root in site_packages] or [
        ("this environment's site-packages", Path(sysconfig.get_paths()["purelib"]), "")
    ]
    corpora.append(("the standard library", Path(sysconfig.get_paths()["stdlib"]), "site-packages"))
    for title, root, exclude in corpora:
        counts = [python_lines(entry) for entry in _top_level(root, exclude)]
        files = sum(count for count, _ in counts)
        lines = sum(count for _, count in counts)
        command = ours("--no-cache", "--exclude", exclude, "--select", "CC000", "--format", "json")
        run = measure([*command, str(root)], Path.cwd())
        unparsable = json.loads(run.stdout or "[]")
        internal = [f for f in unparsable if "internal error" in f["message"]]
        print(f"## Robustness: every .py file of {title} ({root})\n")
        print(
            f"{files} files, {lines:,} lines in {run.wall:.1f} s wall, {run.cpu:.1f} CPU s: "
            f"{files / run.wall:,.1f} files per second ({files / run.cpu:,.1f} per CPU second), "
            f"{lines / run.cpu:,.0f} lines per CPU second. Internal errors: {len(internal)}. "
            f"Files that could not be parsed: {len(unparsable)}.\n"
        )
        for finding in unparsable:
            relative = Path(finding["path"]).resolve().relative_to(root.resolve())
            print(f"- `{relative}:{finding['line']}`: {finding['message']}")
        print()


def _top_level(root: Path, exclude: str) -> list[Path]:
    """The entries of ``root`` except the excluded one (for counting files and lines)."""
    return [
        entry
        for entry in root.iterdir()
        if entry.name != exclude and (entry.is_dir() or entry.suffix == ".py")
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--skip-robustness", action="store_true")
    parser.add_argument("--robustness-only", action="store_true")
    parser.add_argument(
        "--single-file-only",
        action="store_true",
        help="only the one file as pre-commit passes it (a minute, for a quiet moment)",
    )
    parser.add_argument(
        "--site-packages",
        type=Path,
        action="append",
        default=[],
        help="lint this site-packages directory in the robustness pass (repeatable)",
    )
    arguments = parser.parse_args()
    print(
        f"# concurrency-lint benchmark ({os.cpu_count()} cores, Python {sys.version.split()[0]})\n"
    )
    compile_linter()
    if arguments.robustness_only:
        robustness(arguments.site_packages)
        return 0
    trees = fetch_sources()
    if arguments.single_file_only:
        single_file(trees, arguments.repeat)
        return 0
    machine_parallelism()
    libcst_parse_rate(trees)
    whole_trees(trees, arguments.repeat)
    single_file(trees, arguments.repeat)
    fix_round_trip(trees)
    if not arguments.skip_robustness:
        robustness(arguments.site_packages)
    return 0


if __name__ == "__main__":
    sys.exit(main())
