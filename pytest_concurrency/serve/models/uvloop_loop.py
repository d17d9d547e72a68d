"""``uvloop``: the asyncio engine on uvloop's libuv-based event loop (the ``uvloop`` extra)."""

from __future__ import annotations

import asyncio

from pytest_concurrency.serve.models.asyncio_loop import AsyncioEngine

__all__ = ["UvloopEngine"]


class UvloopEngine(AsyncioEngine):
    """Same protocol and tasks as ``asyncio``; the loop itself is written in Cython on libuv."""

    loop_name = "uvloop"

    def new_loop(self) -> asyncio.AbstractEventLoop:
        import uvloop

        return uvloop.new_event_loop()
