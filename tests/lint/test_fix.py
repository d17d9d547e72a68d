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


def _imported(source: str) -> set[str]:
    """Names a module's imports bind."""
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update((a.asname or a.name).partition(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.update(a.asname or a.name for a in node.names)
    return imported - {"annotations"}


def _unused_imports(source: str) -> set[str]:
    """Names a module imports and never mentions again."""
    used = {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)}
    return _imported(source) - used


def _comments(source: str) -> list[str]:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return [token.string for token in tokens if token.type == tokenize.COMMENT]


@pytest.mark.parametrize("path", REAL_FILES, ids=[path.stem for path in REAL_FILES])
def test_fixes_keep_real_files_valid_with_their_formatting_and_comments(path: Path) -> None:
    original = path.read_text(encoding="utf-8")
    fixed, findings = fix_source(original, Settings(root=path.parent), unsafe=True)
    # Compiled, not only parsed: ``await`` where it is not allowed gets past the parser.
    compile(fixed, str(path), "exec", dont_inherit=True)
    # Every import a fix adds is used (the fixed call may leave ``import time`` unused).
    assert (_imported(fixed) - _imported(original)) & _unused_imports(fixed) == set()
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


def test_no_await_is_added_in_a_class_body_inside_an_async_function() -> None:
    source = """\
import asyncio
import time

async def fetch(): ...

async def handler():
    class Local:
        time.sleep(1)
        fetch()
        asyncio.create_task(fetch())
    time.sleep(2)
    return Local
"""
    fixed, findings = fix_source(source, unsafe=True)
    assert [(f.line, f.code, f.fix is not None) for f in findings] == [
        (8, "CC101", False),
        (9, "CC201", False),
        (10, "CC203", False),
        (11, "CC101", True),
    ]
    compile(fixed, "<fixed>", "exec", dont_inherit=True)
    assert fixed == source.replace("    time.sleep(2)", "    await asyncio.sleep(2)")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            "import time\nimport asyncio as aio\n\nasync def f():\n    time.sleep(1)\n",
            "import time\nimport asyncio as aio\n\nasync def f():\n    await aio.sleep(1)\n",
            id="alias",
        ),
        pytest.param(
            "import time\ntry:\n    import trio\nexcept ImportError:\n    trio = None\n\n"
            "async def f():\n    time.sleep(1)\n",
            "import time\ntry:\n    import trio\nexcept ImportError:\n    trio = None\n\n"
            "async def f():\n    await trio.sleep(1)\n",
            id="optional-import",
        ),
        pytest.param(
            "import time\nimport asyncio as aio\n\nasync def f(asyncio):\n    time.sleep(1)\n",
            "import time\nimport asyncio as aio\n\nasync def f(asyncio):\n    await aio.sleep(1)\n",
            id="parameter-shadows-the-plain-name-not-the-alias",
        ),
        pytest.param(
            "from typing import TYPE_CHECKING\nimport time\nif TYPE_CHECKING:\n    import asyncio\n"
            "\nasync def f():\n    time.sleep(1)\n",
            "from typing import TYPE_CHECKING\nimport time\nimport asyncio\n\nif TYPE_CHECKING:\n"
            "    import asyncio\n\nasync def f():\n    await asyncio.sleep(1)\n",
            id="type-checking-import-is-not-there-at-run-time",
        ),
    ],
)
def test_sleep_fix_uses_the_modules_own_name_for_the_framework(source: str, expected: str) -> None:
    fixed, _ = fix_source(source)
    assert fixed == expected
    compile(fixed, "<fixed>", "exec", dont_inherit=True)


@pytest.mark.parametrize(
    "source",
    [
        "import time\n\nasync def f(asyncio):\n    time.sleep(1)\n",
        "import time\n\nasync def f():\n    time.sleep(1)\n    asyncio = None\n",
        "import time\n\nasyncio = None\n\nasync def f():\n    time.sleep(1)\n",
        "import time\n\ndef outer(asyncio):\n"
        "    async def f():\n        time.sleep(1)\n    return f\n",
    ],
    ids=["parameter", "local", "module-level", "enclosing-function"],
)
def test_sleep_fix_is_not_offered_where_the_frameworks_name_means_something_else(
    source: str,
) -> None:
    fixed, [finding] = fix_source(source)
    assert (finding.code, finding.fix, fixed) == ("CC101", None, source)


@pytest.mark.parametrize("arguments", ["secs=1", "*delays", "**options", "", "1, 2"])
def test_sleep_fix_is_not_offered_for_arguments_it_cannot_carry_over(arguments: str) -> None:
    # ``asyncio.sleep(secs=1)`` fails as ``time.sleep(secs=1)`` already does; ``*delays``
    # may hold what ``time.sleep`` takes and ``trio.sleep`` does not.
    source = f"import time\n\nasync def f(delays, options):\n    time.sleep({arguments})\n"
    fixed, [finding] = fix_source(source)
    assert (finding.code, finding.fix, finding.fix_available, fixed) == (
        "CC101",
        None,
        False,
        source,
    )


def test_task_fix_does_not_reuse_a_name_the_module_binds_to_something_else() -> None:
    source = (
        "import asyncio\n\n_background_tasks = []\n\n\nasync def work(): ...\n\n\n"
        "async def go():\n    asyncio.create_task(work())\n"
    )
    fixed, _ = fix_source(source, unsafe=True)
    assert "_background_tasks = []\n" in fixed
    assert "_background_tasks_1: set[asyncio.Future[Any]] = set()\n" in fixed
    assert "    _background_tasks_1.add(_task)\n" in fixed
    assert "_background_tasks.add" not in fixed
    compile(fixed, "<fixed>", "exec", dont_inherit=True)
    assert _unused_imports(fixed) == set()
    # A second task in the same module later reuses the set this fix defined.
    again = fixed + "\n\nasync def more():\n    asyncio.create_task(work())\n"
    refixed, _ = fix_source(again, unsafe=True)
    assert refixed.count("_background_tasks_1: set") == 1
    assert "    _background_tasks_1.add(_task_1)\n" in refixed


def test_task_fix_adds_only_the_imports_its_code_uses() -> None:
    source = (
        "import asyncio as aio\n\nasync def work(): ...\n\n"
        "async def go():\n    aio.create_task(work())\n"
    )
    fixed, _ = fix_source(source, unsafe=True)
    assert fixed.startswith("import asyncio as aio\nfrom typing import Any\n\n")
    assert "_background_tasks: set[aio.Future[Any]] = set()\n" in fixed
    assert "import asyncio\n" not in fixed
    assert _unused_imports(fixed) == set()
    compile(fixed, "<fixed>", "exec", dont_inherit=True)
