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
    if fixturedef.scope == "function":  # owned by the test that uses it
        return (yield)
    guard = request.config.stash[guard_key]
    owner = None
    with contained("leak"):
        owner = guard.fixture_setup_owner(fixturedef.argname, fixturedef.scope, fixturedef)
    if owner is None:
        return (yield)
    try:
        return (yield)
    finally:
        with contained("leak"):
            guard.fixture_setup_done(owner)
            # Runs first when the fixture is finalized (finalizers run last-in, first-out),
            # so what its teardown code starts belongs to it too.
            request.addfinalizer(lambda: guard.fixture_teardown_starts(owner))


def pytest_fixture_post_finalizer(
    fixturedef: pytest.FixtureDef[object], request: pytest.FixtureRequest
) -> None:
    if fixturedef.scope == "function":
        return
    with contained("leak"):
        request.config.stash[guard_key].fixture_finalized(fixturedef)


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
