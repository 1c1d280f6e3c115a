"""Django's part of `explain`: when an idle user's session really ends."""

from __future__ import annotations

from deploygen.kinds.django.derive import NEEDS_CLEANUP, engine
from deploygen.kinds.django.files import MODULE
from deploygen.report.explain import IdleEnd, idle_json
from deploygen.rules.base import SiteContext
from deploygen.sitefile.duration import Duration


def idle_session_end(ctx: SiteContext) -> IdleEnd:
    eff = ctx.effective
    age: Duration = eff.value("django.SESSION_COOKIE_AGE")
    sliding = eff.value("django.SESSION_SAVE_EVERY_REQUEST")
    since = "the last request" if sliding else "the last change to the session (reading does not move it)"
    short = engine(ctx.loaded.site)
    if short in NEEDS_CLEANUP:
        every: Duration = eff.value("deploygen.cleanup_every")
        words = (f"Django refuses the session {age} after {since}; clearsessions removes it "
                 f"{age} to {age + every} after it")
        end = IdleEnd(age, age + every, words)
    elif short == "cache":
        end = IdleEnd(age, age, f"the cache entry expires {age} after {since}")
    else:
        end = IdleEnd(age, age, f"the signed cookie is refused {age} after {since}")
    if eff.value("django.SESSION_EXPIRE_AT_BROWSER_CLOSE"):
        end = IdleEnd(Duration(0), end.latest, f"when the browser closes, or at the latest: {end.words}")
    return end


def explain_session(ctx: SiteContext) -> tuple[dict, list[str]]:
    eff = ctx.effective
    end = idle_session_end(ctx)
    data = {
        "store": ctx.loaded.site.session.store,
        "engine": eff.value("django.SESSION_ENGINE"),
        "lifetime": eff["django.SESSION_COOKIE_AGE"].shown,
        "refresh_each_request": eff.value("django.SESSION_SAVE_EVERY_REQUEST"),
        "idle_session_ends": idle_json(end),
    }
    lines = [f"session: {eff.value('django.SESSION_ENGINE')}, "
             f"{'sliding' if eff.value('django.SESSION_SAVE_EVERY_REQUEST') else 'absolute'} "
             f"SESSION_COOKIE_AGE {eff['django.SESSION_COOKIE_AGE'].shown}.",
             f"an idle session ends {end.span} after the last request: "
             f"{end.words}.",
             f"the project's settings end with: from {MODULE} import *"]
    return data, lines
