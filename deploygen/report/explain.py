"""One site's chain, client to PostgreSQL, as a table a person reads in ten seconds."""

from __future__ import annotations

import json
from dataclasses import dataclass

from deploygen.sitefile.duration import Duration
from deploygen.rules.base import SiteContext
from deploygen.derive.settings import Setting

# Client to PostgreSQL: the order a request meets the layers.
LAYERS = ("nginx", "gunicorn", "systemd", "sqlalchemy", "postgres", "redis", "flask")


def _neighbour(key: str, ctx: SiteContext) -> str | None:
    """The setting `key` must outlast (its margin is measured against it)."""
    eff = ctx.effective
    sync = eff.value("gunicorn.worker_class") == "sync"
    has_db = "postgres.statement_timeout" in eff
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


def idle_session_end(ctx: SiteContext) -> IdleEnd:
    eff = ctx.effective
    s = ctx.loaded.site.session
    lifetime: Duration = eff.value("flask.PERMANENT_SESSION_LIFETIME")
    # Flask refreshes permanent sessions only: with remember-me, those of users who ticked it.
    sliding = eff.value("flask.SESSION_REFRESH_EACH_REQUEST")
    since = "the last request" if sliding else "login (nothing refreshes it)"
    if s.store == "redis":
        words = f"Redis deletes the key {lifetime.nginx()} after {since}"
        end = IdleEnd(lifetime, lifetime, words)
    elif s.store == "filesystem":
        every: Duration = eff.value("deploygen.cleanup_every")
        words = (f"the session is refused {lifetime.nginx()} after {since}; its file is removed by the next "
                 f"cleanup, {lifetime.nginx()} to {(lifetime + every).nginx()} after it")
        end = IdleEnd(lifetime, lifetime + every, words)
    else:
        words = f"the cookie expires and is refused {lifetime.nginx()} after {since}"
        end = IdleEnd(lifetime, lifetime, words)
    if s.permanent == "remember-me":
        words = (f"without remember-me when the browser closes, or at the latest {lifetime.nginx()} after "
                 f"the session was last modified; with remember-me: {end.words}")
        end = IdleEnd(Duration(0), end.latest, words)
    if "flask.SESSION_IDLE_TIMEOUT" in eff:
        idle: Duration = eff.value("flask.SESSION_IDLE_TIMEOUT")
        if idle < end.earliest:
            end = IdleEnd(idle, end.latest, f"the app logs an idle user out after {idle.nginx()}; {end.words}")
    if "flask.REMEMBER_COOKIE_DURATION" in eff:
        remember: Duration = eff.value("flask.REMEMBER_COOKIE_DURATION")
        if remember > lifetime:
            end = IdleEnd(end.earliest, end.latest, end.words,
                          f"a remember-me cookie outlives the session: it logs the user back in for up to "
                          f"{remember.nginx()} after login")
    return end


def as_rows(ctx: SiteContext) -> list[dict]:
    rows = []
    for layer in LAYERS:
        for setting in ctx.effective:
            if setting.layer != layer:
                continue
            margin = _margin(setting, ctx)
            p = setting.provenance
            rows.append({
                "setting": setting.key, "value": setting.display, "source": p.kind, "how": p.how,
                "line": p.location.line, "column": p.location.column,
                "margin": None if margin is None else {"over": margin[0], "seconds": margin[1]},
            })
    return rows


def _idle_json(end: IdleEnd) -> dict:
    return {"earliest_seconds": end.earliest.ms / 1000, "latest_seconds": end.latest.ms / 1000,
            "text": end.words, "remember_me": end.remember or None}


def explain_json(sites: list[SiteContext]) -> str:
    out = []
    for ctx in sites:
        eff = ctx.effective
        out.append({
            "site": ctx.name, "file": ctx.loaded.file,
            "request": eff["deploygen.request"].display,
            "worker_class": eff.value("gunicorn.worker_class"),
            "settings": as_rows(ctx),
            "session": {
                "store": ctx.loaded.site.session.store,
                "permanent": ctx.loaded.site.session.permanent,
                "lifetime": eff["flask.PERMANENT_SESSION_LIFETIME"].display,
                "refresh_each_request": eff.value("flask.SESSION_REFRESH_EACH_REQUEST"),
                "idle_session_ends": _idle_json(idle_session_end(ctx)),
            },
        })
    return json.dumps(out, indent=2, sort_keys=True) + "\n"


def explain_text(ctx: SiteContext) -> str:
    eff = ctx.effective
    request = eff["deploygen.request"]
    worker_class = eff.value("gunicorn.worker_class")
    lines = [f"{ctx.name} ({ctx.loaded.file}): request budget {request.display} "
             f"(line {request.provenance.location.line}), {worker_class} workers", ""]
    table = [("setting", "value", "margin", "source")]
    for row in as_rows(ctx):
        margin = ""
        if row["margin"]:
            margin = f"{row['margin']['seconds']:+g}s over {row['margin']['over']}"
        how = row["how"].split(": ", 1)[0]
        source = f"line {row['line']}" if row["source"] == "written" else f"{row['source']}: {how}"
        table.append((row["setting"], row["value"], margin, source))
    widths = [max(len(r[i]) for r in table) for i in range(3)]
    for r in table:
        lines.append(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip())
    lines.append("")
    if worker_class != "sync":
        lines.append(f"{worker_class} workers: gunicorn.timeout is a heartbeat and bounds no request; "
                     "statement_timeout and nginx close the chain.")
    s = ctx.loaded.site.session
    end = idle_session_end(ctx)
    lines.append(f"session: {s.store} store, permanent: {s.permanent}, "
                 f"{'sliding' if eff.value('flask.SESSION_REFRESH_EACH_REQUEST') else 'absolute'} "
                 f"{eff['flask.PERMANENT_SESSION_LIFETIME'].display}.")
    lines.append(f"an idle session ends {end.earliest.nginx()} to {end.latest.nginx()} after the last request: "
                 f"{end.words}.")
    if end.remember:
        lines.append(end.remember + ".")
    if s.store == "cookie" and s.permanent == "always":
        lines.append("the app sets session.permanent = True in a before_request hook, once per session (Flask "
                     "has no setting for it; without it the cookie ends with the browser).")
    return "\n".join(lines) + "\n"
