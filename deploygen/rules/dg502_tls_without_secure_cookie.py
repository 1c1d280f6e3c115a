from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class TlsWithoutSecureCookie(Rule):
    """The site has TLS but its session cookie may travel over plain HTTP.

    ## What it checks
    `session.cookie.secure: false` on a site with `tls`.

    ## Why it is bad
    nginx still answers on port 80 (to redirect). A browser that follows an
    `http://` link sends the session cookie in clear text before the redirect:
    anyone on the same network can read it and take over the session.

    ## Example
    ```yaml
    tls: {certificate: /etc/ssl/shop.pem, certificate_key: /etc/ssl/shop.key}
    session:
      cookie: {secure: false}
    ```

    ## Fix
    Remove `session.cookie.secure` (derived as true when `tls` is set).
    """

    code = "DG502"
    name = "tls-without-secure-cookie"
    severity = "warning"
    keys = ("deploygen.tls",)
    concepts = ("session.cookie.secure",)
    summary = "TLS site whose session cookie is not Secure"

    def check(self, site: SiteContext) -> Iterator[Finding]:
        eff = site.effective
        secure = site.concept("session.cookie.secure")
        if eff.value("deploygen.tls") and not secure.value:
            yield self.finding(site, secure, "with tls", None,
                               "the session cookie is sent in clear text to port 80 before the redirect")
