"""The linter survives real code: installed packages are linted without an internal error."""

from __future__ import annotations

import importlib
from pathlib import Path

from concurrency_lint import Settings, lint_paths

PACKAGES = ("anyio", "h11", "httpx", "attr", "pluggy")


def test_installed_packages_lint_without_internal_errors() -> None:
    roots = [Path(importlib.import_module(name).__file__ or "").parent for name in PACKAGES]
    expected_files = sum(len(list(root.rglob("*.py"))) for root in roots)
    result = lint_paths([str(root) for root in roots], Settings(root=roots[0].parent), jobs=2)
    assert result.files == expected_files > 100
    for finding in result.findings:
        assert "internal error" not in finding.message, finding
        path = Path(finding.path)
        assert 1 <= finding.line <= finding.end_line
        assert finding.end_line <= len(path.read_text(encoding="utf-8").splitlines()) + 1
