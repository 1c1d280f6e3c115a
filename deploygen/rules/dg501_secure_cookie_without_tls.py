from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class SecureCookieWithoutTls(Rule):
    """The session cookie is Secure but the site is served over plain HTTP.

    ## What it checks
    `session.cookie.secure: true` on a site without `tls`.

    ## Why it is bad
    Browsers never send a `Secure` cookie back over HTTP. The login page sets
    the session, the next request arrives without it: logins never stick.

    ## Example
    ```yaml
    session:
      cookie: {secure: true}
    # and no tls: key
    ```

    ## Fix
    Add `tls:` with the certificate files (nginx then serves 443 and
    redirects 80), or remove `session.cookie.secure` (derived from `tls`).
    """

    code = "DG501"
    name = "secure-cookie-without-tls"
    severity = "error"
    keys = ("deploygen.tls",)
    concepts = ("session.cookie.secure",)
    summary = "SESSION_COOKIE_SECURE on a site without TLS"

    def check(self, site: SiteContext) -> Iterator[Finding]:
        eff = site.effective
        secure = site.concept("session.cookie.secure")
        if secure.value and not eff.value("deploygen.tls"):
            yield self.finding(site, secure, "without tls", None,
                               "the browser never sends the cookie back over HTTP: logins never stick")
