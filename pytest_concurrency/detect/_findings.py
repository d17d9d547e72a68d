"""What the detectors find: a blocked event loop and a leaked task, thread or process.

Both are plain data with a ``format()`` that produces the text users see in a failed test,
a warning, or an exception raised by the context managers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from pytest_concurrency.detect._frames import Location, Stack, innermost_user


@dataclass(frozen=True)
class LoopBlocked:
    """One step of an event loop (a callback or a task step) that held the loop too long."""

    duration_ms: float
    """How long the step ran, in milliseconds."""
    threshold_ms: float
    """The threshold in force when it ran."""
    loop: str
    """The kind of loop: ``asyncio``, ``uvloop`` or ``trio``."""
    running: str
    """What was running: a task (name and coroutine) or a callback."""
    running_at: Location | None
    """Where the running coroutine or callback is defined."""
    stack: Stack
    """The loop thread's stack sampled while it was blocked (innermost first); empty if none."""
    samples: int
    """How many stack samples were taken during the block."""
    agreeing: int
    """How many of those samples were at the same innermost user line as ``stack``."""
    thread: str
    """The name of the thread the loop runs in."""
    elsewhere: tuple[tuple[Location, int], ...] = ()
    """Other lines the samples caught the block at, with their sample counts."""
    gc_ms: float = 0.0
    """Garbage-collection pauses during the step, not counted in ``duration_ms``."""
    sampled_late: bool = False
    """The sampler only got to run after the loop thread let go of the GIL."""
    waited_ms: float = 0.0
    """Time the loop thread waited for a CPU (a busy machine) or for a thread it started to
    get going, during the step; not counted in ``duration_ms``."""

    @property
    def where(self) -> Location | None:
        """The innermost line of user code on the sampled stack: the line that blocked."""
        return innermost_user(self.stack)

    @property
    def location(self) -> Location | None:
        """The line a warning about this block points at: the blocking line, else where the
        task or callback that was running is defined."""
        return self.where or self.running_at

    def format(self, root: str | None = None) -> str:
        """The report shown to users, with paths relative to ``root``."""
        thread = "" if self.thread == "MainThread" else f" in thread {self.thread!r}"
        worth_saying = max(5.0, self.threshold_ms / 10.0)
        excluded = []
        if self.gc_ms >= worth_saying:
            excluded.append(f"{self.gc_ms:.0f} ms of garbage collection")
        if self.waited_ms >= worth_saying:
            excluded.append(f"{self.waited_ms:.0f} ms waiting for a CPU on a busy machine")
        gc_note = f", not counting {' and '.join(excluded)}" if excluded else ""
        head = (
            f"{self.loop} event loop{thread} blocked for {self.duration_ms:.0f} ms "
            f"(threshold {self.threshold_ms:g} ms{gc_note}) in {self.running}"
        )
        if self.running_at is not None:
            head += f" ({self.running_at.short(root)})"
        lines = [head]
        user = [loc for loc in self.stack if loc.is_user]
        if user:
            lines.append(
                "  stack of the loop thread while it was blocked, innermost user frame first:"
            )
            lines.extend(f"    {loc.describe(root)}" for loc in user[:8])
            innermost = self.stack[0]
            if not innermost.is_user:
                lines.append(
                    f"    (blocked inside {innermost.short(root)} in {innermost.function})"
                )
            if self.sampled_late:
                lines.append(
                    "  the loop thread held the GIL during the block, so the stack could only "
                    "be sampled right after it: the blocking call (a long C call such as a big "
                    "allocation, a regex or a C extension) is on or just before "
                    f"{user[0].short(root)}"
                )
            if self.samples > 1:
                lines.append(
                    f"  {self.agreeing} of {self.samples} stack samples taken during the block "
                    f"were at {user[0].short(root)}"
                )
            for loc, count in self.elsewhere:
                lines.append(f"  {count} at {loc.describe(root)}")
        elif self.stack:
            lines.append("  no user code on the loop thread's stack; innermost frames:")
            lines.extend(f"    {loc.describe(root)}" for loc in self.stack[:5])
        else:
            lines.append(
                "  no stack could be taken while the loop was blocked (the callback is a C "
                "function, the block was too short for the sampler, or a C call held the GIL "
                "throughout)"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class Leak:
    """A task, thread or process that outlived the test or fixture that started it."""

    kind: str
    """``task``, ``thread`` or ``process``."""
    what: str
    """What it is: a coroutine and task name, a thread name and target, a command line."""
    created_at: Location | None
    """The line of user code that created or started it."""
    suspended_at: Location | None = None
    """For a task: the innermost user line its coroutine is suspended at."""
    detail: str = ""
    """Extra context, such as why a task that is now done counts as leaked."""

    def format(self, root: str | None = None) -> str:
        text = f"{self.kind} {self.what}"
        if self.created_at is not None:
            verb = "created" if self.kind == "task" else "started"
            text += f", {verb} at {self.created_at.describe(root)}"
        if self.suspended_at is not None:
            text += f"; suspended at {self.suspended_at.describe(root)}"
        if self.detail:
            text += f"; {self.detail}"
        return text


@dataclass
class LeakReport:
    """Everything one owner (a test or a fixture) left behind."""

    owner: str
    leaks: list[Leak] = field(default_factory=list)
    grace_ms: float = 0.0

    @property
    def location(self) -> Location | None:
        """The line a warning about these leaks points at: where the first one was created."""
        return next((leak.created_at for leak in self.leaks if leak.created_at), None)

    def format(self, root: str | None = None) -> str:
        counts = _count_kinds(self.leaks)
        lines = [
            f"{self.owner} left {counts} running after it ended "
            f"(checked after a {self.grace_ms:g} ms grace period):"
        ]
        # Identical leaks (a loop that started the same task many times) are listed once.
        repeats = Counter(leak.format(root) for leak in self.leaks)
        lines.extend(
            f"  - {text}" + (f" ({count} of these)" if count > 1 else "")
            for text, count in repeats.items()
        )
        kinds = [k for k in ("task", "thread", "process") if any(x.kind == k for x in self.leaks)]
        advice = {
            "task": "await or cancel tasks (a TaskGroup or nursery does both)",
            "thread": "join threads",
            "process": "wait for or terminate processes",
        }
        lines.append(
            "  Fix: " + "; ".join(advice[k] for k in kinds) + " before the test or fixture ends."
        )
        return "\n".join(lines)


def _count_kinds(leaks: Sequence[Leak]) -> str:
    order = ("task", "thread", "process")
    parts = []
    for kind in order:
        n = sum(1 for leak in leaks if leak.kind == kind)
        if n:
            parts.append(f"{n} {kind}" + ("" if n == 1 else ("es" if kind == "process" else "s")))
    return " and ".join([", ".join(parts[:-1]), parts[-1]]) if len(parts) > 1 else parts[0]
