"""CC000: a file that cannot be linted."""

from __future__ import annotations

from collections.abc import Iterator

from concurrency_lint.rules.base import RawFinding, Rule, RuleContext


class UnparsableFile(Rule):
    """File that cannot be read, decoded or parsed.

    A file with a syntax error, bytes that are not valid in its encoding (UTF-8 unless a
    PEP 263 coding comment says otherwise), or that cannot be read at all is reported with
    the reason and the position the parser gives, and the other files are still linted.
    Nothing else can be said about such a file, so fix this first.
    """

    code = "CC000"
    name = "unparsable-file"
    VALID = (
        """
async def main():
    return 1
""",
    )
    INVALID = (
        """
async def main(:  # error: CC000
    return 1
""",
    )

    def check(self, context: RuleContext) -> Iterator[RawFinding]:
        # Reported by the engine, which sees the error before any rule runs.
        return iter(())


RULES: tuple[type[Rule], ...] = (UnparsableFile,)
