"""The installed version of the linter."""

from __future__ import annotations

from functools import cache


@cache
def version() -> str:
    """The version of the installed distribution (``0+unknown`` when not installed)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as distribution_version

    try:
        return distribution_version("pytest-concurrency-guard")
    except PackageNotFoundError:
        return "0+unknown"
