"""Real servers under each concurrency model, a load generator and its reports.

Start a server with :func:`start_server` (or the ``serve`` fixture), load it with
:func:`run_load` (or the ``load`` fixture) and read the :class:`LoadReport`.
"""

from __future__ import annotations

from pytest_concurrency.serve._app import HandlerError, ServeConfigError
from pytest_concurrency.serve._http import Request, Response
from pytest_concurrency.serve._load import LoadError, LoadReport, run_load
from pytest_concurrency.serve._offload import offload_cpu
from pytest_concurrency.serve._server import ModelError, ServerHandle, ServerStats, start_server
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
