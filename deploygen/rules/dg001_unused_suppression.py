from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext
from deploygen.rules.selection import Selection


class UnusedSuppression(Rule):
    """A site file's `ignore:` names a rule that finds nothing there.

    ## What it checks
    Each entry of a site's `ignore:` (`DG603: "TLS ends at the load
    balancer"`) suppresses at least one finding of that rule in that file.
    An entry for a rule the selection leaves out (`--ignore`, `select` in
    `[tool.deploygen]`) is not judged: nothing could have reported it.

    ## Why it is bad
    A suppression outlives its reason: the load balancer goes, the site gets
    its own certificate, and the entry stays, ready to hide the next
    misconfiguration of the same rule without anyone deciding so. The same
    reason ruff reports an unused `noqa` (RUF100).

    ## Example
    ```yaml
    ignore:
      DG603: "TLS ends at the load balancer"   # the site has no TLS any more: nothing to suppress
    ```

    ## Fix
    Remove the entry. If the rule should stay quiet for a reason that holds
    everywhere, leave it out of `select` in `[tool.deploygen]` instead.
    """

    code = "DG001"
    name = "unused-suppression"
    severity = "warning"
    summary = "an ignore: entry that suppresses nothing"

    def unused(self, sites: list[SiteContext], findings: list[Finding], selection: Selection) -> Iterator[Finding]:
        """One finding per entry of a site's `ignore:` that matched none of `findings` (those the
        selection kept, before the suppressions applied)."""
        found = {(f.file, f.code) for f in findings}
        seen: set[str] = set()
        for site in sites:
            file = site.loaded.file
            if not site.is_site_file or file in seen:  # a fleet's site is one context per host
                continue
            seen.add(file)
            for code, reason in site.loaded.site.ignore.items():
                if code == self.code or not selection.enabled(code) or (file, code) in found:
                    continue
                where = site.loaded.locate("ignore", code)
                yield Finding(where.file, where.line, where.column, self.code, self.severity, site.name,
                              f"{code} finds nothing in this site any more: remove the suppression "
                              f"(its reason: {reason!r})", f"ignore.{code}", {f"ignore.{code}": reason})
