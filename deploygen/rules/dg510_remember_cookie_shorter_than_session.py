from __future__ import annotations

import operator

from deploygen.rules.base import OrderRule


class RememberCookieShorterThanSession(OrderRule):
    """The "remember me" cookie expires before the session would have ended.

    ## What it checks
    Flask-Login's `REMEMBER_COOKIE_DURATION` (`session.remember_cookie_duration`)
    must not be shorter than `session.lifetime`.

    ## Why it is bad
    Users who tick "remember me" expect to stay logged in at least as long as
    everyone else. A remember cookie that expires first adds nothing: after
    the browser closes it is already gone, and the login it should restore is
    lost.

    ## Example
    ```yaml
    session:
      lifetime: 12h
      permanent: remember-me
      remember_cookie_duration: 1h
    ```

    ## Fix
    Remove `session.remember_cookie_duration` (derived as the session lifetime)
    or raise it.
    """

    code = "DG510"
    name = "remember-cookie-shorter-than-session"
    severity = "warning"
    kinds = frozenset({"flask"})  # Flask-Login's remember cookie
    summary = "remember-me cookie expires before the session lifetime"
    at = "flask.REMEMBER_COOKIE_DURATION"
    other = "flask.PERMANENT_SESSION_LIFETIME"
    fires = operator.lt
    message = "the remember-me cookie expires before the session would: ticking the box changes nothing"
