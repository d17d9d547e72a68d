"""The handlers ``concurrency-bench`` serves, one path per workload.

- ``/io?ms=10``: simulated I/O, a non-blocking wait of ``ms`` milliseconds.
- ``/hash?rounds=N``: SHA-256 over N blocks of 64 KiB (hashlib releases the GIL).
- ``/python?n=N``: a pure-Python loop of N iterations (holds the GIL throughout).

``handle`` is the async handler (event-loop models; CPU work goes through
:func:`~pytest_concurrency.serve.offload_cpu`, so it runs inline on a plain loop and in the pool
under ``asyncio+processes``); ``handle_sync`` is the same for thread models. Both are
module-level so an isolated server can import them by name.
"""

from __future__ import annotations

import hashlib
import time

import anyio

from pytest_concurrency.serve._http import Request, Response
from pytest_concurrency.serve._offload import offload_cpu

__all__ = ["handle", "handle_sync", "hash_work", "python_work"]

_BLOCK = bytes(range(256)) * 256  # 64 KiB, well above hashlib's GIL-release threshold
_NOT_FOUND = Response("unknown workload; use /io, /hash or /python\n", status=404)


def hash_work(rounds: int) -> str:
    """SHA-256 over ``rounds`` blocks of 64 KiB."""
    hasher = hashlib.sha256()
    for _ in range(rounds):
        hasher.update(_BLOCK)
    return hasher.hexdigest()


def python_work(n: int) -> int:
    """A pure-Python loop of ``n`` iterations."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def _number(request: Request, name: str, default: int) -> int:
    target = request.target
    key = f"{name}="
    start = target.find(key)
    if start < 0:
        return default
    end = target.find("&", start)
    return int(target[start + len(key) : end if end >= 0 else None])


async def handle(request: Request) -> Response:
    path = request.target
    if path.startswith("/io"):
        await anyio.sleep(_number(request, "ms", 10) / 1000.0)
        return Response(b"ok")
    if path.startswith("/hash"):
        return Response(await offload_cpu(hash_work, _number(request, "rounds", 100)))
    if path.startswith("/python"):
        return Response(str(await offload_cpu(python_work, _number(request, "n", 150_000))))
    return _NOT_FOUND


def handle_sync(request: Request) -> Response:
    path = request.target
    if path.startswith("/io"):
        time.sleep(_number(request, "ms", 10) / 1000.0)
        return Response(b"ok")
    if path.startswith("/hash"):
        return Response(hash_work(_number(request, "rounds", 100)))
    if path.startswith("/python"):
        return Response(str(python_work(_number(request, "n", 150_000))))
    return _NOT_FOUND
