"""Every hook is restored when the last user leaves (checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


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
