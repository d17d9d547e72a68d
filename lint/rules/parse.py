"""CC000: a file that cannot be linted."""

from __future__ import annotations

from collections.abc import Iterator

from concurrency_lint.rules.base import RawFinding, Rule, RuleContext


class UnparsableFile(Rule):
    """File that cannot be read, decoded or parsed.

    A file with a syntax error, bytes that are not valid in its encoding (UTF-8 unless a
    PEP 263 coding comment says otherwise), or that cannot be read at all is reported with
    the reason and the position the parser gives, and the other files are still linted.
    So is code that parses but that Python's compiler rejects, with Python's message:
    ``await`` in a plain ``def`` (``'await' outside async function``), ``return`` with a
    value in an async generator, ``yield`` or ``await`` outside any function. Nothing else
    can be said about such a file, so fix this first.
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
        """
async def save(row): ...

def handler(row):
    await save(row)  # error: CC000
""",
    )

    def check(self, context: RuleContext) -> Iterator[RawFinding]:
        # Reported by the engine, which sees the error before any rule runs.
        return iter(())


RULES: tuple[type[Rule], ...] = (UnparsableFile,)
