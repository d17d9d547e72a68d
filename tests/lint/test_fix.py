"""Autofixes: --fix, --unsafe-fixes, --diff, and round trips on real files."""

from __future__ import annotations

import ast
import io
import shutil
import tokenize
from pathlib import Path

import pytest
from lint_helpers import FIXTURES, lint

from concurrency_lint import Settings, fix_source, lint_paths
from concurrency_lint.cli import main

REAL_FILES = sorted((FIXTURES / "fixable").glob("*.py")) + sorted(
    (FIXTURES / "corpus").glob("*.py")
)


def _comments(source: str) -> list[str]:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return [token.string for token in tokens if token.type == tokenize.COMMENT]


@pytest.mark.parametrize("path", REAL_FILES, ids=[path.stem for path in REAL_FILES])
def test_fixes_keep_real_files_valid_with_their_formatting_and_comments(path: Path) -> None:
    original = path.read_text(encoding="utf-8")
    fixed, findings = fix_source(original, Settings(root=path.parent), unsafe=True)
    ast.parse(fixed)
    assert _comments(fixed) == _comments(original)
    fixed_lines = {f.line for f in findings if f.fix is not None}
    kept = [
        line for number, line in enumerate(original.splitlines(), 1) if number not in fixed_lines
    ]
    new_lines = fixed.splitlines()
    # Every line without a fix is still there, in order, byte for byte.
    position = 0
    for line in kept:
        position = new_lines.index(line, position) + 1
    remaining = {(f.code) for f in lint(fixed) if f.fix is not None}
    assert remaining == set()
    assert fix_source(fixed, Settings(root=path.parent), unsafe=True)[0] == fixed


def test_sleep_fix_uses_the_framework_and_adds_the_import_once() -> None:
    fixed, _ = fix_source("import time\nimport anyio\nasync def f():\n    time.sleep(1)\n")
    assert fixed == "import time\nimport anyio\nasync def f():\n    await anyio.sleep(1)\n"
    fixed, _ = fix_source("from time import sleep\nasync def f():\n    sleep(1)\n    sleep(2)\n")
    assert fixed == (
        "from time import sleep\nimport asyncio\n\n"
        "async def f():\n    await asyncio.sleep(1)\n    await asyncio.sleep(2)\n"
    )


def test_missing_await_is_not_fixed_outside_async_code() -> None:
    source = "import asyncio\ndef f():\n    asyncio.sleep(1)\n"
    fixed, [finding] = fix_source(source)
    assert (fixed, finding.fix) == (source, None)


def test_unsafe_fixes_need_the_flag() -> None:
    source = (
        "import asyncio\nasync def job(): ...\nasync def f():\n    asyncio.create_task(job())\n"
    )
    assert fix_source(source)[0] == source
    assert "_background_tasks.add(_task)" in fix_source(source, unsafe=True)[0]


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    shutil.copy(FIXTURES / "fixable" / "handlers.py", tmp_path / "handlers.py")
    return tmp_path / "handlers.py"


def test_diff_previews_without_writing(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = app.read_text()
    assert main(["--no-cache", "--diff", "handlers.py"]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("--- a/handlers.py\n+++ b/handlers.py\n")
    assert "+    await asyncio.sleep( 0.05 )   # error: CC101\n" in out
    assert "_background_tasks" not in out  # unsafe, not asked for
    assert "Would fix 2 findings in 1 file." in err
    assert app.read_text() == before


def test_fix_writes_and_reports_what_remains(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--no-cache", "--fix", "handlers.py"]) == 1
    out, err = capsys.readouterr()
    assert "CC203" in out
    assert "CC101" not in out
    assert "Fixed 2 findings in 1 file; 1 remaining." in err
    assert main(["--no-cache", "--fix", "--unsafe-fixes", "handlers.py"]) == 0
    assert "Fixed 1 finding in 1 file; 0 remaining." in capsys.readouterr().err
    assert lint_paths(["handlers.py"]).findings == []
    assert main(["--no-cache", "--diff", "handlers.py"]) == 0
