"""The ``concurrency-lint`` command.

Exit status: 0 when nothing is reported, 1 when there are findings (or, with ``--diff``,
changes to show), 2 on a usage or configuration error. Errors are one line on stderr,
never a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from concurrency_lint.catalogue import FRAMEWORKS
from concurrency_lint.config import (
    ConfigError,
    Settings,
    check_codes,
    find_pyproject,
    load,
    project_root,
)
from concurrency_lint.engine import Finding, Linter, default_jobs
from concurrency_lint.rules.base import SAFE

PROG = "concurrency-lint"


def _comma_list(value: str) -> list[str]:
    return [part for part in value.replace(" ", ",").split(",") if part]


def build_parser() -> argparse.ArgumentParser:
    from concurrency_lint.output import FORMATS
    from concurrency_lint.version import version

    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Find blocking calls in async code (CC1xx), coroutines never awaited and "
            "dropped tasks (CC2xx), and pure-Python CPU work handed to threads (CC3xx)."
        ),
        epilog="Exit status: 0 clean, 1 findings, 2 usage or configuration error.",
    )
    parser.add_argument(
        "paths", nargs="*", default=["."], help="files or directories to lint (default: .)"
    )
    parser.add_argument(
        "--select",
        type=_comma_list,
        metavar="CODES",
        help="comma-separated codes or prefixes to report (replaces the configured select)",
    )
    parser.add_argument(
        "--ignore",
        type=_comma_list,
        metavar="CODES",
        help="comma-separated codes or prefixes not to report (added to the configured ignore)",
    )
    parser.add_argument(
        "--format",
        choices=sorted(FORMATS),
        default="text",
        help="output format (default: text)",
    )
    parser.add_argument(
        "--statistics", action="store_true", help="show the number of findings per code instead"
    )
    parser.add_argument(
        "--fix", action="store_true", help="apply the safe fixes and write the files back"
    )
    parser.add_argument(
        "--unsafe-fixes",
        action="store_true",
        help="with --fix or --diff, also apply the fixes that may change behaviour",
    )
    parser.add_argument(
        "--diff",
        action="store_true",
        help="show the fixes as a unified diff instead of writing them (exit 1 if any)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="PYPROJECT",
        help="read settings from this pyproject.toml instead of the nearest one",
    )
    parser.add_argument(
        "--isolated", action="store_true", help="ignore pyproject.toml, use the defaults"
    )
    parser.add_argument(
        "--exclude",
        type=_comma_list,
        metavar="PATTERNS",
        help="comma-separated glob patterns to skip, replacing the configured and default ones "
        "('' lints everything)",
    )
    parser.add_argument(
        "--extend-exclude",
        type=_comma_list,
        metavar="PATTERNS",
        help="comma-separated glob patterns to skip in addition to the others",
    )
    parser.add_argument(
        "--framework",
        choices=("auto", *FRAMEWORKS),
        help="framework whose alternatives the messages suggest (default: from the imports)",
    )
    parser.add_argument(
        "--jobs",
        "-j",
        type=int,
        metavar="N",
        help=f"worker processes (default: all cores, here {default_jobs()})",
    )
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="cache directory (default: .concurrency-lint-cache at the project root)",
    )
    parser.add_argument(
        "--no-follow-imports",
        action="store_true",
        help="do not read the project's modules outside the given paths",
    )
    parser.add_argument(
        "--explain", metavar="CODE", help="print the documentation of a rule and exit"
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no summary on stderr")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    return parser


def settings_from(arguments: argparse.Namespace) -> Settings:
    """The configuration file's settings, with the command line's on top."""
    start = Path(os.path.commonpath([os.path.abspath(p) for p in arguments.paths]))
    if arguments.isolated:
        settings = load(None, root=project_root(start))
    elif arguments.config is not None:
        if not arguments.config.is_file():
            raise ConfigError(f"{arguments.config}: no such configuration file")
        settings = load(arguments.config)
    else:
        pyproject = find_pyproject(start) or find_pyproject(Path.cwd())
        settings = load(pyproject, root=project_root(start))
    if arguments.select is not None:
        settings.select = check_codes(arguments.select, "--select")
    if arguments.ignore is not None:
        settings.ignore = (*settings.ignore, *check_codes(arguments.ignore, "--ignore"))
    if arguments.exclude is not None:
        settings.exclude = tuple(arguments.exclude)
    if arguments.extend_exclude:
        settings.extend_exclude = (*settings.extend_exclude, *arguments.extend_exclude)
    if arguments.framework is not None:
        settings.framework = arguments.framework
    return settings


def explain(code: str) -> str:
    """The documentation of one rule, as ``--explain`` prints it."""
    import inspect

    from concurrency_lint.rules import CODES, RULES_BY_CODE

    rule = RULES_BY_CODE.get(code.upper())
    if rule is None:
        raise ConfigError(f"--explain: unknown rule code {code!r}; known codes: {', '.join(CODES)}")
    fix = {None: "no autofix", SAFE: "safe autofix (--fix)"}.get(
        rule.fix_safety, "unsafe autofix (--fix --unsafe-fixes)"
    )
    return f"{rule.code} {rule.name} ({fix})\n\n{inspect.cleandoc(rule.__doc__ or '')}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        return _run(arguments)
    except ConfigError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``concurrency-lint | head``): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as error:  # a bug of ours: one line, and how to get the details
        if os.environ.get("CONCURRENCY_LINT_DEBUG"):
            raise
        print(
            f"{PROG}: internal error: {type(error).__name__}: {error} (please report it; "
            "set CONCURRENCY_LINT_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 2


def _run(arguments: argparse.Namespace) -> int:
    from concurrency_lint.output import FORMATS, statistics

    if arguments.explain:
        sys.stdout.write(explain(arguments.explain))
        return 0
    if arguments.jobs is not None and arguments.jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {arguments.jobs}")
    if arguments.unsafe_fixes and not (arguments.fix or arguments.diff):
        raise ConfigError("--unsafe-fixes only applies with --fix or --diff")
    settings = settings_from(arguments)
    linter = Linter(
        settings,
        jobs=arguments.jobs,
        cache_dir=arguments.cache_dir,
        use_cache=not arguments.no_cache,
        follow_imports=not arguments.no_follow_imports,
    )
    result = linter.run(arguments.paths)
    for warning in result.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    findings = result.findings

    if arguments.fix or arguments.diff:
        return _fix(arguments, linter, findings)

    if arguments.statistics:
        sys.stdout.write(statistics(findings, arguments.format))
    else:
        sys.stdout.write(FORMATS[arguments.format](findings))
    if not arguments.quiet and arguments.format == "text":
        _summary(findings, result.files)
    return 1 if findings else 0


def _summary(findings: Sequence[Finding], files: int) -> None:
    if not findings:
        print(f"All checks passed ({files} file{'s' * (files != 1)}).", file=sys.stderr)
        return
    paths = len({f.path for f in findings})
    fixable = sum(1 for f in findings if f.fix_available)
    line = f"Found {len(findings)} finding{'s' * (len(findings) != 1)} in {paths} of {files} files."
    if fixable:
        line += f" {fixable} fixable with --fix (some may need --unsafe-fixes)."
    print(line, file=sys.stderr)


def _fix(arguments: argparse.Namespace, linter: Linter, findings: list[Finding]) -> int:
    from concurrency_lint.fix import FixError, apply_fixes
    from concurrency_lint.output import FORMATS

    allowed = [
        f
        for f in findings
        if f.fix is not None and (f.fix.safety == SAFE or arguments.unsafe_fixes)
    ]
    by_path: dict[str, list[Finding]] = {}
    for finding in allowed:
        by_path.setdefault(finding.path, []).append(finding)
    fixed: set[Finding] = set()
    changed_files = 0
    failed = False
    for path, file_findings in sorted(by_path.items()):
        anchors = linter.anchors_of(path, file_findings)
        try:
            with open(path, "rb") as handle:
                original = handle.read()
            result = apply_fixes(original, anchors)
        except (OSError, FixError) as error:
            print(f"{PROG}: error: {path}: cannot fix: {error}", file=sys.stderr)
            failed = True
            continue
        if result.source == original:
            continue
        changed_files += 1
        fixed.update(file_findings)
        if arguments.diff:
            sys.stdout.writelines(
                difflib.unified_diff(
                    original.decode("utf-8", errors="replace").splitlines(keepends=True),
                    result.source.decode("utf-8", errors="replace").splitlines(keepends=True),
                    fromfile=f"a/{path}",
                    tofile=f"b/{path}",
                )
            )
        else:
            with open(path, "wb") as handle:
                handle.write(result.source)
    if arguments.diff:
        if not arguments.quiet:
            print(
                f"Would fix {len(fixed)} finding{'s' * (len(fixed) != 1)} in {changed_files} "
                f"file{'s' * (changed_files != 1)}.",
                file=sys.stderr,
            )
        return 1 if fixed or failed else 0
    remaining = [f for f in findings if f not in fixed]
    sys.stdout.write(FORMATS[arguments.format](remaining))
    if not arguments.quiet:
        print(
            f"Fixed {len(fixed)} finding{'s' * (len(fixed) != 1)} in {changed_files} "
            f"file{'s' * (changed_files != 1)}; {len(remaining)} remaining.",
            file=sys.stderr,
        )
    return 1 if remaining or failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
