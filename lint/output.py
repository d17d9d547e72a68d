"""Output formats: one function per format, in one registry.

``text`` is ``path:line:col: CODE message`` per finding, like ruff; ``json`` a list of
objects; ``github`` workflow commands that annotate a pull request; ``sarif`` a SARIF 2.1.0
log for code-scanning tools. Columns are 1-based everywhere.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence

from concurrency_lint.engine import Finding
from concurrency_lint.rules import RULES, RULES_BY_CODE
from concurrency_lint.version import version

Formatter = Callable[[Sequence[Finding]], str]


def format_text(findings: Sequence[Finding]) -> str:
    return "".join(f"{f.path}:{f.line}:{f.column}: {f.code} {f.message}\n" for f in findings)


def format_json(findings: Sequence[Finding]) -> str:
    return (
        json.dumps(
            [
                {
                    "path": f.path,
                    "line": f.line,
                    "column": f.column,
                    "end_line": f.end_line,
                    "end_column": f.end_column,
                    "code": f.code,
                    "message": f.message,
                    "fix_available": f.fix_available,
                }
                for f in findings
            ],
            indent=2,
        )
        + "\n"
    )


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def format_github(findings: Sequence[Finding]) -> str:
    lines = []
    for f in findings:
        properties = ",".join(
            [
                f"title={_escape_property(f'concurrency-lint ({f.code})')}",
                f"file={_escape_property(f.path)}",
                f"line={f.line}",
                f"col={f.column}",
                f"endLine={f.end_line}",
                f"endColumn={f.end_column}",
            ]
        )
        lines.append(f"::error {properties}::{_escape_data(f'{f.code} {f.message}')}\n")
    return "".join(lines)


def format_sarif(findings: Sequence[Finding]) -> str:
    rule_index = {rule.code: position for position, rule in enumerate(RULES)}
    rules = [
        {
            "id": rule.code,
            "name": rule.name,
            "shortDescription": {"text": rule.summary()},
            "fullDescription": {"text": " ".join((rule.__doc__ or "").split())},
            "help": {"text": f"See docs/rules.md, {rule.code} {rule.name}."},
            "defaultConfiguration": {"level": "error"},
        }
        for rule in RULES
    ]
    results = [
        {
            "ruleId": f.code,
            "ruleIndex": rule_index[f.code],
            "level": "error",
            "message": {"text": f.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": f.path.replace("\\", "/")},
                        "region": {
                            "startLine": f.line,
                            "startColumn": f.column,
                            "endLine": f.end_line,
                            "endColumn": f.end_column,
                        },
                    }
                }
            ],
        }
        for f in findings
    ]
    log = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "concurrency-lint",
                        "version": version(),
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


FORMATS: dict[str, Formatter] = {
    "text": format_text,
    "json": format_json,
    "github": format_github,
    "sarif": format_sarif,
}


def statistics(findings: Sequence[Finding], output_format: str) -> str:
    """Counts per code, most frequent first (``--statistics``)."""
    counts = Counter(f.code for f in findings)
    fixable = Counter(f.code for f in findings if f.fix_available)
    ordered = sorted(counts, key=lambda code: (-counts[code], code))
    if output_format == "json":
        return (
            json.dumps(
                [
                    {
                        "code": code,
                        "name": RULES_BY_CODE[code].name,
                        "count": counts[code],
                        "fixable": fixable[code],
                    }
                    for code in ordered
                ],
                indent=2,
            )
            + "\n"
        )
    width = max((len(str(count)) for count in counts.values()), default=1)
    return "".join(
        f"{counts[code]:>{width}}  {code}  {'[*] ' if fixable[code] else '    '}"
        f"{RULES_BY_CODE[code].name}\n"
        for code in ordered
    )
