"""Warning categories, one per detector, so that users can filter them separately.

In warn mode (``--concurrency-mode=warn``) findings are issued as these warnings instead of
failing the test; ``-W error::pytest_concurrency.LoopLagWarning`` turns one kind back into
failures.
"""

from __future__ import annotations

import pytest


class ConcurrencyWarning(pytest.PytestWarning):
    """Base class of every warning pytest-concurrency-guard issues."""


class LoopLagWarning(ConcurrencyWarning):
    """A test blocked its event loop for longer than the threshold."""


class LeakWarning(ConcurrencyWarning):
    """A test or fixture left tasks, threads or processes running."""


class ConcurrencyGuardWarning(ConcurrencyWarning):
    """About the plugin itself: a detector that failed and switched off, or a finding made
    outside of any test. Never turned into an error, so it can never fail a test."""
