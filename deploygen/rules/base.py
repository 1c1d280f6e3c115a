"""What every rule is: a code, a name for the bad pattern, a severity and a page."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from deploygen.errors import Location
from deploygen.findings import Finding, Severity
from deploygen.load import LoadedSite
from deploygen.settings import Effective, Setting

PAGE_SECTIONS = ("What it checks", "Why it is bad", "Example", "Fix")


@dataclass(frozen=True)
class SiteContext:
    """One site as rules see it: the loaded file and its effective settings."""

    loaded: LoadedSite
    effective: Effective

    @property
    def name(self) -> str:
        return self.loaded.site.name


class Rule:
    """Base of every rule. The class docstring is the rule's page."""

    code: str
    name: str
    severity: Severity
    summary: str

    @classmethod
    def page(cls) -> str:
        import inspect

        return inspect.cleandoc(cls.__doc__ or "")

    def check(self, site: SiteContext) -> Iterator[Finding]:
        """Findings for one site; rules that span sites override check_all instead."""
        return iter(())

    def check_all(self, sites: list[SiteContext]) -> Iterator[Finding]:
        for site in sites:
            yield from self.check(site)

    def finding(self, site: SiteContext, at: Setting, relation: str, other: Setting | None,
                message: str, *, severity: Severity | None = None, location: Location | None = None) -> Finding:
        """A finding at the line that caused `at` (or `location`): `[at=V RELATION other=W] message`."""
        location = location or at.provenance.location
        about = [s for s in (at, other) if s is not None]
        detail = f"{at.key}={at.display}"
        if other is not None:
            detail += f" {relation} {other.key}={other.display}"
        elif relation:
            detail += f" {relation}"
        return Finding(location.file, location.line, location.column, self.code,
                       severity or self.severity, site.name, message, detail,
                       {s.key: s.display for s in about})
