"""Flask's part of `explain`: when an idle user's session really ends."""

from __future__ import annotations

from deploygen.report.explain import IdleEnd, idle_json
from deploygen.rules.base import SiteContext
from deploygen.sitefile.duration import Duration


def idle_session_end(ctx: SiteContext) -> IdleEnd:
    eff = ctx.effective
    s = ctx.loaded.site.session
    lifetime: Duration = eff.value("flask.PERMANENT_SESSION_LIFETIME")
    # Flask refreshes permanent sessions only: with remember-me, those of users who ticked it.
    sliding = eff.value("flask.SESSION_REFRESH_EACH_REQUEST")
    since = "the last request" if sliding else "login (nothing refreshes it)"
    if s.store == "redis":
        words = f"Redis deletes the key {lifetime} after {since}"
        end = IdleEnd(lifetime, lifetime, words)
    elif s.store == "filesystem":
        every: Duration = eff.value("deploygen.cleanup_every")
        words = (f"the session is refused {lifetime} after {since}; its file is removed by the next "
                 f"cleanup, {lifetime} to {lifetime + every} after it")
        end = IdleEnd(lifetime, lifetime + every, words)
    else:
        words = f"the cookie expires and is refused {lifetime} after {since}"
        end = IdleEnd(lifetime, lifetime, words)
    if s.permanent == "remember-me":
        words = (f"without remember-me when the browser closes, or at the latest {lifetime} after "
                 f"the session was last modified; with remember-me: {end.words}")
        end = IdleEnd(Duration(0), end.latest, words)
    if "flask.SESSION_IDLE_TIMEOUT" in eff:
        idle: Duration = eff.value("flask.SESSION_IDLE_TIMEOUT")
        if idle < end.earliest:
            end = IdleEnd(idle, end.latest, f"the app logs an idle user out after {idle}; {end.words}")
    if "flask.REMEMBER_COOKIE_DURATION" in eff:
        remember: Duration = eff.value("flask.REMEMBER_COOKIE_DURATION")
        if remember > lifetime:
            end = IdleEnd(end.earliest, end.latest, end.words,
                          f"a remember-me cookie outlives the session: it logs the user back in for up to "
                          f"{remember} after login")
    return end


def explain_session(ctx: SiteContext) -> tuple[dict, list[str]]:
    eff = ctx.effective
    s = ctx.loaded.site.session
    end = idle_session_end(ctx)
    data = {
        "store": s.store,
        "permanent": s.permanent,
        "lifetime": eff["flask.PERMANENT_SESSION_LIFETIME"].shown,
        "refresh_each_request": eff.value("flask.SESSION_REFRESH_EACH_REQUEST"),
        "idle_session_ends": idle_json(end),
    }
    lines = [f"session: {s.store} store, permanent: {s.permanent}, "
             f"{'sliding' if eff.value('flask.SESSION_REFRESH_EACH_REQUEST') else 'absolute'} "
             f"{eff['flask.PERMANENT_SESSION_LIFETIME'].shown}.",
             f"an idle session ends {end.span} after the last request: "
             f"{end.words}."]
    if end.remember:
        lines.append(end.remember + ".")
    if s.store == "cookie" and s.permanent == "always":
        lines.append("the app sets session.permanent = True in a before_request hook, once per session (Flask "
                     "has no setting for it; without it the cookie ends with the browser).")
    return data, lines
