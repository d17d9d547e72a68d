"""``python -m concurrency_lint``: the same as the ``concurrency-lint`` command."""

from __future__ import annotations

import sys

from concurrency_lint.cli import main

sys.exit(main())
