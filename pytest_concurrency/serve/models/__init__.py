"""The registry of concurrency models: adding a model is adding a module and one line here."""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from pytest_concurrency.serve._app import HandlerKind
    from pytest_concurrency.serve.models._base import Engine

__all__ = ["MODELS", "ModelInfo", "engine_class", "model_names", "models_running", "require_model"]

_SYNC: frozenset[HandlerKind] = frozenset({"sync"})
_ASYNC: frozenset[HandlerKind] = frozenset({"async"})
_BOTH: frozenset[HandlerKind] = frozenset({"sync", "async"})


# Kept light (no engine, no HTTP parser imported): the pytest plugin reads it at start-up.
class ModelInfo(NamedTuple):
    """One concurrency model: its name, where its engine lives, what handlers it runs."""

    name: str
    engine: str
    """``"module:Class"`` of the :class:`Engine`."""
    kinds: frozenset[HandlerKind]
    """The handler kinds it runs: ``sync`` (``def``), ``async`` (``async def`` with anyio)."""
    summary: str
    requires: str | None = None
    """A module that must be importable (an optional extra), if any."""
    extra: str | None = None
    """The extra that installs ``requires``."""
    watches_workers: bool = False
    """Handlers run in worker processes, which run the detectors themselves when asked
    (``watch_loop_ms``, ``watch_leaks``): the test process cannot see into them."""

    @property
    def available(self) -> bool:
        return self.requires is None or importlib.util.find_spec(self.requires) is not None


_PKG = "pytest_concurrency.serve.models"

MODELS: dict[str, ModelInfo] = {
    info.name: info
    for info in (
        ModelInfo(
            "threads", f"{_PKG}.threads:ThreadsEngine", _SYNC, "one OS thread per connection"
        ),
        ModelInfo(
            "threadpool",
            f"{_PKG}.threadpool:ThreadpoolEngine",
            _SYNC,
            "a selector thread and a bounded ThreadPoolExecutor running requests",
        ),
        ModelInfo(
            "asyncio", f"{_PKG}.asyncio_loop:AsyncioEngine", _ASYNC, "one asyncio event loop"
        ),
        ModelInfo(
            "uvloop",
            f"{_PKG}.uvloop_loop:UvloopEngine",
            _ASYNC,
            "one uvloop event loop",
            requires="uvloop",
            extra="uvloop",
        ),
        ModelInfo("trio", f"{_PKG}.trio_loop:TrioEngine", _ASYNC, "one trio event loop"),
        ModelInfo(
            "processes",
            f"{_PKG}.processes:ProcessesEngine",
            _BOTH,
            "N worker processes, each a whole server, served connections in turn",
            watches_workers=True,
        ),
        ModelInfo(
            "asyncio+processes",
            f"{_PKG}.asyncio_processes:AsyncioProcessesEngine",
            _BOTH,
            "an asyncio loop for I/O, a ProcessPoolExecutor for the handler's CPU work",
            watches_workers=True,
        ),
    )
}
"""Every model, by name, in the order tables and parametrised tests list them."""


def model_names() -> list[str]:
    """The names of every model, available or not."""
    return list(MODELS)


def models_running(kind: HandlerKind) -> list[str]:
    """The models that run handlers of ``kind``."""
    return [name for name, info in MODELS.items() if kind in info.kinds]


def require_model(name: str) -> ModelInfo:
    """The model called ``name``, or a :class:`ServeConfigError` listing the valid names."""
    from pytest_concurrency.serve._app import ServeConfigError

    try:
        return MODELS[name]
    except KeyError:
        raise ServeConfigError(
            f"unknown concurrency model {name!r}; choose from: {', '.join(MODELS)}"
        ) from None


def engine_class(name: str) -> type[Engine]:
    """Import and return the engine of model ``name``."""
    from pytest_concurrency.serve._app import ServeConfigError

    info = require_model(name)
    if not info.available:
        raise ServeConfigError(
            f"the {name} model needs the {info.requires!r} package: "
            f"pip install 'pytest-concurrency-guard[{info.extra}]'"
        )
    module_name, _, class_name = info.engine.partition(":")
    engine: type[Engine] = getattr(importlib.import_module(module_name), class_name)
    return engine
