"""The whole project at once: every module's functions and classes by qualified name.

Built from the facts of every file under the linted roots, the index answers the questions
a single file cannot: is ``insert`` (imported from ``shop.db``) a coroutine function, does
``backoff`` (a sync helper two modules away) end up calling ``time.sleep``, is the function
handed to ``asyncio.to_thread`` pure computation. Re-exports (``from .db import insert`` in
a package ``__init__``), inherited methods and ``super().method()`` resolve. Every
recursive question terminates on cycles, and every answer is computed at most once per run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from concurrency_lint import catalogue
from concurrency_lint.catalogue import Blocking
from concurrency_lint.facts import (
    AWAITED_RESULT,
    ITERATED,
    RESULT,
    SUPER,
    CallFact,
    ClassFacts,
    FileFacts,
    FunctionFacts,
)

_MAX_ALIAS_HOPS = 16
#: A longer chain is shown with its middle left out.
_SHOWN_STEPS = 8


@dataclass(frozen=True, slots=True)
class Located:
    """A function of the project and the file it lives in."""

    path: str
    file: FileFacts
    function: FunctionFacts


@dataclass(frozen=True, slots=True)
class ChainStep:
    """One call on the way from async code to a blocking call."""

    function: str  # qualified name of the sync function making the call
    module: str
    path: str
    call: CallFact

    @property
    def name(self) -> str:
        """The function's name as the chain shows it: ``backoff``, ``Client.send``."""
        local = self.function.removeprefix(self.module + ".")
        return local.rpartition(".<locals>.")[2]


@dataclass(frozen=True, slots=True)
class BlockingChain:
    """How a call into the project's own code ends up blocking."""

    steps: tuple[ChainStep, ...]  # the last step's call is the blocking one
    entry: Blocking
    leaf: str  # qualified name of the blocking callee

    def describe(self, where: str) -> str:
        """``backoff -> time.sleep at shop/helpers.py:6`` (``where`` is the location)."""
        names = [*(step.name for step in self.steps), catalogue.public_name(self.leaf)]
        if len(names) > _SHOWN_STEPS:
            half = _SHOWN_STEPS // 2
            names = [*names[:half], f"({len(names) - 2 * half} more)", *names[-half:]]
        return " -> ".join(names) + f" at {where}"


class ProjectIndex:
    """Qualified names of the whole project, resolved across modules."""

    def __init__(
        self,
        files: Iterable[tuple[str, FileFacts]],
        *,
        extra_blocking: Mapping[str, Blocking] | None = None,
        extra_coroutines: Iterable[str] = (),
    ) -> None:
        self.modules: dict[str, tuple[str, FileFacts]] = {}
        self.functions: dict[str, Located] = {}
        self.classes: dict[str, ClassFacts] = {}
        self.extra_blocking: Mapping[str, Blocking] = extra_blocking or {}
        self.extra_coroutines = frozenset(extra_coroutines)
        self._resolved: dict[str, str] = {}
        self._resolving: set[str] = set()
        self._chains: dict[str, BlockingChain | None] = {}
        self._pure: dict[str, bool] = {}
        for path, facts in files:
            self.add(path, facts)

    def add(self, path: str, facts: FileFacts) -> None:
        """Add one module (later additions of the same module name win)."""
        if facts.error is not None:
            return
        # What was computed so far may change with the new module.
        self._resolved.clear()
        self._chains.clear()
        self._pure.clear()
        self.modules[facts.module] = (path, facts)
        for qualname, function in facts.functions.items():
            self.functions[qualname] = Located(path, facts, function)
        self.classes.update(facts.classes)

    # -- names --------------------------------------------------------------------------

    def resolve(self, target: str) -> str:
        """Follow re-exports and inheritance to where a name is defined.

        ``shop.insert`` becomes ``shop.db.insert`` when ``shop/__init__.py`` imports it from
        ``.db``; ``shop.Child.save`` becomes ``shop.Base.save`` when only the base defines it.
        Names outside the project come back unchanged.
        """
        cached = self._resolved.get(target)
        if cached is not None:
            return cached
        if target in self._resolving:
            return target  # modules re-exporting each other's names: stop the loop here
        self._resolving.add(target)
        try:
            result = target
            for _ in range(_MAX_ALIAS_HOPS):
                step = self._resolve_once(result)
                if step is None or step == result:
                    break
                result = step
        finally:
            self._resolving.discard(target)
        self._resolved[target] = result
        return result

    def _resolve_once(self, target: str) -> str | None:
        if target in self.functions or target in self.classes:
            return target
        owner, _, member = target.rpartition(".")
        if not owner:
            return None
        if owner in self.classes:
            return self._method(owner, member, set())
        prefix, _, last = owner.rpartition(".")
        if last == SUPER:
            return self._super_method(prefix, member)
        if last in (RESULT, AWAITED_RESULT):
            returned = self._returned_type(prefix, awaited=last == AWAITED_RESULT)
            return None if returned is None else catalogue.canonical(f"{returned}.{member}")
        module = self.modules.get(owner)
        if module is not None:
            facts = module[1]
            exported = facts.exports.get(member)
            if exported is not None and exported != target:
                return exported
            return self._star_imported(facts, member, set())
        # ``pkg.mod.Class.method`` where ``pkg.mod.Class`` is itself a re-export.
        resolved_owner = self.resolve(owner)
        if resolved_owner != owner and not resolved_owner.startswith(owner + "."):
            # (A package re-exporting ``main`` from its submodule ``main`` must not turn
            # ``pkg.main.x`` into ``pkg.main.main.x``, and so on forever.)
            return f"{resolved_owner}.{member}"
        return None

    def _method(self, class_name: str, member: str, seen: set[str]) -> str | None:
        if class_name in seen:
            return None
        seen.add(class_name)
        facts = self.classes.get(class_name)
        if facts is None:
            return None
        method = facts.methods.get(member)
        if method is not None:
            return method
        for base in facts.bases:
            base = self.resolve(base)
            found = self._method(base, member, seen)
            if found is not None:
                return found
        return None

    def _star_imported(self, facts: FileFacts, member: str, seen: set[str]) -> str | None:
        """What ``member`` is in a module that got it from ``from m import *``: the last
        star-imported module that provides it wins, as in Python. A project module provides
        the names of its literal ``__all__`` (else its names without a leading underscore),
        its own or star-imported in turn; a module outside the project provides the names
        the catalogue knows (``from time import *`` gives ``sleep``)."""
        seen.add(facts.module)
        for star in reversed(facts.star_imports):
            star_module = self.modules.get(star)
            if star_module is None:
                name = catalogue.canonical(f"{star}.{member}")
                if self._known_outside(name):
                    return name
                continue
            star_facts = star_module[1]
            if star_facts.all_names is not None:
                if member not in star_facts.all_names:
                    continue
            elif member.startswith("_"):
                continue
            if member in star_facts.exports:
                return star_facts.exports[member]
            if member in star_facts.functions or member in star_facts.classes:
                return f"{star}.{member}"
            if star not in seen:
                found = self._star_imported(star_facts, member, seen)
                if found is not None:
                    return found
        return None

    def _known_outside(self, name: str) -> bool:
        """Whether a name outside the project is one the linter knows something about."""
        return (
            name in self.extra_blocking or name in self.extra_coroutines or catalogue.is_known(name)
        )

    def _returned_type(self, target: str, *, awaited: bool) -> str | None:
        """The type of what calling ``target`` returns (awaited, for a coroutine function):
        an instance of the project class it names, or its return annotation."""
        resolved = self.resolve(target)
        if resolved in self.classes:
            return None if awaited else resolved
        located = self.functions.get(resolved)
        if located is None or located.function.is_async != awaited:
            return None
        return located.function.returns

    def _super_method(self, class_name: str, member: str) -> str | None:
        """``super().member`` in a method of ``class_name``: the first definition in its
        bases, in order; a base outside the project gives its own qualified name
        (``threading.Thread.join``)."""
        facts = self.classes.get(class_name)
        if facts is None:
            return None
        for base in facts.bases:
            base = self.resolve(base)
            if base not in self.classes:
                return catalogue.canonical(f"{base}.{member}")
            found = self._method(base, member, set())
            if found is not None:
                return found
        return None

    def function(self, target: str) -> Located | None:
        """The project function a callee names, if it is one."""
        return self.functions.get(self.resolve(target))

    def constructor(self, target: str) -> Located | None:
        """``__init__`` of the project class a callee names, if it is one."""
        resolved = self.resolve(target)
        if resolved not in self.classes:
            return None
        method = self._method(resolved, "__init__", set())
        return self.functions.get(method) if method is not None else None

    def is_project_name(self, target: str) -> bool:
        resolved = self.resolve(target)
        return resolved in self.functions or resolved in self.classes

    # -- questions the rules ask ------------------------------------------------------------

    def is_coroutine_function(self, target: str) -> bool:
        """Whether calling ``target`` returns a coroutine that must be awaited."""
        if target in catalogue.COROUTINE_FUNCTIONS or target in self.extra_coroutines:
            return True
        located = self.function(target)
        if located is None:
            resolved = self.resolve(target)
            return resolved != target and (
                resolved in catalogue.COROUTINE_FUNCTIONS or resolved in self.extra_coroutines
            )
        function = located.function
        return (
            function.is_async
            and not function.is_generator
            and not function.opaque
            and not function.wrapped
            and not function.ambiguous
        )

    def blocking_entry(self, target: str) -> Blocking | None:
        """The catalogue (or configuration) entry of a directly blocking callee."""
        entry = self._direct_blocking_entry(target)
        if entry is None:
            # ``super().join()`` in a Thread subclass, ``sleep`` from ``from time import *``,
            # a project module's alias of a blocking function.
            resolved = self.resolve(target)
            if resolved != target:
                entry = self._direct_blocking_entry(resolved)
        return entry

    def _direct_blocking_entry(self, target: str) -> Blocking | None:
        entry = self.extra_blocking.get(target)
        if entry is not None:
            return entry
        return catalogue.blocking_entry(target)

    def blocking_chain(self, target: str) -> BlockingChain | None:
        """How calling the project's sync function ``target`` blocks, if it does.

        The shortest chain of calls through the project's own sync functions that ends in
        a blocking call. Cycles and recursion terminate: a function being examined counts
        as not blocking while its callees are looked at.
        """
        located = self.function(target) or self.constructor(target)
        if located is None:
            return None
        return self._chain_of(located)

    def _chain_of(self, start: Located) -> BlockingChain | None:
        """Depth first through the sync callees, with an explicit stack: a helper chain of
        thousands of functions (generated code) must not exhaust Python's recursion limit.

        A function being examined counts as not blocking for the functions it calls (this
        ends cycles); the shortest chain found among a function's calls is its answer.
        """
        first = start.function.qualname
        if first in self._chains:
            return self._chains[first]
        if not self._open(start):
            return None
        stack = [_ChainFrame(start)]
        returned: BlockingChain | None = None
        while stack:
            frame = stack[-1]
            if frame.waiting is not None:
                frame.consider(frame.waiting, returned)
                frame.waiting = None
            descended = False
            function = frame.located.function
            calls = frame.located.file.calls
            while frame.position < len(function.calls):
                call = calls[function.calls[frame.position]]
                frame.position += 1
                if call.target is None:
                    continue
                step = ChainStep(
                    function.qualname, frame.located.file.module, frame.located.path, call
                )
                entry = self.blocking_entry(call.target)
                if (
                    entry is not None
                    and not is_nonblocking(call, entry)
                    and not is_critical_section(call, entry)
                ):
                    # A direct blocking call is as short as a chain gets.
                    frame.best = BlockingChain((step,), entry, call.target)
                    frame.position = len(function.calls)
                    break
                callee = self.function(call.target) or self.constructor(call.target)
                if callee is None or callee.function.qualname == function.qualname:
                    continue
                name = callee.function.qualname
                if name in self._chains:
                    frame.consider(step, self._chains[name])
                elif self._open(callee):
                    frame.waiting = step
                    stack.append(_ChainFrame(callee))
                    descended = True
                    break
            if descended:
                continue
            self._chains[function.qualname] = returned = frame.best
            stack.pop()
        return self._chains[first]

    def _open(self, located: Located) -> bool:
        """Mark a function as being examined; False when it cannot block the caller (an
        ``async def``, a generator or an opaque function)."""
        self._chains[located.function.qualname] = None
        function = located.function
        return not (function.is_async or function.is_generator or function.opaque)

    def is_cpu_bound(self, located: Located) -> bool:
        """Whether a function is pure-Python computation: loops doing arithmetic, nothing else.

        Every call it makes must itself be pure computation (builtins, ``math``, container
        methods, or project functions that are pure in turn). A call to anything else
        (I/O, a blocking call, a C extension that may release the GIL such as hashlib, zlib
        or numpy, or a name we cannot resolve) makes it not CPU-bound.
        """
        if not self._is_pure(located):
            return False
        return self._computes(located, set())

    def _computes(self, located: Located, seen: set[str]) -> bool:
        """Loops or recursion doing arithmetic, here or in a project function it calls."""
        pending = [located]
        while pending:
            current = pending.pop()
            function = current.function
            if function.qualname in seen:
                continue
            if function.has_arithmetic and (function.has_loop or self._recursive(current)):
                return True
            seen.add(function.qualname)
            calls = current.file.calls
            for index in reversed(function.calls):
                target = calls[index].target
                if target is None:
                    continue
                callee = self.function(target)
                if callee is not None and callee.function.qualname not in seen:
                    pending.append(callee)
        return False

    def _recursive(self, located: Located) -> bool:
        own = located.function.qualname
        calls = located.file.calls
        return any(calls[index].target == own for index in located.function.calls)

    def _is_pure(self, start: Located) -> bool:
        """Whether a function and everything it calls is pure computation; depth first with
        an explicit stack (a function being examined counts as pure for its callees, so
        recursion is pure when the rest is)."""
        first = start.function.qualname
        if first in self._pure:
            return self._pure[first]
        stack = [_PureFrame(start, self._pure_itself(start))]
        returned = True
        while stack:
            frame = stack[-1]
            if frame.waiting:
                frame.waiting = False
                frame.pure = returned
            function = frame.located.function
            calls = frame.located.file.calls
            descended = False
            while frame.pure and frame.position < len(function.calls):
                call = calls[function.calls[frame.position]]
                frame.position += 1
                if call.is_with:
                    frame.pure = False
                    break
                if call.target == function.qualname:
                    continue
                method = call.spelling.rpartition(".")[2] if "." in call.spelling else ""
                if catalogue.is_pure_call(call.target, method):
                    continue
                callee = self.function(call.target) if call.target else None
                if callee is None:
                    frame.pure = False
                    break
                name = callee.function.qualname
                if name in self._pure:
                    frame.pure = self._pure[name]
                    continue
                frame.waiting = True
                stack.append(_PureFrame(callee, self._pure_itself(callee)))
                descended = True
                break
            if descended:
                continue
            self._pure[function.qualname] = returned = frame.pure
            stack.pop()
        return self._pure[first]

    def _pure_itself(self, located: Located) -> bool:
        """Whether the function's own body may be pure (before looking at its calls); marks
        it as being examined."""
        function = located.function
        self._pure[function.qualname] = True
        return not (
            function.is_async
            or function.is_generator
            or function.has_side_effects
            or function.opaque
        )


@dataclass(slots=True)
class _ChainFrame:
    """A function whose calls ``_chain_of`` is going through."""

    located: Located
    position: int = 0
    best: BlockingChain | None = None
    #: The step into the callee being examined, whose answer comes back next.
    waiting: ChainStep | None = None

    def consider(self, step: ChainStep, sub: BlockingChain | None) -> None:
        if sub is not None and (self.best is None or len(sub.steps) + 1 < len(self.best.steps)):
            self.best = BlockingChain((step, *sub.steps), sub.entry, sub.leaf)


@dataclass(slots=True)
class _PureFrame:
    """A function whose calls ``_is_pure`` is going through."""

    located: Located
    pure: bool
    position: int = 0
    waiting: bool = False


def is_nonblocking(call: CallFact, entry: Blocking) -> bool:
    """Whether this particular call of a blocking function returns at once.

    Literal arguments can say so (``acquire(blocking=False)``), the surrounding code can
    (a ``try`` that expects ``BlockingIOError`` is using a non-blocking socket), and so can
    the receiver (a lock created earlier in the function, that no other code can hold yet,
    is free).
    """
    if call.guarded:
        return True
    if entry.lazy and call.usage != ITERATED:
        return True  # a generator: nothing happens until something iterates it
    if entry.free_when_fresh and call.fresh_receiver:
        return True
    if entry.free_when_private and call.private_receiver:
        return True
    if entry.exempt is not None and entry.exempt(call):
        return True
    literals = call.literals
    for key, value in entry.nonblocking:
        if key not in literals:
            continue
        actual = literals[key]
        if isinstance(value, bool):
            if actual is value:
                return True
        elif not isinstance(actual, bool) and actual == value:
            return True
    return False


#: The arguments an ``acquire`` may have and still wait as long as the lock is held:
#: ``blocking`` (``False`` is let through by ``is_nonblocking``) and a timeout of -1.
_UNTIMED_ACQUIRE: dict[str, int | None] = {"0": None, "blocking": None, "1": -1, "timeout": -1}


def is_critical_section(call: CallFact, entry: Blocking) -> bool:
    """Whether a sync helper's call takes a lock for a critical section, which async code
    calling the helper is not told about.

    Code holds a ``Lock``, ``RLock`` or a ``Condition``'s lock for a few statements: waiting
    for it is not what stalls an event loop in practice. Still followed: an acquire with a
    timeout (its author expects a long wait) or with arguments that are not literals, and a
    lock the helper made itself and handed to other code since (``done.acquire()`` after
    ``Thread(target=work, args=(done,))``): that is a signal from the other code, not a
    critical section.
    """
    if not entry.critical_section:
        return False
    if call.fresh_receiver:
        return False  # a lock made here is free while private (is_nonblocking): handed out
    if call.is_with:
        return True
    if len(call.literals) != call.argc:
        return False  # an argument that is not a literal (a timeout variable), or ``*args``
    for key, value in call.literals.items():
        if key not in _UNTIMED_ACQUIRE:
            return False
        allowed = _UNTIMED_ACQUIRE[key]
        if allowed is not None and (isinstance(value, bool) or value != allowed):
            return False
    return True
