"""The plugin's markers: what each one means, and how its arguments are read and checked."""

from __future__ import annotations

import math

import pytest

from pytest_concurrency.detect._ownership import KINDS

MARKERS = (
    "allow_loop_lag(ms=None): allow this test to block its event loop; with ms=N, only for "
    "steps shorter than N milliseconds",
    "allow_leaks(*kinds): allow this test to leave tasks, threads or processes running; "
    'with kinds (e.g. allow_leaks("threads")), only those',
)


class MarkerError(Exception):
    """A concurrency marker with arguments that make no sense."""


def threshold_for(item: pytest.Item, default_ms: float) -> float:
    """The loop-lag threshold for one test, in ms (``inf`` when lag is allowed entirely)."""
    marker = item.get_closest_marker("allow_loop_lag")
    if marker is None:
        return default_ms if default_ms > 0 else math.inf
    unknown = set(marker.kwargs) - {"ms"}
    if unknown or len(marker.args) > 1:
        raise MarkerError(
            "allow_loop_lag takes no arguments (allow any lag) or one threshold, "
            "as allow_loop_lag(ms=200)"
        )
    ms = marker.kwargs.get("ms", marker.args[0] if marker.args else None)
    if ms is None:
        return math.inf
    if isinstance(ms, bool) or not isinstance(ms, (int, float)) or ms < 0:
        raise MarkerError(f"allow_loop_lag(ms=...) expects a number of milliseconds, got {ms!r}")
    return float(ms) if ms > 0 else math.inf


def leak_kinds_for(item: pytest.Item, checked: frozenset[str]) -> frozenset[str]:
    """The kinds of leak checked for one test, after its ``allow_leaks`` marker."""
    marker = item.get_closest_marker("allow_leaks")
    if marker is None:
        return checked
    if marker.kwargs:
        raise MarkerError(
            'allow_leaks takes kinds as plain arguments, as allow_leaks("threads", "tasks")'
        )
    if not marker.args:
        return frozenset()
    unknown = [a for a in marker.args if a not in KINDS]
    if unknown:
        raise MarkerError(
            f"allow_leaks: unknown kind {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(map(repr, KINDS))}"
        )
    return checked - frozenset(marker.args)
