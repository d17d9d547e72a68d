"""The repository's own standards, checked on every run: ruff, and mypy --strict on shipped code
(the linter's own dogfooding test is in tests/lint/test_own_code.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False, env=env
    )


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]])
def test_ruff_is_clean(command: list[str]) -> None:
    result = run(str(BIN / "ruff"), *command)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shipped_code_is_mypy_strict_clean(tmp_path: Path) -> None:
    # The linter is installed as concurrency_lint from lint/: mypy finds it through a link.
    (tmp_path / "concurrency_lint").symlink_to(ROOT / "lint")
    env = {**os.environ, "MYPYPATH": str(tmp_path)}
    result = run(str(BIN / "mypy"), "-p", "pytest_concurrency", "-p", "concurrency_lint", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
