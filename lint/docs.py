"""Generate docs/rules.md from the rule classes: ``python -m concurrency_lint.docs``.

Each rule's docstring is its documentation and its samples are its examples, so the
reference cannot drift from the code; a test checks that the committed file is current.
"""

from __future__ import annotations

import inspect
import sys

from concurrency_lint.rules import RULES
from concurrency_lint.rules.base import SAFE, Example, Rule

_FAMILIES = {
    "CC0": "CC0xx: files that cannot be linted",
    "CC1": "CC1xx: blocking calls in async code",
    "CC2": "CC2xx: coroutines never awaited, tasks dropped",
    "CC3": "CC3xx: pure-Python CPU work on threads",
}


def _fix_line(rule: type[Rule]) -> str:
    if rule.fix_safety is None:
        return "Autofix: none."
    if rule.fix_safety == SAFE:
        return "Autofix: safe (`--fix`)."
    return "Autofix: unsafe (`--fix --unsafe-fixes`)."


def _code_block(source: str) -> str:
    return f"```python\n{source.strip()}\n```\n"


def render() -> str:
    """The whole of docs/rules.md."""
    parts = [
        "# Rules\n\n",
        "Generated from the rule classes in `lint/rules/` by "
        "`python -m concurrency_lint.docs > docs/rules.md`; do not edit by hand.\n\n",
        "Select or ignore rules by code or prefix (`--select CC1`, `--ignore CC107`), "
        "silence one line with `# noqa: CC101` (or a bare `# noqa`), and run "
        "`concurrency-lint --explain CODE` for a rule's text in the terminal. Lines marked "
        "`# error: CODE` in the examples are the ones reported.\n\n",
        "| code | name | summary | autofix |\n|---|---|---|---|\n",
    ]
    for rule in RULES:
        fix = rule.fix_safety or ""
        parts.append(
            f"| {rule.code} | [{rule.name}](#{_anchor(rule)}) | {rule.summary()} | {fix} |\n"
        )
    family = ""
    for rule in RULES:
        if rule.code[:3] != family:
            family = rule.code[:3]
            parts.append(f"\n## {_FAMILIES[family]}\n")
        doc = inspect.cleandoc(rule.__doc__ or "")
        summary, _, body = doc.partition("\n")
        parts.append(f"\n### {rule.code} {rule.name}\n\n**{summary.strip()}**\n\n")
        if body.strip():
            parts.append(body.strip() + "\n\n")
        parts.append(_fix_line(rule) + "\n\n")
        if rule.SAMPLE_SETTINGS:
            settings = "\n".join(
                f"{key} = {_toml(value)}" for key, value in rule.SAMPLE_SETTINGS.items()
            )
            parts.append(
                "The examples use this configuration:\n\n"
                f"```toml\n[tool.concurrency-lint]\n{settings}\n```\n\n"
            )
        for number, sample in enumerate(rule.INVALID):
            source = sample.source if isinstance(sample, Example) else sample
            parts.append(f"Reported ({rule.code}-INVALID-{number}):\n\n{_code_block(source)}\n")
            if isinstance(sample, Example) and sample.fixed is not None:
                parts.append(f"After the fix:\n\n{_code_block(sample.fixed)}\n")
        for number, source in enumerate(rule.VALID):
            parts.append(f"Not reported ({rule.code}-VALID-{number}):\n\n{_code_block(source)}\n")
    return "".join(parts).rstrip("\n") + "\n"


def _anchor(rule: type[Rule]) -> str:
    return f"{rule.code.lower()}-{rule.name}"


def _toml(value: object) -> str:
    if isinstance(value, dict):
        items = ", ".join(f"{_toml(key)} = {_toml(item)}" for key, item in value.items())
        return "{ " + items + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value).lower() if isinstance(value, bool) else str(value)


if __name__ == "__main__":  # pragma: no cover
    sys.stdout.write(render())
