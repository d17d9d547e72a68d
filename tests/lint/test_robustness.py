"""The linter survives real code: installed packages are linted without an internal error."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Collection
from pathlib import Path

import libcst as cst
import pytest

from concurrency_lint import Settings, engine, lint_paths, lint_source, walk
from concurrency_lint.extract import extract
from concurrency_lint.facts import FileFacts
from concurrency_lint.index import ProjectIndex

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


class _LibcstAnchors(cst.CSTVisitor):
    """Counts calls and ``with`` items the way any libcst visitor (and the fixer) sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tails: list[str | None] = []

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute):
            self.tails.append(func.attr.value)
        elif isinstance(func, cst.Name):
            self.tails.append(func.value)
        else:
            self.tails.append(None)

    def visit_WithItem(self, node: cst.WithItem) -> None:
        self.tails.append("<with>")


def test_the_fast_walk_numbers_calls_exactly_as_libcst_visitors_do() -> None:
    root = Path(importlib.import_module("anyio").__file__ or "").parent
    for path in sorted(root.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        tree = cst.parse_module(source)
        facts = extract(tree, "module", False, source.count("\n"))
        visitor = _LibcstAnchors()
        tree.visit(visitor)
        assert facts.anchor_count == len(visitor.tails), path
        for call in facts.calls:
            expected = visitor.tails[call.anchor]
            if call.is_with:
                assert expected == "<with>", (path, call)
            elif expected is not None:
                assert call.spelling.rpartition(".")[2] == expected, (path, call)


def test_deeply_nested_generated_code_is_analysed() -> None:
    limit = sys.getrecursionlimit()
    parts = " ".join(f"'part {i}'" for i in range(3000))
    sums = " + ".join(["n"] * 300)
    branches = "".join(f"    elif n == {i}:\n        time.sleep(n)\n" for i in range(1, 1500))
    source = (
        f"import time\nTEXT = ({parts})\n\nasync def f(n):\n    total = {sums}\n"
        f"    if n == 0:\n        pass\n{branches}"
    )
    findings = lint_source(source)
    assert {f.code for f in findings} == {"CC101"}
    assert len(findings) == 1499
    assert sys.getrecursionlimit() == limit


def test_a_finding_that_cannot_be_placed_is_still_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # When neither Python's parser nor libcst's position provider can handle a file (a
    # sum of thousands of terms exhausts both), the finding is kept, at the top of the file.
    monkeypatch.setattr(engine, "locate", lambda text, facts, anchors: {})
    [finding] = lint_source("import time\n\nasync def f():\n    time.sleep(1)\n")
    assert (finding.code, finding.line, finding.column) == ("CC101", 1, 1)
    assert finding.message.endswith("[position unknown: the file nests too deeply to locate it]")


def test_calls_in_f_string_format_specs_are_seen_whatever_comes_first() -> None:
    # The walk learns each node type's children from the first one it meets; here the
    # first f-string expression has no format spec, the second has a call in one.
    walk._ORDER.pop(cst.FormattedStringExpression, None)
    source = (
        "import time\n\nasync def f(x):\n"
        "    a = f'{x}'\n"
        "    b = f'{x:{time.sleep(1)}}'\n"
        "    time.sleep(2)\n"
    )
    assert [(f.line, f.code) for f in lint_source(source)] == [(5, "CC101"), (6, "CC101")]


def _helper_chain(length: int) -> str:
    helpers = "".join(f"def f{i}():\n    f{i + 1}()\n" for i in range(length))
    end = f"def f{length}():\n    time.sleep(1)\nasync def main():\n    f0()\n"
    return f"import time\n{helpers}{end}"


def test_a_sync_helper_chain_of_thousands_of_functions_is_followed() -> None:
    [finding] = lint_source(_helper_chain(2000))
    assert (finding.code, finding.line) == ("CC101", 4005)
    # The chain is named with its middle left out.
    assert "(f0 -> f1 -> f2 -> f3 -> (1994 more) -> f1998 -> f1999 -> f2000 -> time.sleep at" in (
        finding.message
    )


def test_long_chains_of_pure_helpers_and_of_aliases_resolve() -> None:
    pure = "".join(f"def g{i}(n):\n    return g{i - 1}(n)\n" for i in range(1, 3000))
    source = (
        "import asyncio\ndef g0(n):\n    t = 0\n    for i in range(n):\n        t += i * i\n"
        f"    return t\n{pure}async def f():\n    await asyncio.to_thread(g2999, 5)\n"
    )
    assert [f.code for f in lint_source(source)] == ["CC302"]
    aliases = "".join(f"a{i} = a{i - 1}\n" for i in range(1, 3000))
    source = f"import time\na0 = time\n{aliases}async def f():\n    a2999.sleep(1)\n"
    assert [f.code for f in lint_source(source)] == ["CC101"]


def test_an_internal_error_in_one_file_is_that_files_cc000_and_the_others_are_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "checked.py").write_text("def boom(): ...\nasync def f():\n    boom()\n")
    (tmp_path / "located.py").write_text("import time\nasync def g():\n    time.sleep(2)\n")
    (tmp_path / "fine.py").write_text("import time\nasync def h():\n    time.sleep(1)\n")
    blocking_chain = ProjectIndex.blocking_chain
    locate = engine.locate

    def failing_chain(self: ProjectIndex, target: str) -> object:
        if target.endswith(".boom"):
            raise RuntimeError("unforeseen")
        return blocking_chain(self, target)

    def failing_locate(text: str, facts: FileFacts, anchors: Collection[int]) -> object:
        if "time.sleep(2)" in text:
            raise RecursionError("too deep")
        return locate(text, facts, anchors)

    monkeypatch.setattr(ProjectIndex, "blocking_chain", failing_chain)
    monkeypatch.setattr(engine, "locate", failing_locate)
    monkeypatch.delenv("CONCURRENCY_LINT_DEBUG", raising=False)
    result = lint_paths([str(tmp_path)], Settings(root=tmp_path), jobs=1)
    found = {(Path(f.path).name, f.code): f.message for f in result.findings}
    assert set(found) == {("checked.py", "CC000"), ("located.py", "CC000"), ("fine.py", "CC101")}
    assert found["checked.py", "CC000"].startswith(
        "internal error while checking this file (RuntimeError: unforeseen); please report it"
    )
    assert found["located.py", "CC000"].startswith(
        "internal error while locating the findings of this file (RecursionError: too deep)"
    )


@pytest.mark.parametrize(
    ("source", "line", "message"),
    [
        ("def handler():\n    await save()\n", 2, "'await' outside async function"),
        ("async def ticks():\n    yield 1\n    return 2\n", 3, "'return' with value in async"),
        ("import asyncio\nawait asyncio.sleep(1)\n", 2, "'await' outside function"),
        (
            "async def f():\n    class Local:\n        await g()\n",
            3,
            "'await' outside function",
        ),
        ("nonlocal x\n", 1, "nonlocal declaration not allowed at module level"),
    ],
)
def test_code_the_compiler_rejects_is_cc000_with_pythons_message(
    source: str, line: int, message: str
) -> None:
    [finding] = lint_source(source)
    assert (finding.code, finding.line) == ("CC000", line)
    assert finding.message.startswith(f"syntax error: {message}")


def test_warnings_and_newer_syntax_are_not_compile_errors() -> None:
    # The suite turns warnings into errors: an invalid escape sequence warns when compiled.
    assert lint_source('import re\nPATTERN = re.compile("\\d+")\n') == []
    if sys.version_info < (3, 12):  # libcst knows the syntax, this Python does not
        assert lint_source("type Pair = tuple[int, int]\n") == []
