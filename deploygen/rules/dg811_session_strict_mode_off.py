from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class SessionStrictModeOff(Rule):
    """PHP accepts a session id it never issued.

    ## What it checks
    `session.use_strict_mode = 0`, PHP's default.

    ## Why it is bad
    Session fixation: an attacker plants a session id of their choosing in
    the victim's browser (a link, a subdomain's cookie); PHP creates a
    session under that id at the victim's login, and the attacker, who knows
    it, is logged in as the victim.

    ## Example
    ```yaml
    php: {session.use_strict_mode: false}
    ```

    ## Fix
    Remove `php.session.use_strict_mode` (deploygen turns it on).
    """

    code = "DG811"
    name = "session-strict-mode-off"
    severity = "warning"
    summary = "session.use_strict_mode off: an attacker-chosen session id is accepted"
    keys = ("php.session.use_strict_mode",)

    def check(self, site: SiteContext) -> Iterator[Finding]:
        strict = site.effective["php.session.use_strict_mode"]
        if not strict.value:
            yield self.finding(site, strict, "", None,
                               "PHP adopts any session id a client sends: sessions can be fixed by an attacker")
