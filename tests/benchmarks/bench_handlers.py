"""Handlers for bench_serve.py that do exactly what the minimal servers do.

To measure what a server model costs, its handler must cost the same as the minimal server's
inline work: wait with ``asyncio.sleep`` on asyncio and uvloop, ``trio.sleep`` on trio,
``time.sleep`` on threads. Under ``asyncio+processes``, ``offload_io`` also sends a small CPU
part (:func:`ok_body`) to the model's process pool, as the minimal server of that model does,
so that both sides pay for the pool, its workers' CPU included.
"""

from __future__ import annotations

import asyncio
import time

import trio

from pytest_concurrency.serve import Request, Response, offload_cpu

OK = Response(b"ok")


def _seconds(request: Request) -> float:
    target = request.target
    start = target.find("ms=")
    if start < 0:
        return 0.01
    end = start + 3
    while end < len(target) and target[end].isdigit():
        end += 1
    return int(target[start + 3 : end]) / 1000.0


async def asyncio_io(request: Request) -> Response:
    await asyncio.sleep(_seconds(request))
    return OK


async def trio_io(request: Request) -> Response:
    await trio.sleep(_seconds(request))
    return OK


def ok_body() -> bytes:
    """The CPU part of a request under asyncio+processes: runs in a pool process."""
    return b"ok"


async def offload_io(request: Request) -> Response:
    body = await offload_cpu(ok_body)
    await asyncio.sleep(_seconds(request))
    return Response(body)


def sync_io(request: Request) -> Response:
    time.sleep(_seconds(request))
    return OK
