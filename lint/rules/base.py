"""What a rule is, what it sees and what it reports.

A rule is one class. Its docstring is its user documentation (docs/rules.md is generated
from it), ``VALID`` and ``INVALID`` are code samples the test suite runs: every line of an
invalid sample that must be reported carries a trailing ``# error: CODE`` comment, and a
valid sample must give no finding at all. A rule never sees a syntax tree: it reads the
facts the extractor collected once for all rules, and the project index.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar

from concurrency_lint.catalogue import FRAMEWORK_OF_LIBRARY, Blocking, Offload, public_name
from concurrency_lint.facts import CallFact, FileFacts
from concurrency_lint.index import BlockingChain, ProjectIndex, is_nonblocking

SAFE = "safe"
UNSAFE = "unsafe"


@dataclass(frozen=True, slots=True)
class Example:
    """An invalid sample together with what ``--fix`` makes of it."""

    source: str
    #: The source after the rule's fix; for unsafe fixes, with ``--unsafe-fixes``.
    fixed: str | None = None


@dataclass(frozen=True, slots=True)
class Fix:
    """An edit that removes a finding, applied later by :mod:`concurrency_lint.fix`."""

    kind: str  # "async-sleep", "add-await" or "keep-task-reference"
    safety: str  # SAFE or UNSAFE
    framework: str = "asyncio"
    #: How to name the framework's module there (``aio``), ``+`` first when its import must
    #: be added; empty when it cannot be named (the task fix then types its set loosely).
    name: str = ""


@dataclass(slots=True)
class RawFinding:
    """A finding before it has a position: it points at an anchor of the file."""

    code: str
    anchor: int
    message: str
    fix: Fix | None = None
    #: Other places the message names, filled in as ``{0}``, ``{1}``, ... once located:
    #: (path, anchor) pairs.
    places: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class BlockingCall:
    """A call in async code that blocks, directly or through the project's own helpers."""

    call: CallFact
    entry: Blocking
    chain: BlockingChain | None = None


@dataclass
class RuleContext:
    """What the rules see of one file: its facts, the project index, the settings."""

    path: str
    facts: FileFacts
    index: ProjectIndex
    #: The module's framework: from ``--framework``, else its imports, else the project's.
    framework: str
    #: Every function that runs a callable on a thread: the catalogue's and the
    #: configuration's.
    offloads: dict[str, Offload] = field(default_factory=dict)
    #: Set by ``--framework`` (or the configuration): every message follows it.
    framework_fixed: bool = False
    _function_frameworks: dict[str, str | None] = field(default_factory=dict)

    def framework_of(self, call: CallFact) -> str:
        """Whose alternatives a message about ``call`` names: the framework of the call
        itself (``asyncio.to_thread`` in a module that also imports trio), else of its
        function (a ``@pytest.mark.trio`` test, or one whose framework calls all belong to
        one framework), else the module's."""
        if self.framework_fixed:
            return self.framework
        own = FRAMEWORK_OF_LIBRARY.get((call.target or "").partition(".")[0])
        if own is not None:
            return own
        owner = call.owner
        if owner not in self._function_frameworks:
            self._function_frameworks[owner] = self._function_framework(owner)
        return self._function_frameworks[owner] or self.framework

    def _function_framework(self, qualname: str) -> str | None:
        function = self.facts.functions.get(qualname)
        if function is None:
            return None
        if function.framework is not None:
            return function.framework
        calls = self.facts.calls
        seen = {
            FRAMEWORK_OF_LIBRARY.get((calls[index].target or "").partition(".")[0])
            for index in function.calls
        }
        seen.discard(None)
        return seen.pop() if len(seen) == 1 else None

    def resolved(self, target: str) -> str:
        """``target`` where it is defined, through the project's re-exports and the modules a
        file star-imports (``create_task`` after ``from asyncio import *`` is
        ``asyncio.create_task``)."""
        return self.index.resolve(target)

    @cached_property
    def async_calls(self) -> list[CallFact]:
        """Calls made directly in the body of an ``async def``."""
        return [call for call in self.facts.calls if call.in_async and call.target is not None]

    @cached_property
    def blocking_calls(self) -> list[BlockingCall]:
        """Every blocking call in async code, computed once for all CC1xx rules."""
        index = self.index
        found: list[BlockingCall] = []
        codes: dict[int, str] = {}
        for call in self.async_calls:
            assert call.target is not None
            entry = index.blocking_entry(call.target)
            if entry is not None:
                if not is_nonblocking(call, entry):
                    found.append(BlockingCall(call, entry))
                    codes[call.anchor] = entry.code
                continue
            if call.is_with or call.usage == "awaited":
                continue
            chain = index.blocking_chain(call.target)
            if chain is not None:
                found.append(BlockingCall(call, chain.entry, chain))
                codes[call.anchor] = chain.entry.code
        # One finding per rule per expression: ``Popen(args).wait()`` is reported for the
        # wait, which includes making the process.
        covered = {
            blocking.call.receiver
            for blocking in found
            if codes.get(blocking.call.receiver) == blocking.entry.code
        }
        return [blocking for blocking in found if blocking.call.anchor not in covered]


class Rule:
    """Base class of all rules; subclasses set the class attributes and ``check``."""

    code: ClassVar[str]
    name: ClassVar[str]
    #: ``SAFE`` or ``UNSAFE`` when the rule offers a fix, else None.
    fix_safety: ClassVar[str | None] = None
    VALID: ClassVar[tuple[str, ...]] = ()
    INVALID: ClassVar[tuple[str | Example, ...]] = ()
    #: ``[tool.concurrency-lint]`` settings the samples are linted with.
    SAMPLE_SETTINGS: ClassVar[dict[str, object]] = {}

    def check(self, context: RuleContext) -> Iterator[RawFinding]:
        """Yield the rule's findings in one file."""
        raise NotImplementedError

    @classmethod
    def summary(cls) -> str:
        """The first line of the rule's documentation."""
        return (cls.__doc__ or "").strip().splitlines()[0]


def display(call: CallFact, target: str | None = None) -> str:
    """How a message names a call: its spelling, and what it resolves to (``target``, by
    default the call's own target) if different."""
    if call.is_with:
        return f"`with {call.spelling}:`"
    shown = f"`{call.spelling}()`"
    if target is None:
        target = call.target
    if target is None or target == call.spelling or target.endswith("." + call.spelling):
        return shown
    return f"{shown} ({public_name(target)})"
