"""Helpers shared by the linter tests."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from concurrency_lint import Finding, Settings, lint_source
from concurrency_lint.config import parse_section

REPOSITORY = Path(__file__).resolve().parents[2]
FIXTURES = REPOSITORY / "fixtures" / "lint"
_MARKER = re.compile(r"#\s*error:\s*(?P<codes>.*)$")


def markers(source: str) -> list[tuple[int, str]]:
    """``(line, code)`` for every ``# error: CODE`` comment, sorted."""
    found = []
    for number, line in enumerate(source.splitlines(), start=1):
        match = _MARKER.search(line)
        if match:
            found.extend((number, code) for code in re.findall(r"CC\d{3}", match["codes"]))
    return sorted(found)


def file_markers(paths: Iterable[Path], root: Path) -> list[tuple[str, int, str]]:
    return sorted(
        (path.relative_to(root).as_posix(), line, code)
        for path in paths
        for line, code in markers(path.read_text(encoding="utf-8"))
    )


def settings(section: dict[str, object] | None = None, root: Path | None = None) -> Settings:
    return parse_section(section or {}, "test", root=root or Path.cwd())


def lines_and_codes(findings: Iterable[Finding]) -> list[tuple[int, str]]:
    return sorted((finding.line, finding.code) for finding in findings)


def lint(source: str, **section: object) -> list[Finding]:
    """Lint a snippet with some ``[tool.concurrency-lint]`` settings (dashes as _)."""
    config = {key.replace("_", "-"): value for key, value in section.items()}
    return lint_source(source, settings(config))
