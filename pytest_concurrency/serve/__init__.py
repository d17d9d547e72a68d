"""Real servers under each concurrency model, a load generator and its reports.

Start a server with :func:`start_server` (or the ``serve`` fixture), load it with
:func:`run_load` (or the ``load`` fixture) and read the :class:`LoadReport`.

The names below are imported on first use, so that loading the pytest plugin does not pay
for the HTTP parsers and the load generator in a session that never starts a server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_concurrency.serve._app import HandlerError, ServeConfigError
    from pytest_concurrency.serve._http import Request, Response
    from pytest_concurrency.serve._load import LoadError, LoadReport, run_load
    from pytest_concurrency.serve._offload import offload_cpu
    from pytest_concurrency.serve._server import (
        ModelError,
        ServerHandle,
        ServerStats,
        start_server,
    )
    from pytest_concurrency.serve.models import MODELS, model_names
    from pytest_concurrency.serve.models._base import ServerStartError, ServerStopError

__all__ = [
    "MODELS",
    "HandlerError",
    "LoadError",
    "LoadReport",
    "ModelError",
    "Request",
    "Response",
    "ServeConfigError",
    "ServerHandle",
    "ServerStartError",
    "ServerStats",
    "ServerStopError",
    "model_names",
    "offload_cpu",
    "run_load",
    "start_server",
]

_HOMES = {
    "HandlerError": "_app",
    "ServeConfigError": "_app",
    "Request": "_http",
    "Response": "_http",
    "LoadError": "_load",
    "LoadReport": "_load",
    "run_load": "_load",
    "offload_cpu": "_offload",
    "ModelError": "_server",
    "ServerHandle": "_server",
    "ServerStats": "_server",
    "start_server": "_server",
    "MODELS": "models",
    "model_names": "models",
    "ServerStartError": "models._base",
    "ServerStopError": "models._base",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
