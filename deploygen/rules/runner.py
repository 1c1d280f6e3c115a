"""Run the rule catalogue over sites and collect sorted findings."""

from __future__ import annotations

from deploygen.derive.chain import derive
from deploygen.report.findings import Finding
from deploygen.sitefile.load import LoadedSite
from deploygen.rules import RULES
from deploygen.rules.base import SiteContext


def contexts(sites: list[LoadedSite]) -> list[SiteContext]:
    return [SiteContext(site, derive(site)) for site in sites]


def check(sites: list[SiteContext]) -> list[Finding]:
    """Every finding of every rule, sorted by file, line, column and code."""
    findings: list[Finding] = []
    for rule in RULES:
        findings.extend(rule().check_all(sites))
    return sorted(findings)
