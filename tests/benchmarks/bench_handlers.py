"""Handlers for bench_serve.py that wait exactly as the minimal servers do.

To measure what a server model costs, its handler must cost the same as the minimal server's
inline wait: ``asyncio.sleep`` on asyncio and uvloop, ``trio.sleep`` on trio, ``time.sleep``
on threads. (``anyio.sleep`` adds a few microseconds of backend lookup per call; that is the
handler's cost, measured separately as the "anyio handler" row.)
"""

from __future__ import annotations

import asyncio
import time

import anyio
import trio

from pytest_concurrency.serve import Request, Response

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


async def anyio_io(request: Request) -> Response:
    await anyio.sleep(_seconds(request))
    return OK


def sync_io(request: Request) -> Response:
    time.sleep(_seconds(request))
    return OK
