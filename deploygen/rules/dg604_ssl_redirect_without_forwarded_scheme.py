from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext
from deploygen.rules.dg601_forwarded_headers_not_trusted import _trusts


def _scheme_lost(site: SiteContext) -> str | None:
    """Why gunicorn does not turn nginx's X-Forwarded-Proto into the request's scheme, or None."""
    eff = site.effective
    if eff.value("nginx.proxy_set_header.X-Forwarded-Proto") is None:
        return "nginx does not send X-Forwarded-Proto"
    bind = str(eff.value("gunicorn.bind"))
    if bind.startswith("unix:"):
        return None  # gunicorn trusts every unix-socket peer
    match = re.fullmatch(r"\[(.+)\]:\d+|(.+):\d+", bind)
    try:
        host = ipaddress.ip_address(match.group(1) or match.group(2)) if match else None
    except ValueError:
        host = None
    if host is None:
        return None  # a bind this rule cannot read: DG601's to judge
    source = "127.0.0.1" if host.is_loopback else str(host)
    allowed = eff.value("gunicorn.forwarded_allow_ips")
    if _trusts(str(allowed), source):
        return None
    return f"gunicorn ignores X-Forwarded-Proto from nginx at {source}, not in forwarded_allow_ips={allowed}"


class SslRedirectWithoutForwardedScheme(Rule):
    """Django redirects to HTTPS but cannot see that a request came over HTTPS.

    ## What it checks
    With `tls` and Django's `SECURE_SSL_REDIRECT`, Django must learn the
    client's scheme from nginx's `X-Forwarded-Proto: https`: through
    `SECURE_PROXY_SSL_HEADER` (deploygen's default), or, with it off
    (`django: {SECURE_PROXY_SSL_HEADER: false}`), through gunicorn, which sets
    the request's scheme from the header only for peers it trusts (every unix
    socket; on TCP, nginx's address in `forwarded_allow_ips`).

    ## Why it is bad
    nginx ends TLS and talks plain HTTP to gunicorn. When neither Django nor
    gunicorn reads the forwarded scheme, every request looks like HTTP to
    Django, which answers 301 to the same https:// URL, which arrives as HTTP
    again: a redirect loop, and browsers give up with "too many redirects" on
    every page.

    ## Example
    ```yaml
    tls: {certificate: /etc/ssl/shop.pem, certificate_key: /etc/ssl/shop.key}
    server: {bind: "127.0.0.1:8001", forwarded_allow_ips: 10.0.0.1}
    django: {SECURE_PROXY_SSL_HEADER: false}
    ```

    ## Fix
    Remove `django.SECURE_PROXY_SSL_HEADER` (derived as
    `("HTTP_X_FORWARDED_PROTO", "https")`, the header nginx overwrites with
    `$scheme`), and remove `server.forwarded_allow_ips` (derived from the bind;
    see DG601).
    """

    code = "DG604"
    name = "ssl-redirect-without-forwarded-scheme"
    severity = "error"
    kinds = frozenset({"django"})
    summary = "Django's SECURE_SSL_REDIRECT while neither Django nor gunicorn reads X-Forwarded-Proto"
    keys = ("django.SECURE_SSL_REDIRECT", "django.SECURE_PROXY_SSL_HEADER", "deploygen.tls", "gunicorn.bind",
            "gunicorn.forwarded_allow_ips", "nginx.proxy_set_header.X-Forwarded-Proto")

    def check(self, site: SiteContext) -> Iterator[Finding]:
        eff = site.effective
        redirect, header = eff["django.SECURE_SSL_REDIRECT"], eff["django.SECURE_PROXY_SSL_HEADER"]
        if not redirect.value or header.value or not eff.value("deploygen.tls"):
            return
        lost = _scheme_lost(site)
        if lost is not None:
            yield self.finding(site, header, "with", redirect,
                               f"Django sees every request as plain HTTP ({lost}) and redirects it to HTTPS "
                               "for ever: browsers stop with too many redirects")
