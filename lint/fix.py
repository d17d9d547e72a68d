"""Autofixes, applied as libcst transformations so that formatting and comments survive.

A finding's fix names the anchor of the call it rewrites. The fixer parses the file
again, finds those calls by walking the tree in the same order as the extractor, and
rewrites them:

``async-sleep``
    ``time.sleep(x)`` becomes ``await asyncio.sleep(x)`` (``trio.sleep``, ``anyio.sleep``),
    adding the import when the module lacks it.
``add-await``
    ``fetch()`` becomes ``await fetch()``.
``keep-task-reference``
    ``asyncio.create_task(job())`` becomes three statements that keep the task in a
    module-level set until it is done, and the set is defined after the imports (under a
    name the module does not use yet, unless it is a set an earlier fix defined).

Imports are added with libcst's ``AddImportsVisitor`` codemod, and only those the new code
uses; a module that already names the framework (``import asyncio as aio``, an import in
``try: ... except ImportError``) keeps its own name. The result must compile, or the file
is left untouched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor

from concurrency_lint.rules.base import Fix

TASK_SET = "_background_tasks"


@dataclass(frozen=True, slots=True)
class FixResult:
    """The new source of a file and how many fixes went into it."""

    source: bytes
    applied: int


class FixError(Exception):
    """The fixes could not be applied to a file (it is left unchanged)."""


class _AnchorFinder(cst.CSTVisitor):
    """Maps anchors to nodes, counting exactly as the extractor does."""

    def __init__(self, wanted: Mapping[int, Fix]) -> None:
        super().__init__()
        self.wanted = wanted
        self.count = 0
        self.nodes: dict[int, Fix] = {}  # id(node) -> fix

    def _anchor(self, node: cst.CSTNode) -> None:
        fix = self.wanted.get(self.count)
        if fix is not None:
            self.nodes[id(node)] = fix
        self.count += 1

    def visit_Call(self, node: cst.Call) -> None:
        self._anchor(node)

    def visit_WithItem(self, node: cst.WithItem) -> None:
        self._anchor(node)


class _Fixer(cst.CSTTransformer):
    def __init__(
        self,
        nodes: Mapping[int, Fix],
        context: CodemodContext,
        task_name: str,
        task_set: tuple[str, bool],
    ) -> None:
        super().__init__()
        self.nodes = nodes
        self.context = context
        self.task_name = task_name
        #: The module-level set keeping tasks, and whether it must be defined.
        self.task_set, self.define_task_set = task_set
        self.applied = 0
        self.needs_task_set = False
        #: How the set's annotation names asyncio ("" when it cannot).
        self.asyncio_name = ""

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        fix = self.nodes.get(id(original_node))
        if fix is None:
            return updated_node
        if fix.kind == "add-await":
            self.applied += 1
            return cst.Await(expression=updated_node)
        if fix.kind == "async-sleep":
            self.applied += 1
            name = fix.name or f"+{fix.framework}"
            if name.startswith("+"):
                name = name[1:]
                AddImportsVisitor.add_needed_import(self.context, name)
            sleep = updated_node.with_changes(
                func=cst.Attribute(value=cst.Name(name), attr=cst.Name("sleep"))
            )
            return cst.Await(expression=sleep)
        return updated_node

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement]:
        targets: dict[int, Fix] = {
            index: fix
            for index, statement in enumerate(original_node.body)
            if isinstance(statement, cst.Expr)
            and isinstance(statement.value, cst.Call)
            and (fix := self.nodes.get(id(statement.value))) is not None
            and fix.kind == "keep-task-reference"
        }
        if not targets:
            return updated_node
        body: list[cst.BaseSmallStatement] = []
        for index, statement in enumerate(updated_node.body):
            if index not in targets:
                body.append(statement)
                continue
            assert isinstance(statement, cst.Expr)
            body.extend(self._keep_reference(statement.value))
            self.applied += 1
            self.asyncio_name = self.asyncio_name or targets[index].name
        self.needs_task_set = True
        if len(updated_node.body) > 1:
            return updated_node.with_changes(body=body)
        # One statement per line, the comment staying on the line that creates the task.
        first, *rest = body
        lines: list[cst.BaseStatement] = [updated_node.with_changes(body=[first])]
        lines.extend(cst.SimpleStatementLine(body=[statement]) for statement in rest)
        return cst.FlattenSentinel(lines)

    def _keep_reference(self, call: cst.BaseExpression) -> list[cst.BaseSmallStatement]:
        task = cst.Name(self.task_name)
        tasks = self.task_set
        return [
            cst.Assign(targets=[cst.AssignTarget(target=task)], value=call),
            cst.Expr(cst.parse_expression(f"{tasks}.add({self.task_name})")),
            cst.Expr(cst.parse_expression(f"{self.task_name}.add_done_callback({tasks}.discard)")),
        ]

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        if not self.needs_task_set or not self.define_task_set:
            return updated_node
        # The imports the definition uses, and only those.
        AddImportsVisitor.add_needed_import(self.context, "typing", "Any")
        asyncio_name = self.asyncio_name
        if asyncio_name.startswith("+"):
            asyncio_name = asyncio_name[1:]
            AddImportsVisitor.add_needed_import(self.context, asyncio_name)
        element = f"{asyncio_name}.Future[Any]" if asyncio_name else "Any"
        definition = cst.parse_statement(
            f"{self.task_set}: set[{element}] = set()\n",
            config=updated_node.config_for_parsing,
        )
        body = list(updated_node.body)
        position = _after_imports(body)
        definition = definition.with_changes(leading_lines=[cst.EmptyLine()])
        if position < len(body):
            following = body[position]
            if not getattr(following, "leading_lines", None):
                body[position] = following.with_changes(leading_lines=[cst.EmptyLine()])
        body.insert(position, definition)
        return updated_node.with_changes(body=body)


def _task_set(module: cst.Module, source: str) -> tuple[str, bool]:
    """The module-level set the task fix keeps tasks in, and whether it must be defined.

    A set an earlier fix defined (``NAME: ... = set()`` at module level) is reused; a name
    the module uses for anything else is not (``_background_tasks = []`` would break).
    """
    number = 0
    while True:
        name = TASK_SET if number == 0 else f"{TASK_SET}_{number}"
        if not re.search(rf"\b{re.escape(name)}\b", source):
            return name, True
        if _defines_empty_set(module, name):
            return name, False
        number += 1


def _defines_empty_set(module: cst.Module, name: str) -> bool:
    """Whether the module's only binding of ``name`` at module level is ``name = set()``."""
    found = False
    for statement in module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if isinstance(small, cst.AnnAssign):
                targets, value = [small.target], small.value
            elif isinstance(small, cst.Assign):
                targets, value = [t.target for t in small.targets], small.value
            else:
                continue
            if not any(isinstance(t, cst.Name) and t.value == name for t in targets):
                continue
            is_set = (
                isinstance(value, cst.Call)
                and isinstance(value.func, cst.Name)
                and value.func.value == "set"
                and not value.args
            )
            if found or not is_set:
                return False
            found = True
    return found


def _after_imports(body: Sequence[cst.BaseStatement]) -> int:
    """Where module-level definitions go: after the docstring and the leading imports."""
    position = 0
    for index, statement in enumerate(body):
        if not isinstance(statement, cst.SimpleStatementLine):
            break
        small = statement.body[0] if statement.body else None
        is_docstring = (
            index == 0
            and isinstance(small, cst.Expr)
            and isinstance(small.value, (cst.SimpleString, cst.ConcatenatedString))
        )
        if is_docstring or isinstance(small, (cst.Import, cst.ImportFrom)):
            position = index + 1
            continue
        break
    return position


def _free_name(source: str, base: str) -> str:
    """A local name for the task that the module does not already use."""
    candidate = base
    number = 0
    while re.search(rf"\b{re.escape(candidate)}\b", source):
        number += 1
        candidate = f"{base}_{number}"
    return candidate


def apply_fixes(source: bytes, fixes: Mapping[int, Fix]) -> FixResult:
    """Apply fixes (by anchor) to a file's source; raises :class:`FixError` on failure."""
    if not fixes:
        return FixResult(source, 0)
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        raise FixError(f"cannot parse: {error.message}") from None
    finder = _AnchorFinder(fixes)
    module.visit(finder)
    if len(finder.nodes) != len(fixes):
        raise FixError("the file changed since it was linted")
    context = CodemodContext()
    text = module.code
    fixer = _Fixer(finder.nodes, context, _free_name(text, "_task"), _task_set(module, text))
    fixed = module.visit(fixer)
    fixed = AddImportsVisitor(context).transform_module(fixed)
    result = fixed.bytes
    try:
        # Compiled, not only parsed: ``await`` where it is not allowed passes the parser.
        compile(result, "<fixed>", "exec", dont_inherit=True)
    except SyntaxError as error:  # pragma: no cover - a bug in a fix, never in user code
        raise FixError(f"the fixed code would not compile ({error.msg}); left unchanged") from None
    except (ValueError, RecursionError, MemoryError):
        pass  # too deep for the compiler here: the parse above accepted it
    return FixResult(result, fixer.applied)
