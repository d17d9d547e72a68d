"""Every hook is restored when the last user leaves (checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def test_hooks_are_restored_after_the_last_watcher_leaves() -> None:
    script = textwrap.dedent(
        """
        import asyncio, asyncio.events, asyncio.base_events, asyncio.runners
        import multiprocessing.process, subprocess, threading, sys
        import uvloop, trio

        def snapshot():
            return {
                "Handle._run": asyncio.events.Handle.__dict__["_run"],
                "BaseEventLoop": dict(vars(asyncio.base_events.BaseEventLoop)),
                "uvloop.Loop": dict(vars(uvloop.Loop)),
                "runners": asyncio.runners._cancel_all_tasks,
                "uvloop._cancel_all_tasks": uvloop._cancel_all_tasks,
                "trio.run": trio.run,
                "start_guest_run": trio.lowlevel.start_guest_run,
                "Thread.start": threading.Thread.start,
                "Popen.__init__": subprocess.Popen.__init__,
                "BaseProcess.start": multiprocessing.process.BaseProcess.start,
                "meta_path": list(sys.meta_path),
            }

        before = snapshot()
        from pytest_concurrency.detect import watch_leaks, watch_loop

        with watch_loop(), watch_leaks():
            with watch_loop():
                assert snapshot() != before
            assert snapshot() != before
        after = snapshot()
        changed = sorted(k for k in before if before[k] != after[k])
        assert not changed, changed
        print("restored")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "restored"


def test_multiprocessing_imported_after_the_hooks_is_hooked_and_restored(tmp_path: Path) -> None:
    """multiprocessing is hooked when first imported, not imported by the detectors."""
    script = tmp_path / "late_import.py"
    script.write_text(
        textwrap.dedent(
            """
        import sys
        from pytest_concurrency.detect import LeakError, watch_leaks

        assert "multiprocessing" not in sys.modules, "imported by the detectors"
        try:
            with watch_leaks(grace_ms=0):
                import multiprocessing, time

                child = multiprocessing.get_context("spawn").Process(
                    target=time.sleep, args=(30,), name="late-import"
                )
                child.start()  # leaks: late import
        except LeakError as error:
            print("caught" if "late-import" in str(error) else str(error))
        finally:
            child.kill()
            child.join()
        original = multiprocessing.process.BaseProcess.__dict__["start"]
        print("restored" if original.__module__ == "multiprocessing.process" else original)
        """
        )
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == ["caught", "restored"]
