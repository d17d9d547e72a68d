"""Concurrency really happens: requests that wait overlap on every model built to overlap them.

Each request waits 100 ms. One after another, N of them take N * 100 ms; the assertions are on
the ratio of the measured time to that sequential time, generous enough for a busy 2-core
machine, never on absolute times.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from fixtures.serve import clean_io
from pytest_concurrency.serve import MODELS

WAIT_MS = 100


def concurrent_seconds(url: str, count: int) -> float:
    """Send ``count`` requests at once, each on its own connection; seconds until all answered.

    The client uses threads, not an event loop of its own: on a busy machine a client loop
    could itself be reported as blocked, which is not what these tests are about.
    """
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    with (
        httpx.Client(base_url=url, limits=limits, timeout=30) as client,
        ThreadPoolExecutor(max_workers=count) as pool,
    ):
        barrier = threading.Barrier(count + 1)

        def fetch() -> int:
            barrier.wait()
            return client.get("/", params={"ms": WAIT_MS}).status_code

        futures = [pool.submit(fetch) for _ in range(count)]
        barrier.wait()
        started = time.perf_counter()
        statuses = [future.result() for future in futures]
        elapsed = time.perf_counter() - started
    assert statuses == [200] * count
    return elapsed


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
    ratio = concurrent_seconds(server.url, count) / (count * WAIT_MS / 1000)
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
    ratio = concurrent_seconds(server.url, count) / (count * WAIT_MS / 1000)
    # Two workers: about half the sequential time, far from the overlap of the models above.
    assert 0.4 < ratio < 0.9, f"{model}: ratio {ratio:.2f}"
