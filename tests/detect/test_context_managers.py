"""watch_loop and watch_leaks, used as plain context managers (no pytest needed)."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pytest_concurrency.detect import LeakError, LoopBlockedError, watch_leaks, watch_loop

BLOCK_S = 0.25


async def blocking_main() -> None:
    await asyncio.sleep(0)
    time.sleep(BLOCK_S)  # the blocking line  # noqa: CC101 (what the detector must catch)


def line_of(marker: str) -> int:
    source = Path(__file__).read_text().splitlines()
    return next(i for i, text in enumerate(source, 1) if marker in text)


@pytest.mark.allow_loop_lag
def test_watch_loop_raises_naming_the_blocking_line() -> None:
    with pytest.raises(LoopBlockedError) as caught, watch_loop(threshold_ms=50):
        asyncio.run(blocking_main())
    (event,) = caught.value.events
    assert event.where is not None
    assert event.where.lineno == line_of("# the blocking line")
    assert event.duration_ms >= BLOCK_S * 1000 * 0.9  # less any garbage collection
    assert event.threshold_ms == 50
    assert f"test_context_managers.py:{event.where.lineno}: time.sleep(BLOCK_S)" in str(
        caught.value
    )


@pytest.mark.allow_loop_lag
def test_watch_loop_can_collect_without_raising() -> None:
    with watch_loop(threshold_ms=50, raise_on_exit=False) as watcher:
        asyncio.run(blocking_main())
    assert len(watcher.events) == 1
    assert watcher.events[0].loop == "asyncio"


def test_watch_loop_is_quiet_for_a_clean_loop() -> None:
    async def main() -> None:
        await asyncio.sleep(0.05)
        await asyncio.to_thread(time.sleep, BLOCK_S)

    with watch_loop(threshold_ms=50) as watcher:
        asyncio.run(main())
    assert watcher.events == []


@pytest.mark.allow_loop_lag
def test_watch_loop_below_its_threshold_records_nothing() -> None:
    with watch_loop(threshold_ms=5000) as watcher:
        asyncio.run(blocking_main())
    assert watcher.events == []


@pytest.mark.allow_loop_lag
def test_nested_watchers_each_keep_their_threshold() -> None:
    with watch_loop(threshold_ms=5000) as outer:
        with watch_loop(threshold_ms=50, raise_on_exit=False) as inner:
            asyncio.run(blocking_main())
        asyncio.run(blocking_main())
    assert len(inner.events) == 1
    assert outer.events == []


def test_watch_loop_rejects_a_negative_threshold() -> None:
    with pytest.raises(ValueError, match="threshold_ms must be >= 0"), watch_loop(-1):
        pass


def test_watch_leaks_raises_for_a_thread_left_running() -> None:
    release = threading.Event()
    with pytest.raises(LeakError) as caught, watch_leaks(grace_ms=20):
        thread = threading.Thread(target=release.wait, name="left-running")
        thread.start()  # the leaking start
    release.set()
    thread.join()
    (leak,) = caught.value.report.leaks
    assert leak.kind == "thread"
    assert "'left-running'" in leak.what
    assert leak.created_at is not None
    assert leak.created_at.lineno == line_of("# the leaking start")


def test_watch_leaks_reports_a_task_cancelled_by_asyncio_run() -> None:
    async def main() -> None:
        asyncio.create_task(asyncio.sleep(3600), name="orphan")  # the orphan  # noqa: CC203
        await asyncio.sleep(0)

    with pytest.raises(LeakError) as caught, watch_leaks():
        asyncio.run(main())
    (leak,) = caught.value.report.leaks
    assert leak.kind == "task"
    assert "'orphan'" in leak.what
    assert leak.created_at is not None
    assert leak.created_at.lineno == line_of("# the orphan")
    assert "runner shut the event loop down" in leak.detail


def test_watch_leaks_reports_a_child_process_left_running() -> None:
    with pytest.raises(LeakError) as caught, watch_leaks(grace_ms=20):
        process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    process.kill()
    process.wait()
    assert [leak.kind for leak in caught.value.report.leaks] == ["process"]


def test_watch_leaks_gives_things_finishing_a_grace_period() -> None:
    with watch_leaks(grace_ms=2000) as watcher:
        threading.Thread(target=time.sleep, args=(0.05,)).start()
    assert watcher.leaks == []


def test_watch_leaks_checks_only_the_kinds_asked_for() -> None:
    release = threading.Event()
    with watch_leaks(["processes"], grace_ms=10) as watcher:
        thread = threading.Thread(target=release.wait)
        thread.start()
    release.set()
    thread.join()
    assert watcher.leaks == []


def test_watch_leaks_allow_patterns_skip_matching_threads() -> None:
    release = threading.Event()
    with watch_leaks(grace_ms=10, allow=["keeper-*"]) as watcher:
        thread = threading.Thread(target=release.wait, name="keeper-1")
        thread.start()
    release.set()
    thread.join()
    assert watcher.leaks == []


def test_watch_leaks_rejects_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown leak kind"), watch_leaks(["sockets"]):
        pass


def test_a_raising_block_is_not_masked_by_findings() -> None:
    release = threading.Event()
    with pytest.raises(KeyError), watch_leaks(grace_ms=10):
        thread = threading.Thread(target=release.wait)
        thread.start()
        raise KeyError("the block's own error")
    release.set()
    thread.join()


@pytest.mark.allow_loop_lag
def test_garbage_collection_pauses_are_not_blamed_on_the_step() -> None:
    # Two million container objects give the collector a long walk: a real full collection.
    heap = [[i] for i in range(2_000_000)]
    collection_s = 0.0

    async def main() -> None:
        nonlocal collection_s
        await asyncio.sleep(0)
        start = time.perf_counter()
        gc.collect()
        collection_s = time.perf_counter() - start

    with watch_loop(threshold_ms=20) as watcher:
        asyncio.run(main())
    del heap
    assert collection_s >= 0.02, "the collection was too short to show anything"
    assert watcher.events == []


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception notes are new in 3.11")
@pytest.mark.allow_loop_lag
@pytest.mark.allow_leaks("threads")
def test_a_block_found_while_a_leak_is_raised_goes_with_it_as_a_note() -> None:
    async def main() -> None:
        threading.Thread(target=time.sleep, args=(0.5,), name="late", daemon=True).start()
        time.sleep(0.2)  # noqa: CC101 (the block the note must carry)

    with pytest.raises(LeakError) as caught, watch_loop(), watch_leaks(grace_ms=10):
        asyncio.run(main())
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    assert "concurrency-guard also found:" in notes
    assert "asyncio event loop blocked for" in notes
