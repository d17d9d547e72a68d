"""CC3xx: pure-Python CPU work handed to threads.

CPython runs Python bytecode in one thread at a time (the GIL). A thread helps with work
that waits (I/O, or C code that releases the GIL, like hashlib or zlib on big buffers, or
numpy), but a pure-Python loop holds the GIL for its whole run: two such threads take as
long as running them one after the other, and every other thread, the event loop included,
gets only the gaps. Measured on two cores: a pure-Python loop answers 83 requests per
second inline and 83 on two threads, but 151 on two processes.

A function counts as pure-Python computation when it loops (or recurses) doing arithmetic,
and every call it makes is itself computation: builtins like ``range`` or ``sum``,
``math``, container methods, or project functions that are pure in turn. A single call the
linter cannot vouch for (I/O, a blocking call, a C library that may release the GIL, an
unknown name) and the function is not reported.
"""

from __future__ import annotations

from collections.abc import Iterator

from concurrency_lint.catalogue import THREAD_POOLS, Offload
from concurrency_lint.facts import ArgRef, CallFact
from concurrency_lint.index import Located
from concurrency_lint.rules.base import RawFinding, Rule, RuleContext

_PROCESS_OFFLOAD = {
    "asyncio": "`await loop.run_in_executor(ProcessPoolExecutor(), {name}, ...)`",
    "trio": "`await trio_parallel.run_sync({name}, ...)` (the trio-parallel package)",
    "anyio": "`await anyio.to_process.run_sync({name}, ...)`",
}


def _offloaded(context: RuleContext, kind: str) -> Iterator[tuple[CallFact, Located]]:
    """Calls of this kind that hand a known function to a thread, with that function."""
    index = context.index
    for call in context.facts.calls:
        if call.target is None:
            continue
        offload = context.offloads.get(call.target) or context.offloads.get(
            context.resolved(call.target)
        )
        if offload is None or offload.kind != kind:
            continue
        if offload.executor is not None and not _is_thread_executor(call, offload.executor):
            continue
        ref = _callable_argument(call, offload)
        if ref is None:
            continue
        if ref.kind == "lambda":
            located = index.functions.get(ref.target)
        elif ref.kind in ("name", "partial"):
            located = index.function(ref.target)
        else:
            located = None
        if located is not None and index.is_cpu_bound(located):
            yield call, located


def _is_thread_executor(call: CallFact, key: str) -> bool:
    if key in call.literals:
        return call.literals[key] is None  # run_in_executor(None, ...): the default pool
    ref = call.refs.get(key)
    return ref is not None and ref.kind == "type" and ref.target in THREAD_POOLS


def _callable_argument(call: CallFact, offload: Offload) -> ArgRef | None:
    if offload.position is not None and offload.position in call.refs:
        return call.refs[offload.position]
    if offload.keyword is not None:
        return call.refs.get(offload.keyword)
    return None


def _function_name(located: Located) -> str:
    name = located.function.name
    if name == "<lambda>":
        return "this lambda"
    return f"`{name}`"


class CpuBoundFunctionOnThread(Rule):
    """Pure-Python CPU work started on a thread or thread pool.

    ``threading.Thread(target=f)``, ``ThreadPoolExecutor().submit(f)`` / ``.map(f, ...)``
    and ``multiprocessing.pool.ThreadPool`` with a function that is pure-Python computation:
    the threads take turns on the GIL, so the work runs no faster than on one thread and
    slows every other thread of the program. Run it in processes instead:
    ``concurrent.futures.ProcessPoolExecutor`` or ``multiprocessing``.
    """

    code = "CC301"
    name = "cpu-bound-function-on-thread"
    VALID = (
        """
import hashlib
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

def checksum(chunks):
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()

def count_primes(limit):
    return sum(1 for n in range(2, limit) if all(n % d for d in range(2, n)))

with ThreadPoolExecutor() as pool:
    pool.submit(checksum, [b"data"])
with ProcessPoolExecutor() as processes:
    processes.submit(count_primes, 10_000)
""",
    )
    INVALID = (
        """
import threading
from concurrent.futures import ThreadPoolExecutor

def count_primes(limit):
    count = 0
    for n in range(2, limit):
        if all(n % d for d in range(2, n)):
            count += 1
    return count

threading.Thread(target=count_primes, args=(10_000,)).start()  # error: CC301
with ThreadPoolExecutor(max_workers=4) as pool:
    results = list(pool.map(count_primes, [10_000] * 4))  # error: CC301
""",
    )

    def check(self, context: RuleContext) -> Iterator[RawFinding]:
        for call, located in _offloaded(context, "thread"):
            name = _function_name(located)
            message = (
                f"{name} is pure-Python computation: on a thread it holds the GIL, so "
                "threads run it one at a time and slow every other thread; run it in "
                "processes with `concurrent.futures.ProcessPoolExecutor`"
            )
            yield RawFinding(self.code, call.anchor, message)


class CpuBoundFunctionOffloaded(Rule):
    """Pure-Python CPU work offloaded from async code to a thread.

    ``asyncio.to_thread(f)``, ``loop.run_in_executor(None, f)`` (or with a
    ``ThreadPoolExecutor``), ``trio.to_thread.run_sync(f)`` and
    ``anyio.to_thread.run_sync(f)`` keep the event loop responsive for blocking I/O, but
    not for pure-Python computation: the worker thread holds the GIL, and the event loop
    gets only the gaps. Run it in a process: ``loop.run_in_executor`` with a
    ``ProcessPoolExecutor``, ``anyio.to_process.run_sync`` or ``trio_parallel.run_sync``.
    Functions listed in ``extra-thread-offload-functions`` are checked the same way.
    """

    code = "CC302"
    name = "cpu-bound-function-offloaded"
    VALID = (
        """
import asyncio
from concurrent.futures import ProcessPoolExecutor

def render(rows):
    total = 0
    for row in rows:
        total += row * row
    return total

async def report(rows):
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor() as pool:
        return await loop.run_in_executor(pool, render, rows)

def load(path):
    with open(path) as handle:
        return handle.read()

async def read(path):
    return await asyncio.to_thread(load, path)
""",
    )
    INVALID = (
        """
import asyncio
import functools
import anyio

def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

def render(rows):
    total = 0
    for row in rows:
        total += row * row
    return total

async def report(rows):
    loop = asyncio.get_running_loop()
    first = await loop.run_in_executor(None, render, rows)  # error: CC302
    second = await asyncio.to_thread(functools.partial(fib, 30))  # error: CC302
    third = await anyio.to_thread.run_sync(lambda: sum(i * i for i in range(10**7)))  # error: CC302
    return first, second, third
""",
    )

    def check(self, context: RuleContext) -> Iterator[RawFinding]:
        for call, located in _offloaded(context, "async"):
            framework = context.framework_of(call)
            suggestion = _PROCESS_OFFLOAD.get(framework, _PROCESS_OFFLOAD["asyncio"])
            name = _function_name(located)
            callable_name = located.function.name
            if callable_name == "<lambda>":
                callable_name = "function"
            message = (
                f"{name} is pure-Python computation: in a worker thread it holds the GIL, so "
                "the event loop only runs in the gaps and other threads wait; run it in a "
                f"process with {suggestion.format(name=callable_name)}"
            )
            yield RawFinding(self.code, call.anchor, message)


RULES: tuple[type[Rule], ...] = (CpuBoundFunctionOnThread, CpuBoundFunctionOffloaded)
