from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class UpstreamKeepaliveWithoutHttp11(Rule):
    """An upstream `keepalive` that nginx can never use.

    ## What it checks
    With `keepalive N` in the `upstream` block, the location must also say
    `proxy_http_version 1.1;` and must not send `Connection: close`, which
    nginx does when no `proxy_set_header Connection` is set. `Connection
    "upgrade"` (a websocket location) or a variable keeps the connection open
    for gunicorn and is no finding.

    ## Why it is bad
    By default nginx talks HTTP/1.0 to backends and sends `Connection: close`:
    gunicorn closes every connection after the response, the connection cache
    stays empty, and every request pays a new connect. The keepalive tuning
    everyone believes in does not happen.

    ## Example
    ```nginx
    upstream app { server 127.0.0.1:8001; keepalive 16; }
    location / { proxy_pass http://app; }
    ```

    ## Fix
    Add `proxy_http_version 1.1;` and `proxy_set_header Connection "";` to
    the location (deploygen renders both whenever it renders `keepalive`).
    """

    code = "DG113"
    name = "upstream-keepalive-without-http11"
    severity = "error"
    summary = "nginx upstream keepalive without proxy_http_version 1.1 and an empty Connection header"
    keys = ("nginx.upstream.keepalive", "nginx.proxy_http_version", "nginx.proxy_set_header.Connection")

    def check(self, site: SiteContext) -> Iterator[Finding]:
        eff = site.effective
        keepalive = eff["nginx.upstream.keepalive"]
        if not keepalive.value:
            return
        version, connection = eff["nginx.proxy_http_version"], eff["nginx.proxy_set_header.Connection"]
        if version.value != "1.1":
            yield self.finding(site, version, "with", keepalive,
                               "nginx speaks HTTP/1.0 to gunicorn and closes every connection: keepalive is unused")
        elif connection.value is None or connection.value.strip('"').lower() == "close":
            # Unset, nginx sends `Connection: close` itself; `upgrade` (a websocket location) or a
            # variable keeps the connection open for gunicorn, whatever it holds per request.
            yield self.finding(site, connection, "with", keepalive,
                               "nginx asks gunicorn to close every connection: keepalive is unused")
