"""Evaluation corpora: realistic files with every expected finding marked in a comment."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lint_helpers import FIXTURES, lines_and_codes, markers

from concurrency_lint import Settings, lint_paths, lint_source

CORPUS = sorted((FIXTURES / "corpus").glob("*.py"))


@pytest.mark.parametrize("path", CORPUS, ids=[path.stem for path in CORPUS])
def test_corpus_file_gives_exactly_the_marked_findings(path: Path) -> None:
    result = lint_paths([str(path)], Settings(root=path.parent), follow_imports=False)
    assert lines_and_codes(result.findings) == markers(path.read_text(encoding="utf-8"))


def _sync_twin(source: str) -> str:
    """The same code with the async machinery stripped: ``async def`` -> ``def``."""
    source = re.sub(r"\basync (def|with|for)\b", r"\1", source)
    return re.sub(r"\bawait ", "", source)


@pytest.mark.parametrize("path", CORPUS, ids=[path.stem for path in CORPUS])
def test_sync_twin_has_no_blocking_call_findings(path: Path) -> None:
    twin = _sync_twin(path.read_text(encoding="utf-8"))
    assert "async def" not in twin
    assert [f for f in lint_source(twin) if f.code.startswith("CC1")] == []
