"""CC2xx: coroutines that never run and tasks that can vanish.

Calling a coroutine function does not run it: it creates a coroutine object, and only
``await`` (or a task) runs its body. A coroutine dropped or stored and forgotten never
runs at all, and Python only warns about it when the object is garbage-collected, far from
the line that made the mistake. A task from ``asyncio.create_task`` does run, but the event
loop keeps only a weak reference to it: if nothing else holds it, it can be collected
mid-flight and its exception is lost.
"""

from __future__ import annotations

from collections.abc import Iterator

from concurrency_lint.catalogue import TASK_SPAWNERS
from concurrency_lint.facts import DROPPED, STORED
from concurrency_lint.rules.base import (
    SAFE,
    UNSAFE,
    Example,
    Fix,
    RawFinding,
    Rule,
    RuleContext,
)


class CoroutineNotAwaited(Rule):
    """Coroutine function called without ``await``, its result dropped.

    ``fetch()`` on a line of its own creates a coroutine and throws it away: the body of
    ``fetch`` never runs. This covers the coroutine functions of asyncio, trio and anyio
    (``asyncio.sleep``, ``writer.drain``, ``trio.sleep``, ``anyio.Event().wait`` ...), the
    module's own ``async def`` functions and methods (through ``self`` too), the project's
    coroutine functions imported from other modules, and the names listed in
    ``extra-coroutine-functions``. A function behind a decorator that may return something
    else (``@hypothesis.given``, a project's own wrapper) is not judged. A coroutine thrown
    away inside an expression statement counts too: either branch of ``a if c else b``,
    ``ready and fetch()``, the items of a tuple, the elements of a list, set or dict
    comprehension. The fix is safe: inside an ``async def`` the call gets its ``await``
    (not in a class body or comprehension nested in it, where ``await`` is a syntax error
    or changes what the code does).
    """

    code = "CC201"
    name = "coroutine-not-awaited"
    fix_safety = SAFE
    VALID = (
        """
import asyncio

async def save(row): ...

async def main():
    await save(1)
    await asyncio.sleep(0)
    task = asyncio.ensure_future(save(2))
    await task
    asyncio.run(save(3))
""",
        """
async def ticker():
    yield 1

def start():
    ticker()  # an async generator: calling it runs nothing, but it is not a coroutine
""",
    )
    INVALID = (
        Example(
            """
import asyncio

class Repository:
    async def save(self, row): ...

    async def save_all(self, rows):
        for row in rows:
            self.save(row)  # error: CC201
        asyncio.sleep(0)  # error: CC201
""",
            fixed="""
import asyncio

class Repository:
    async def save(self, row): ...

    async def save_all(self, rows):
        for row in rows:
            await self.save(row)  # error: CC201
        await asyncio.sleep(0)  # error: CC201
""",
        ),
        """
import asyncio

async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
    writer.write(b"hello")
    writer.drain()  # error: CC201

async def serve():
    reader, writer = await asyncio.open_connection("127.0.0.1", 8080)
    writer.write(b"hello")
    writer.drain()  # error: CC201
""",
        """
import trio

def not_async():
    trio.sleep(1)  # error: CC201
""",
    )

    def check(self, context: RuleContext) -> Iterator[RawFinding]:
        index = context.index
        for call in context.facts.calls:
            if call.usage != DROPPED or call.target is None:
                continue
            if not index.is_coroutine_function(call.target):
                continue
            if call.in_async:
                message = (
                    f"`{call.spelling}()` is a coroutine function called without `await`: "
                    "the coroutine is created and dropped, so its body never runs; "
                    f"write `await {call.spelling}(...)`"
                )
                fix = None if call.nested_scope else Fix("add-await", SAFE)
                yield RawFinding(self.code, call.anchor, message, fix)
            else:
                message = (
                    f"`{call.spelling}()` is a coroutine function called outside async code: "
                    "the coroutine is created and dropped, so its body never runs; "
                    "call it with `await` from an `async def`"
                )
                yield RawFinding(self.code, call.anchor, message)


class CoroutineStoredNeverAwaited(Rule):
    """Coroutine stored in a variable that is never awaited, returned or passed on.

    ``result = fetch()`` followed by nothing that reads ``result`` makes a coroutine that
    never runs: the ``await`` was forgotten. The linter knows it because it reads the whole
    function: ``result`` is not awaited, returned, passed to a call or used in any way. The
    fix (``result = await fetch()``) is unsafe, since the intent may have been to start a
    task.
    """

    code = "CC202"
    name = "coroutine-stored-never-awaited"
    fix_safety = UNSAFE
    VALID = (
        """
import asyncio

async def fetch(): ...

async def main():
    pending = fetch()
    result = await pending
    later = fetch()
    return result, later
""",
        """
async def fetch(): ...

async def main():
    coroutine = fetch()
    print(coroutine)
""",
    )
    INVALID = (
        Example(
            """
async def fetch(): ...

async def main():
    result = fetch()  # error: CC202
""",
            fixed="""
async def fetch(): ...

async def main():
    result = await fetch()  # error: CC202
""",
        ),
    )

    def check(self, context: RuleContext) -> Iterator[RawFinding]:
        index = context.index
        for call in context.facts.calls:
            if call.usage != STORED or not call.var_unused or call.target is None:
                continue
            if not index.is_coroutine_function(call.target):
                continue
            message = (
                f"`{call.var} = {call.spelling}()` stores a coroutine that is never awaited, "
                "returned or passed on, so its body never runs; write "
                f"`{call.var} = await {call.spelling}(...)`, or start it as a task"
            )
            fix = Fix("add-await", UNSAFE) if call.in_async and not call.nested_scope else None
            yield RawFinding(self.code, call.anchor, message, fix)


_TASK_OWNER = {
    "asyncio": "an `asyncio.TaskGroup`",
    "trio": "a nursery",
    "anyio": "an anyio task group",
}


class TaskDropped(Rule):
    """Task from ``create_task`` or ``ensure_future`` whose result is dropped.

    The event loop holds tasks only weakly. A task that nothing else references can be
    garbage-collected before it finishes, and if it fails its exception is never seen. Keep
    a reference until it is done, or better start it in an ``asyncio.TaskGroup`` (a nursery
    or task group with trio and anyio), which owns its tasks and propagates their errors.
    ``tg.create_task(...)`` on a TaskGroup is fine. A method called on the new task on a
    line of its own (``create_task(job()).add_done_callback(log)``) keeps no reference
    either. The unsafe fix keeps the task in a module-level set and discards it when done
    (a set under a name the module does not use yet).
    """

    code = "CC203"
    name = "task-dropped"
    fix_safety = UNSAFE
    VALID = (
        """
import asyncio

async def work(): ...

async def main():
    async with asyncio.TaskGroup() as tg:
        tg.create_task(work())
    task = asyncio.create_task(work())
    await task
""",
    )
    INVALID = (
        Example(
            """
import asyncio

async def work(): ...

async def main():
    asyncio.create_task(work())  # error: CC203
    loop = asyncio.get_running_loop()
    loop.create_task(work())  # error: CC203
    forgotten = asyncio.ensure_future(work())  # error: CC203
""",
            fixed="""
import asyncio
from typing import Any

_background_tasks: set[asyncio.Future[Any]] = set()

async def work(): ...

async def main():
    _task = asyncio.create_task(work())  # error: CC203
    _background_tasks.add(_task)
    _task.add_done_callback(_background_tasks.discard)
    loop = asyncio.get_running_loop()
    _task = loop.create_task(work())  # error: CC203
    _background_tasks.add(_task)
    _task.add_done_callback(_background_tasks.discard)
    forgotten = asyncio.ensure_future(work())  # error: CC203
""",
        ),
    )

    def check(self, context: RuleContext) -> Iterator[RawFinding]:
        calls = context.facts.calls
        # ``asyncio.create_task(job()).add_done_callback(done)`` on a line of its own: the
        # callback does not keep the task alive either.
        receivers = {c.receiver for c in calls if c.usage == DROPPED and c.receiver >= 0}
        for call in calls:
            if call.target not in TASK_SPAWNERS and (
                call.target is None or context.resolved(call.target) not in TASK_SPAWNERS
            ):
                continue
            if call.usage == DROPPED:
                keep = call.in_async and not call.nested_scope
                name = context.facts.framework_names.get("asyncio", "")
                fix = Fix("keep-task-reference", UNSAFE, "asyncio", name) if keep else None
                what = "is dropped"
            elif call.anchor in receivers:
                fix = None
                what = "is dropped (the call made on it keeps no reference)"
            elif call.usage == STORED and call.var_unused:
                fix = None
                what = f"is stored in `{call.var}` and never used"
            else:
                continue
            owner = _TASK_OWNER.get(context.framework_of(call), _TASK_OWNER["asyncio"])
            message = (
                f"the task from `{call.spelling}()` {what}: the event loop keeps only a weak "
                "reference, so it can be garbage-collected before it finishes and its "
                f"exception is lost; keep a reference until it is done, or start it in {owner}"
            )
            yield RawFinding(self.code, call.anchor, message, fix)


RULES: tuple[type[Rule], ...] = (CoroutineNotAwaited, CoroutineStoredNeverAwaited, TaskDropped)
