"""The linter survives real code: installed packages are linted without an internal error."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import libcst as cst
import pytest

from concurrency_lint import Settings, engine, lint_paths, lint_source, walk
from concurrency_lint.extract import extract

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
