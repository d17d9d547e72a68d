"""The detectors' life in a pytest run: who owns what, and what each phase of a test found.

``plugin.py`` calls into one :class:`Guard` per session from its hooks. The guard:

* listens to the loop-lag detector, with the threshold of the test being run (its marker or
  the configured default), and files every slow loop step under the current phase;
* makes each test the owner of the tasks, threads and processes created while it runs
  (setup, call and teardown), and each fixture wider than a function the owner of what it
  creates, checked when that fixture is finalized;
* turns a phase's findings into a failure, a warning, or (when the phase already failed on
  its own) an extra report section, so the user's own result is never hidden.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

import pytest

from pytest_concurrency._markers import MarkerError, settings_for
from pytest_concurrency._settings import Settings
from pytest_concurrency._warnings import ConcurrencyGuardWarning, LeakWarning, LoopLagWarning
from pytest_concurrency.detect import _leaks, _ownership, _runtime, _steps
from pytest_concurrency.detect._frames import Location
from pytest_concurrency.detect._hooks import hooks
from pytest_concurrency.detect._ownership import Owner

if TYPE_CHECKING:
    from pytest_concurrency.detect._findings import LoopBlocked


class Finding(Protocol):
    @property
    def location(self) -> Location | None:
        """The line a warning about it points at."""

    def format(self, root: str | None = None) -> str: ...


class Guard:
    """One per session; see the module docstring."""

    def __init__(self, settings: Settings, rootdir: str) -> None:
        self.settings = settings
        self.root = rootdir
        self.allow = _leaks.AllowList(settings.leak_allow)
        self._previous_allow = self.allow
        self.listener = _steps.LagListener(settings.loop_lag_ms)
        self.listener.on_event = self._on_lag
        # What the detectors found in the phase being run (None between phases).
        self.phase_findings: list[Finding] | None = None
        self.outside: list[Finding] = []
        self.test_owner: Owner | None = None
        self._errors_reported = 0
        self.active = False
        """Whether any detector runs in this session (read for every phase of every test)."""
        # (threshold, leak kinds, marker problem) of the test being run, read at its setup.
        self._marker_settings: tuple[float, frozenset[str], str] | None = None

    # --- session -----------------------------------------------------------------------------

    def start(self) -> None:
        if not self.settings.lag_enabled and not self.settings.leak_kinds:
            return
        self._previous_allow = _leaks.install_allow(self.allow)
        hooks.acquire(leaks=bool(self.settings.leak_kinds))
        if self.settings.lag_enabled:
            _steps.add_listener(self.listener)
        self.active = True

    def stop(self) -> None:
        if not self.active:
            return
        self.active = False
        _steps.remove_listener(self.listener)
        hooks.release(leaks=bool(self.settings.leak_kinds))
        _leaks.install_allow(self._previous_allow)

    # --- what other parts of the plugin ask ------------------------------------------------

    def loop_lag_threshold_ms(self) -> float | None:
        """The loop-lag threshold in force for the test being run (None: not watched).

        Servers started in a subprocess watch their own loop with it.
        """
        if not self.active or not self.settings.lag_enabled:
            return None
        threshold = (
            self._marker_settings[0]
            if self._marker_settings is not None
            else self.settings.loop_lag_ms
        )
        return None if math.isinf(threshold) else threshold

    @property
    def warn_mode(self) -> bool:
        return self.settings.mode == "warn"

    # --- phases --------------------------------------------------------------------------------

    def enter_phase(self, item: pytest.Item, when: str) -> str:
        """Start one phase of a test (setup, call, teardown) under the detectors.

        Returns a problem with the test's markers to fail the phase with once it has run
        (failing before it runs would skip every other plugin's part of the phase, and their
        teardown would then trip over it), or an empty string.
        """
        # This and leave_phase run three times for every test: the common path is written out.
        try:
            self.phase_findings = []
            if when == "setup" or self._marker_settings is None:
                self._marker_settings = marker_settings = self._read_markers(item)
                if self.settings.lag_enabled:
                    self.listener.set_threshold(marker_settings[0])
                if when == "setup":
                    if self.settings.leak_kinds:
                        self.test_owner = Owner(f"test {item.nodeid}", kinds=marker_settings[1])
                        _ownership.push(self.test_owner)
                    return marker_settings[2]
        except Exception as exc:
            _runtime.internal_error("leak", exc)
        return ""

    def leave_phase(self, item: pytest.Item, when: str, passed: bool, marker_problem: str) -> None:
        """End one phase: findings fail a phase that passed (or warn, in warn mode); when the
        phase failed on its own, they are added to its report as a section instead."""
        findings: list[Finding] | None = None
        try:
            if _steps.active and self.settings.lag_enabled:
                # A server thread's loop may still be finishing a step that blocked it while
                # serving this test (the response went out before the step ended): its finding
                # belongs to this phase.
                _steps.wait_for_blocked_steps(_BLOCKED_STEP_WAIT_S)
            findings = self.phase_findings if self.phase_findings is not None else []
            self.phase_findings = None
            if when == "teardown":
                self._end_test(findings)
        except Exception as exc:
            _runtime.internal_error("leak", exc)
        if marker_problem and not passed:
            item.add_report_section(when, "concurrency-guard", marker_problem)
        if findings or len(_runtime.errors) > self._errors_reported:
            self._deliver(item, when, findings or [], passed)
        if marker_problem:
            pytest.fail(marker_problem, pytrace=False)

    def _read_markers(self, item: pytest.Item) -> tuple[float, frozenset[str], str]:
        """(threshold, leak kinds, marker problem) of a test: read once, at its setup, and in
        force for all of its phases."""
        try:
            return (*settings_for(item, self.settings.loop_lag_ms, self.settings.leak_kinds), "")
        except MarkerError as exc:
            return (math.inf, frozenset(), str(exc))

    def _end_test(self, findings: list[Finding]) -> None:
        """After a test's teardown: check what it left running, and go back to the defaults."""
        if self.test_owner is not None:
            owner, self.test_owner = self.test_owner, None
            _ownership.remove(owner)
            report = _leaks.check(owner, self.settings.leak_grace_ms, self.allow)
            if report is not None:
                findings.append(report)
        self._marker_settings = None
        if self.settings.lag_enabled:
            self.listener.set_threshold(self.settings.loop_lag_ms)

    def _deliver(self, item: pytest.Item, when: str, findings: list[Finding], passed: bool) -> None:
        if len(_runtime.errors) > self._errors_reported:
            self._report_internal_errors()
        if not findings:
            return
        text = ""
        try:
            text = "\n\n".join(self._format(f) for f in findings)
        except Exception as exc:
            from pytest_concurrency.detect._findings import LeakReport

            leaks = any(isinstance(f, LeakReport) for f in findings)
            _runtime.internal_error("leak" if leaks else "loop-lag", exc)
        if not text:
            return
        if not passed:
            item.add_report_section(when, "concurrency-guard", text)
        elif self.settings.mode == "warn":
            for finding in findings:
                self._warn(finding)
        else:
            raise finding_failure(text)

    def _warn(self, finding: Finding) -> None:
        """Warn about ``finding``, attributed to the user line it names."""
        from pytest_concurrency.detect._findings import LoopBlocked

        category = LoopLagWarning if isinstance(finding, LoopBlocked) else LeakWarning
        text = self._format(finding)
        where = finding.location
        try:
            if where is None:
                warnings.warn(category(text), stacklevel=1)
            else:
                warnings.warn_explicit(category(text), category, where.filename, where.lineno)
        except Warning:
            # Warnings turned into errors (-W error, filterwarnings = error): the user wants
            # the finding to fail the test, so fail it cleanly rather than with our traceback.
            raise finding_failure(text) from None

    def _format(self, finding: Finding) -> str:
        # The findings' module is imported once something is found (see detect/__init__).
        from pytest_concurrency.detect._findings import LeakReport, LoopBlocked

        text = finding.format(self.root)
        if isinstance(finding, LeakReport):
            if finding.owner.startswith("fixture "):
                # A marker applies to tests; what a wide fixture leaves is its own business.
                text += (
                    "\n  Or, if it is meant to outlive the fixture, add a pattern matching its "
                    "name or target to the leak_allow ini option."
                )
            else:
                kinds = sorted({_plural(leak.kind) for leak in finding.leaks})
                text += (
                    f"\n  Or mark the test @pytest.mark.allow_leaks({', '.join(map(repr, kinds))})."
                )
        elif isinstance(finding, LoopBlocked):
            text += (
                "\n  Fix: await an async equivalent, or move the blocking work to a thread "
                "(asyncio.to_thread, anyio.to_thread.run_sync, trio.to_thread.run_sync) or, for "
                "CPU-bound work, to a process; or mark the test @pytest.mark.allow_loop_lag."
            )
        return text

    # --- findings from the detectors -----------------------------------------------------------

    def _on_lag(self, event: LoopBlocked) -> None:
        found = self.phase_findings
        (found if found is not None else self.outside).append(event)

    # --- fixtures wider than a test ------------------------------------------------------------

    def fixture_setup_owner(self, name: str, scope: str) -> Owner | None:
        """The owner for a fixture wider than a function, pushed while it sets up."""
        if not self.active or not self.settings.leak_kinds or scope == "function":
            return None
        owner = Owner(f"fixture {name!r} ({scope} scope)", kinds=self.settings.leak_kinds)
        _ownership.push(owner)
        return owner

    def fixture_setup_done(self, owner: Owner) -> None:
        _ownership.remove(owner)

    def fixture_teardown_starts(self, owner: Owner) -> None:
        if not owner.closed:
            _ownership.push(owner)

    def fixture_finalized(self, owner: Owner) -> None:
        """The fixture's teardown is over: check what it left running."""
        _ownership.remove(owner)
        report = _leaks.check(owner, self.settings.leak_grace_ms, self.allow)
        if report is not None:
            found = self.phase_findings
            (found if found is not None else self.outside).append(report)

    # --- what happened outside any test --------------------------------------------------------

    def _report_internal_errors(self) -> None:
        new = _runtime.errors[self._errors_reported :]
        self._errors_reported += len(new)
        for error in new:
            _warn_always(ConcurrencyGuardWarning(error.format()))

    def finish(self) -> None:
        """Report findings made outside of any test, as warnings (they fail nothing)."""
        self._report_internal_errors()
        for finding in self.outside:
            _warn_always(ConcurrencyGuardWarning("outside of any test: " + self._format(finding)))
        self.outside.clear()


_BLOCKED_STEP_WAIT_S = 2.0
"""How long a phase waits at its end for a loop step in another thread that has already run
past the threshold (bounded: a loop blocked for good must not hang the session)."""

FINDING_ATTRIBUTE = "_concurrency_guard_finding"
"""Set on the failure raised for the detectors' findings (not for the test's own failure)."""


def finding_failure(text: str) -> BaseException:
    """The failure for a phase that passed but had findings: pytest's own, marked as ours."""
    failure: BaseException = pytest.fail.Exception(text, pytrace=False)
    setattr(failure, FINDING_ATTRIBUTE, True)
    return failure


@contextmanager
def contained(detector: str) -> Iterator[None]:
    """Run plugin bookkeeping so that its failure switches the detector off, never the test."""
    try:
        yield
    except Exception as exc:
        _runtime.internal_error(detector, exc)


def _plural(kind: str) -> str:
    return {"task": "tasks", "thread": "threads", "process": "processes"}[kind]


def _warn_always(warning: Warning) -> None:
    """Emit a warning that is recorded even under ``-W error``: it must never fail a test."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", type(warning))
        warnings.warn(warning, stacklevel=2)
