"""Who owns a task, thread or process: the test or fixture that was running when it was made.

An :class:`Owner` is a test, a fixture with a wider scope than a test, or a ``watch_leaks``
block. Owners form a stack that follows the main flow of a test run (a test, then the module
fixture it sets up, and so on). A creation belongs to:

1. the owner of the asyncio task it happens in, when that task was itself recorded for an
   owner (a dispatcher task of a module fixture owns the handler tasks it creates during a
   test), else the owner of the thread it happens on, when that thread was started by an
   owner (a server thread of a module fixture owns the connection threads it spawns). Once
   that owner has been checked, later creations of its tasks and threads belong to nobody, so
   a leak is reported once and never cascades into the tests that follow;
2. otherwise, the owner on top of the stack, provided user code made it: user code on the
   stack, or, for a task the event loop makes on a callback's behalf (the connection handler
   of ``asyncio.start_server``), a coroutine of user code. What a test runner creates for
   itself (the task pytest-asyncio runs a test in, anyio's runner task) is nobody's.

Pool workers (asyncio's default executor, anyio's worker threads, trio's thread cache) are
nobody's either: work they run on behalf of a test is attributed through the stack.
"""

from __future__ import annotations

import threading
import weakref
from asyncio import current_task as _current_task
from asyncio.events import _get_running_loop
from collections.abc import Callable
from types import CodeType
from typing import Any

from pytest_concurrency.detect._frames import (
    LOOP_STEP,
    USER_CODE,
    CodeSite,
    Location,
    caller_site,
    is_user_file,
    location_of,
)

KINDS = ("tasks", "threads", "processes")
"""The kinds of leak, as users name them (``--leak-check``, ``allow_leaks``)."""

OWNER_ATTRIBUTE = "_concurrency_guard_owner"
_KIND_OF_RECORD = {"task": "tasks", "thread": "threads", "process": "processes"}

tracking = False
"""True while at least one leak check is active; every creation hook checks it first."""
disabled_reason = ""
"""Why leak tracking was switched off after an internal error (empty while healthy)."""


class Record:
    """One tracked creation.

    ``kind`` is "task", "thread" or "process"; ``ref()`` returns the object, or None once it
    has been garbage-collected; ``site`` is where user code created it; ``owner`` is who it
    belongs to. ``abandoned`` is set, for a task cancelled by its runner's shutdown, to the leak
    described while still pending.
    """

    # A plain class with slots: one is made for every task, thread and process recorded.
    __slots__ = ("_site", "abandoned", "kind", "owner", "ref")

    def __init__(
        self,
        kind: str,
        ref: Callable[[], Any],
        site: Location | CodeSite | None,
        owner: Owner | None = None,
    ) -> None:
        self.kind = kind
        self.ref = ref
        self._site = site
        self.owner = owner
        self.abandoned: Any = None

    @property
    def site(self) -> Location | None:
        """Where it was created (its line number is worked out on first use)."""
        site = self._site
        if site is not None and not isinstance(site, Location):
            site = self._site = location_of(site)
        return site

    def __repr__(self) -> str:
        return f"Record({self.kind!r}, {self.ref()!r}, {self.site!r})"


class Owner:
    """Something that can leave things behind: a test, a wide fixture or a ``watch_leaks`` block.

    ``kinds`` are the kinds of leak checked for it (see :data:`KINDS`); ``records`` what it
    created that may still run; ``closed`` becomes true once it has been checked.
    """

    # A plain class with slots: one is made for every test.
    __slots__ = ("_prune_at", "closed", "kinds", "label", "records")

    def __init__(self, label: str, kinds: frozenset[str] = frozenset(KINDS)) -> None:
        self.label = label
        self.kinds = kinds
        self.records: list[Record] = []
        self.closed = False
        self._prune_at = 256

    def __repr__(self) -> str:
        return f"Owner({self.label!r}, closed={self.closed})"

    def prune(self) -> None:
        """Forget records that can no longer leak, so that memory stays flat in tests that
        create many short-lived tasks or threads."""
        self.records = [r for r in self.records if _may_leak(r)]
        self._prune_at = max(256, 2 * len(self.records))


def _may_leak(record: Record) -> bool:
    if record.abandoned is not None:
        return True
    obj = record.ref()
    if obj is None:
        return False
    if record.kind == "task":
        return not obj.done()
    if record.kind == "thread":
        return obj.ident is None or bool(obj.is_alive())
    return True  # processes are few; keep them all until the check


_stack: list[Owner] = []
_stack_lock = threading.Lock()


def push(owner: Owner) -> None:
    with _stack_lock:
        _stack.append(owner)


def remove(owner: Owner) -> None:
    """Take ``owner`` off the stack wherever it is (teardown order is not always LIFO)."""
    with _stack_lock:
        for index in range(len(_stack) - 1, -1, -1):
            if _stack[index] is owner:
                del _stack[index]
                return


def adopt_thread(thread: threading.Thread, owner: Owner | None) -> None:
    """Make ``owner`` the owner of whatever ``thread`` creates (None: nobody's)."""
    setattr(thread, OWNER_ATTRIBUTE, owner)


def weak(obj: Any) -> Callable[[], Any]:
    """A weak reference when the object supports one, else a strong one."""
    try:
        return weakref.ref(obj)
    except TypeError:
        return strong(obj)


def strong(obj: Any) -> Callable[[], Any]:
    """A strong reference: the owner keeps the object until it has been checked."""
    return lambda: obj


_task_records: dict[int, Record] = {}
"""The record of each recorded asyncio task still alive, by ``id``: what the task makes belongs
to its owner too, and a runner that shuts its loop down looks here for tasks left pending."""


class _TaskRef(weakref.ref):  # type: ignore[type-arg]
    """A weak reference to a recorded task that forgets the task's record when it is gone."""

    __slots__ = ("key",)
    key: int


def _forget_task(ref: _TaskRef) -> None:
    _task_records.pop(ref.key, None)


def recorded_tasks() -> list[Record]:
    """The records of the recorded tasks still alive, of owners not yet checked."""
    return [
        record
        for record in list(_task_records.values())
        if record.owner is not None and not record.owner.closed
    ]


def track(
    kind: str,
    obj: Any,
    skip: int,
    loop: Any = None,
    runs: CodeType | None = None,
) -> Owner | None:
    """Record a creation for the owner it belongs to; returns that owner, or None.

    ``obj`` is what was created; tasks and threads are held weakly, processes strongly (the
    check must see a process until it has been reaped). ``skip`` is the number of our own
    frames between the code that creates and this function; ``loop`` is the event loop it
    happens on, if known (else the running one is looked up); ``runs`` is the code a new task
    will run.
    """
    # This runs for every task, thread and process created while a check is active: what it
    # needs is written out here rather than spread over helper calls.
    # 1. The owner of the task running on the loop, if that task was recorded; else the owner
    #    of the thread, if an owner started it.
    inherited: Owner | None = None
    from_task = False
    if _task_records:
        running = loop if loop is not None else _get_running_loop()
        task = _current_task(running) if running is not None else None
        if task is not None:
            entry = _task_records.get(id(task))
            if entry is not None and entry.ref() is task:
                inherited, from_task = entry.owner, True
    if inherited is None:
        inherited = getattr(threading.current_thread(), OWNER_ATTRIBUTE, None)
    # 2. Else the owner on top of the stack (the test or fixture running), if it checks this kind.
    if inherited is not None:
        if inherited.closed:
            return None
        owner: Owner | None = inherited
    else:
        owner = _stack[-1] if _stack else None
    if owner is None or owner.closed or _KIND_OF_RECORD[kind] not in owner.kinds:
        return None
    # 3. User code made it, or the event loop made a task for user code during a step (the
    #    connection handler of a server); what library code alone makes is a runner's.
    # Without user code, the innermost library frame is the site, needed only for what the
    # loop made during a step and for an owner inherited from a recorded task, or from a
    # thread for anything but a task (see below).
    site, found = caller_site(
        skip + 1, fallback=inherited is not None and (from_task or kind != "task")
    )
    made_for_user = found == USER_CODE or (
        found == LOOP_STEP and runs is not None and is_user_file(runs.co_filename)
    )
    if not made_for_user and (
        inherited is None
        # A runner's task in a thread an owner started (the portal of anyio's
        # start_blocking_portal): the thread is what gets reported, not its machinery.
        or (kind == "task" and not from_task)
    ):
        return None
    if kind == "task":
        # One weak reference serves the record and the map of recorded tasks, and is made
        # only for tasks that are recorded (most tasks of a suite are its runner's).
        task_ref = _TaskRef(obj, _forget_task)
        task_ref.key = key = id(obj)
        record = _task_records[key] = Record(kind, task_ref, site, owner)
    else:
        record = Record(kind, strong(obj) if kind == "process" else weak(obj), site, owner)
    owner.records.append(record)
    if len(owner.records) >= owner._prune_at:
        owner.prune()
    return owner


def tasks_recorded() -> bool:
    """Whether any recorded task is still alive (else no task can have been leaked)."""
    return bool(_task_records)
