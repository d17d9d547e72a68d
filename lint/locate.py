"""Turn anchors into lines and columns, and read ``# noqa`` comments.

The facts identify a call by its anchor: its rank among calls and ``with`` items in a
pre-order walk of the libcst tree. Sorting the same nodes of Python's own ``ast`` by start
(outer before inner on a tie) gives the same order, and ``ast`` positions come almost for
free, while libcst's PositionProvider costs twice a parse. Each located anchor is checked
against its facts (a call whose callee ends with the same name, or a ``with`` item); on
any disagreement, the file is located again with libcst's PositionProvider, which is exact
by construction.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Collection, Iterable

from concurrency_lint.cache import Span
from concurrency_lint.facts import CallFact, FileFacts

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_NOQA = re.compile(
    r"#\s*noqa(?P<colon>:\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?", re.IGNORECASE
)
_CODE = re.compile(r"[A-Z]+[0-9]+", re.IGNORECASE)

#: Codes of flake8-async and ruff for the same problems: a line whose noqa comment
#: already lists ASYNC251 for them is not reported again as CC101.
EQUIVALENT_CODES: dict[str, str] = {
    "ASYNC210": "CC105",
    "ASYNC211": "CC105",
    "ASYNC212": "CC105",
    "ASYNC220": "CC102",
    "ASYNC221": "CC102",
    "ASYNC222": "CC102",
    "ASYNC230": "CC103",
    "ASYNC231": "CC103",
    "ASYNC232": "CC103",
    "ASYNC240": "CC103",
    "ASYNC250": "CC108",
    "ASYNC251": "CC101",
    "ASYNC300": "CC203",
    "RUF006": "CC203",
}


def locate(text: str, facts: FileFacts, anchors: Collection[int]) -> dict[int, Span]:
    """Positions (1-based line and column, end exclusive) of the given anchors."""
    if not anchors:
        return {}
    try:
        spans = _locate_with_ast(text, facts, anchors)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        spans = None
    if spans is None:
        try:
            spans = _locate_with_libcst(text, anchors)
        except (RecursionError, MemoryError):
            spans = {}  # the caller reports what it could not place at the top of the file
    return spans


def _locate_with_ast(
    text: str, facts: FileFacts, anchors: Collection[int]
) -> dict[int, Span] | None:
    tree = ast.parse(text)
    nodes: list[tuple[int, int, int, int, int, ast.AST]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            nodes.append(
                (
                    node.lineno,
                    node.col_offset,
                    -(node.end_lineno or node.lineno),
                    -(node.end_col_offset or 0),
                    1,
                    node,
                )
            )
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                start = item.context_expr
                end = item.optional_vars or item.context_expr
                nodes.append(
                    (
                        start.lineno,
                        start.col_offset,
                        -(end.end_lineno or end.lineno),
                        -(end.end_col_offset or 0),
                        0,
                        item,
                    )
                )
    if len(nodes) != facts.anchor_count:
        return None
    nodes.sort(key=lambda entry: entry[:5])
    by_anchor = {call.anchor: call for call in facts.calls}
    lines: list[str] | None = None
    spans: dict[int, Span] = {}
    for anchor in anchors:
        if not 0 <= anchor < len(nodes):
            return None
        line, column, minus_end_line, minus_end_column, _, node = nodes[anchor]
        fact = by_anchor.get(anchor)
        if fact is not None and not _agrees(fact, node):
            return None
        end_line, end_column = -minus_end_line, -minus_end_column
        if lines is None:
            lines = _LINE_BREAK.split(text)
        spans[anchor] = (
            line,
            _characters(lines, line, column) + 1,
            end_line,
            _characters(lines, end_line, end_column) + 1,
        )
    return spans


def _agrees(fact: CallFact, node: ast.AST) -> bool:
    if fact.is_with:
        return isinstance(node, ast.withitem)
    if not isinstance(node, ast.Call):
        return False
    tail = fact.spelling.rpartition(".")[2]
    func = node.func
    if isinstance(func, ast.Name):
        return func.id == tail
    if isinstance(func, ast.Attribute):
        return func.attr == tail
    return True


def _characters(lines: list[str], line: int, byte_offset: int) -> int:
    """``ast`` columns count UTF-8 bytes; messages count characters."""
    if not 0 < line <= len(lines):
        return byte_offset
    text = lines[line - 1]
    if text.isascii():
        return byte_offset
    return len(text.encode("utf-8")[:byte_offset].decode("utf-8", errors="replace"))


def _locate_with_libcst(text: str, anchors: Collection[int]) -> dict[int, Span]:
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    wrapper = MetadataWrapper(cst.parse_module(text), unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    wanted = set(anchors)
    spans: dict[int, Span] = {}

    class _Anchors(cst.CSTVisitor):
        count = 0

        def _anchor(self, node: cst.CSTNode) -> None:
            if self.count in wanted:
                where = positions[node]
                spans[self.count] = (
                    where.start.line,
                    where.start.column + 1,
                    where.end.line,
                    where.end.column + 1,
                )
            self.count += 1

        def visit_Call(self, node: cst.Call) -> None:
            self._anchor(node)

        def visit_WithItem(self, node: cst.WithItem) -> None:
            self._anchor(node)

    wrapper.module.visit(_Anchors())
    return spans


def noqa_comments(text: str, lines: Iterable[int]) -> dict[int, frozenset[str]]:
    """The ``# noqa`` comments on the given lines: line -> codes (empty set: all codes).

    Only real comments count, not ``# noqa`` inside a string: the lines that mention noqa
    at all are checked with the tokenizer.
    """
    wanted = set(lines)
    all_lines = _LINE_BREAK.split(text)
    candidates = {
        line
        for line in wanted
        if 0 < line <= len(all_lines) and "noqa" in all_lines[line - 1].lower()
    }
    if not candidates:
        return {}
    comments: dict[int, str] = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT and token.start[0] in candidates:
                comments[token.start[0]] = token.string
    except (tokenize.TokenError, SyntaxError):
        comments = {line: all_lines[line - 1] for line in candidates}
    found: dict[int, frozenset[str]] = {}
    for line, comment in comments.items():
        match = _NOQA.search(comment)
        if match is None:
            continue
        codes = match.group("codes")
        if codes:
            listed = {code.upper() for code in _CODE.findall(codes)}
            listed.update(
                EQUIVALENT_CODES[code] for code in list(listed) if code in EQUIVALENT_CODES
            )
            found[line] = frozenset(listed)
        else:
            found[line] = frozenset()  # a bare noqa comment suppresses everything
    return found


def suppressed(code: str, codes: frozenset[str] | None) -> bool:
    """Whether a ``# noqa`` with these codes suppresses ``code`` (prefixes count)."""
    if codes is None:
        return False
    if not codes:
        return True
    return any(code.startswith(prefix) for prefix in codes)
