"""Shared machinery of the cross-site rules: two sites claiming one thing."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from deploygen.errors import Location
from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


# How many other owners a finding names.
_NAMED = 5


class CollisionRule(Rule):
    """Sites named in one call must not share `what`; indexed, never compared pairwise."""

    what: str
    consequence: str

    def claims(self, site: SiteContext) -> Iterator[tuple[str, str, Location]]:
        """(value, setting key, where it is written) for each thing `site` claims."""
        raise NotImplementedError

    def scope(self, site: SiteContext) -> str:
        """Where a claim must be unique: the machine the site runs on (a port, a folder); a rule
        about a shared server (a PostgreSQL role) names that server instead."""
        return site.machine

    def check_all(self, sites: list[SiteContext]) -> Iterator[Finding]:
        index: dict[tuple[str, str], list[tuple[SiteContext, str, Location]]] = defaultdict(list)
        for site in sites:
            scope = self.scope(site)
            for value, key, location in self.claims(site):
                index[scope, value].append((site, key, location))
        for (scope, value), owners in index.items():
            if len(owners) < 2:
                continue
            for site, key, location in owners:
                others = [o for o in owners[:_NAMED + 1] if o[2] != location][:_NAMED]
                if not others:
                    continue
                # A value a thousand sites claim lists a few of them: each finding stays one short
                # line, and a thousand findings stay linear in size, not quadratic.
                more = len(owners) - 1 - len(others)
                named = ", ".join(f"{o[0].name} ({o[2]})" for o in others) + (f" and {more} more" if more > 0 else "")
                where = f" on {scope}" if scope else ""
                yield Finding(location.file, location.line, location.column, self.code, self.severity,
                              site.name, f"{self.what} {value} is also used{where} by {named}: {self.consequence}",
                              f"{key}={value}", {key: value})
