"""pytest fixtures and markers for the servers (registered by ``pytest_concurrency.plugin``).

Fixtures:

- ``serve(handler, model="asyncio", **options)``: start a server; stopped at teardown.
- ``concurrency_model``: the model name, parametrised by the ``concurrency_models`` marker,
  the ``--concurrency-models`` option or the ``concurrency_models`` ini option.
- ``server``: ``serve(handler, model=concurrency_model, **server_options)``, so a test that
  uses it runs once per model with the user's ``handler`` fixture.
- ``load(server, connections=..., rate=..., duration=... | requests=...)``: a load run.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_concurrency.serve.models import MODELS, models_running

# The servers themselves (engines, HTTP parsers, the load generator) are imported by the
# fixtures that use them, so a session that never starts a server does not pay for them.
if TYPE_CHECKING:
    from pytest_concurrency._guard import Guard
    from pytest_concurrency.serve._server import ServerHandle
    from pytest_concurrency.serve._watch import Site

__all__ = [
    "concurrency_model",
    "handler",
    "load",
    "pytest_addoption",
    "pytest_configure",
    "pytest_generate_tests",
    "serve",
    "server",
    "server_options",
]

MARKER = (
    "concurrency_models(*names): run the test once per named concurrency model through the "
    "concurrency_model or server fixture (" + ", ".join(MODELS) + ")"
)

_models_key = pytest.StashKey[tuple[list[str], bool]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("concurrency")
    group.addoption(
        "--concurrency-models",
        dest="concurrency_models",
        default=None,
        metavar="NAMES",
        help="comma-separated concurrency models that tests using the concurrency_model or "
        f"server fixture run under (default: all of {', '.join(MODELS)})",
    )
    parser.addini(
        "concurrency_models",
        "concurrency models that tests using the concurrency_model or server fixture run under",
        type="args",
        default=[],
    )


def _models_problem(source: str, names: list[str]) -> str:
    """What is wrong with a list of model names (empty when nothing is)."""
    unknown = [name for name in names if name not in MODELS]
    if unknown or not names:
        return (
            f"{source}: unknown concurrency model {', '.join(map(repr, unknown)) or '(none)'}; "
            f"choose from {', '.join(MODELS)}"
        )
    return ""


def _parse_models(source: str, names: list[str]) -> list[str]:
    problem = _models_problem(source, names)
    if problem:
        raise pytest.UsageError(problem)
    return list(dict.fromkeys(names))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    cli = config.getoption("concurrency_models", None)
    ini: list[str] = config.getini("concurrency_models")
    if cli:
        names = [part.strip() for part in str(cli).replace(" ", ",").split(",") if part.strip()]
        config.stash[_models_key] = (_parse_models("--concurrency-models", names), True)
    elif ini:
        names = [part.strip(",") for part in ini if part.strip(",")]
        config.stash[_models_key] = (_parse_models("concurrency_models (ini)", names), True)
    else:
        config.stash[_models_key] = (list(MODELS), False)


def _marker_problem(node: pytest.Item | Any) -> str:
    """What is wrong with the test's ``concurrency_models`` marker (empty when nothing is)."""
    marker = node.get_closest_marker("concurrency_models")
    if marker is None:
        return ""
    names = [str(name) for name in marker.args]
    return _models_problem(f"@pytest.mark.concurrency_models on {node.name}", names)


def _chosen_models(node: pytest.Item | Any) -> tuple[list[str], bool]:
    """The models a test runs under, and whether the user named them explicitly.

    Call it only for a node whose marker is valid (see :func:`_marker_problem`).
    """
    marker = node.get_closest_marker("concurrency_models")
    if marker is not None:
        return list(dict.fromkeys(str(name) for name in marker.args)), True
    return node.config.stash[_models_key]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "concurrency_model" not in metafunc.fixturenames:
        return
    for marker in metafunc.definition.iter_markers("parametrize"):
        argnames = marker.args[0] if marker.args else marker.kwargs.get("argnames", "")
        if isinstance(argnames, str):
            argnames = [name.strip() for name in argnames.split(",")]
        if "concurrency_model" in argnames:
            return  # the test parametrises the model itself
    if _marker_problem(metafunc.definition):
        # Not parametrised: the concurrency_model fixture fails this test alone, in one line
        # (raising here would stop the collection of the whole module with a traceback).
        return
    names, _ = _chosen_models(metafunc.definition)
    params = []
    for name in names:
        info = MODELS[name]
        marks = []
        if not info.available:
            marks.append(
                pytest.mark.skip(
                    reason=f"the {name} model needs {info.requires!r} "
                    f"(pip install 'pytest-concurrency-guard[{info.extra}]')"
                )
            )
        params.append(pytest.param(name, id=name, marks=marks))
    metafunc.parametrize("concurrency_model", params, indirect=True)


@pytest.fixture
def concurrency_model(request: pytest.FixtureRequest) -> str:
    """The concurrency model this test runs under (``asyncio`` when not parametrised)."""
    problem = _marker_problem(request.node)
    if problem:
        pytest.fail(problem, pytrace=False)
    return str(getattr(request, "param", "asyncio"))


@pytest.fixture
def handler() -> Any:
    """Override this fixture to give the ``server`` fixture your handler."""
    raise pytest.UsageError(
        "the server fixture serves your handler fixture: define one, e.g.\n"
        "    @pytest.fixture\n"
        "    def handler():\n"
        "        return my_app.handle   # a function, or 'package.module:function'"
    )


@pytest.fixture
def server_options() -> dict[str, Any]:
    """Override to pass options to the ``server`` fixture (``{"isolated": True}``, ...)."""
    return {}


def _guard(request: pytest.FixtureRequest) -> Guard | None:
    """The runtime detectors' session state (None when that part of the plugin is off)."""
    from pytest_concurrency.plugin import guard_key

    return request.config.stash.get(guard_key, None)


def _loop_watch_threshold(request: pytest.FixtureRequest) -> float | None:
    """The loop-lag threshold for this test, for servers in a subprocess."""
    guard = _guard(request)
    return guard.loop_lag_threshold_ms() if guard is not None else None


def _leak_watch(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The leak checks in force for this test, for the processes a server starts."""
    guard = _guard(request)
    if guard is None or not guard.active or not guard.settings.leak_kinds:
        return {"watch_leaks": False}
    from pytest_concurrency._markers import MarkerError, leak_kinds_for

    try:
        kinds = leak_kinds_for(request.node, guard.settings.leak_kinds)
    except MarkerError:
        kinds = frozenset()  # the plugin fails the test for its marker
    return {
        "watch_leaks": [kind for kind in ("tasks", "threads", "processes") if kind in kinds],
        "leak_grace_ms": guard.settings.leak_grace_ms,
        "leak_allow": list(guard.settings.leak_allow),
    }


def _watches_own_processes(model: str, options: dict[str, Any]) -> bool:
    """Whether the server's handlers run in processes of its own, out of the plugin's sight."""
    info = MODELS.get(model)
    return bool(options.get("isolated")) or (info is not None and info.watches_workers)


_BLOCK_ADVICE = (
    "  Fix: await an async equivalent, or move the blocking work to a thread (asyncio.to_thread, "
    "anyio.to_thread.run_sync) or, for CPU-bound work, to a process; or mark the test "
    "@pytest.mark.allow_loop_lag."
)


def _warn_mode(request: pytest.FixtureRequest) -> bool:
    guard = _guard(request)
    return guard is not None and guard.warn_mode


@pytest.fixture
def serve(request: pytest.FixtureRequest) -> Iterator[Callable[..., ServerHandle]]:
    """Start servers: ``serve(handler, model="asyncio", **options)`` returns a handle.

    Every server started here is stopped at teardown, also when the test fails or is
    interrupted. The test then fails if a handler raised (unless the server was started with
    ``fail_on_handler_error=False``), if the server did not stop cleanly, or if the detectors
    found something in the server's own processes (an isolated server, the ``processes``
    model's workers, the ``asyncio+processes`` pool), which the plugin cannot watch from here:
    an event loop blocked longer than ``--loop-lag-ms``, or tasks, threads or processes the
    handlers left running.
    """
    from pytest_concurrency.serve._server import start_server
    from pytest_concurrency.serve.models._base import ServerStopError

    handles: list[ServerHandle] = []

    def factory(handler: Any, model: str = "asyncio", **options: Any) -> ServerHandle:
        if _watches_own_processes(model, options):
            if "watch_loop_ms" not in options:
                options["watch_loop_ms"] = _loop_watch_threshold(request)
            if "watch_leaks" not in options:
                options.update(_leak_watch(request))
        handle = start_server(handler, model, **options)
        handles.append(handle)
        return handle

    yield factory

    problems: list[str] = []
    blocks: list[tuple[str, Site | None]] = []
    leaks: list[tuple[str, Site | None]] = []
    for handle in reversed(handles):
        try:
            handle.stop()
        except ServerStopError as error:
            problems.append(f"{handle.model} server at {handle.url} did not stop cleanly: {error}")
        if handle.fail_on_handler_error:
            errors = handle.handler_errors
            if errors:
                more = handle.stats().handler_errors - len(errors)
                problems.extend(
                    f"{handle.model} server at {handle.url}: {error.format()}" for error in errors
                )
                if more > 0:
                    problems.append(f"... and {more} more handler failures")
        where = f"{handle.model} server{' (isolated)' if handle.isolated else ''}"
        found = handle.findings
        blocks.extend(
            (f"{where}: {block}\n{_BLOCK_ADVICE}", site)
            for block, site in found.blocks_with_sites()
        )
        if found.leaks:
            kinds = ", ".join(map(repr, found.leak_kinds))
            leaks.extend(
                (f"{leak}\n  Or mark the test @pytest.mark.allow_leaks({kinds}).", site)
                for leak, site in found.leaks_with_sites()
            )
    if blocks or leaks:
        if _warn_mode(request):
            from pytest_concurrency._warnings import LeakWarning, LoopLagWarning

            for text, site in blocks:
                problems.extend(_warn_at(LoopLagWarning, text, site, request))
            for text, site in leaks:
                problems.extend(_warn_at(LeakWarning, text, site, request))
        else:
            problems.extend(text for text, _ in blocks + leaks)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def _warn_at(
    category: type[Warning], text: str, site: Site | None, request: pytest.FixtureRequest
) -> list[str]:
    """Warn with ``text`` at ``site`` (the handler's line), else at the test; returns the text
    as a problem instead when warnings are errors (``-W error``), to fail the test cleanly."""
    if site is not None:
        filename, lineno = site
    else:
        filename, lineno = str(request.node.path), (request.node.location[1] or 0) + 1
    try:
        warnings.warn_explicit(category(text), category, filename, lineno)
    except Warning:
        return [text]
    return []


@pytest.fixture
def server(
    request: pytest.FixtureRequest,
    serve: Callable[..., ServerHandle],
    concurrency_model: str,
    handler: Any,
    server_options: dict[str, Any],
) -> ServerHandle:
    """Your ``handler`` fixture served under ``concurrency_model`` (one test run per model).

    Models that cannot run the handler's kind (``def`` vs ``async def``) are skipped when the
    models come from the default list, and are an error when you named them.
    """
    from pytest_concurrency.serve._app import ServeConfigError, handler_kind, resolve_handler

    try:
        function = resolve_handler(handler)
    except ServeConfigError as error:
        pytest.fail(str(error), pytrace=False)
    kind = handler_kind(function)
    if kind not in MODELS[concurrency_model].kinds:
        _, explicit = _chosen_models(request.node)
        message = (
            f"the {concurrency_model} model does not run {kind} handlers; models that do: "
            f"{', '.join(models_running(kind))}"
        )
        if explicit:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return serve(handler, model=concurrency_model, **server_options)


@pytest.fixture
def load() -> Callable[..., Any]:
    """Run a load against a server: ``load(server, connections=100, rate=500, duration=2)``.

    The generator runs in its own process and is gone when the call returns; see
    :func:`pytest_concurrency.serve.run_load` for every argument.
    """
    from pytest_concurrency.serve._load import run_load

    return run_load
