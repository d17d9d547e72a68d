"""A fast pre-order walk over a libcst tree, in exactly libcst's own visiting order.

``CSTVisitor`` rebuilds every node it passes (each one is reconstructed and validated on
the way back up), which costs several times the parse. Reading a tree needs none of that:
this walk follows the same children in the same order without building anything.

The order is learned from libcst itself: the first time a node type is met, its own
``_visit_and_replace_children`` runs once with a recording visitor that does not descend,
and the attribute names it visits, in order, are that type's order. So a decorator is
walked before the function it decorates and ``a if test else b`` visits ``a`` first, as
libcst does; anchors counted here match anchors counted by any ``CSTVisitor``.
Whitespace, comments and punctuation are skipped: they hold no calls and no names.
"""

from __future__ import annotations

import dataclasses

import libcst as cst

_SKIPPED_ATTRIBUTES = frozenset(
    {
        "lpar",
        "rpar",
        "comma",
        "semicolon",
        "leading_lines",
        "trailing_whitespace",
        "lines_after_decorators",
        "header",
        "footer",
        "equal",
        "colon",
        "dot",
        "operator",
        "asynchronous",
        "star",
        "newline",
        "comment",
        "whitespace",
    }
)

#: Node type -> names of the attributes to walk, in libcst's visiting order.
_ORDER: dict[type[cst.CSTNode], tuple[str, ...]] = {}


class _Recorder(cst.CSTVisitor):
    def __init__(self, root: cst.CSTNode) -> None:
        super().__init__()
        self.root = root
        self.attributes: list[str] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        return node is self.root

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        if node is self.root and attribute not in self.attributes:
            self.attributes.append(attribute)


def child_attributes(node: cst.CSTNode) -> tuple[str, ...]:
    """The attributes of ``node`` that may hold code, in libcst's visiting order."""
    node_type = type(node)
    order = _ORDER.get(node_type)
    if order is None:
        recorder = _Recorder(node)
        node.visit(recorder)
        # A few types skip an attribute that is None on this instance (an f-string
        # expression without a format spec); it comes last in source order, so append the
        # fields not seen to the end.
        names = [*recorder.attributes]
        names.extend(f.name for f in dataclasses.fields(node) if f.name not in names)
        order = tuple(
            name
            for name in names
            if name not in _SKIPPED_ATTRIBUTES and not name.startswith("whitespace")
        )
        _ORDER[node_type] = order
    return order
