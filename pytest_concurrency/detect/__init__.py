"""Runtime detectors, usable with or without pytest.

``watch_loop`` fails code that blocks an event loop and names the blocking line;
``watch_leaks`` fails code that leaves tasks, threads or child processes running::

    from pytest_concurrency.detect import watch_leaks, watch_loop

    with watch_loop(threshold_ms=50), watch_leaks():
        asyncio.run(main())

Both watch every asyncio, uvloop and trio event loop that runs while the block is active, in
any thread, and raise :class:`LoopBlockedError` or :class:`LeakError` at the end of the block.
Pass ``raise_on_exit=False`` to only collect the findings on the returned watcher.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pytest_concurrency.detect import _leaks, _ownership, _runtime, _steps
from pytest_concurrency.detect._frames import Location
from pytest_concurrency.detect._hooks import hooks
from pytest_concurrency.detect._leaks import DEFAULT_ALLOW, DEFAULT_GRACE_MS
from pytest_concurrency.detect._runtime import InternalError

if TYPE_CHECKING:
    from pytest_concurrency.detect._findings import Leak, LeakReport, LoopBlocked

__all__ = [
    "DEFAULT_ALLOW",
    "DEFAULT_GRACE_MS",
    "InternalError",
    "Leak",
    "LeakError",
    "LeakReport",
    "LeakWatch",
    "Location",
    "LoopBlocked",
    "LoopBlockedError",
    "LoopWatch",
    "watch_leaks",
    "watch_loop",
]

DEFAULT_THRESHOLD_MS = 50.0

_FINDINGS = ("Leak", "LeakReport", "LoopBlocked")


def __getattr__(name: str) -> Any:
    # The findings are built only when something is found: their module is imported then,
    # which keeps the plugin's start-up short.
    if name in _FINDINGS:
        from pytest_concurrency.detect import _findings

        return getattr(_findings, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class LoopBlockedError(AssertionError):
    """An event loop was blocked longer than the threshold inside a ``watch_loop`` block."""

    def __init__(self, events: list[LoopBlocked]) -> None:
        self.events = events
        super().__init__("\n".join(event.format() for event in events))


class LeakError(AssertionError):
    """Code inside a ``watch_leaks`` block left tasks, threads or processes running."""

    def __init__(self, report: LeakReport) -> None:
        self.report = report
        super().__init__(report.format())


class LoopWatch:
    """What ``watch_loop`` saw: the slow steps, and any failure of the detector itself."""

    def __init__(self, threshold_ms: float) -> None:
        self.threshold_ms = threshold_ms
        self._listener = _steps.LagListener(threshold_ms)

    @property
    def events(self) -> list[LoopBlocked]:
        """Every step that held a loop at least ``threshold_ms``, in the order they ended."""
        return list(self._listener.events)

    @property
    def errors(self) -> list[InternalError]:
        """Failures of the detector itself (it switches off after one)."""
        return list(_runtime.errors)


class LeakWatch:
    """What ``watch_leaks`` found when its block ended."""

    def __init__(self) -> None:
        self.report: LeakReport | None = None

    @property
    def leaks(self) -> list[Leak]:
        return list(self.report.leaks) if self.report else []


@contextmanager
def watch_loop(
    threshold_ms: float = DEFAULT_THRESHOLD_MS, *, raise_on_exit: bool = True
) -> Iterator[LoopWatch]:
    """Watch every event loop step that runs inside the block, in any thread.

    A step (one callback, or one step of a task) that holds its loop for ``threshold_ms`` or
    longer is recorded with the stack of the loop thread sampled while it was blocked. At the
    end of the block, :class:`LoopBlockedError` is raised if any step was that slow (unless
    ``raise_on_exit`` is false). When the block is already raising (another detector's error,
    say), the finding is added to that exception as a note instead (Python 3.11 and later).
    """
    if threshold_ms < 0:
        raise ValueError(f"threshold_ms must be >= 0, got {threshold_ms!r}")
    watch = LoopWatch(threshold_ms)
    hooks.acquire(leaks=False)
    _steps.add_listener(watch._listener)
    try:
        yield watch
    except BaseException as exc:
        if raise_on_exit and watch.events:
            _add_note(exc, str(LoopBlockedError(watch.events)))
        raise
    finally:
        _steps.remove_listener(watch._listener)
        hooks.release(leaks=False)
    if raise_on_exit and watch.events:
        raise LoopBlockedError(watch.events)


@contextmanager
def watch_leaks(
    kinds: Iterable[str] = _ownership.KINDS,
    *,
    grace_ms: float = DEFAULT_GRACE_MS,
    allow: Iterable[str] = (),
    raise_on_exit: bool = True,
) -> Iterator[LeakWatch]:
    """Fail the block if it leaves tasks, threads or child processes running.

    ``kinds`` is any of ``"tasks"``, ``"threads"``, ``"processes"``. Things still running
    when the block ends get ``grace_ms`` to finish; ``allow`` adds shell-style patterns of
    thread names or targets that are never reported (reused pools are allowed already). On
    exit, :class:`LeakError` is raised when something was left (unless ``raise_on_exit`` is
    false); when the block is already raising, the finding is added to that exception as a
    note instead (Python 3.11 and later).
    """
    chosen = frozenset(kinds)
    unknown = chosen - set(_ownership.KINDS)
    if unknown:
        raise ValueError(
            f"unknown leak kind(s) {sorted(unknown)}; choose from {', '.join(_ownership.KINDS)}"
        )
    allow_list = _leaks.AllowList(allow)
    watch = LeakWatch()
    owner = _ownership.Owner("the watch_leaks() block", kinds=chosen)
    hooks.acquire(leaks=True)
    _ownership.push(owner)
    try:
        yield watch
    except BaseException as exc:
        _close_leak_watch(watch, owner, grace_ms, allow_list)
        if raise_on_exit and watch.report is not None:
            _add_note(exc, str(LeakError(watch.report)))
        raise
    _close_leak_watch(watch, owner, grace_ms, allow_list)
    if raise_on_exit and watch.report is not None:
        raise LeakError(watch.report)


def _close_leak_watch(
    watch: LeakWatch, owner: _ownership.Owner, grace_ms: float, allow: _leaks.AllowList
) -> None:
    _ownership.remove(owner)
    try:
        watch.report = _leaks.check(owner, grace_ms, allow)
    finally:
        hooks.release(leaks=True)


def _add_note(exc: BaseException, finding: str) -> None:
    """Keep a finding made while the block raised: it goes with the exception, as a note."""
    add_note = getattr(exc, "add_note", None)  # Python 3.11+
    if add_note is not None:
        add_note(f"concurrency-guard also found:\n{finding}")
