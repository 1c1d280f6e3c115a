"""PHP's part of `explain`: when an idle user's session really ends.

The files handler never checks a session's age when it reads it: an expired file is
a live session until something deletes it, so the cleaner's schedule bounds the end
(seed 002's lesson). phpredis's keys expire in Redis on the dot.
"""

from __future__ import annotations

from deploygen.report.explain import IdleEnd, idle_json
from deploygen.rules.base import SiteContext
from deploygen.sitefile.duration import Duration


def idle_session_end(ctx: SiteContext) -> IdleEnd:
    eff = ctx.effective
    age: Duration = eff.value("php.session.gc_maxlifetime")
    if eff.value("php.session.save_handler") == "redis":
        end = IdleEnd(age, age, f"Redis expires the key {age} after the last request (phpredis sends EXPIRE "
                                "on every read)")
    elif "deploygen.cleanup_every" in eff:
        every: Duration = eff.value("deploygen.cleanup_every")
        end = IdleEnd(age, age + every, f"the session file is valid until the timer deletes it, every "
                                        f"{every}, once it is {age} old")
    elif eff.value("php.session.gc_probability"):
        end = IdleEnd(age, age, f"PHP's own GC deletes it once it is {age} old, on one session_start() in "
                                f"{eff.value('php.session.gc_divisor') // eff.value('php.session.gc_probability')} "
                                "(no request at all: never)")
    else:
        end = IdleEnd(age, age, "nothing deletes the file: it stays valid (DG809)")
    cookie: Duration = eff.value("php.session.cookie_lifetime")
    if cookie.ms:
        end = IdleEnd(min(end.earliest, cookie), end.latest,
                      f"{end.words}; the cookie ends {cookie} after login however active the user is")
    return end


def explain_session(ctx: SiteContext) -> tuple[dict, list[str]]:
    eff = ctx.effective
    end = idle_session_end(ctx)
    data = {
        "store": eff.value("php.session.save_handler"),
        "save_path": eff.value("php.session.save_path"),
        "lifetime": eff["php.session.gc_maxlifetime"].shown,
        "idle_session_ends": idle_json(end),
    }
    lines = [f"session: {eff.value('php.session.save_handler')} in {eff.value('php.session.save_path')}, "
             f"session.gc_maxlifetime {eff['php.session.gc_maxlifetime'].shown}, sliding with every request.",
             f"an idle session ends {end.span} after the last request: "
             f"{end.words}.",
             "the app connects with getenv('DATABASE_DSN'), getenv('DATABASE_USER'), getenv('DATABASE_PASSWORD')."
             if ctx.loaded.site.database is not None else ""]
    return data, [line for line in lines if line]
