"""pytest-concurrency-guard: catch concurrency mistakes in tests, under load, before they ship.

The pytest plugin is loaded automatically (``-p no:concurrency`` turns it off). The detectors
also work without pytest::

    from pytest_concurrency import watch_leaks, watch_loop
"""

from __future__ import annotations

from typing import Any

from pytest_concurrency.detect import LeakError, LoopBlockedError, watch_leaks, watch_loop

__all__ = [
    "ConcurrencyGuardWarning",
    "ConcurrencyWarning",
    "LeakError",
    "LeakWarning",
    "LoopBlockedError",
    "LoopLagWarning",
    "watch_leaks",
    "watch_loop",
]

_WARNINGS = {"ConcurrencyGuardWarning", "ConcurrencyWarning", "LeakWarning", "LoopLagWarning"}


def __getattr__(name: str) -> Any:
    # The warning classes subclass pytest's; import pytest only when they are asked for, so
    # that the detectors stay cheap to import in scripts.
    if name in _WARNINGS:
        from pytest_concurrency import _warnings

        return getattr(_warnings, name)
    raise AttributeError(f"module 'pytest_concurrency' has no attribute {name!r}")
