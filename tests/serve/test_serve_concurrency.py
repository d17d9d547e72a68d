"""Concurrency really happens: requests that wait overlap on every model built to overlap them.

Each request waits 100 ms. One after another, N of them take N * 100 ms; the assertions are on
the ratio of the measured time to that sequential time, generous enough for a busy 2-core
machine, never on absolute times.
"""

from __future__ import annotations

import selectors
import socket
import time

import pytest

from fixtures.serve import clean_io
from pytest_concurrency.serve import MODELS

WAIT_MS = 100


def concurrent_seconds(port: int, count: int) -> float:
    """Send ``count`` requests at once, each on its own connection; seconds until all answered.

    A plain selector client: client threads, or a client event loop, in the test process
    would compete for the GIL with an in-process server and slow it down.
    """
    request = f"GET /?ms={WAIT_MS} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(count)]
    try:
        with selectors.DefaultSelector() as selector:
            replies = {}
            for sock in sockets:
                selector.register(sock, selectors.EVENT_READ)
                replies[sock] = b""
            started = time.perf_counter()
            for sock in sockets:
                sock.sendall(request)
            pending = set(sockets)
            deadline = started + 60
            while pending and time.perf_counter() < deadline:
                for key, _ in selector.select(timeout=1):
                    sock = key.fileobj
                    replies[sock] += sock.recv(65536)
                    if _complete(replies[sock]):
                        pending.discard(sock)
                        selector.unregister(sock)
            elapsed = time.perf_counter() - started
    finally:
        for sock in sockets:
            sock.close()
    assert not pending, f"{len(pending)} of {count} requests got no complete answer"
    assert all(reply.startswith(b"HTTP/1.1 200 OK") for reply in replies.values())
    return elapsed


def _complete(reply: bytes) -> bool:
    head, separator, body = reply.partition(b"\r\n\r\n")
    if not separator:
        return False
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


OVERLAPPING = [
    pytest.param(name, kind, id=f"{name}-{kind}")
    for name, info in MODELS.items()
    for kind in sorted(info.kinds)
    # A sync handler under asyncio+processes runs in a pool of CPU-count processes: it is
    # built for CPU work and overlaps only that many requests (see the test below).
    if not (name == "asyncio+processes" and kind == "sync")
]


@pytest.mark.parametrize(("model", "kind"), OVERLAPPING)
def test_100_waiting_requests_overlap(serve, model, kind):
    handler = clean_io.handle_sync if kind == "sync" else clean_io.handle
    server = serve(handler, model=model)
    count = 100
    ratio = concurrent_seconds(server.port, count) / (count * WAIT_MS / 1000)
    # Fully overlapped the ratio is about 0.01-0.05; sequential it is 1.
    assert ratio < 0.25, f"{model}: {count} requests took {ratio:.2f}x the sequential time"


@pytest.mark.parametrize(
    ("model", "options"),
    [
        pytest.param("threadpool", {"pool_size": 2}, id="threadpool-2-threads"),
        pytest.param("asyncio+processes", {"workers": 2}, id="asyncio+processes-2-workers"),
    ],
)
def test_a_bounded_pool_overlaps_only_as_many_requests_as_it_has_workers(serve, model, options):
    server = serve(clean_io.handle_sync, model=model, **options)
    count = 12
    ratio = concurrent_seconds(server.port, count) / (count * WAIT_MS / 1000)
    # Two workers: about half the sequential time, far from the overlap of the models above.
    assert 0.4 < ratio < 0.9, f"{model}: ratio {ratio:.2f}"
