"""Install every hook once, for however many users (the plugin, context managers) need them."""

from __future__ import annotations

import sys
import threading
from types import ModuleType

from pytest_concurrency.detect import _ownership
from pytest_concurrency.detect._asyncio_hooks import CANCEL_ALL_TASKS, AsyncioHooks
from pytest_concurrency.detect._frames import refresh_runner_paths
from pytest_concurrency.detect._import_hooks import PostImportHooks
from pytest_concurrency.detect._runtime import internal_error
from pytest_concurrency.detect._spawn_hooks import SpawnHooks
from pytest_concurrency.detect._trio_hooks import TrioHooks
from pytest_concurrency.detect._watchdog import watchdog


class Hooks:
    """Reference-counted installation of the asyncio, uvloop, trio, thread and process hooks."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._users = 0
        self._leak_users = 0
        self._asyncio = AsyncioHooks()
        self._trio = TrioHooks()
        self._spawn = SpawnHooks()
        self._trio_installed = False
        watched = {
            "trio",
            "uvloop",
            "multiprocessing.process",
            *(module for module, _ in CANCEL_ALL_TASKS),
        }
        self._imports = PostImportHooks({name: self._on_import for name in watched})

    def acquire(self, *, leaks: bool) -> None:
        with self._lock:
            self._users += 1
            if leaks:
                self._leak_users += 1
            if self._users == 1:
                self._asyncio.install()
                self._spawn.install()
                self._imports.install()
            self.refresh()
            _ownership.tracking = self._leak_users > 0 and not _ownership.disabled_reason

    def release(self, *, leaks: bool) -> None:
        with self._lock:
            if self._users == 0:
                return
            self._users -= 1
            if leaks:
                self._leak_users -= 1
            _ownership.tracking = self._leak_users > 0 and not _ownership.disabled_reason
            if self._users == 0:
                self._imports.uninstall()
                self._asyncio.uninstall()
                self._trio.uninstall()
                self._spawn.uninstall()
                self._trio_installed = False
                watchdog.stop()

    def _on_import(self, module: ModuleType) -> None:
        try:
            self.refresh()
        except Exception as exc:
            internal_error("loop-lag", exc)

    def refresh(self) -> None:
        """Hook libraries imported since the last call (trio, uvloop, anyio's backend,
        multiprocessing).

        They are not imported eagerly (importing trio alone costs over 100 ms); the import
        hook calls this as soon as one of them is imported.
        """
        with self._lock:
            if self._users == 0:
                return
            refresh_runner_paths()
            if not self._trio_installed and "trio" in sys.modules:
                self._trio.install()
                self._trio_installed = True
            self._asyncio.refresh()
            self._spawn.refresh()


hooks = Hooks()
