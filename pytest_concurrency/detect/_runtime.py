"""Install the hooks once for however many users need them, and contain the detectors' own errors.

The pytest plugin and the context managers are *users*; the hooks are installed when the first
user arrives and restored when the last one leaves. A detector that raises is switched off for
the rest of the process and the error is kept, so that whoever is listening can say so: a
failure of ours never changes the result of the code being watched.
"""

from __future__ import annotations

import threading
import traceback
from typing import NamedTuple


class InternalError(NamedTuple):
    """A detector failed and was switched off."""

    detector: str  # "loop-lag" or "leak"
    message: str

    def format(self) -> str:
        return f"the {self.detector} detector failed and was switched off: {self.message}"


errors: list[InternalError] = []
_errors_lock = threading.Lock()


def internal_error(detector: str, exc: BaseException) -> None:
    """Record a detector failure and switch that detector off."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    error = InternalError(detector, f"{type(exc).__name__}: {exc}{where}")
    with _errors_lock:
        if error in errors:
            return
        errors.append(error)
    # Imported here: the detector modules import this one.
    if detector == "loop-lag":
        from pytest_concurrency.detect import _steps

        _steps.disable(error.message)
    else:
        from pytest_concurrency.detect import _ownership

        _ownership.tracking = False
        _ownership.disabled_reason = error.message
