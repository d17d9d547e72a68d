"""Run the CPU-bound part of an async handler where the current model puts CPU work."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TypeVar

__all__ = ["offload_cpu", "set_current_executor"]

T = TypeVar("T")

_local = threading.local()


def set_current_executor(executor: Executor | None) -> None:
    """Called by a model in its loop thread: CPU work of handlers goes to ``executor``."""
    _local.executor = executor


async def offload_cpu(function: Callable[..., T], *args: object) -> T:
    """Run ``function(*args)`` where the serving model runs CPU-bound work.

    Under ``asyncio+processes`` it runs in the model's process pool (``function`` and its
    arguments must be picklable: a module-level function, not a closure) while the event loop
    keeps serving. Under every other model it runs inline, exactly as if the handler had called
    it directly: on an event loop it blocks the loop for as long as it computes, which is what
    the benchmark measures as "CPU work inline".
    """
    executor: Executor | None = getattr(_local, "executor", None)
    if executor is None:
        return function(*args)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, function, *args)
