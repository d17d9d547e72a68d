"""The lint part of ``make demo`` shows what it promises."""

from __future__ import annotations

import subprocess
import sys

from lint_helpers import REPOSITORY


def test_lint_demo_succeeds_and_shows_findings_and_a_diff() -> None:
    completed = subprocess.run(
        [sys.executable, str(REPOSITORY / "fixtures" / "demo_lint.py")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "Lint demo: every step showed what it should." in completed.stdout
    assert "--- a/fixtures/lint/fixable/handlers.py" in completed.stdout
