"""One site's chain, client to PostgreSQL, as a table a person reads in ten seconds."""

from __future__ import annotations

import json
from dataclasses import dataclass

from deploygen.sitefile.duration import Duration
from deploygen.rules.base import SiteContext
from deploygen.derive.catalogue import CATALOGUE
from deploygen.derive.settings import Setting
from deploygen.kinds import kind_of

# Client to PostgreSQL: the order a request meets the layers.
LAYERS = ("nginx", "gunicorn", "php-fpm", "php", "systemd", "sqlalchemy", "psycopg_pool", "postgres", "redis", "flask",
          "django")


def _neighbour(key: str, ctx: SiteContext) -> str | None:
    """The setting `key` must outlast (its margin is measured against it)."""
    eff = ctx.effective
    own = kind_of(ctx.loaded.site).explain_neighbours(ctx)
    if own is not None:
        return own.get(key)
    has_db = "postgres.statement_timeout" in eff
    sync = eff.value("gunicorn.worker_class") == "sync"
    inner_of_nginx = "gunicorn.timeout" if sync or not has_db else "postgres.statement_timeout"
    table = {
        "nginx.proxy_read_timeout": inner_of_nginx,
        "nginx.proxy_send_timeout": inner_of_nginx,
        "gunicorn.timeout": "postgres.statement_timeout" if has_db else None,
        "postgres.statement_timeout": "postgres.lock_timeout",
        "systemd.TimeoutStopSec": "gunicorn.graceful_timeout",
        "gunicorn.keepalive": "nginx.upstream.keepalive_timeout" if eff.value("nginx.upstream.keepalive") else None,
    }
    return table.get(key)


def _margin(setting: Setting, ctx: SiteContext) -> tuple[str, float] | None:
    other = _neighbour(setting.key, ctx)
    if other is None or other not in ctx.effective:
        return None
    return other, (setting.value.ms - ctx.effective.value(other).ms) / 1000


@dataclass(frozen=True)
class IdleEnd:
    """When an idle user's session really ends, counted from their last request."""

    earliest: Duration
    latest: Duration
    words: str
    remember: str = ""

    @property
    def span(self) -> str:
        """`12h`, or `2h to 2h30m` when a cleanup's interval makes the end a range: prose, so in
        the site file's units (`30m`, not the layers' `1800s`)."""
        if self.earliest == self.latest:
            return str(self.earliest)
        return f"{self.earliest} to {self.latest}"


def as_rows(ctx: SiteContext) -> list[dict]:
    rows = []
    for layer in LAYERS:
        for setting in ctx.effective:
            if setting.layer != layer or CATALOGUE[setting.key].fact:
                continue  # another layer's, or a fact about the site (its role, its user): no tunable
            margin = _margin(setting, ctx)
            p = setting.provenance
            rows.append({
                "setting": setting.key, "value": setting.shown, "source": p.kind, "how": p.how,
                "line": p.location.line, "column": p.location.column,
                "margin": None if margin is None else {"over": margin[0], "seconds": margin[1]},
            })
    return rows


def idle_json(end: IdleEnd) -> dict:
    return {"earliest_seconds": end.earliest.ms / 1000, "latest_seconds": end.latest.ms / 1000,
            "text": end.words, "remember_me": end.remember or None}


def explain_json(sites: list[SiteContext]) -> str:
    out = []
    for ctx in sites:
        eff = ctx.effective
        session, _ = kind_of(ctx.loaded.site).explain_session(ctx)
        out.append({
            "site": ctx.name, "file": ctx.loaded.file,
            "request": eff["deploygen.request"].shown,
            "worker_class": _worker_class(ctx),
            "settings": as_rows(ctx),
            **({"session": session} if session is not None else {}),
        })
    return json.dumps(out, indent=2, sort_keys=True) + "\n"


def _worker_class(ctx: SiteContext) -> str | None:
    """gunicorn's worker class; None for an app PHP-FPM runs."""
    if kind_of(ctx.loaded.site).worker_timeout != "gunicorn.timeout":
        return None
    return ctx.effective.value("gunicorn.worker_class")


def explain_text(ctx: SiteContext) -> str:
    eff = ctx.effective
    request = eff["deploygen.request"]
    worker_class = _worker_class(ctx)
    server = f"{worker_class} workers" if worker_class else f"php-fpm pm = {eff.value('php-fpm.pm')}"
    lines = [f"{ctx.name} ({ctx.loaded.file}): request budget {request.shown} "
             f"(line {request.provenance.location.line}), {server}", ""]
    table = [("setting", "value", "margin", "source")]
    for row in as_rows(ctx):
        margin = ""
        if row["margin"]:
            margin = f"{row['margin']['seconds']:+g}s over {row['margin']['over']}"
        how = row["how"].partition(": ")[0]
        source = f"line {row['line']}" if row["source"] == "written" else f"{row['source']}: {how}"
        table.append((row["setting"], row["value"], margin, source))
    widths = [max(len(r[i]) for r in table) for i in range(3)]
    for r in table:
        lines.append(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip())
    lines.append("")
    if worker_class not in ("sync", None):
        lines.append(f"{worker_class} workers: gunicorn.timeout is a heartbeat and bounds no request; "
                     "statement_timeout and nginx close the chain.")
    lines += kind_of(ctx.loaded.site).explain_session(ctx)[1]
    return "\n".join(lines) + "\n"
