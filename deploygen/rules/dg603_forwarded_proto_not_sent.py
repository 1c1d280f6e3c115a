from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class ForwardedProtoNotSent(Rule):
    """nginx does not tell the app which scheme the client used.

    ## What it checks
    A server block that serves TLS (`listen ... ssl`) sets
    `proxy_set_header X-Forwarded-Proto $scheme;` in every location that
    proxies to the app. Without TLS every request is plain HTTP, and the
    app's assumption of `http` is right: no finding.

    ## Why it is bad
    Behind TLS-terminating nginx every request reaches gunicorn over plain
    HTTP. Without the header the app builds `http://` URLs, redirects HTTPS
    users to HTTP (and back: a redirect loop), and Flask-Login's or Flask's
    `request.is_secure` checks fail.

    ## Example
    ```nginx
    location / { proxy_pass http://127.0.0.1:8001; proxy_set_header Host $host; }
    ```

    ## Fix
    Add `proxy_set_header X-Forwarded-Proto $scheme;` (deploygen renders it
    for every site).
    """

    code = "DG603"
    name = "forwarded-proto-not-sent"
    severity = "warning"
    summary = "nginx does not send X-Forwarded-Proto to the app"
    keys = ("nginx.proxy_set_header.X-Forwarded-Proto", "deploygen.tls")

    def check(self, site: SiteContext) -> Iterator[Finding]:
        proto = site.effective["nginx.proxy_set_header.X-Forwarded-Proto"]
        if proto.value is None and site.effective.value("deploygen.tls"):
            yield self.finding(site, proto, "not set", None,
                               "the app cannot tell HTTPS from HTTP: http:// links and redirect loops")
