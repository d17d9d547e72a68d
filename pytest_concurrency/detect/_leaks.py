"""Check what an owner left behind, after a short grace period for things already finishing.

The grace period only costs time when something is still running: a test that leaves nothing
behind is checked in a few microseconds. While waiting, the check polls every few
milliseconds and stops as soon as everything has finished.
"""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from pytest_concurrency.detect._frames import Location, callable_name
from pytest_concurrency.detect._ownership import Owner, Record

if TYPE_CHECKING:
    # Imported where a leak is described: most sessions never need the module.
    from pytest_concurrency.detect._findings import Leak, LeakReport

DEFAULT_GRACE_MS = 100.0

# Reused worker pools that outlive any single test by design.
DEFAULT_ALLOW = (
    "asyncio_*",  # asyncio's default executor (loop.run_in_executor(None, ...), to_thread)
    # Waits for one asyncio subprocess and ends with it: the process is what gets reported.
    "asyncio-waitpid-*",
    "AnyIO worker thread",
    "anyio._backends.*.WorkerThread",
    # Started by anyio's to_process on first use; waits for the runner to cancel it at
    # shutdown, which is its cue to stop the worker processes.
    "AnyIO process pool shutdown task",
    "Trio thread *",
    "trio._core._thread_cache.*",
)

_POLL_S = 0.002
TARGET_ATTRIBUTE = "_concurrency_guard_target"


def target_of(obj: Any) -> Any:
    """The target a thread or process was started with (kept even after start() drops it)."""
    return getattr(obj, TARGET_ATTRIBUTE, None) or getattr(obj, "_target", None)


class AllowList:
    """Patterns (shell-style, like ``my-pool-*``) matched against names and targets."""

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.patterns = tuple(DEFAULT_ALLOW) + tuple(p for p in patterns if p)
        self._regex: re.Pattern[str] | None = None  # compiled on first use

    def allows(self, names: Iterable[str]) -> bool:
        regex = self._regex
        if regex is None:
            regex = self._regex = re.compile("|".join(map(fnmatch.translate, self.patterns)))
        return any(regex.match(name) for name in names if name)


current_allow = AllowList()
"""The allow list the creation hooks consult (to leave pool workers unowned)."""


def install_allow(allow: AllowList) -> AllowList:
    """Make ``allow`` the process-wide allow list; returns the one it replaces."""
    global current_allow
    previous, current_allow = current_allow, allow
    return previous


def still_running(record: Record) -> bool:
    obj = record.ref()
    if obj is None:
        return False
    if record.kind == "task":
        return not obj.done()
    if record.kind == "thread":
        return bool(obj.is_alive())
    if hasattr(obj, "poll"):  # subprocess.Popen
        return obj.poll() is None
    try:
        return bool(obj.is_alive())  # multiprocessing.Process
    except (AssertionError, ValueError):  # not started by this process, or closed
        return False


def check(owner: Owner, grace_ms: float, allow: AllowList) -> LeakReport | None:
    """Close ``owner`` and report what it left running, or None when it left nothing."""
    owner.closed = True
    records, owner.records = owner.records, []
    if not records:
        return None
    abandoned = [r.abandoned for r in records if r.abandoned is not None]
    running = [r for r in records if r.abandoned is None and still_running(r)]
    if running and grace_ms > 0:
        deadline = time.monotonic() + grace_ms / 1000.0
        while running and time.monotonic() < deadline:
            time.sleep(min(_POLL_S, max(0.0, deadline - time.monotonic())))
            running = [r for r in running if still_running(r)]
    leaks = [leak for leak, names in abandoned if not allow.allows(names)]
    leaks += [describe(r) for r in running if r.ref() is not None and not allow.allows(names_of(r))]
    if not leaks:
        return None
    from pytest_concurrency.detect._findings import LeakReport

    return LeakReport(owner=owner.label, leaks=leaks, grace_ms=grace_ms)


def names_of(record: Record) -> list[str]:
    """Names an allow-list pattern can match: name, target, class, command line."""
    obj = record.ref()
    if obj is None:
        return []
    if record.kind == "task":
        coro = obj.get_coro()
        return [obj.get_name(), getattr(coro, "__qualname__", "")]
    return thread_names(obj)


def thread_names(obj: Any) -> list[str]:
    """Names of a thread or process: its name, its target (plain and qualified), its class."""
    names = [str(getattr(obj, "name", ""))]
    target = target_of(obj)
    if target is not None:
        names.append(_qualified(target))
        names.append(callable_name(target))
    else:
        names.append(f"{type(obj).__module__}.{type(obj).__qualname__}")
    args = getattr(obj, "args", None)
    if isinstance(args, (str, bytes, list, tuple)):
        names.append(_command_line(args))
    return names


def _qualified(func: Any) -> str:
    module = getattr(func, "__module__", None) or ""
    return f"{module}.{callable_name(func)}" if module else callable_name(func)


def describe(record: Record, detail: str = "") -> Leak:
    """Describe what a record refers to, now (call it while the object is still running)."""
    from pytest_concurrency.detect._findings import Leak

    obj = record.ref()
    if record.kind == "task":
        what, suspended = _describe_task(obj)
        return Leak("task", what, record.site, suspended, detail)
    if record.kind == "thread":
        return Leak("thread", _describe_thread(obj), record.site)
    return Leak("process", _describe_process(obj), record.site)


def _describe_task(task: Any) -> tuple[str, Location | None]:
    """What a task runs, and the user line it is suspended at (None once it is done)."""
    coro = task.get_coro()
    what = f"{task.get_name()!r} running {getattr(coro, '__qualname__', repr(coro))}()"
    return what, None if task.done() else suspended_at(coro)


def suspended_at(coro: Any) -> Location | None:
    """The innermost user line a coroutine chain is suspended at."""
    found: Location | None = None
    depth = 0
    while coro is not None and depth < 50:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            loc = Location(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)
            if loc.is_user:
                found = loc
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        depth += 1
    return found


def _describe_thread(thread: Any) -> str:
    target = target_of(thread)
    runs = (
        f"{callable_name(target)}()" if target is not None else f"{type(thread).__qualname__}.run()"
    )
    daemon = ", daemon" if thread.daemon else ""
    return f"{thread.name!r} running {runs}{daemon}"


def _describe_process(process: Any) -> str:
    args = getattr(process, "args", None)
    if args is not None and hasattr(process, "poll"):
        return f"pid {process.pid} running {_command_line(args)!r}"
    target = target_of(process)
    runs = (
        f"{callable_name(target)}()"
        if target is not None
        else f"{type(process).__qualname__}.run()"
    )
    return f"{process.name!r} (pid {process.pid}) running {runs}"


def _command_line(args: str | bytes | Sequence[Any]) -> str:
    if isinstance(args, bytes):
        return args.decode(errors="replace")
    if isinstance(args, str):
        return args
    import shlex

    return shlex.join(str(a) for a in args)
