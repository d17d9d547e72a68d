"""The plugin's settings: every knob is a command-line flag and an ini option.

The command line wins over the ini file. A bad value is a ``pytest.UsageError`` that names the
option and lists what is valid.
"""

from __future__ import annotations

import math

import pytest

from pytest_concurrency.detect import DEFAULT_GRACE_MS, DEFAULT_THRESHOLD_MS
from pytest_concurrency.detect._ownership import KINDS

MODES = ("fail", "warn")


class Settings:
    """The plugin's options for one session, validated.

    (A plain class: its definition is part of the plugin's start-up, a named tuple's costs
    eight times as much.)
    """

    __slots__ = ("lag_enabled", "leak_allow", "leak_grace_ms", "leak_kinds", "loop_lag_ms", "mode")

    def __init__(
        self,
        loop_lag_ms: float = DEFAULT_THRESHOLD_MS,
        leak_kinds: frozenset[str] = frozenset(KINDS),
        leak_grace_ms: float = DEFAULT_GRACE_MS,
        leak_allow: tuple[str, ...] = (),
        mode: str = "fail",
    ) -> None:
        self.loop_lag_ms = loop_lag_ms
        self.leak_kinds = leak_kinds
        self.leak_grace_ms = leak_grace_ms
        self.leak_allow = leak_allow
        self.mode = mode
        self.lag_enabled = loop_lag_ms > 0
        """Whether the loop-lag detector runs (read for every phase of every test)."""

    def header(self) -> str:
        lag = f"loop-lag {self.loop_lag_ms:g} ms" if self.lag_enabled else "loop-lag off"
        if self.leak_kinds:
            kinds = ",".join(k for k in KINDS if k in self.leak_kinds)
            leaks = f"leak-check {kinds} (grace {self.leak_grace_ms:g} ms)"
        else:
            leaks = "leak-check none"
        return f"concurrency-guard: {lag}, {leaks}, mode {self.mode}"


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("concurrency", "concurrency-guard (blocked event loops and leaks)")
    group.addoption(
        "--loop-lag-ms",
        dest="loop_lag_ms",
        default=None,
        metavar="N",
        help="fail a test when one step of its event loop runs N ms or longer "
        f"(default {DEFAULT_THRESHOLD_MS:g}; 0 turns the loop-lag detector off)",
    )
    group.addoption(
        "--leak-check",
        dest="leak_check",
        default=None,
        metavar="KINDS",
        help="comma-separated kinds of leak to fail a test for: tasks, threads, processes, "
        "all or none (default all)",
    )
    group.addoption(
        "--leak-grace-ms",
        dest="leak_grace_ms",
        default=None,
        metavar="N",
        help="how long something still running at the end of a test may take to finish "
        f"before it counts as leaked (default {DEFAULT_GRACE_MS:g})",
    )
    group.addoption(
        "--leak-allow",
        dest="leak_allow",
        action="append",
        default=[],
        metavar="PATTERN",
        help="shell-style pattern of a thread or process name or target that is never reported "
        "as leaked; may be repeated",
    )
    group.addoption(
        "--concurrency-mode",
        dest="concurrency_mode",
        default=None,
        choices=MODES,
        help="fail: findings fail the test (default); warn: report them as warnings",
    )
    parser.addini("loop_lag_ms", "loop-lag threshold in ms (0 = off)", default=None)
    parser.addini("leak_check", "kinds of leak to check: tasks,threads,processes|all|none")
    parser.addini("leak_grace_ms", "grace period in ms before something counts as leaked")
    parser.addini(
        "leak_allow", "thread or process name/target patterns never reported", type="linelist"
    )
    parser.addini("concurrency_mode", "fail or warn", default=None)


def _value(config: pytest.Config, name: str) -> str | None:
    cli = config.getoption(name)
    if cli is not None:
        return str(cli)
    ini = config.getini(name)
    return str(ini).strip() if ini not in (None, "") else None


def parse_ms(option: str, raw: str | None, default: float) -> float:
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise pytest.UsageError(
            f"{option}: expected a number of milliseconds (0 or more), got {raw!r}"
        ) from None
    if value < 0 or math.isnan(value) or math.isinf(value):
        raise pytest.UsageError(
            f"{option}: expected a number of milliseconds (0 or more), got {raw!r}"
        )
    return value


def parse_kinds(option: str, raw: str | None) -> frozenset[str]:
    if raw is None:
        return frozenset(KINDS)
    parts = [p.strip().lower() for p in raw.replace(" ", ",").split(",") if p.strip()]
    if parts == ["none"]:
        return frozenset()
    if parts == ["all"]:
        return frozenset(KINDS)
    unknown = [p for p in parts if p not in KINDS]
    if unknown or not parts:
        raise pytest.UsageError(
            f"{option}: unknown kind {', '.join(map(repr, unknown)) or repr(raw)}; "
            f"use a comma-separated list of {', '.join(KINDS)}, or all, or none"
        )
    return frozenset(parts)


def load(config: pytest.Config) -> Settings:
    """Read and validate the settings (raises ``pytest.UsageError`` on a bad value)."""
    mode = _value(config, "concurrency_mode") or "fail"
    if mode not in MODES:
        raise pytest.UsageError(
            f"concurrency_mode: expected one of {', '.join(MODES)}, got {mode!r}"
        )
    allow = [*config.getini("leak_allow"), *config.getoption("leak_allow")]
    return Settings(
        loop_lag_ms=parse_ms(
            "--loop-lag-ms / loop_lag_ms", _value(config, "loop_lag_ms"), DEFAULT_THRESHOLD_MS
        ),
        leak_kinds=parse_kinds("--leak-check / leak_check", _value(config, "leak_check")),
        leak_grace_ms=parse_ms(
            "--leak-grace-ms / leak_grace_ms", _value(config, "leak_grace_ms"), DEFAULT_GRACE_MS
        ),
        leak_allow=tuple(str(p).strip() for p in allow if str(p).strip()),
        mode=mode,
    )
