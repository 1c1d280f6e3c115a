from __future__ import annotations

from deploygen.rules.collision import CollisionRule


class DuplicateBind(CollisionRule):
    """Two sites' gunicorns bind the same socket or port.

    ## What it checks
    Every site's `server.bind` is its own.

    ## Why it is bad
    The second gunicorn fails to start ("Address already in use") or, for a
    unix socket, replaces the first one's socket: nginx then sends one site's
    visitors to the other site's app.

    ## Example
    ```yaml
    # in two site files
    server: {bind: 127.0.0.1:8001}
    ```

    ## Fix
    Give each site its own port, or its own socket under /run/NAME/.
    """

    code = "DG902"
    name = "duplicate-bind"
    severity = "error"
    summary = "two sites with the same gunicorn bind or FPM listen"
    # gunicorn's bind, or the FPM pool's listen (a socket path or ADDRESS:PORT), as gunicorn writes it.
    optional = ("gunicorn.bind", "php-fpm.listen")
    what = "bind"
    consequence = "one gunicorn cannot start, or takes the other's traffic"

    def claims(self, site):
        eff = site.effective
        if "php-fpm.listen" in eff:
            listen = eff["php-fpm.listen"]
            value = listen.value
            if isinstance(value, str):
                yield (f"unix:{value}" if value.startswith("/") else value), listen.key, listen.provenance.location
            return
        if "gunicorn.bind" not in eff:
            return
        bind = eff["gunicorn.bind"]
        for value in bind.value if isinstance(bind.value, list) else [bind.value]:  # a server's config may list them
            if isinstance(value, str):
                yield value, bind.key, bind.provenance.location
