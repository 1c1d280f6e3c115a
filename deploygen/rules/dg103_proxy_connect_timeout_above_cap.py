from __future__ import annotations

from collections.abc import Iterator

from deploygen.sitefile.duration import Duration
from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext

CAP = Duration.seconds_(75)


class ProxyConnectTimeoutAboveCap(Rule):
    """`proxy_connect_timeout` is longer than nginx and the kernel honour.

    ## What it checks
    nginx's `proxy_connect_timeout` must not exceed 75 s.

    ## Why it is bad
    nginx's documentation says the value "usually cannot exceed 75 seconds",
    and on Linux the kernel's SYN retries give up after about 127 s anyway, so
    nginx answers 502 instead of the 504 the setting promises. Copying the read
    timeout into the connect timeout (`proxy_connect_timeout 300s`) is the
    usual way to get here; it only delays the error page when gunicorn is down.

    ## Example
    ```yaml
    timeouts:
      request: 300s
      nginx: {proxy_connect_timeout: 300s}
    ```

    ## Fix
    Remove `timeouts.nginx.proxy_connect_timeout` (derived as 5 s: a local
    gunicorn accepts at once) or keep it at a few seconds.
    """

    code = "DG103"
    name = "proxy-connect-timeout-above-cap"
    severity = "warning"
    summary = "nginx proxy_connect_timeout above 75s"
    keys = ("nginx.proxy_connect_timeout",)

    def check(self, site: SiteContext) -> Iterator[Finding]:
        connect = site.effective["nginx.proxy_connect_timeout"]
        if connect.value > CAP:
            yield self.finding(site, connect, "> 75s", None,
                               "nginx cannot wait that long for a connection: a down gunicorn only makes "
                               "clients wait longer for a 502")
