"""Our own code passes our own linter."""

from __future__ import annotations

import pytest
from lint_helpers import REPOSITORY

from concurrency_lint.cli import main


def test_concurrency_lint_is_clean_on_this_repository(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPOSITORY)
    status = main(["--no-cache", "pytest_concurrency", "lint"])
    out = capsys.readouterr().out
    assert (status, out) == (0, "")
