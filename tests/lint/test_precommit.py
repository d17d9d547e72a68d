"""The pre-commit hook, installed from this repository into a throwaway git repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lint_helpers import REPOSITORY

GIT = shutil.which("git")


def _git(*args: str, cwd: Path) -> str:
    completed = subprocess.run(
        [GIT or "git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=60
    )
    return completed.stdout.strip()


@pytest.mark.skipif(GIT is None, reason="needs git")
def test_pre_commit_runs_the_hook_from_this_repository(tmp_path: Path) -> None:
    if not (REPOSITORY / ".git").exists():
        pytest.skip("the hook is installed from a git revision of this repository")
    revision = _git("rev-parse", "HEAD", cwd=REPOSITORY)
    repo = tmp_path / "project"
    repo.mkdir()
    _git("init", "-q", cwd=repo)
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {REPOSITORY}\n  rev: {revision}\n  hooks:\n  - id: concurrency-lint\n"
    )
    (repo / "app.py").write_text("import time\n\nasync def handler():\n    time.sleep(1)\n")
    (repo / "ok.py").write_text(
        "import asyncio\n\nasync def handler():\n    await asyncio.sleep(1)\n"
    )
    _git("add", ".", cwd=repo)
    environment = {
        **os.environ,
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
    }
    command = [sys.executable, "-m", "pre_commit", "run", "--all-files", "--color", "never"]
    failing = subprocess.run(
        command, cwd=repo, env=environment, capture_output=True, text=True, timeout=600, check=False
    )
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "concurrency-lint" in failing.stdout
    assert "Failed" in failing.stdout
    assert "app.py:4:5: CC101 `time.sleep()` blocks the event loop" in failing.stdout
    assert "ok.py" not in failing.stdout.replace("Found", "")

    (repo / "app.py").write_text(
        "import asyncio\n\nasync def handler():\n    await asyncio.sleep(1)\n"
    )
    _git("add", ".", cwd=repo)
    passing = subprocess.run(
        command, cwd=repo, env=environment, capture_output=True, text=True, timeout=300, check=False
    )
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "Passed" in passing.stdout
