"""Turn one module's libcst tree into :class:`~concurrency_lint.facts.FileFacts`.

This is the only place that walks a syntax tree for the rules, and it walks it once. It
keeps a stack of contexts (module, class, function, lambda, comprehension), records every
binding of every scope, and notes each call with a reference to its callee. Only when the
whole module has been seen are the references resolved, because a name may be bound after
the function that uses it (an import at the bottom of the module, a method defined after
its caller). Resolution follows imports and aliases (``from time import sleep as nap``), and
types where the code shows them: a constructor call, an annotation, ``with X() as v``,
``self.lock = threading.Lock()`` in any method of the class.
"""

from __future__ import annotations

import builtins
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import libcst as cst

from concurrency_lint import catalogue
from concurrency_lint.facts import (
    ARGUMENT,
    AWAITED,
    AWAITED_RESULT,
    DROPPED,
    ITERATED,
    OTHER,
    RESULT,
    RETURNED,
    STORED,
    SUPER,
    ArgRef,
    CallFact,
    ClassFacts,
    FileFacts,
    FunctionFacts,
    Literal,
)
from concurrency_lint.walk import _ORDER, child_attributes

_BUILTIN_NAMES = frozenset(dir(builtins))
_FRAMEWORKS = catalogue.FRAMEWORK_OF_LIBRARY
_ARITHMETIC = (
    cst.Add,
    cst.Subtract,
    cst.Multiply,
    cst.Divide,
    cst.FloorDivide,
    cst.Modulo,
    cst.Power,
    cst.LeftShift,
    cst.RightShift,
    cst.BitAnd,
    cst.BitOr,
    cst.BitXor,
    cst.MatrixMultiply,
)
_AUGMENTED_ARITHMETIC = (
    cst.AddAssign,
    cst.SubtractAssign,
    cst.MultiplyAssign,
    cst.DivideAssign,
    cst.FloorDivideAssign,
    cst.ModuloAssign,
    cst.PowerAssign,
    cst.LeftShiftAssign,
    cst.RightShiftAssign,
    cst.BitAndAssign,
    cst.BitOrAssign,
    cst.BitXorAssign,
    cst.MatrixMultiplyAssign,
)
#: Callees whose arguments decide whether they block (a numeric host needs no DNS).
_HINTED_CALLEES = frozenset({"getaddrinfo", "getnameinfo", "gethostbyname", "gethostbyname_ex"})


#: Builtins that run through an iterable they are given: ``list(path.glob("*"))``.
_CONSUMERS = frozenset(
    {
        "list",
        "tuple",
        "set",
        "frozenset",
        "sorted",
        "dict",
        "next",
        "sum",
        "min",
        "max",
        "any",
        "all",
    }
)

#: pytest markers that run a test under a framework (pytest-trio, anyio's plugin,
#: pytest-asyncio): evidence of the framework even without an import.
_MARKER_FRAMEWORKS = {
    "pytest.mark.trio": "trio",
    "pytest.mark.anyio": "anyio",
    "pytest.mark.asyncio": "asyncio",
}

#: Calls showing that a socket or file descriptor is used in non-blocking mode.
_NONBLOCKING_MARKERS = frozenset(
    {
        "setblocking",
        "settimeout",
        "wait_readable",
        "wait_writable",
        "wait_socket_readable",
        "wait_socket_writable",
        "from_stdlib_socket",  # trio makes the socket non-blocking
    }
)


def _catches_blocking_io_error(expression: cst.BaseExpression | None) -> bool:
    if expression is None:
        return False
    if isinstance(expression, cst.Tuple):
        return any(_catches_blocking_io_error(element.value) for element in expression.elements)
    dotted = _dotted(expression)
    return dotted is not None and dotted.rpartition(".")[2] == "BlockingIOError"


def _hints(args: Sequence[cst.Arg]) -> tuple[str, ...]:
    """Identifiers and short string literals in some arguments."""
    found: list[str] = []
    pending: list[cst.CSTNode] = [arg.value for arg in args]
    while pending and len(found) < 32:
        node = pending.pop()
        if isinstance(node, cst.Name):
            found.append(node.value)
        elif isinstance(node, cst.Attribute):
            found.append(node.attr.value)
            pending.append(node.value)
        elif isinstance(node, cst.SimpleString) and len(node.value) <= 66:
            value = node.evaluated_value
            if isinstance(value, str):
                found.append(value)
        elif isinstance(node, cst.BinaryOperation):
            pending.extend((node.left, node.right))
        elif isinstance(node, cst.Tuple):
            pending.extend(element.value for element in node.elements)
    return tuple(found)


# A type source says how to find the type of a value once every binding is known. It is a
# tuple whose first item names its kind:
#   ("call", CallFact)            the value returned by that call
#   ("await", CallFact)           the value of awaiting that call
#   ("ref", scope, name, attrs)   another name, possibly with attributes: ``x = y.z``
#   ("ann", scope, expression)    an annotation
#   ("type", qualname)            a literal's type: ``builtins.str``
#   ("item", source, index)       one element of a tuple-typed source
#   ("enter", source)             the target of ``with source as v``
#   ("div", source)               ``source / "part"`` (pathlib)
#   ("attrs", source, attrs)      attributes of another source: ``Path(p).parent``
#   ("self", class qualname)      the ``self`` parameter of a method
#   ("none",)                     the literal ``None``
#   ("or", left, right)           ``left or right``: the side whose type is known
#   ("prefer", value, annotation) the annotation's type, unless the value's refines it
TypeSource = tuple[Any, ...]

# A binding: ("import", qualname), ("def", qualname), ("class", qualname),
# ("value", TypeSource) or ("unknown",).
Binding = tuple[Any, ...]

#: A resolved value: ("qual", qualified name of a module, function or class) or
#: ("inst", qualified name of the type of an instance).
Resolved = tuple[str, str]


class _Scope:
    __slots__ = ("bindings", "declared_global", "kind", "parent", "prefix")

    def __init__(self, kind: str, parent: _Scope | None, prefix: str) -> None:
        self.kind = kind
        self.parent = parent
        #: Qualified name prefix for definitions made in this scope.
        self.prefix = prefix
        self.bindings: dict[str, list[Binding]] = {}
        self.declared_global: set[str] = set()

    def bind(self, name: str, binding: Binding) -> None:
        found = self.bindings.get(name)
        if found is None:
            self.bindings[name] = [binding]
        else:
            found.append(binding)


@dataclass(slots=True)
class _Frame:
    """A function, lambda or the module body: where calls are owned."""

    facts: FunctionFacts | None
    owner: str
    is_async: bool
    #: How often each name occurs in the frame (stores included), for "stored but never
    #: read" checks.
    names: dict[str, int] = field(default_factory=dict)
    stored: list[CallFact] = field(default_factory=list)
    #: How many enclosing ``try``/``with`` blocks expect ``BlockingIOError``.
    guards: int = 0
    #: Receivers (``lock``, ``self.lock``) assigned a new object earlier in this frame.
    fresh: set[str] = field(default_factory=set)
    #: Local names assigned a new object earlier in this frame that nothing else can have
    #: seen yet: not passed, stored, returned or captured since, nor rebound. Value: the
    #: loops enclosing the assignment (a use in a loop entered after it may be a repeat).
    private: dict[str, tuple[int, ...]] = field(default_factory=dict)
    #: The first names of the dotted entries of ``private`` (``self`` for ``self.lock``).
    private_heads: set[str] = field(default_factory=set)
    #: Receivers known to be non-blocking here: ``sock.setblocking(False)`` was called, or
    #: the code awaits ``wait_readable(sock)`` before using it. Value: the blocks enclosing
    #: that call (it says nothing about code outside them).
    nonblocking: dict[str, tuple[int, ...]] = field(default_factory=dict)
    #: The bodies that may run or not (``if``, ``else``, ``for``, ``while``, ``try``,
    #: ``except``, ``case``; not ``with`` or ``finally``) enclosing the current node in this
    #: frame, and which of them are loops (comprehensions included).
    blocks: list[int] = field(default_factory=list)
    loops: list[int] = field(default_factory=list)

    def is_private(self, name: str) -> bool:
        """Whether ``name`` holds an object only this code has seen, and the current node
        is not in a loop entered after it was made."""
        created = self.private.get(name)
        return created is not None and created[: len(self.loops)] == tuple(self.loops)

    def is_nonblocking(self, receiver: str) -> bool:
        marked = self.nonblocking.get(receiver)
        return marked is not None and tuple(self.blocks[: len(marked)]) == marked


@dataclass(slots=True)
class _PendingCall:
    fact: CallFact
    scope: _Scope
    #: ("chain", name, attrs) or ("expr", TypeSource, attrs), or None.
    callee: tuple[Any, ...] | None
    #: Argument key -> reference to resolve: ("chain", name, attrs), ("lambda", qualname),
    #: ("expr", TypeSource, attrs) or ("call", id of the inner call node).
    arg_refs: dict[str, tuple[Any, ...]]
    resolved: bool = False


def _head_name(node: cst.BaseExpression) -> cst.BaseExpression:
    """``self`` for ``self.lock``: the first name of an attribute chain."""
    while isinstance(node, cst.Attribute):
        node = node.value
    return node


def _escape(frame: _Frame, name: str) -> None:
    """Forget the private objects a name can reach: ``lock``, or ``self.lock`` for ``self``."""
    frame.private.pop(name, None)
    if name in frame.private_heads:
        frame.private_heads.discard(name)
        prefix = name + "."
        for key in [key for key in frame.private if key.startswith(prefix)]:
            del frame.private[key]


def _dotted(node: cst.BaseExpression) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr.value}"
    return None


def _literal(node: cst.BaseExpression) -> tuple[bool, Literal]:
    if isinstance(node, cst.Name):
        if node.value == "True":
            return True, True
        if node.value == "False":
            return True, False
        if node.value == "None":
            return True, None
        return False, None
    if isinstance(node, cst.Integer):
        try:
            return True, int(node.value, 0)
        except ValueError:
            return False, None
    if isinstance(node, cst.Float):
        try:
            return True, float(node.value)
        except ValueError:
            return False, None
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        # ``acquire(timeout=-1)``: no timeout.
        is_literal, value = _literal(node.expression)
        if is_literal and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, -value
    return False, None


class Extractor:
    """Collects the facts of one module in one walk of its tree."""

    def __init__(self, module: str, is_package: bool) -> None:
        self.facts = FileFacts(module=module, is_package=is_package)
        self._module_scope = _Scope("module", None, module)
        self._scope = self._module_scope
        self._frames = [_Frame(None, module, False)]
        self._classes: list[tuple[ClassFacts, str | None]] = []  # (facts, self name)
        self._anchor = 0
        self._usage: dict[int, tuple[str, str | None]] = {}
        self._pending: list[_PendingCall] = []
        self._pending_by_anchor: dict[int, _PendingCall] = {}
        self._function_nodes: dict[int, FunctionFacts] = {}
        self._resolving: set[tuple[int, str]] = set()
        self._calls_by_node: dict[int, CallFact] = {}
        #: Name nodes whose occurrence does not let a private object escape: the target of
        #: the assignment that made it, the receiver of a method call, a ``with`` item.
        self._benign_names: set[int] = set()
        self._made_private = False  # (most modules make none: skip the checks)
        #: Inside ``if TYPE_CHECKING:``, and the imports made there (bound for the type
        #: checker, not when the code runs).
        self._type_checking = 0
        self._typing_only: set[int] = set()
        #: Inner call node -> the call of a method on its result, waiting for its anchor.
        self._method_of: dict[int, CallFact] = {}
        self._lambda_names: dict[int, str] = {}
        self._lambda_count = 0
        self._async_with_items: set[int] = set()
        #: Anchors of call statements in async code whose arguments are not one positional
        #: argument (``time.sleep(secs=1)``, ``time.sleep(*delays)``): the sleep fix cannot
        #: pass them on to the framework's sleep.
        self._irregular_arguments: set[int] = set()
        self._guarded_bodies: set[int] = set()
        self._nonblocking_attributes: set[tuple[str, str]] = set()
        #: ... unless a method makes it blocking again.
        self._blocking_attributes: set[tuple[str, str]] = set()
        self._attribute_sources: dict[str, dict[str, list[tuple[_Scope, TypeSource]]]] = {}
        self._decorators: list[tuple[FunctionFacts, _Scope, list[cst.BaseExpression]]] = []
        self._bases: list[tuple[ClassFacts, _Scope, list[cst.BaseExpression]]] = []
        self._returns: dict[int, tuple[FunctionFacts, _Scope, cst.BaseExpression]] = {}
        self._class_scopes: list[tuple[ClassFacts, _Scope]] = []
        self._class_decorators: list[tuple[ClassFacts, _Scope, list[cst.BaseExpression]]] = []
        #: The marks of a module-level ``pytestmark``.
        self._pytestmarks: list[cst.BaseExpression] = []
        self._type_memo: dict[int, str | tuple[str, ...] | None] = {}
        self._in_progress: set[int] = set()
        self._attribute_memo: dict[tuple[str, str], str | None] = {}

    # -- the walk -----------------------------------------------------------------------------

    def walk(self, node: cst.CSTNode) -> None:
        """Visit ``node`` and its subtree in libcst's order (see :mod:`.walk`)."""
        node_type = type(node)
        handler = _VISIT.get(node_type)
        if handler is not None:
            handler(self, node)
        has_body_hooks = node_type in _ENTER_BODY
        walk = self.walk
        order = _ORDER.get(node_type)
        if order is None:
            order = child_attributes(node)
        for attribute in order:
            value = getattr(node, attribute)
            if has_body_hooks and attribute == "body":
                _ENTER_BODY[node_type](self, node)
            if isinstance(value, cst.CSTNode):
                walk(value)
            elif type(value) is tuple or type(value) is list:
                for item in value:
                    if isinstance(item, cst.CSTNode):
                        walk(item)
            if has_body_hooks and attribute == "body":
                _LEAVE_BODY[node_type](self, node)
        handler = _LEAVE.get(node_type)
        if handler is not None:
            handler(self, node)

    # -- scopes and frames ------------------------------------------------------------------

    @property
    def _frame(self) -> _Frame:
        return self._frames[-1]

    def _bind_target(self, target: cst.BaseExpression, source: TypeSource | None) -> None:
        """Bind the names an assignment target stores into."""
        if isinstance(target, cst.Name):
            self._bind_name(target.value, ("value", source) if source else ("unknown",))
        elif isinstance(target, (cst.Tuple, cst.List)):
            for index, element in enumerate(target.elements):
                if isinstance(element, cst.Element):
                    item = ("item", source, index) if source is not None else None
                    self._bind_target(element.value, item)
                else:
                    self._bind_target(element.value, None)
        elif isinstance(target, cst.Attribute):
            self._note_self_attribute(target, source)
        elif isinstance(target, cst.StarredElement):
            self._bind_target(target.value, None)

    def _bind_name(self, name: str, binding: Binding) -> None:
        if self._made_private:
            _escape(self._frame, name)
        scope = self._scope
        if name in scope.declared_global:
            scope = self._module_scope
        scope.bind(name, binding)

    def _note_self_attribute(self, target: cst.Attribute, source: TypeSource | None) -> None:
        if not self._classes or source is None:
            return
        class_facts, self_name = self._classes[-1]
        if self_name is None or not isinstance(target.value, cst.Name):
            return
        if target.value.value != self_name:
            return
        by_attribute = self._attribute_sources.setdefault(class_facts.qualname, {})
        by_attribute.setdefault(target.attr.value, []).append((self._scope, source))

    def _source_of(self, node: cst.BaseExpression) -> TypeSource | None:
        """How to find the type of an expression's value later."""
        if isinstance(node, cst.Call):
            # The Call is visited after this statement, so remember the node and let the
            # call's fact fill in once created.
            return ("callnode", id(node))
        if isinstance(node, cst.Await) and isinstance(node.expression, cst.Call):
            return ("awaitnode", id(node.expression))
        if isinstance(node, (cst.Name, cst.Attribute)):
            dotted = _dotted(node)
            if dotted is not None:
                if dotted == "None":
                    return ("none",)
                head, *attrs = dotted.split(".")
                return ("ref", self._scope, head, tuple(attrs))
            attributes: list[str] = []
            inner: cst.BaseExpression = node
            while isinstance(inner, cst.Attribute):
                attributes.append(inner.attr.value)
                inner = inner.value
            inner_source = self._source_of(inner)
            if inner_source is None:
                return None
            return ("attrs", inner_source, tuple(reversed(attributes)))
        if isinstance(node, (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString)):
            return ("type", "builtins.str")
        if isinstance(node, (cst.List, cst.ListComp)):
            return ("type", "builtins.list")
        if isinstance(node, (cst.Dict, cst.DictComp)):
            return ("type", "builtins.dict")
        if isinstance(node, (cst.Set, cst.SetComp)):
            return ("type", "builtins.set")
        if isinstance(node, cst.Integer):
            return ("type", "builtins.int")
        if isinstance(node, cst.Float):
            return ("type", "builtins.float")
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Divide):
            left = self._source_of(node.left)
            return ("div", left) if left is not None else None
        if isinstance(node, cst.BooleanOperation) and isinstance(node.operator, cst.Or):
            # ``session or requests.Session()``: whichever side has a known type.
            return ("or", self._source_of(node.left), self._source_of(node.right))
        return None

    def _new_lambda_name(self, node: cst.Lambda) -> str:
        name = self._lambda_names.get(id(node))
        if name is None:
            self._lambda_count += 1
            name = f"{self._frame.owner}.<lambda{self._lambda_count}>"
            self._lambda_names[id(node)] = name
        return name

    def _enter_function(self, node: cst.FunctionDef | cst.Lambda, facts: FunctionFacts) -> None:
        in_class = self._scope.kind == "class"
        prefix = f"{facts.qualname}.<locals>"
        scope = _Scope("function", self._scope, prefix)
        params = node.params
        all_params: list[cst.Param] = [*params.posonly_params, *params.params]
        for index, param in enumerate(all_params):
            source: TypeSource | None = None
            if index == 0 and in_class and self._classes and isinstance(node, cst.FunctionDef):
                kind = _method_kind(node)
                class_name = self._classes[-1][0].qualname
                if kind == "method":
                    source = ("self", class_name)
                    self._classes[-1] = (self._classes[-1][0], param.name.value)
                elif kind == "classmethod":
                    scope.bind(param.name.value, ("class", class_name))
                    continue
            if source is None and param.annotation is not None:
                source = ("ann", self._scope, param.annotation.annotation)
            scope.bind(param.name.value, ("value", source) if source else ("unknown",))
        for param in params.kwonly_params:
            annotation = param.annotation
            source = ("ann", self._scope, annotation.annotation) if annotation else None
            scope.bind(param.name.value, ("value", source) if source else ("unknown",))
        for extra in (params.star_arg, params.star_kwarg):
            if isinstance(extra, cst.Param):
                scope.bind(extra.name.value, ("unknown",))
        self._scope = scope
        is_async = isinstance(node, cst.FunctionDef) and node.asynchronous is not None
        self._frames.append(_Frame(facts, facts.qualname, is_async))

    def _leave_function(self) -> None:
        frame = self._frames.pop()
        assert self._scope.parent is not None
        self._scope = self._scope.parent
        names = frame.names
        for stored in frame.stored:
            if stored.var is not None and names.get(stored.var, 0) <= 1:
                stored.var_unused = True
        parent = self._frames[-1].names
        for name, count in names.items():
            parent[name] = parent.get(name, 0) + count

    def _add_function(self, facts: FunctionFacts) -> None:
        existing = self.facts.functions.get(facts.qualname)
        if existing is not None and existing.is_async != facts.is_async:
            facts.ambiguous = True
        self.facts.functions[facts.qualname] = facts

    # -- visitors -------------------------------------------------------------------------

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        qualname = f"{self._scope.prefix}.{node.name.value}"
        facts = FunctionFacts(qualname, node.name.value, node.asynchronous is not None)
        if node.decorators:
            self._decorators.append(
                (facts, self._scope, [decorator.decorator for decorator in node.decorators])
            )
        if node.returns is not None:
            self._returns[id(facts)] = (facts, self._scope, node.returns.annotation)
        self._add_function(facts)
        self._bind_name(node.name.value, ("def", qualname))
        if self._scope.kind == "class" and self._classes:
            self._classes[-1][0].methods[node.name.value] = qualname
        self._function_nodes[id(node)] = facts

    def enter_FunctionDef_body(self, node: cst.FunctionDef) -> None:
        self._enter_function(node, self._function_nodes[id(node)])

    def leave_FunctionDef_body(self, node: cst.FunctionDef) -> None:
        self._leave_function()

    def visit_Lambda(self, node: cst.Lambda) -> None:
        facts = FunctionFacts(self._new_lambda_name(node), "<lambda>", False)
        self._add_function(facts)
        self._function_nodes[id(node)] = facts

    def enter_Lambda_body(self, node: cst.Lambda) -> None:
        self._enter_function(node, self._function_nodes[id(node)])

    def leave_Lambda_body(self, node: cst.Lambda) -> None:
        self._leave_function()

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        qualname = f"{self._scope.prefix}.{node.name.value}"
        facts = ClassFacts(qualname)
        self.facts.classes[qualname] = facts
        self._bind_name(node.name.value, ("class", qualname))
        bases = [arg.value for arg in node.bases if not arg.star]
        if bases:
            self._bases.append((facts, self._scope, bases))
        if node.decorators:
            decorators = [decorator.decorator for decorator in node.decorators]
            self._class_decorators.append((facts, self._scope, decorators))

    def enter_ClassDef_body(self, node: cst.ClassDef) -> None:
        qualname = f"{self._scope.prefix}.{node.name.value}"
        self._scope = _Scope("class", self._scope, qualname)
        self._class_scopes.append((self.facts.classes[qualname], self._scope))
        self._classes.append((self.facts.classes[qualname], None))

    def leave_ClassDef_body(self, node: cst.ClassDef) -> None:
        self._classes.pop()
        assert self._scope.parent is not None
        self._scope = self._scope.parent

    def _enter_comprehension(self, node: cst.CSTNode) -> None:
        facts = self._frame.facts
        if facts is not None:
            facts.has_loop = True
        self._scope = _Scope("comprehension", self._scope, self._scope.prefix)
        self._enter_loop(node)

    def _leave_comprehension(self, node: cst.CSTNode) -> None:
        assert self._scope.parent is not None
        self._scope = self._scope.parent
        self._leave_loop(node)

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self._bind_target(node.target, None)
        if isinstance(node.iter, cst.Call):
            self._usage[id(node.iter)] = (ITERATED, None)

    def visit_For(self, node: cst.For) -> None:
        facts = self._frame.facts
        if facts is not None:
            facts.has_loop = True
        self._bind_target(node.target, None)
        if isinstance(node.iter, cst.Call):
            self._usage[id(node.iter)] = (ITERATED, None)

    def visit_While(self, node: cst.While) -> None:
        facts = self._frame.facts
        if facts is not None:
            facts.has_loop = True

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        facts = self._frame.facts
        if facts is not None and isinstance(node.operator, _ARITHMETIC):
            facts.has_arithmetic = True

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if isinstance(node.target, cst.Name) and node.target.value == "__all__":
            self.facts.all_names = None  # ``__all__ += other.__all__``: not a literal
        facts = self._frame.facts
        if facts is not None and isinstance(node.operator, _AUGMENTED_ARITHMETIC):
            facts.has_arithmetic = True

    def _side_effect(self, node: cst.CSTNode) -> None:
        facts = self._frame.facts
        if facts is not None:
            facts.has_side_effects = True

    def visit_Yield(self, node: cst.Yield) -> None:
        facts = self._frame.facts
        if facts is not None:
            facts.is_generator = True

    def visit_Await(self, node: cst.Await) -> None:
        self._side_effect(node)
        if isinstance(node.expression, cst.Call):
            self._usage[id(node.expression)] = (AWAITED, None)

    def visit_Expr(self, node: cst.Expr) -> None:
        self._drop(node.value)

    def _drop(self, node: cst.BaseExpression) -> None:
        """Mark the calls whose value an expression statement throws away: the statement
        itself, either branch of ``a if c else b``, the operands of ``and`` / ``or``, the
        items of a tuple, the elements of a list, set or dict comprehension (a generator
        expression left alone runs nothing)."""
        if isinstance(node, cst.Call):
            self._usage[id(node)] = (DROPPED, None)
        elif isinstance(node, cst.IfExp):
            self._drop(node.body)
            self._drop(node.orelse)
        elif isinstance(node, cst.BooleanOperation):
            self._drop(node.left)
            self._drop(node.right)
        elif isinstance(node, cst.Tuple):
            for element in node.elements:
                self._drop(element.value)
        elif isinstance(node, (cst.ListComp, cst.SetComp)):
            self._drop(node.elt)
        elif isinstance(node, cst.DictComp):
            self._drop(node.key)
            self._drop(node.value)

    def visit_Return(self, node: cst.Return) -> None:
        if isinstance(node.value, cst.Call):
            self._usage[id(node.value)] = (RETURNED, None)

    def visit_Assign(self, node: cst.Assign) -> None:
        source = self._source_of(node.value)
        if self._scope is self._module_scope:
            self._note_all(node)
            if any(
                isinstance(t.target, cst.Name) and t.target.value == "pytestmark"
                for t in node.targets
            ):
                value = node.value
                marks = value.elements if isinstance(value, (cst.List, cst.Tuple)) else None
                self._pytestmarks.extend([e.value for e in marks] if marks else [value])
        for assign_target in node.targets:
            self._bind_target(assign_target.target, source)
            if (
                source is not None
                and self._scope.kind == "class"
                and self._classes
                and isinstance(assign_target.target, cst.Name)
            ):
                # ``lock = threading.Lock()`` in a class body: ``self.lock`` has that type.
                sources = self._attribute_sources.setdefault(self._classes[-1][0].qualname, {})
                sources.setdefault(assign_target.target.value, []).append((self._scope, source))
        frame = self._frame
        if frame.private:
            for assign_target in node.targets:
                dotted = _dotted(assign_target.target)
                if dotted is not None and "." in dotted:
                    frame.private.pop(dotted, None)  # ``self.lock = other``
        if len(node.targets) == 1 and isinstance(node.value, cst.Call):
            target = node.targets[0].target
            if isinstance(target, cst.Name):
                self._usage[id(node.value)] = (STORED, target.value)
            self._make_private(target)
            dotted = _dotted(target)
            if dotted is not None:
                self._frame.fresh.add(dotted)

    def _note_all(self, node: cst.Assign) -> None:
        """``__all__ = [...]`` at module level: what ``from module import *`` takes."""
        if not any(
            isinstance(t.target, cst.Name) and t.target.value == "__all__" for t in node.targets
        ):
            return
        names: list[str] | None = None
        if isinstance(node.value, (cst.List, cst.Tuple)):
            names = []
            for element in node.value.elements:
                value = element.value
                text = value.evaluated_value if isinstance(value, cst.SimpleString) else None
                if isinstance(element, cst.StarredElement) or not isinstance(text, str):
                    names = None
                    break
                names.append(text)
        self.facts.all_names = None if names is None else tuple(names)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        source: TypeSource = ("ann", self._scope, node.annotation.annotation)
        if node.value is not None:
            value = self._source_of(node.value)
            if value is not None:
                # ``q: Queue[int] = Queue()``: the value says more (an unbounded queue).
                source = ("prefer", value, source)
            if isinstance(node.value, cst.Call) and isinstance(
                node.target, (cst.Name, cst.Attribute)
            ):
                dotted = _dotted(node.target)
                if dotted is not None:
                    self._frame.fresh.add(dotted)
        if isinstance(node.target, cst.Name):
            self._bind_name(node.target.value, ("value", source))
            if self._scope.kind == "class" and self._classes:
                sources = self._attribute_sources.setdefault(self._classes[-1][0].qualname, {})
                sources.setdefault(node.target.value, []).append((self._scope, source))
            if isinstance(node.value, cst.Call):
                self._usage[id(node.value)] = (STORED, node.target.value)
        elif isinstance(node.target, cst.Attribute):
            self._note_self_attribute(node.target, source)
        if isinstance(node.value, cst.Call):
            self._make_private(node.target)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._bind_target(node.target, self._source_of(node.value))

    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> None:
        if node.name is not None:
            self._bind_target(node.name.name, None)

    def visit_Global(self, node: cst.Global) -> None:
        self._side_effect(node)
        for item in node.names:
            self._scope.declared_global.add(item.name.value)

    def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
        self._side_effect(node)

    def _make_private(self, target: cst.BaseExpression) -> None:
        """``lock = threading.Lock()`` or ``self.lock = threading.Lock()``: nothing else has
        seen the new object yet."""
        if isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name):
            head = target.value  # ``self.lock``: a later use of ``self`` may share it
            dotted = f"{head.value}.{target.attr.value}"
        elif isinstance(target, cst.Name):
            head, dotted = target, target.value
        else:
            return
        frame = self._frame
        if dotted != head.value:
            frame.private_heads.add(head.value)
        frame.private[dotted] = tuple(frame.loops)
        self._benign_names.add(id(head))
        self._made_private = True

    def visit_Name(self, node: cst.Name) -> None:
        # A private object passed, stored, returned or captured by a nested function: other
        # code may hold it now (``Thread(target=worker, args=(lock,))``).
        frames = self._frames
        current = frames[-1]
        if self._made_private:
            if current.private and id(node) not in self._benign_names:
                _escape(current, node.value)
            for frame in frames[:-1]:
                if frame.private:
                    _escape(frame, node.value)
        names = current.names
        names[node.value] = names.get(node.value, 0) + 1

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            dotted = _dotted(alias.name)
            if dotted is None:
                continue
            self.facts.imported_modules.add(dotted)
            top = dotted.partition(".")[0]
            if top in _FRAMEWORKS:
                self.facts.frameworks.add(_FRAMEWORKS[top])
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                name, binding = alias.asname.name.value, ("import", dotted)
            else:
                name, binding = top, ("import", top)
            if self._type_checking:
                self._typing_only.add(id(binding))
            self._bind_name(name, binding)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        base = _dotted(node.module) if node.module is not None else ""
        if base is None:
            return
        if node.relative:
            package = (
                self.facts.module if self.facts.is_package else self.facts.module.rpartition(".")[0]
            )
            for _ in range(len(node.relative) - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}" if base else package
        if not base:
            return
        self.facts.imported_modules.add(base)
        top = base.partition(".")[0]
        if top in _FRAMEWORKS:
            self.facts.frameworks.add(_FRAMEWORKS[top])
        if isinstance(node.names, cst.ImportStar):
            if self._scope is self._module_scope:
                self.facts.star_imports.append(base)
            return
        for alias in node.names:
            if not isinstance(alias.name, cst.Name):
                continue
            name = alias.name.value
            qualname = f"{base}.{name}"
            self.facts.imported_modules.add(qualname)
            bound = name
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                bound = alias.asname.name.value
            binding = ("import", qualname)
            if self._type_checking:
                self._typing_only.add(id(binding))
            self._bind_name(bound, binding)

    def _enter_block(self, node: cst.CSTNode) -> None:
        self._frame.blocks.append(id(node))

    def _leave_block(self, node: cst.CSTNode) -> None:
        self._frame.blocks.pop()

    def _enter_loop(self, node: cst.CSTNode) -> None:
        frame = self._frame
        frame.blocks.append(id(node))
        frame.loops.append(id(node))

    def _leave_loop(self, node: cst.CSTNode) -> None:
        frame = self._frame
        frame.blocks.pop()
        frame.loops.pop()

    def enter_If_body(self, node: cst.If) -> None:
        self._enter_block(node)
        if (_dotted(node.test) or "").rpartition(".")[2] == "TYPE_CHECKING":
            self._type_checking += 1

    def leave_If_body(self, node: cst.If) -> None:
        self._leave_block(node)
        if (_dotted(node.test) or "").rpartition(".")[2] == "TYPE_CHECKING":
            self._type_checking -= 1

    def enter_Try_body(self, node: cst.Try) -> None:
        self._enter_block(node)
        if any(_catches_blocking_io_error(handler.type) for handler in node.handlers):
            self._frame.guards += 1
            self._guarded_bodies.add(id(node))

    def leave_Try_body(self, node: cst.Try) -> None:
        self._leave_block(node)
        if id(node) in self._guarded_bodies:
            self._frame.guards -= 1

    def enter_With_body(self, node: cst.With) -> None:
        for item in node.items:
            call = item.item
            if (
                isinstance(call, cst.Call)
                and (_dotted(call.func) or "").rpartition(".")[2] == "suppress"
                and any(_catches_blocking_io_error(arg.value) for arg in call.args)
            ):
                self._frame.guards += 1
                self._guarded_bodies.add(id(node))
                return

    def leave_With_body(self, node: cst.With) -> None:
        if id(node) in self._guarded_bodies:
            self._frame.guards -= 1

    def visit_With(self, node: cst.With) -> None:
        self._side_effect(node)
        for item in node.items:
            if node.asynchronous is not None:
                self._async_with_items.add(id(item))
            if item.asname is not None:
                source = self._source_of(item.item)
                self._bind_target(item.asname.name, ("enter", source) if source else None)
                if isinstance(item.item, cst.Call) and isinstance(item.asname.name, cst.Name):
                    self._frame.fresh.add(item.asname.name.value)

    def visit_WithItem(self, node: cst.WithItem) -> None:
        anchor = self._anchor
        self._anchor += 1
        if isinstance(node.item, cst.Call) or id(node) in self._async_with_items:
            return
        dotted = _dotted(node.item)
        if dotted is None:
            return
        head, *attrs = dotted.split(".")
        frame = self._frame
        if dotted in frame.private:
            self._benign_names.add(id(_head_name(node.item)))
        fact = CallFact(
            anchor=anchor,
            target=None,
            spelling=dotted,
            owner=frame.owner,
            in_async=frame.is_async,
            is_with=True,
            guarded=frame.guards > 0,
            fresh_receiver=dotted in frame.fresh,
            private_receiver=frame.is_private(dotted),
        )
        self._record(fact, ("chain", head, (*attrs, "__enter__")), {})

    def visit_Call(self, node: cst.Call) -> None:
        anchor = self._anchor
        self._anchor += 1
        outer = self._method_of.pop(id(node), None)
        if outer is not None:
            outer.receiver = anchor
        usage, var = self._usage.pop(id(node), (OTHER, None))
        callee, spelling = self._callee(node.func)
        consumes = spelling in _CONSUMERS
        for arg in node.args:
            if isinstance(arg.value, cst.Call):
                self._usage[id(arg.value)] = (ITERATED if consumes else ARGUMENT, None)
        frame = self._frame
        fact = CallFact(
            anchor=anchor,
            target=None,
            spelling=spelling,
            owner=frame.owner,
            in_async=frame.is_async,
            usage=usage,
            var=var,
            argc=len(node.args),
            guarded=frame.guards > 0,
            nested_scope=self._scope.kind != "function",
        )
        if usage == DROPPED and frame.is_async:
            args = node.args
            if len(args) != 1 or args[0].keyword is not None or args[0].star:
                self._irregular_arguments.add(anchor)
        receiver, _, tail = spelling.rpartition(".")
        if receiver and receiver in frame.fresh:
            fact.fresh_receiver = True
        func = node.func
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Call):
            # ``open(p).read()``, ``threading.Lock().acquire()``: a method of a new object.
            fact.fresh_receiver = fact.private_receiver = True
            self._method_of[id(func.value)] = fact
        elif isinstance(func, cst.Attribute) and receiver in frame.private:
            self._benign_names.add(id(_head_name(func.value)))
            if frame.is_private(receiver):
                fact.private_receiver = True
                if tail == "acquire":
                    del frame.private[receiver]  # acquired now: a second acquire waits
        if tail in _HINTED_CALLEES:
            fact.hints = _hints(node.args)
        if usage == STORED:
            frame.stored.append(fact)
        literals: dict[str, Literal] = {}
        arg_refs: dict[str, tuple[Any, ...]] = {}
        position = 0
        for arg in node.args:
            if arg.star:
                position = -1_000_000  # positions after *args are unknown
                continue
            if arg.keyword is not None:
                key = arg.keyword.value
            else:
                key = str(position) if position >= 0 else ""
                position += 1
                if not key:
                    continue
            value = arg.value
            is_literal, literal = _literal(value)
            if is_literal:
                literals[key] = literal
                continue
            if isinstance(value, (cst.Name, cst.Attribute)):
                dotted = _dotted(value)
                if dotted is not None:
                    head, *attrs = dotted.split(".")
                    arg_refs[key] = ("chain", head, tuple(attrs))
                elif isinstance(value, cst.Attribute):
                    # A bound method of a new object: ``pool.submit(Worker().compute)``.
                    receiver_source = self._source_of(value.value)
                    if receiver_source is not None:
                        arg_refs[key] = ("expr", receiver_source, (value.attr.value,))
            elif isinstance(value, cst.Lambda):
                arg_refs[key] = ("lambda", self._new_lambda_name(value))
            elif isinstance(value, cst.Call):
                arg_refs[key] = ("call", id(value))
        fact.literals = literals
        if receiver and frame.is_nonblocking(receiver):
            fact.guarded = True
        if tail in _NONBLOCKING_MARKERS:
            self._note_nonblocking(node, receiver, tail, literals)
        self._calls_by_node[id(node)] = fact
        self._record(fact, callee, arg_refs)

    def _note_nonblocking(
        self, node: cst.Call, receiver: str, tail: str, literals: dict[str, Literal]
    ) -> None:
        """Remember which socket a ``setblocking(False)`` or ``wait_readable(s)`` is about,
        and forget it after ``setblocking(True)`` or a timeout that is not zero: the last
        such call before a use decides, and one in any branch makes the socket blocking."""
        nonblocking = True
        if tail == "setblocking":
            nonblocking = "0" in literals and literals["0"] is False
        elif tail == "settimeout":
            timeout = literals.get("0", 1)
            nonblocking = not isinstance(timeout, bool) and timeout == 0
        else:
            receiver = ""
            if node.args and not node.args[0].keyword:
                receiver = _dotted(node.args[0].value) or ""
        if not receiver:
            return
        frame = self._frame
        attribute = None
        if receiver.startswith("self.") and receiver.count(".") == 1 and self._classes:
            attribute = (self._classes[-1][0].qualname, receiver[5:])
        if not nonblocking:
            frame.nonblocking.pop(receiver, None)
            if attribute is not None:
                self._blocking_attributes.add(attribute)
            return
        frame.nonblocking[receiver] = tuple(frame.blocks)
        if attribute is not None:
            # ``self.sock.setblocking(False)`` in one method covers the whole class.
            self._nonblocking_attributes.add(attribute)

    def _record(
        self, fact: CallFact, callee: tuple[Any, ...] | None, arg_refs: dict[str, tuple[Any, ...]]
    ) -> None:
        index = len(self.facts.calls)
        self.facts.calls.append(fact)
        frame = self._frame
        if frame.facts is not None:
            frame.facts.calls.append(index)
        pending = _PendingCall(fact, self._scope, callee, arg_refs)
        self._pending.append(pending)
        self._pending_by_anchor[fact.anchor] = pending

    def _callee(self, func: cst.BaseExpression) -> tuple[tuple[Any, ...] | None, str]:
        """The reference to resolve for a callee, and how the source spells it."""
        attrs: list[str] = []
        node = func
        while isinstance(node, cst.Attribute):
            attrs.append(node.attr.value)
            node = node.value
        attrs.reverse()
        tail = "".join(f".{attr}" for attr in attrs)
        if isinstance(node, cst.Name):
            return ("chain", node.value, tuple(attrs)), node.value + tail
        if isinstance(node, cst.Subscript):
            # ``create_memory_object_stream[int](5)``: the subscript does not change the callee.
            inner, spelling = self._callee(node.value)
            if inner is not None and inner[0] == "chain" and not attrs:
                return inner, spelling
            return None, spelling + "[...]" + tail
        if isinstance(node, cst.Call):
            _, inner_spelling = self._callee(node.func)
            return ("expr", ("callnode", id(node)), tuple(attrs)), f"{inner_spelling}(){tail}"
        source = self._source_of(node)
        if source is not None and attrs:
            return ("expr", source, tuple(attrs)), "..." + tail
        return None, "..." + tail

    # -- resolution -------------------------------------------------------------------------

    def finish(self, line_count: int) -> FileFacts:
        """Resolve every reference now that all bindings are known."""
        facts = self.facts
        facts.anchor_count = self._anchor
        facts.line_count = line_count
        if self._nonblocking_attributes:
            self._mark_nonblocking_attributes()
        for pending in self._pending:
            self._resolve_call(pending)
        self._name_frameworks()
        for function, scope, decorators in self._decorators:
            for decorator in decorators:
                kind = _decorator_kind(self, scope, decorator)
                if kind == "opaque":
                    function.opaque = True
                elif kind == "wrapping":
                    function.wrapped = True
                marked = self._marker_framework(scope, decorator)
                if marked is not None:
                    function.framework = marked
        self._apply_framework_markers()
        for function, _scope, _annotation in self._returns.values():
            function.returns = self._declared_return(function)
        for class_facts, scope, bases in self._bases:
            for base in bases:
                dotted = _dotted(base)
                if dotted is None:
                    continue
                head, *attrs = dotted.split(".")
                value = self._resolve_chain(scope, head, tuple(attrs))
                if value is not None and value[0] == "qual":
                    class_facts.bases.append(value[1])
        for class_facts, class_scope in self._class_scopes:
            # ``pause = time.sleep`` in a class body: ``self.pause()`` calls ``time.sleep``.
            for name, bindings in class_scope.bindings.items():
                if name in class_facts.methods or all(b[0] != "value" for b in bindings):
                    continue
                value = self._resolve_bindings(class_scope, name, bindings)
                if value is not None and value[0] == "qual":
                    class_facts.methods[name] = value[1]
        for class_name, by_attribute in self._attribute_sources.items():
            class_facts = facts.classes[class_name]
            for attribute in by_attribute:
                attribute_type = self._attribute_type(class_name, attribute)
                if attribute_type is not None:
                    class_facts.attribute_types[attribute] = attribute_type
        for name, bindings in self._module_scope.bindings.items():
            value = self._resolve_bindings(self._module_scope, name, bindings)
            if value is not None and value[0] == "qual":
                facts.exports[name] = value[1]
        return facts

    def _name_frameworks(self) -> None:
        """How the fixes can name each framework's module: at module level, and at each
        ``time.sleep`` statement the sleep fix may rewrite (where a parameter or local
        called ``asyncio`` would shadow the module)."""
        aliases: dict[str, list[str]] = {framework: [] for framework in catalogue.FRAMEWORKS}
        bound: set[str] = set()  # names the module binds when it runs
        for name, bindings in self._module_scope.bindings.items():
            runtime = [b for b in bindings if id(b) not in self._typing_only]
            if not runtime:
                continue
            bound.add(name)
            modules = {b[1] for b in runtime if b[0] == "import"}
            others = [
                b
                for b in runtime
                if b[0] != "import" and not (b[0] == "value" and b[1][0] == "none")
            ]
            # ``try: import trio`` / ``except ImportError: trio = None`` still names trio.
            if len(modules) == 1 and not others:
                module = modules.pop()
                if module in aliases:
                    aliases[module].append(name)
        for framework, names in aliases.items():
            names.sort(key=lambda name: (name != framework, name))
        self.facts.framework_names = self._framework_names(aliases, bound, set())
        for pending in self._pending:
            fact = pending.fact
            if (
                fact.target == "time.sleep"
                and fact.usage == DROPPED
                and fact.in_async
                and not fact.nested_scope
                and fact.anchor not in self._irregular_arguments
            ):
                local: set[str] = set()
                scope: _Scope | None = pending.scope
                while scope is not None and scope is not self._module_scope:
                    if scope.kind != "class":
                        local.update(scope.bindings)
                    scope = scope.parent
                fact.framework_names = self._framework_names(aliases, bound, local)

    @staticmethod
    def _framework_names(
        aliases: dict[str, list[str]], bound: set[str], local: set[str]
    ) -> dict[str, str]:
        names: dict[str, str] = {}
        for framework, candidates in aliases.items():
            usable = [name for name in candidates if name not in local]
            if usable:
                names[framework] = usable[0]
            elif framework not in bound and framework not in local:
                names[framework] = f"+{framework}"
        return names

    def _marker_framework(self, scope: _Scope, node: cst.BaseExpression) -> str | None:
        """``trio`` for ``pytest.mark.trio`` (a test run by pytest-trio), and so on."""
        if isinstance(node, cst.Call):
            node = node.func
        qualified = self._qualified_name(scope, node)
        return None if qualified is None else _MARKER_FRAMEWORKS.get(qualified)

    def _apply_framework_markers(self) -> None:
        """Framework markers on classes (``@pytest.mark.trio class TestApi``) and in a
        module's ``pytestmark`` apply to the tests inside; each counts as an import of the
        framework for the module's messages."""
        facts = self.facts
        module_marks = [
            marked
            for mark in self._pytestmarks
            if (marked := self._marker_framework(self._module_scope, mark)) is not None
        ]
        class_marks: dict[str, str] = {}
        for class_facts, scope, decorators in self._class_decorators:
            for decorator in decorators:
                marked = self._marker_framework(scope, decorator)
                if marked is not None:
                    class_marks[class_facts.qualname] = marked
        for function in facts.functions.values():
            if function.framework is None:
                owner = function.qualname.rpartition(".")[0]
                function.framework = class_marks.get(owner) or (
                    module_marks[0] if len(set(module_marks)) == 1 else None
                )
            if function.framework is not None:
                facts.frameworks.add(function.framework)

    def _ensure_resolved(self, fact: CallFact) -> None:
        pending = self._pending_by_anchor.get(fact.anchor)
        if pending is not None:
            self._resolve_call(pending)

    def _mark_nonblocking_attributes(self) -> None:
        for call in self.facts.calls:
            receiver = call.spelling.rpartition(".")[0]
            if not receiver.startswith("self.") or receiver.count(".") != 1:
                continue
            owner_class = call.owner.rpartition(".")[0]
            attribute = (owner_class, receiver[5:])
            if (
                attribute in self._nonblocking_attributes
                and attribute not in self._blocking_attributes
            ):
                call.guarded = True

    def _resolve_call(self, pending: _PendingCall) -> None:
        if pending.resolved:
            return
        pending.resolved = True
        fact = pending.fact
        callee = pending.callee
        if callee is not None:
            fact.target = self._callee_target(pending.scope, callee)
        refs: dict[str, ArgRef] = {}
        for key, ref in pending.arg_refs.items():
            kind = ref[0]
            if kind == "lambda":
                refs[key] = ArgRef("lambda", ref[1])
            elif kind in ("chain", "expr"):
                if kind == "chain":
                    value = self._resolve_chain(pending.scope, ref[1], ref[2])
                else:
                    receiver_type = self._type_of(ref[1])
                    value = None
                    if isinstance(receiver_type, str):
                        value = self._walk_attributes(("inst", receiver_type), ref[2])
                if value is not None:
                    refs[key] = ArgRef("name" if value[0] == "qual" else "type", value[1])
            elif kind == "call":
                inner = self._calls_by_node.get(ref[1])
                if inner is None:
                    continue
                self._ensure_resolved(inner)
                if inner.target == "functools.partial":
                    wrapped = inner.refs.get("0") or inner.refs.get("func")
                    if wrapped is not None:
                        refs[key] = ArgRef("partial", wrapped.target)
                elif inner.target in catalogue.IN_MEMORY_FILES:
                    refs[key] = ArgRef("type", inner.target)  # ``ZipFile(io.BytesIO(data))``
        fact.refs = refs

    def _callee_target(self, scope: _Scope, callee: tuple[Any, ...]) -> str | None:
        attrs: tuple[str, ...] = callee[2]
        if callee[0] == "chain":
            if not attrs:
                value = self._resolve_chain(scope, callee[1], ())
                if value is None:
                    return None
                return value[1] if value[0] == "qual" else f"{value[1]}.__call__"
            owner = self._resolve_chain(scope, callee[1], attrs[:-1])
        else:
            owner_type = self._type_of(callee[1])
            if not isinstance(owner_type, str):
                return None
            owner = self._walk_attributes(("inst", owner_type), attrs[:-1])
        if owner is None:
            return None
        if not attrs:
            return None
        return catalogue.canonical(f"{owner[1]}.{attrs[-1]}")

    def _qualified_name(self, scope: _Scope, node: cst.BaseExpression) -> str | None:
        """The fully qualified name a dotted expression resolves to through the imports."""
        dotted = _dotted(node)
        if dotted is None:
            return None
        head, *attrs = dotted.split(".")
        value = self._resolve_chain(scope, head, tuple(attrs))
        if value is None or value[0] != "qual":
            return None
        return value[1]

    def _resolve_chain(self, scope: _Scope, name: str, attrs: tuple[str, ...]) -> Resolved | None:
        """Resolve ``name.attr1.attr2`` as seen from ``scope``."""
        value = self._lookup(scope, name)
        if value is None:
            return None
        return self._walk_attributes(value, attrs)

    def _walk_attributes(self, value: Resolved, attrs: Sequence[str]) -> Resolved | None:
        for attr in attrs:
            if value[0] == "qual":
                value = ("qual", f"{value[1]}.{attr}")
                continue
            attribute_type = self._instance_attribute(value[1], attr)
            if attribute_type is not None:
                value = ("inst", attribute_type)
            else:
                # A method of the instance, referenced or called.
                value = ("qual", catalogue.canonical(f"{value[1]}.{attr}"))
        return value

    def _instance_attribute(self, type_name: str, attr: str) -> str | None:
        known = catalogue.ATTRIBUTE_TYPES.get(f"{type_name}.{attr}")
        if known is not None:
            return known
        if type_name in self.facts.classes:
            return self._attribute_type(type_name, attr)
        return None

    def _attribute_type(self, class_name: str, attr: str) -> str | None:
        key = (class_name, attr)
        if key in self._attribute_memo:
            return self._attribute_memo[key]
        self._attribute_memo[key] = None  # guards against cycles
        found: set[str] = set()
        for _scope, source in self._attribute_sources.get(class_name, {}).get(attr, ()):
            if source[0] == "none":
                continue
            resolved = self._type_of(source)
            if not isinstance(resolved, str):
                found.add("")
                break
            found.add(resolved)
        result = found.pop() if len(found) == 1 else None
        result = result or None
        self._attribute_memo[key] = result
        return result

    def _lookup(self, scope: _Scope, name: str) -> Resolved | None:
        current: _Scope | None = scope
        first = True
        if name in scope.declared_global:
            current = self._module_scope
        while current is not None:
            # Class bodies are not visible from the functions nested in them.
            if current.kind != "class" or first:
                bindings = current.bindings.get(name)
                if bindings is not None:
                    return self._resolve_bindings(current, name, bindings)
            first = False
            current = current.parent
        if name in _BUILTIN_NAMES:
            return ("qual", f"builtins.{name}")
        if self.facts.star_imports:
            # Perhaps one of the names ``from m import *`` brought in: the project index
            # resolves the module's own attribute through what those modules define.
            return ("qual", f"{self.facts.module}.{name}")
        return None

    def _resolve_bindings(
        self, scope: _Scope, name: str, bindings: list[Binding]
    ) -> Resolved | None:
        key = (id(scope), name)
        if key in self._resolving:
            return None  # ``a = b`` and ``b = a``: no answer rather than a loop
        self._resolving.add(key)
        try:
            return self._resolve_binding_list(scope, name, bindings)
        finally:
            self._resolving.discard(key)

    def _resolve_binding_list(
        self, scope: _Scope, name: str, bindings: list[Binding]
    ) -> Resolved | None:
        results: set[Resolved] = set()
        for binding in bindings:
            kind = binding[0]
            if kind in ("import", "def", "class"):
                results.add(("qual", binding[1]))
            elif kind == "value":
                source = binding[1]
                if source[0] == "none":
                    continue
                if source[0] == "ref":
                    if source[1] is scope and source[2] == name:
                        return None  # ``x = x.y``: give up rather than loop
                    resolved = self._resolve_chain(source[1], source[2], source[3])
                    if resolved is None:
                        return None
                    results.add(resolved)
                    continue
                if source[0] == "self":
                    results.add(("inst", source[1]))
                    continue
                wrapped = self._partial_of(source)
                if wrapped is not None:
                    # ``run = functools.partial(subprocess.run, check=True)``: calling ``run``
                    # calls ``subprocess.run``.
                    results.add(("qual", wrapped))
                    continue
                type_name = self._type_of(source)
                if not isinstance(type_name, str):
                    return None
                results.add(("inst", type_name))
            else:
                return None
            if len(results) > 1:
                return None
        return results.pop() if len(results) == 1 else None

    def _partial_of(self, source: TypeSource) -> str | None:
        """What a ``functools.partial(f, ...)`` value wraps, when ``source`` is one."""
        if source[0] != "callnode":
            return None
        fact = self._calls_by_node.get(source[1])
        if fact is None:
            return None
        self._ensure_resolved(fact)
        if fact.target != "functools.partial":
            return None
        wrapped = fact.refs.get("0") or fact.refs.get("func")
        if wrapped is None or wrapped.kind not in ("name", "partial"):
            return None
        return wrapped.target

    def _type_of(self, source: TypeSource | None) -> str | tuple[str, ...] | None:
        if source is None:
            return None
        key = id(source)
        if key in self._type_memo:
            return self._type_memo[key]
        if key in self._in_progress:
            return None
        self._in_progress.add(key)
        try:
            result = self._compute_type(source)
        finally:
            self._in_progress.discard(key)
        self._type_memo[key] = result
        return result

    def _compute_type(self, source: TypeSource) -> str | tuple[str, ...] | None:
        kind = source[0]
        if kind == "type" or kind == "self":
            return str(source[1])
        if kind in ("callnode", "awaitnode"):
            fact = self._calls_by_node.get(source[1])
            if fact is None:
                return None
            self._ensure_resolved(fact)
            if fact.target is None:
                return None
            if kind == "awaitnode":
                known = catalogue.AWAIT_RETURNS.get(fact.target)
                if known is not None:
                    return known
                function = self.facts.functions.get(fact.target)
                if function is not None:
                    return self._declared_return(function) if function.is_async else None
                return f"{fact.target}.{AWAITED_RESULT}"
            return self._call_result(fact)
        if kind == "ref":
            value = self._resolve_chain(source[1], source[2], source[3])
            return value[1] if value is not None and value[0] == "inst" else None
        if kind == "ann":
            return self._annotation_type(source[1], source[2])
        if kind == "item":
            inner = self._type_of(source[1])
            if isinstance(inner, tuple) and source[2] < len(inner):
                return inner[source[2]]
            return None
        if kind == "enter":
            inner_source = source[1]
            inner = self._type_of(inner_source)
            if inner_source[0] == "callnode":
                fact = self._calls_by_node.get(inner_source[1])
                if fact is not None and fact.target in catalogue.ENTER_RETURNS:
                    return catalogue.ENTER_RETURNS[fact.target]
            return inner if isinstance(inner, str) else None
        if kind == "prefer":
            declared = self._type_of(source[2])
            assigned = self._type_of(source[1])
            if declared is None or (
                isinstance(declared, str) and assigned in catalogue.REFINEMENTS.get(declared, ())
            ):
                return assigned
            return declared
        if kind == "attrs":
            inner = self._type_of(source[1])
            if not isinstance(inner, str):
                return None
            walked = self._walk_attributes(("inst", inner), source[2])
            return walked[1] if walked is not None and walked[0] == "inst" else None
        if kind == "div":
            inner = self._type_of(source[1])
            return "pathlib.Path" if inner == "pathlib.Path" else None
        if kind == "or":
            left, right = self._type_of(source[1]), self._type_of(source[2])
            if left is None or left == right:
                return right
            return left if right is None else None
        return None

    def _call_result(self, fact: CallFact) -> str | tuple[str, ...] | None:
        target = fact.target
        assert target is not None
        if target == "builtins.super":
            return self._super_type(fact)
        if target == "builtins.type" and fact.argc == 1:
            # ``type(self).create()``: the class of the value.
            argument = fact.refs.get("0")
            return argument.target if argument is not None and argument.kind == "type" else None
        if target == "queue.Queue" and (
            fact.argc == 0 or fact.literals.get("0") == 0 or fact.literals.get("maxsize") == 0
        ):
            return "queue.UnboundedQueue"  # put() never waits
        known = catalogue.RETURNS.get(target)
        if known is not None:
            return known
        if target in self.facts.classes:
            return target
        function = self.facts.functions.get(target)
        if function is not None:
            return None if function.is_async else self._declared_return(function)
        last = target.rpartition(".")[2]
        if last[:1].isupper() and not last.isupper():
            # An external CapWords name called: a class, so the value is an instance.
            return target
        # Perhaps a function of another module of the project: the index knows its return
        # annotation (``get_session().get()``).
        return f"{target}.{RESULT}"

    def _declared_return(self, function: FunctionFacts) -> str | None:
        """The type a function's return annotation names, if any."""
        declared = self._returns.get(id(function))
        if declared is None:
            return None
        resolved = self._annotation_type(declared[1], declared[2])
        return resolved if isinstance(resolved, str) else None

    def _super_type(self, fact: CallFact) -> str | None:
        """``super()`` in a method of ``C`` (or ``super(C, self)``): the pseudo-type
        ``C.<super>``, whose methods the project index looks up in the bases of ``C``."""
        if fact.argc == 0:
            class_name = fact.owner.rpartition(".")[0]
        else:
            first = fact.refs.get("0")
            if fact.argc != 2 or first is None or first.kind != "name":
                return None
            class_name = first.target
        if class_name not in self.facts.classes:
            return None
        return f"{class_name}.{SUPER}"

    def _annotation_type(
        self, scope: _Scope, node: cst.BaseExpression
    ) -> str | tuple[str, ...] | None:
        if isinstance(node, cst.Subscript):
            base = _dotted(node.value)
            if base is not None and base.rpartition(".")[2] in (
                "Optional",
                "Annotated",
                "Final",
                "ClassVar",
            ):
                first = node.slice[0].slice if node.slice else None
                if isinstance(first, cst.Index):
                    return self._annotation_type(scope, first.value)
                return None
            return self._annotation_type(scope, node.value)
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.BitOr):
            left, right = node.left, node.right
            if isinstance(left, cst.Name) and left.value == "None":
                return self._annotation_type(scope, right)
            if isinstance(right, cst.Name) and right.value == "None":
                return self._annotation_type(scope, left)
            return None
        if isinstance(node, cst.SimpleString):
            # A string annotation: ``c: "requests.Session"``.
            text = node.evaluated_value
            if not isinstance(text, str) or len(text) > 200:
                return None
            try:
                parsed = cst.parse_expression(text.strip())
            except cst.ParserSyntaxError:
                return None
            return self._annotation_type(scope, parsed)
        qualified = self._qualified_name(scope, node)
        return None if qualified is None else catalogue.canonical(qualified)


def _method_kind(node: cst.FunctionDef) -> str:
    for decorator in node.decorators:
        expression = decorator.decorator
        if isinstance(expression, cst.Name):
            if expression.value == "staticmethod":
                return "static"
            if expression.value == "classmethod":
                return "classmethod"
    return "method"


def _decorator_kind(extractor: Extractor, scope: _Scope, decorator: cst.BaseExpression) -> str:
    """``"transparent"``, ``"opaque"`` (the name no longer calls the body, or returns
    something else entirely) or ``"wrapping"`` (unknown: it may return anything)."""
    if isinstance(decorator, cst.Call):
        decorator = decorator.func
    dotted = _dotted(decorator)
    if dotted is None:
        return "wrapping"
    head, *attrs = dotted.split(".")
    if attrs and attrs[-1] in ("setter", "getter", "deleter", "register"):
        return "opaque"
    value = extractor._resolve_chain(scope, head, tuple(attrs))
    if value is None or value[0] != "qual":
        return "wrapping"
    name = value[1]
    if name in catalogue.OPAQUE_DECORATORS:
        return "opaque"
    if name in catalogue.TRANSPARENT_DECORATORS or name.startswith("pytest.mark."):
        return "transparent"
    return "wrapping"


_Handler = Callable[[Extractor, Any], None]
_VISIT: dict[type[cst.CSTNode], _Handler] = {
    cst.FunctionDef: Extractor.visit_FunctionDef,
    cst.Lambda: Extractor.visit_Lambda,
    cst.ClassDef: Extractor.visit_ClassDef,
    cst.ListComp: Extractor._enter_comprehension,
    cst.SetComp: Extractor._enter_comprehension,
    cst.DictComp: Extractor._enter_comprehension,
    cst.GeneratorExp: Extractor._enter_comprehension,
    cst.CompFor: Extractor.visit_CompFor,
    cst.For: Extractor.visit_For,
    cst.While: Extractor.visit_While,
    cst.BinaryOperation: Extractor.visit_BinaryOperation,
    cst.AugAssign: Extractor.visit_AugAssign,
    cst.Yield: Extractor.visit_Yield,
    cst.Await: Extractor.visit_Await,
    cst.Expr: Extractor.visit_Expr,
    cst.Return: Extractor.visit_Return,
    cst.Assign: Extractor.visit_Assign,
    cst.AnnAssign: Extractor.visit_AnnAssign,
    cst.NamedExpr: Extractor.visit_NamedExpr,
    cst.ExceptHandler: Extractor.visit_ExceptHandler,
    cst.Global: Extractor.visit_Global,
    cst.Nonlocal: Extractor.visit_Nonlocal,
    cst.Name: Extractor.visit_Name,
    cst.Import: Extractor.visit_Import,
    cst.ImportFrom: Extractor.visit_ImportFrom,
    cst.With: Extractor.visit_With,
    cst.WithItem: Extractor.visit_WithItem,
    cst.Call: Extractor.visit_Call,
}
_LEAVE: dict[type[cst.CSTNode], _Handler] = {
    cst.ListComp: Extractor._leave_comprehension,
    cst.SetComp: Extractor._leave_comprehension,
    cst.DictComp: Extractor._leave_comprehension,
    cst.GeneratorExp: Extractor._leave_comprehension,
}
_ENTER_BODY: dict[type[cst.CSTNode], _Handler] = {
    cst.FunctionDef: Extractor.enter_FunctionDef_body,
    cst.Lambda: Extractor.enter_Lambda_body,
    cst.ClassDef: Extractor.enter_ClassDef_body,
    cst.Try: Extractor.enter_Try_body,
    cst.With: Extractor.enter_With_body,
    cst.For: Extractor._enter_loop,
    cst.While: Extractor._enter_loop,
    cst.If: Extractor.enter_If_body,
    cst.Else: Extractor._enter_block,
    cst.ExceptHandler: Extractor._enter_block,
    cst.MatchCase: Extractor._enter_block,
}
_LEAVE_BODY: dict[type[cst.CSTNode], _Handler] = {
    cst.FunctionDef: Extractor.leave_FunctionDef_body,
    cst.Lambda: Extractor.leave_Lambda_body,
    cst.ClassDef: Extractor.leave_ClassDef_body,
    cst.Try: Extractor.leave_Try_body,
    cst.With: Extractor.leave_With_body,
    cst.For: Extractor._leave_loop,
    cst.While: Extractor._leave_loop,
    cst.If: Extractor.leave_If_body,
    cst.Else: Extractor._leave_block,
    cst.ExceptHandler: Extractor._leave_block,
    cst.MatchCase: Extractor._leave_block,
}


#: Generated code nests deeply (a string literal in 2,000 implicitly concatenated parts,
#: an ``elif`` chain of 500 branches). From Python 3.11 on, Python-to-Python calls do not
#: use the C stack, so the walk may recurse much deeper than the default limit.
_DEEP_RECURSION = 50_000 if sys.version_info >= (3, 11) else sys.getrecursionlimit()


def extract(module_tree: cst.Module, module: str, is_package: bool, line_count: int) -> FileFacts:
    """Walk a parsed module once and return its facts."""
    extractor = Extractor(module, is_package)
    limit = sys.getrecursionlimit()
    if limit < _DEEP_RECURSION:
        sys.setrecursionlimit(_DEEP_RECURSION)
    try:
        extractor.walk(module_tree)
        # Resolution follows chains of names as deep as the code makes them
        # (``a1 = a0``, ``a2 = a1``, ... in generated code).
        return extractor.finish(line_count)
    finally:
        if limit < _DEEP_RECURSION:
            sys.setrecursionlimit(limit)


__all__ = ["Extractor", "extract"]
