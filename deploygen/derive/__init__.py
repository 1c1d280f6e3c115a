"""Site model -> effective settings of every layer, written or derived, and why.

Everything the site file does not write is derived here, innermost layer first,
from `timeouts.request` and from the effective values of the neighbours, so
that a written value moves what is derived around it:

    lock_timeout < statement_timeout < gunicorn timeout < nginx proxy_*_timeout
    gunicorn graceful_timeout < systemd TimeoutStopSec
    nginx upstream keepalive_timeout < gunicorn keepalive

The margins (README, "How values are derived") are chosen so that the inner
layer gives up first and can still answer with a clean error, while staying
small next to the budget: a tenth of the neighbour, at most 10 s.

The common layers live here (one module each); what a kind of app adds (its
connection pool, its framework's settings) is the kind's (`deploygen.kinds`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deploygen.derive.deriver import Deriver
from deploygen.derive.nginx import derive_nginx, derive_nginx_user
from deploygen.derive.postgres import derive_postgres
from deploygen.derive.settings import Effective

if TYPE_CHECKING:
    from deploygen.sitefile.load import LoadedSite


def derive(loaded: LoadedSite, nginx_user: str | None = None) -> Effective:
    """Compute every effective setting of one site; `nginx_user` is its fleet host's (None:
    Debian's www-data)."""
    from deploygen.kinds import kind_of

    kind = kind_of(loaded.site)
    d = Deriver(loaded)
    site = loaded.site
    d.put("deploygen.name", site.name, ("name",), lambda: None, "")
    d.put("deploygen.secrets_file", site.app.secrets_file, ("app", "secrets_file"), lambda: None,
          "none: the unit loads no secrets")
    d.put("deploygen.request", site.timeouts.request, ("timeouts", "request"), lambda: None, "")
    tls = d.put("deploygen.tls", True if site.tls else None, ("tls",), lambda: False, "no tls: key")
    kind.derive_server(d)
    if site.database is not None:
        derive_postgres(d, kind.worker_timeout)
        kind.derive_pool(d)
    kind.derive_upstream(d)
    derive_nginx(d, kind.upstream_read_timeout)
    kind.derive_stop(d)
    derive_nginx_user(d, nginx_user, kind.nginx_joins_group)
    kind.derive_app(d, tls)
    return Effective(d.settings)
