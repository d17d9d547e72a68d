"""CC2xx in the places a coroutine or a task is thrown away without a plain call statement."""

from __future__ import annotations

from lint_helpers import lines_and_codes

from concurrency_lint import lint_source


def test_coroutines_discarded_inside_an_expression_statement_are_reported() -> None:
    source = """
import asyncio

async def fetch(x): ...

async def main(xs, ready):
    asyncio.sleep(1) if ready else None
    ready and fetch(1)
    fetch(2),
    [fetch(x) for x in xs]
    {x: fetch(x) for x in xs}
    (fetch(x) for x in xs)  # never iterated: no coroutine is even made
    results = [fetch(x) for x in xs]
    return await asyncio.gather(*results)
"""
    assert lines_and_codes(lint_source(source)) == [
        (7, "CC201"),
        (8, "CC201"),
        (9, "CC201"),
        (10, "CC201"),
        (11, "CC201"),
    ]


def test_a_task_whose_only_use_is_a_method_call_on_a_line_of_its_own_is_dropped() -> None:
    source = """
import asyncio

async def work(): ...

async def main(log):
    asyncio.create_task(work()).add_done_callback(log)
    asyncio.ensure_future(work()).cancel()
    task = asyncio.create_task(work())
    task.add_done_callback(log)
    await task
"""
    findings = lint_source(source)
    assert lines_and_codes(findings) == [(7, "CC203"), (8, "CC203")]
    assert "is dropped (the call made on it keeps no reference)" in findings[0].message
    assert findings[0].fix is None


def test_a_classmethod_called_through_type_of_self_is_resolved() -> None:
    source = """
class Repository:
    @classmethod
    async def create(cls): ...

    async def clone(self):
        type(self).create()
"""
    assert lines_and_codes(lint_source(source)) == [(7, "CC201")]
