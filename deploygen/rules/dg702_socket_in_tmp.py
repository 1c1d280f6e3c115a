from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext

# Folders systemd's PrivateTmp= replaces for a unit, and systemd-tmpfiles ages out.
_TEMPORARY = ("/tmp/", "/var/tmp/")


class SocketInTmp(Rule):
    """gunicorn listens on a unix socket in /tmp.

    ## What it checks
    gunicorn's `bind` is not a socket under `/tmp` or `/var/tmp` (found by
    `audit`: a site file puts its socket in `/run/NAME/`).

    ## Why it is bad
    A unit with `PrivateTmp=true` (Debian's and RHEL's nginx units on some
    releases, the gunicorn unit of many guides, deploygen's own hardening)
    sees a `/tmp` of its own: nginx looks for the socket in one `/tmp`,
    gunicorn made it in another, and every request is a 502 "connect() to
    unix:/tmp/app.sock failed (2: No such file or directory)". Where both see
    the same `/tmp`, anyone on the machine may create that path first, and
    systemd-tmpfiles deletes files there that it finds old.

    ## Example
    ```ini
    ExecStart=/srv/shop/venv/bin/gunicorn --bind unix:/tmp/shop.sock app:app
    ```

    ## Fix
    Bind to `unix:/run/shop/gunicorn.sock` with `RuntimeDirectory=shop` in
    the unit (systemd creates the folder for the app's user and removes it on
    stop), and point nginx's `proxy_pass` there; `deploygen import` does both.
    """

    code = "DG702"
    name = "socket-in-tmp"
    severity = "warning"
    summary = "gunicorn's unix socket is in /tmp"
    keys = ("gunicorn.bind",)

    def check(self, site: SiteContext) -> Iterator[Finding]:
        bind = site.effective["gunicorn.bind"]
        path = bind.value.removeprefix("unix:") if isinstance(bind.value, str) and bind.value.startswith("unix:") else ""
        if path.startswith(_TEMPORARY):
            yield self.finding(site, bind, "", None,
                               "a unit with PrivateTmp= sees another /tmp: nginx answers 502; anyone may take the "
                               "path first")
