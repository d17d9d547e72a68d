"""What one file tells the rules: the facts extracted from it in a single pass.

Every rule works from these facts, never from the syntax tree, so a file is parsed and
walked once however many rules run, the facts of an unchanged file come from the cache,
and rules can look at other modules of the project through the index.

Positions are not part of the facts: computing them costs more than parsing, and only the
few nodes that end up in a finding need one. Each call and ``with`` item gets an *anchor*,
its rank in a pre-order walk of the tree, and :mod:`concurrency_lint.locate` turns the
anchors of findings into lines and columns afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: How the value of a call is used by the code around it.
AWAITED = "awaited"
DROPPED = "dropped"  # an expression statement: the result is thrown away
STORED = "stored"  # assigned to a plain local name (see ``CallFact.var``)
RETURNED = "returned"
ARGUMENT = "argument"
ITERATED = "iterated"  # looped over by ``for``, a comprehension, or ``list()`` and friends
OTHER = "other"

#: The last part of the pseudo-type of ``super()`` in a method of a class ``C``:
#: ``shop.C.<super>.save`` names ``save`` as found in the bases of ``C``.
SUPER = "<super>"
#: The pseudo-type of what calling (or awaiting a call of) a function of another module
#: returns: ``shop.http.get_session.<result>.get`` is ``get`` on what ``get_session``'s
#: return annotation names, which the project index knows.
RESULT = "<result>"
AWAITED_RESULT = "<awaited>"

#: A literal argument value kept for the few checks that depend on one
#: (``lock.acquire(blocking=False)`` does not block).
Literal = bool | int | float | str | None


@dataclass(slots=True)
class ArgRef:
    """A callable handed to a call as an argument, for the thread-offload rules.

    ``kind`` is ``"name"`` (``target`` is the resolved qualified name), ``"lambda"``
    (``target`` names the lambda's function facts), ``"partial"`` (``target`` is what
    ``functools.partial`` wraps) or ``"type"`` (``target`` is the type of the value, used
    for the executor argument of ``run_in_executor``).
    """

    kind: str
    target: str


@dataclass(slots=True)
class CallFact:
    """One call (or one ``with`` item on a lock-like object) in the file."""

    anchor: int
    #: Fully qualified callee: ``time.sleep``, ``queue.Queue.get``, ``shop.db.insert``,
    #: ``builtins.open``. ``None`` when the name does not resolve.
    target: str | None
    #: Source spelling of the callee, for messages: ``nap``, ``self.fetch``, ``q.get``.
    spelling: str
    #: Qualified name of the enclosing function (the module name at module level).
    owner: str
    #: True when the call runs directly in the body of an ``async def``: not in a nested
    #: ``def`` or ``lambda``.
    in_async: bool
    usage: str = OTHER
    #: In a class body or comprehension inside its function, not in the function's own
    #: scope: there ``await`` is a syntax error (a class body) or changes what the code
    #: does (a comprehension turns asynchronous), so no fix adds one.
    nested_scope: bool = False
    #: The local name the result is stored in, when ``usage`` is ``STORED``.
    var: str | None = None
    #: True when that local name is never read anywhere in the enclosing function.
    var_unused: bool = False
    #: True for a ``with`` item rather than a call; ``target`` is then ``Type.__enter__``.
    is_with: bool = False
    #: Literal arguments: keys are ``"0"``, ``"1"`` for positions, or keyword names.
    literals: dict[str, Literal] = field(default_factory=dict)
    #: Callables and typed values among the arguments, keyed like ``literals``.
    refs: dict[str, ArgRef] = field(default_factory=dict)
    #: Number of arguments given (positional and keyword).
    argc: int = 0
    #: Inside ``try: ... except BlockingIOError`` or ``with suppress(BlockingIOError)``:
    #: the code expects the call to fail rather than block (a non-blocking socket or fd).
    guarded: bool = False
    #: The receiver was constructed earlier in the same function (``f = open(p)`` then
    #: ``f.read()``): the file is reported where it is opened.
    fresh_receiver: bool = False
    #: ... and nothing else can hold it yet: not passed, stored or captured since, and the
    #: call is not in a loop entered after it was made (``lock = Lock()`` then
    #: ``lock.acquire()``: a lock nobody else has seen is free).
    private_receiver: bool = False
    #: For the few callees whose blocking depends on their arguments (``getaddrinfo``):
    #: the identifiers and short string literals among the arguments.
    hints: tuple[str, ...] = ()
    #: The anchor of the call whose result this one is a method of: ``open(p)`` for
    #: ``open(p).read()``; -1 when the receiver is not a call.
    receiver: int = -1
    #: For a ``time.sleep`` statement in an ``async def`` (which the sleep fix rewrites):
    #: framework -> how the code can name that framework's module there (``aio`` for
    #: ``import asyncio as aio``), ``+`` first when the import must be added. A framework
    #: missing cannot be named there without a conflict (a parameter called ``asyncio``);
    #: none when the arguments are not one positional argument, which the framework's
    #: sleep could not take (``time.sleep(secs=1)``, ``time.sleep(*delays)``).
    framework_names: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class FunctionFacts:
    """A ``def``, ``async def`` or ``lambda``."""

    qualname: str
    name: str
    is_async: bool
    #: Contains ``yield``: calling it makes a generator, never a coroutine.
    is_generator: bool = False
    #: Decorated with something that changes what a call returns (``asynccontextmanager``,
    #: ``property``, ``overload``, ...): calls to it are not judged.
    opaque: bool = False
    #: Defined twice with different kinds (``def`` here, ``async def`` there).
    ambiguous: bool = False
    #: Has a decorator not known to leave it alone (``@given``, a project's own): what a
    #: call returns is unknown, so it is not judged as a coroutine function.
    wrapped: bool = False
    #: Indices into ``FileFacts.calls`` of the calls made directly in its body.
    calls: list[int] = field(default_factory=list)
    has_loop: bool = False
    has_arithmetic: bool = False
    #: ``await``, ``with``, ``global`` state and the like: not pure computation.
    has_side_effects: bool = False
    #: Type of the return annotation, when it names one.
    returns: str | None = None
    #: The framework a pytest marker runs it under (``@pytest.mark.trio``), if any.
    framework: str | None = None


@dataclass(slots=True)
class ClassFacts:
    """A class: where its methods are and what its attributes hold."""

    qualname: str
    bases: list[str] = field(default_factory=list)
    methods: dict[str, str] = field(default_factory=dict)
    #: ``self.lock = threading.Lock()`` gives ``{"lock": "threading.Lock"}``.
    attribute_types: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class ParseError:
    """Why a file could not be analysed (reported as CC000)."""

    message: str
    line: int
    column: int


@dataclass(slots=True)
class FileFacts:
    """Everything the rules and the project index need from one file."""

    module: str
    is_package: bool
    error: ParseError | None = None
    #: Async frameworks the file's imports point to (``aiohttp`` means asyncio).
    frameworks: set[str] = field(default_factory=set)
    #: Module-level names and what they refer to, for resolving re-exports across modules.
    exports: dict[str, str] = field(default_factory=dict)
    #: Modules imported with ``from m import *``, in order.
    star_imports: list[str] = field(default_factory=list)
    #: The names of a literal ``__all__`` (a list or tuple of strings), which is what
    #: ``from module import *`` takes; None without one (then: every name without a
    #: leading underscore).
    all_names: tuple[str, ...] | None = None
    #: Every module named by an import in the file.
    imported_modules: set[str] = field(default_factory=set)
    #: Framework -> the module-level name bound to it when the code runs (not only under
    #: ``if TYPE_CHECKING:``), or ``+`` and its name when ``import <framework>`` can be
    #: added without a conflict; see ``CallFact.framework_names``.
    framework_names: dict[str, str] = field(default_factory=dict)
    functions: dict[str, FunctionFacts] = field(default_factory=dict)
    classes: dict[str, ClassFacts] = field(default_factory=dict)
    calls: list[CallFact] = field(default_factory=list)
    #: Total number of anchors, a cheap consistency check for the locator.
    anchor_count: int = 0
    line_count: int = 0
