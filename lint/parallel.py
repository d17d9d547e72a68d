"""Run a function over many items in worker processes, when that pays off."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: Below this much work (bytes of source to parse), worker processes cost more than they save.
PARALLEL_THRESHOLD_BYTES = 200_000


def parallel_map(
    function: Callable[[T], R],
    items: Sequence[T],
    jobs: int,
    weight: Callable[[T], int],
    threshold: int = PARALLEL_THRESHOLD_BYTES,
    prepare: Callable[[], object] | None = None,
) -> list[R]:
    """``[function(item) for item in items]``, in worker processes when it pays off.

    Big items go first so the workers finish together. If a worker dies, what it had
    not finished is done in this process. ``prepare`` runs here before the workers start
    (to import what they need once, rather than once per worker).
    """
    total = sum(weight(item) for item in items)
    if jobs <= 1 or len(items) < 2 or total < threshold:
        return [function(item) for item in items]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # Forking is cheap (the workers inherit what ``prepare`` imported) but unsafe with
    # other threads running.
    method = "fork" if sys.platform == "linux" and threading.active_count() == 1 else "spawn"
    if prepare is not None and method == "fork":
        prepare()
    order = sorted(range(len(items)), key=lambda i: -weight(items[i]))
    results: dict[int, R] = {}
    try:
        with ProcessPoolExecutor(
            max_workers=min(jobs, len(items)), mp_context=multiprocessing.get_context(method)
        ) as pool:
            futures = {i: pool.submit(function, items[i]) for i in order}
            for i, future in futures.items():
                results[i] = future.result()
    except BrokenProcessPool:
        for i in order:
            if i not in results:
                results[i] = function(items[i])
    return [results[i] for i in range(len(items))]
