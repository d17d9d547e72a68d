"""The rule registry: every rule class, in code order.

Adding a rule is adding a class to its family module and to that module's ``RULES``.
"""

from __future__ import annotations

from concurrency_lint.rules import awaits, blocking, parse, threads
from concurrency_lint.rules.base import Rule

RULES: tuple[type[Rule], ...] = (*parse.RULES, *blocking.RULES, *awaits.RULES, *threads.RULES)
RULES_BY_CODE: dict[str, type[Rule]] = {rule.code: rule for rule in RULES}
CODES: tuple[str, ...] = tuple(RULES_BY_CODE)

__all__ = ["CODES", "RULES", "RULES_BY_CODE", "Rule"]
