"""pytest plugin entry point (``-p no:concurrency`` turns it off).

Only wiring lives here: options, markers, and hooks that hand each phase of each test to the
session's :class:`~pytest_concurrency._guard.Guard`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator

import pytest

from pytest_concurrency import _settings
from pytest_concurrency._guard import FINDING_ATTRIBUTE, Guard, contained
from pytest_concurrency._markers import MARKERS
from pytest_concurrency.detect._ownership import Owner
from pytest_concurrency.serve import _plugin as serve_plugin

guard_key = pytest.StashKey[Guard]()


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    _settings.add_options(parser)
    pluginmanager.register(serve_plugin, "concurrency.serve")


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    guard = Guard(_settings.load(config), str(config.rootpath))
    config.stash[guard_key] = guard
    guard.start()
    config.add_cleanup(guard.stop)
    config.add_cleanup(_function_scoped.clear)


def pytest_report_header(config: pytest.Config) -> str:
    return config.stash[guard_key].settings.header()


def _phase_wrapper(when: str) -> Callable[[pytest.Item], Generator[None, None, None]]:
    """The hook wrapper that runs one phase of each test (setup, call or teardown) under the
    detectors. Made once per phase rather than delegating to a shared generator: it runs
    three times for every test."""

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def wrapper(item: pytest.Item) -> Generator[None, None, None]:
        guard = item.config.stash[guard_key]
        if not guard.active:
            return (yield)
        marker_problem = guard.enter_phase(item, when)
        try:
            result = yield
        except BaseException:
            _leave(guard, item, when, False, marker_problem)
            raise
        _leave(guard, item, when, True, marker_problem)
        return result

    wrapper.__name__ = wrapper.__qualname__ = f"pytest_runtest_{when}"
    return wrapper


pytest_runtest_setup = _phase_wrapper("setup")
pytest_runtest_call = _phase_wrapper("call")
pytest_runtest_teardown = _phase_wrapper("teardown")


def _leave(guard: Guard, item: pytest.Item, when: str, passed: bool, marker_problem: str) -> None:
    try:
        guard.leave_phase(item, when, passed, marker_problem)
    except BaseException as failure:
        if getattr(failure, FINDING_ATTRIBUTE, False):
            _report_findings_of_xfail_tests(item.config)
        raise


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[object], request: pytest.FixtureRequest
) -> Generator[None, object, object]:
    if _is_function_scoped(fixturedef):  # owned by the test that uses it
        return (yield)
    guard = request.config.stash[guard_key]
    owner = None
    with contained("leak"):
        owner = guard.fixture_setup_owner(fixturedef.argname, fixturedef.scope)
        if owner is not None:
            # Added before the fixture runs, so that it runs after the fixture's own teardown
            # (finalizers run last-in, first-out): the check sees what that teardown left.
            request.addfinalizer(lambda: _fixture_finalized(guard, owner))
    if owner is None:
        return (yield)
    try:
        return (yield)
    finally:
        with contained("leak"):
            guard.fixture_setup_done(owner)
            # Runs first when the fixture is finalized, so what its teardown code starts
            # belongs to it too.
            request.addfinalizer(lambda: guard.fixture_teardown_starts(owner))


def _fixture_finalized(guard: Guard, owner: Owner) -> None:
    with contained("leak"):
        guard.fixture_finalized(owner)


_function_scoped: dict[pytest.FixtureDef[object], bool] = {}
"""Whether each fixture of the session is function-scoped (emptied when the session ends)."""


def _is_function_scoped(fixturedef: pytest.FixtureDef[object]) -> bool:
    # Remembered per fixture: its scope never changes, and reading it is slow enough (an
    # enum's value) to matter for a hook that runs for every fixture of every test.
    known = _function_scoped.get(fixturedef)
    if known is None:
        known = _function_scoped[fixturedef] = fixturedef.scope == "function"
    return known


class XfailFindings:
    """Keeps an xfail test whose phase failed only for the detectors' findings from counting as
    an expected failure: the test itself passed, so the findings are what gets reported.

    Registered the first time a finding fails a phase, so that sessions without findings do
    not pay for a report wrapper on every phase of every test.
    """

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if (
            hasattr(report, "wasxfail")
            and call.excinfo is not None
            and getattr(call.excinfo.value, FINDING_ATTRIBUTE, False)
        ):
            # Findings only fail phases that passed: the expected failure did not happen.
            del report.wasxfail
            report.outcome = "failed"
            report.longrepr = str(call.excinfo.value)
        return report


_XFAIL_FINDINGS = "concurrency.xfail-findings"


def _report_findings_of_xfail_tests(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(_XFAIL_FINDINGS):
        config.pluginmanager.register(XfailFindings(), _XFAIL_FINDINGS)


def pytest_sessionfinish(session: pytest.Session) -> None:
    session.config.stash[guard_key].finish()
