"""Run the rule catalogue over sites: each rule on the sites of its kinds that have its keys."""

from __future__ import annotations

from dataclasses import dataclass

from deploygen.derive import derive
from deploygen.report.findings import Finding
from deploygen.rules import RULES
from deploygen.rules.base import Rule, SiteContext
from deploygen.rules.selection import Selection
from deploygen.sitefile.load import LoadedSite


@dataclass(frozen=True, order=True)
class Skipped:
    """A rule that did not run on a site, and why (`--format json` says so for `audit`)."""

    file: str
    code: str
    site: str
    reason: str


def contexts(sites: list[LoadedSite]) -> list[SiteContext]:
    return [SiteContext(site, derive(site)) for site in sites]


def applicable(rule: type[Rule], sites: list[SiteContext], skipped: list[Skipped]) -> list[SiteContext]:
    """The sites `rule` runs on: of its kinds, with every key it reads; the others are noted."""
    out = []
    for site in sites:
        if rule.kinds is not None and site.kind not in rule.kinds:
            continue  # not about this kind of app: nothing to say
        if not _can_have(rule, site.kind):
            continue  # it reads a key no site of this kind has (gunicorn's, for a PHP pool)
        reason = rule.needs(site)
        if reason is not None:
            skipped.append(Skipped(site.loaded.file, rule.code, site.name, reason))
            continue
        out.append(site)
    return out


def _can_have(rule: type[Rule], kind: str) -> bool:
    from deploygen.derive.catalogue import CATALOGUE

    return all(key in CATALOGUE and kind in CATALOGUE[key].kinds for key in rule.keys)


def run(sites: list[SiteContext], rules: tuple[type[Rule], ...] = RULES) -> tuple[list[Finding], list[Skipped]]:
    """Every finding of every rule, sorted by file, line, column and code, and the rules skipped."""
    findings: list[Finding] = []
    skipped: list[Skipped] = []
    for rule in rules:
        chosen = applicable(rule, sites, skipped)
        if chosen:
            findings.extend(rule().check_all(chosen))
    return _once(findings), sorted(set(skipped))


def _once(findings: list[Finding]) -> list[Finding]:
    """Sorted, each finding once: a site a fleet runs on two hosts is checked on each, and what is
    wrong in its file is wrong once (what is wrong on one host says so in its message)."""
    seen: set[tuple] = set()
    unique = []
    for finding in sorted(findings):
        key = (finding.file, finding.line, finding.column, finding.code, finding.site, finding.message,
               finding.detail)
        if key not in seen:
            seen.add(key)
            unique.append(finding)
    return unique


# Every rule reports: the selection with no layers (frozen, so one is enough).
EVERY_RULE = Selection()


def check(sites: list[SiteContext], selection: Selection = EVERY_RULE) -> list[Finding]:
    """Every finding of every rule the selection keeps, less those the sites' `ignore:` suppress,
    with DG001 for each suppression that suppressed nothing; sorted by file, line, column and code."""
    return select(sites, run(sites)[0], selection)


def select(sites: list[SiteContext], findings: list[Finding], selection: Selection) -> list[Finding]:
    """`findings` as the selection and the sites' suppressions leave them (see check)."""
    from deploygen.rules.dg001_unused_suppression import UnusedSuppression

    kept = [f for f in findings if selection.enabled(f.code)]
    unused = UnusedSuppression().unused(sites, kept, selection)
    kept += [f for f in unused if selection.enabled(f.code)]
    suppressed = {(s.loaded.file, code) for s in sites if s.is_site_file for code in s.loaded.site.ignore}
    kept = [f for f in kept if (f.file, f.code) not in suppressed]
    return sorted(_once_per_line(kept))


def _once_per_line(findings: list[Finding]) -> list[Finding]:
    """Less the findings of a rule whose `same_line_as` rules report the same place: the line is
    told once, by the rule that names the layer behind it (DG106's, when DG101 reports it)."""
    from deploygen.rules import BY_CODE

    places = {(f.file, f.line, f.column, f.code) for f in findings}
    return [f for f in findings
            if not any((f.file, f.line, f.column, other) in places
                       for other in BY_CODE[f.code].same_line_as)]
