"""The public surface is small and pinned."""

from __future__ import annotations

import concurrency_lint
from concurrency_lint import Finding, Settings, lint_paths, lint_source


def test_public_names() -> None:
    assert sorted(concurrency_lint.__all__) == [
        "ConfigError",
        "Finding",
        "LintResult",
        "Settings",
        "fix_source",
        "lint_paths",
        "lint_source",
    ]


def test_lint_from_python(tmp_path) -> None:  # type: ignore[no-untyped-def]
    source = "import time\nasync def f():\n    time.sleep(1)\n"
    [finding] = lint_source(source, path="app.py")
    assert isinstance(finding, Finding)
    assert (finding.path, finding.line, finding.column, finding.code) == ("app.py", 3, 5, "CC101")
    assert finding.fix_available
    (tmp_path / "app.py").write_text(source)
    result = lint_paths([str(tmp_path)], Settings(root=tmp_path, ignore=("CC101",)))
    assert (result.files, result.findings) == (1, [])
