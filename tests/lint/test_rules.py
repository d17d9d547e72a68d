"""Every rule's own samples: INVALID ones give exactly the marked findings, VALID ones none."""

from __future__ import annotations

import re

import pytest
from lint_helpers import REPOSITORY, lines_and_codes, markers, settings

from concurrency_lint import fix_source, lint_source
from concurrency_lint.docs import render
from concurrency_lint.rules import CODES, RULES
from concurrency_lint.rules.base import UNSAFE, Example, Rule


def _source(sample: str | Example) -> str:
    return sample.source if isinstance(sample, Example) else sample


INVALID = [
    pytest.param(rule, _source(sample), id=f"{rule.code}-INVALID-{number}")
    for rule in RULES
    for number, sample in enumerate(rule.INVALID)
]
VALID = [
    pytest.param(rule, source, id=f"{rule.code}-VALID-{number}")
    for rule in RULES
    for number, source in enumerate(rule.VALID)
]
FIXES = [
    pytest.param(rule, sample, id=f"{rule.code}-FIX-{number}")
    for rule in RULES
    for number, sample in enumerate(rule.INVALID)
    if isinstance(sample, Example) and sample.fixed is not None
]


@pytest.mark.parametrize(("rule", "source"), INVALID)
def test_invalid_sample_gives_exactly_the_marked_findings(rule: type[Rule], source: str) -> None:
    findings = lint_source(source, settings(rule.SAMPLE_SETTINGS))
    assert lines_and_codes(findings) == markers(source)
    assert rule.code in {finding.code for finding in findings}


@pytest.mark.parametrize(("rule", "source"), VALID)
def test_valid_sample_gives_no_finding(rule: type[Rule], source: str) -> None:
    assert lint_source(source, settings(rule.SAMPLE_SETTINGS)) == []


@pytest.mark.parametrize(("rule", "example"), FIXES)
def test_fix_turns_the_invalid_sample_into_the_documented_result(
    rule: type[Rule], example: Example
) -> None:
    fixed, before = fix_source(
        example.source, settings(rule.SAMPLE_SETTINGS), unsafe=rule.fix_safety == UNSAFE
    )
    assert fixed == example.fixed
    after = lint_source(fixed, settings(rule.SAMPLE_SETTINGS))
    unfixable = [f for f in before if f.code == rule.code and f.fix is None]
    assert len([f for f in after if f.code == rule.code]) == len(unfixable)


def test_rule_codes_are_unique_well_formed_and_named() -> None:
    assert len(CODES) == len(set(CODES))
    assert len({rule.name for rule in RULES}) == len(RULES)
    for rule in RULES:
        assert re.fullmatch(r"CC\d{3}", rule.code)
        assert re.fullmatch(r"[a-z]+(-[a-z]+)+", rule.name)
        assert len((rule.__doc__ or "").split()) > 20, f"{rule.code} lacks documentation"


def test_every_rule_has_samples_of_both_kinds() -> None:
    for rule in RULES:
        assert rule.INVALID, f"{rule.code} has no INVALID sample"
        assert rule.VALID, f"{rule.code} has no VALID sample"


def test_rules_md_documents_every_code_and_is_up_to_date() -> None:
    committed = (REPOSITORY / "docs" / "rules.md").read_text(encoding="utf-8")
    for rule in RULES:
        assert f"### {rule.code} {rule.name}" in committed
    assert committed == render(), "docs/rules.md is stale: python -m concurrency_lint.docs"
