"""The plugin's markers: what each one means, and how its arguments are read and checked."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pytest

from pytest_concurrency.detect._ownership import KINDS

if TYPE_CHECKING:
    from _pytest.nodes import Node

MARKERS = (
    "allow_loop_lag(ms=None): allow this test to block its event loop; with ms=N, only for "
    "steps shorter than N milliseconds",
    "allow_leaks(*kinds): allow this test to leave tasks, threads or processes running; "
    'with kinds (e.g. allow_leaks("threads")), only those',
)


class MarkerError(Exception):
    """A concurrency marker with arguments that make no sense."""


def settings_for(
    item: pytest.Item, default_ms: float, checked: frozenset[str]
) -> tuple[float, frozenset[str]]:
    """The loop-lag threshold and the leak kinds checked for one test, after its markers.

    One walk over the markers of the test and of the nodes it belongs to, closest first (as
    ``get_closest_marker`` finds them), for both markers: this runs for every test.
    """
    lag: pytest.Mark | None = None
    leaks: pytest.Mark | None = None
    node: Node | None = item
    while node is not None:
        for mark in node.own_markers:
            if mark.name == "allow_loop_lag" and lag is None:
                lag = mark
            elif mark.name == "allow_leaks" and leaks is None:
                leaks = mark
        node = node.parent
    return _threshold(lag, default_ms), _leak_kinds(leaks, checked)


def _threshold(marker: pytest.Mark | None, default_ms: float) -> float:
    """The loop-lag threshold in ms after an ``allow_loop_lag`` marker (``inf``: any lag)."""
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
    return _leak_kinds(item.get_closest_marker("allow_leaks"), checked)


def _leak_kinds(marker: pytest.Mark | None, checked: frozenset[str]) -> frozenset[str]:
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
