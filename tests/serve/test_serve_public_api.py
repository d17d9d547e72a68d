"""The public names of the serve package: changing them is a breaking change."""

from __future__ import annotations

import pytest_concurrency.serve as serve


def test_public_names_are_pinned():
    assert sorted(serve.__all__) == [
        "HandlerError",
        "LoadError",
        "LoadReport",
        "MODELS",
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
    for name in serve.__all__:
        assert getattr(serve, name) is not None


def test_every_model_is_registered_once_in_the_documented_order():
    assert serve.model_names() == [
        "threads",
        "threadpool",
        "asyncio",
        "uvloop",
        "trio",
        "processes",
        "asyncio+processes",
    ]
