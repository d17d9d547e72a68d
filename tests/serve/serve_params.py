"""Parameters shared by the server tests."""

from __future__ import annotations

import pytest

from pytest_concurrency.serve import MODELS

MODEL_KINDS = [
    pytest.param(
        name,
        sorted(info.kinds)[0],
        id=name,
        marks=pytest.mark.skipif(not info.available, reason=f"needs {info.requires}"),
    )
    for name, info in MODELS.items()
]
"""Every model, with a handler kind it runs (uvloop is skipped when its extra is missing)."""
