"""pytest plugin entry point (``-p no:concurrency`` turns it off)."""

from __future__ import annotations

import pytest

from pytest_concurrency.serve import _plugin as serve_plugin


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.register(serve_plugin, "concurrency.serve")
