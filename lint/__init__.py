"""concurrency-lint: find blocking calls in async code, missing awaits and CPU work on threads.

Use it from the command line (``concurrency-lint src``) or from Python::

    from concurrency_lint import lint_paths, lint_source

    for finding in lint_source(open("app.py").read(), path="app.py"):
        print(finding.path, finding.line, finding.code, finding.message)
"""

from __future__ import annotations

from concurrency_lint.config import ConfigError, Settings
from concurrency_lint.engine import Finding, LintResult, fix_source, lint_paths, lint_source

__all__ = [
    "ConfigError",
    "Finding",
    "LintResult",
    "Settings",
    "fix_source",
    "lint_paths",
    "lint_source",
]
