"""Exact timing of event-loop steps, shared by the asyncio, uvloop and trio hooks.

A *step* is one callback or one task step: the unit of work during which the loop can do
nothing else. Each hooked loop gets a :class:`StepMonitor`; the hooks call :meth:`begin` and
:meth:`end` around every step. The hot path is a counter, two clock reads and a tuple; all the
expensive work (building the report) happens only for a step that ran past the threshold.

While a step runs, the watchdog thread (``_watchdog``) reads :attr:`StepMonitor.current` and
samples the loop thread's stack into :attr:`StepMonitor.samples`, so the report can show the
line that was running *during* the block, not where the coroutine resumed afterwards.

Slow steps are published to every registered :class:`LagListener` whose threshold they exceed.
"""

from __future__ import annotations

import gc
import math
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any

from pytest_concurrency.detect import _thread_clock
from pytest_concurrency.detect._frames import (
    Location,
    Stack,
    callable_name,
    code_location,
    is_user_file,
)
from pytest_concurrency.detect._runtime import internal_error
from pytest_concurrency.detect._thread_clock import Reading, ThreadClock, set_reuse_for_threshold

if TYPE_CHECKING:
    from pytest_concurrency.detect._findings import LoopBlocked

# One step: (sequence number, start time, what is running, thread id, GC seconds at start,
# then what the thread had waited through no fault of its own at start (see _thread_clock):
# the clock reading in force, and the thread start-up counter).
Step = tuple[int, float, object, int, float, Reading, float]
# One stack sample: (sequence number of the step, stack, taken late after a GIL-holding stretch).
Sample = tuple[int, Stack, bool]

MAX_SAMPLES_PER_STEP = 64


class LagSettings:
    """Process-wide switches read on every step; changed only by listener registration."""

    threshold_s: float = math.inf
    """Smallest threshold of any listener; steps shorter than this cost nothing more."""
    enabled: bool = False
    """True while at least one listener is registered and the detector is healthy."""
    gc_seconds: float = 0.0
    """Total time spent in completed garbage collections while enabled (see ``_count_gc``)."""
    gc_started: float = 0.0
    """When the collection in progress started, or 0.0 when none is."""


settings = LagSettings()
_get_ident = threading.get_ident


class LagListener:
    """Receives the slow steps at or above its own threshold (in seconds)."""

    def __init__(self, threshold_ms: float) -> None:
        self.events: list[LoopBlocked] = []
        self.threshold_s = _to_seconds(threshold_ms)
        self.on_event: Callable[[LoopBlocked], None] | None = None

    def set_threshold(self, threshold_ms: float) -> None:
        threshold_s = _to_seconds(threshold_ms)
        if threshold_s != self.threshold_s:
            self.threshold_s = threshold_s
            _recompute()

    def accept(self, event: LoopBlocked) -> None:
        if self.on_event is not None:
            self.on_event(event)
        else:
            self.events.append(event)


def _to_seconds(threshold_ms: float) -> float:
    return math.inf if threshold_ms <= 0 or math.isinf(threshold_ms) else threshold_ms / 1000.0


_listeners: list[LagListener] = []
_listeners_lock = threading.Lock()


def add_listener(listener: LagListener) -> None:
    with _listeners_lock:
        _listeners.append(listener)
    _recompute()


def remove_listener(listener: LagListener) -> None:
    with _listeners_lock:
        if listener in _listeners:
            _listeners.remove(listener)
    _recompute()


def _recompute() -> None:
    with _listeners_lock:
        thresholds = [listener.threshold_s for listener in _listeners]
    settings.threshold_s = min(thresholds, default=math.inf)
    settings.enabled = bool(_listeners) and not disabled_reason
    set_reuse_for_threshold(settings.threshold_s)
    _count_gc_while(settings.enabled)
    _watchdog_poke()


def _count_gc(phase: str, info: dict[str, int]) -> None:
    """Add up garbage-collection pauses, so that a step is not blamed for one.

    A collection of the oldest generation in a big test session easily takes 50-300 ms and
    can start in any step that allocates; it is not something the step's code does.
    """
    if phase == "start":
        settings.gc_started = perf_counter()
    elif settings.gc_started:
        settings.gc_seconds += perf_counter() - settings.gc_started
        settings.gc_started = 0.0


def _count_gc_while(enabled: bool) -> None:
    if enabled and _count_gc not in gc.callbacks:
        gc.callbacks.append(_count_gc)
    elif not enabled and _count_gc in gc.callbacks:
        gc.callbacks.remove(_count_gc)


disabled_reason: str = ""


def disable(reason: str) -> None:
    """Turn loop-lag detection off for the rest of the process (after an internal error)."""
    global disabled_reason
    disabled_reason = reason
    settings.enabled = False


def publish(event: LoopBlocked) -> None:
    # No lock here: this runs on the loop thread, and copying a list is atomic.
    listeners = list(_listeners)
    threshold = event.duration_ms / 1000.0
    for listener in listeners:
        if threshold >= listener.threshold_s:
            listener.accept(event)


# Monitors of loops that may currently run, by id(loop); the watchdog walks this.
active: dict[int, StepMonitor] = {}
_pokes: list[Callable[[], None]] = []
_loop_started: list[Callable[[], None]] = []


def _watchdog_poke() -> None:
    for poke in _pokes:
        poke()


def set_watchdog_pokes(poke: Callable[[], None], loop_started: Callable[[], None]) -> None:
    """Called by the watchdog module: how to wake the watchdog when the settings change, and
    what to tell it when a loop starts."""
    _pokes[:] = [poke]
    _loop_started[:] = [loop_started]


class StepMonitor:
    """Times the steps of one event loop or one trio run."""

    __slots__ = (
        "__weakref__",
        "clock",
        "current",
        "describe",
        "ending",
        "key",
        "kind",
        "last_sample",
        "samples",
        "seq",
        "thread_id",
    )

    def __init__(self, kind: str, key: int, describe: Callable[[object], Describe]) -> None:
        self.kind = kind
        self.key = key
        self.seq = 0
        self.current: Step | None = None
        self.samples: list[Sample] = []
        self.last_sample: tuple[int, float] = (0, 0.0)  # (step, time) of the latest sample
        self.describe = describe
        self.ending: Step | None = None
        self.bind_to_current_thread()

    def bind_to_current_thread(self) -> None:
        """Time the steps on the calling thread (a loop calls this each time it starts running).

        Kept here so that a step reads plain attributes, not thread-local storage.
        """
        self.thread_id = _get_ident()
        self.clock: ThreadClock = _thread_clock.current()

    def register(self) -> None:
        active[self.key] = self
        for loop_started in _loop_started:
            loop_started()

    def unregister(self) -> None:
        if active.get(self.key) is self:
            del active[self.key]

    def begin(self, what: object) -> Step | None:
        """Start timing a step; returns the enclosing step (for nested loops) to restore.

        (:func:`timed_handle_run` writes this out for asyncio: keep the two alike.)
        """
        self.seq = seq = self.seq + 1
        previous = self.current
        now = perf_counter()
        # clock.baseline(now), inlined: this runs for every step of every watched loop.
        clock = self.clock
        reading = clock.reading
        if now - reading[0] > _thread_clock.REUSE_S:
            reading = clock.read(now)
        self.current = (
            seq,
            now,
            what,
            self.thread_id,
            settings.gc_seconds,
            reading,
            clock.thread_start_wait,
        )
        return previous

    def end(self, previous: Step | None) -> None:
        """Finish the current step and restore the enclosing one.

        While it is being reported, the step is :attr:`ending` (no longer sampled):
        :func:`wait_for_blocked_steps` waits for the report to be out.
        """
        step = self.current
        self.current = previous
        if step is None:
            return
        self.ending = step
        try:
            now = perf_counter()
            wall = now - step[1]
            # What follows only ever shortens a step: look at it only for a slow one.
            if wall >= settings.threshold_s and settings.enabled:
                # Garbage-collection pauses during the step are not the step's doing.
                gc_pause = settings.gc_seconds - step[4]
                if settings.gc_started:
                    # A collection still running in another thread (its finalizers can hand the
                    # GIL back to us mid-collection): the part that overlapped this step.
                    gc_pause += now - max(settings.gc_started, step[1])
                duration = wall - gc_pause
                if duration >= settings.threshold_s:
                    # Time the operating system ran something else, or spent starting a thread
                    # the step asked for, is not the step's doing either.
                    waited = self.clock.waited_since(step[5], step[6], step[1], wall)
                    duration -= waited
                    if duration >= settings.threshold_s:
                        self._report(step, duration, gc_pause, waited)
                        return
            if self.samples:
                seq = step[0]
                self.samples = [s for s in self.samples if s[0] > seq]
        finally:
            self.ending = None

    def _report(self, step: Step, duration: float, gc_pause: float, waited: float) -> None:
        from pytest_concurrency.detect._findings import LoopBlocked

        seq, _, what, thread_id = step[:4]
        mine = [sample for sample in self.samples if sample[0] == seq]
        self.samples = [s for s in self.samples if s[0] > seq]
        stack, agreeing, others = choose_sample([stack for _, stack, _ in mine])
        only_late = bool(mine) and all(late for _, _, late in mine)
        running = self.describe(what)
        if not running.is_user:
            # A runner's task (anyio, pytest-trio) running user code: name the user code.
            outermost = next((loc for loc in reversed(stack) if loc.is_user), None)
            if outermost is not None:
                running = Running(running.label, outermost.function, outermost, True)
        publish(
            LoopBlocked(
                duration_ms=duration * 1000.0,
                threshold_ms=settings.threshold_s * 1000.0,
                loop=self.kind,
                running=running.text,
                running_at=running.location,
                stack=stack,
                samples=len(mine),
                agreeing=agreeing,
                elsewhere=others,
                gc_ms=gc_pause * 1000.0,
                waited_ms=waited * 1000.0,
                sampled_late=only_late,
                thread=_thread_name(thread_id),
            )
        )


def wait_for_blocked_steps(timeout_s: float) -> None:
    """Wait, at most ``timeout_s``, until no loop in another thread is in a step that has
    already run past the threshold or is reporting one: such a step reports a block when it
    ends, and the caller wants that report now (a test whose server thread is still finishing
    the step that served it). Returns at once when no such step runs."""
    me = _get_ident()
    deadline = 0.0
    for monitor in list(active.values()):
        while True:
            ending = monitor.ending
            step = monitor.current
            now = perf_counter()
            busy = (ending is not None and ending[3] != me) or (
                step is not None and step[3] != me and now - step[1] >= settings.threshold_s
            )
            if not busy:
                break
            if not deadline:
                deadline = now + timeout_s
            elif now >= deadline:
                return
            time.sleep(0.001)


def timed_handle_run(original: Callable[[Any], None]) -> Callable[[Any], None]:
    """asyncio's ``Handle._run`` as a timed step of the handle's loop, when that loop is watched.

    :meth:`StepMonitor.begin` and the common case of :meth:`StepMonitor.end` (a short step that
    no sample was taken in) are written out here: every callback and task step of every
    asyncio loop runs through this, and two method calls cost a fifth of the whole.
    """
    monitors = active

    def _run(handle: Any) -> None:
        monitor = monitors.get(id(handle._loop))
        if monitor is None or not settings.enabled:
            original(handle)
            return
        monitor.seq = seq = monitor.seq + 1
        previous = monitor.current
        now = perf_counter()
        clock = monitor.clock
        reading = clock.reading
        if now - reading[0] > _thread_clock.REUSE_S:
            reading = clock.read(now)
        step = (
            seq,
            now,
            handle,
            monitor.thread_id,
            settings.gc_seconds,
            reading,
            clock.thread_start_wait,
        )
        monitor.current = step
        try:
            original(handle)
        finally:
            if perf_counter() - now < settings.threshold_s and not monitor.samples:
                monitor.current = previous
            else:
                monitor.current = step
                try:
                    monitor.end(previous)
                except Exception as exc:
                    internal_error("loop-lag", exc)

    return _run


class Running:
    """What a loop step runs: a task or a callback, and the function it is in.

    (A plain class: its definition is part of the plugin's start-up, a named tuple's costs
    eight times as much.)
    """

    __slots__ = ("function", "is_user", "label", "location")

    def __init__(self, label: str, function: str, location: Location | None, is_user: bool) -> None:
        self.label = label  # "task 'Task-3'" or "callback"
        self.function = function
        self.location = location
        self.is_user = is_user

    @property
    def text(self) -> str:
        if self.label == "callback":
            return f"callback {self.function}()"
        return f"{self.label} running {self.function}()"


Describe = Running


def choose_sample(stacks: list[Stack]) -> tuple[Stack, int, tuple[tuple[Location, int], ...]]:
    """The most representative stack, how many samples agree with it, and the other lines.

    Samples are grouped by their innermost user line; the largest group wins, and among equal
    groups the one seen last (closest to the end of the block). Its latest stack is returned,
    with the other groups (line and sample count), largest first.
    """
    if not stacks:
        return (), 0, ()
    counts: Counter[Location] = Counter()
    last_seen: dict[Location, int] = {}
    for index, stack in enumerate(stacks):
        key = _sample_key(stack)
        counts[key] += 1
        last_seen[key] = index
    ranked = sorted(counts, key=lambda k: (counts[k], last_seen[k]), reverse=True)
    best = ranked[0]
    others = tuple((key, counts[key]) for key in ranked[1:4])
    return stacks[last_seen[best]], counts[best], others


def _sample_key(stack: Stack) -> Location:
    for loc in stack:
        if loc.is_user:
            return Location(loc.filename, loc.lineno)
    return Location(stack[0].filename, stack[0].lineno) if stack else Location("?", 0)


def _thread_name(thread_id: int) -> str:
    for thread in threading.enumerate():
        if thread.ident == thread_id:
            return thread.name
    return f"thread {thread_id}"


def describe_callback(callback: object) -> Describe:
    """Name a loop callback: a task step names the task and its coroutine."""
    task = getattr(callback, "__self__", None)
    if task is not None and hasattr(task, "get_coro"):
        return describe_task(task)
    location = code_location(callback)
    return Running(
        "callback", callable_name(callback), location, location is not None and location.is_user
    )


def describe_task(task: Any) -> Describe:
    """Name an asyncio or trio task: its name and the outermost user coroutine it runs."""
    coro = task.get_coro() if hasattr(task, "get_coro") else getattr(task, "coro", None)
    name = task.get_name() if hasattr(task, "get_name") else getattr(task, "name", "?")
    chosen = coro
    link, depth = coro, 0
    while link is not None and depth < 20:
        code = getattr(link, "cr_code", None) or getattr(link, "gi_code", None)
        if code is not None and is_user_file(code.co_filename):
            chosen = link
            break
        link = getattr(link, "cr_await", None) or getattr(link, "gi_yieldfrom", None)
        depth += 1
    code = getattr(chosen, "cr_code", None) or getattr(chosen, "gi_code", None)
    location = Location(code.co_filename, code.co_firstlineno, code.co_name) if code else None
    qualname = getattr(chosen, "__qualname__", None) or (code.co_name if code else repr(chosen))
    return Running(f"task {name!r}", qualname, location, location is not None and location.is_user)


def monitor_finalizer(key: int) -> Callable[[weakref.ReferenceType[Any]], None]:
    """A weakref callback that forgets a loop's monitor when the loop is garbage-collected."""

    def forget(_ref: weakref.ReferenceType[Any]) -> None:
        active.pop(key, None)

    return forget
