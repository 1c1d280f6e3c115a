"""Messages that lead to a fix: what a problem suggests is valid where it is suggested, and
values print as the site file wrote them.

Every message that suggests a value (`: write 2s or 1s`, `: write e.g. 30s, 5m, ...`,
`: did you mean 'Lax'?`) is fed back: each value suggested is put where the bad one was, and
the site file must then load.
"""

from __future__ import annotations

import copy
import json
import re

import pytest
import yaml
from test_rules_django import DJANGO, overlay
from test_rules_php import PHP

from deploygen.sitefile.load import load_site

GTHREAD = {"server": {"worker_class": "gthread", "threads": 4}}
FILES = {"session": {"store": "filesystem"}}
REDIS = {"session": {"store": "redis", "redis": {"timeout": "300s"}}}
ONDEMAND = {"server": {"pm": "ondemand"}}

# (base overrides, the key's path, a value refused there)
BAD = [
    # whole seconds: gunicorn, the budget, the pools' and sessions' integers
    ({}, ("timeouts", "gunicorn", "timeout"), "1.5s"),
    ({}, ("timeouts", "gunicorn", "timeout"), 1.5),
    ({}, ("timeouts", "gunicorn", "timeout"), "1500ms"),
    ({}, ("timeouts", "gunicorn", "timeout"), "1s200ms"),
    ({}, ("timeouts", "gunicorn", "timeout"), "0.4s"),
    ({}, ("timeouts", "gunicorn", "timeout"), "1.5m"),
    ({}, ("timeouts", "gunicorn", "timeout"), "2.5 seconds"),
    ({}, ("timeouts", "gunicorn", "timeout"), "abc"),
    ({}, ("timeouts", "gunicorn", "timeout"), True),
    ({}, ("timeouts", "gunicorn", "graceful_timeout"), "500ms"),
    ({}, ("timeouts", "gunicorn", "keepalive"), "2.5s"),
    ({}, ("timeouts", "request"), "1.5s"),
    ({}, ("timeouts", "request"), "30m5h"),
    ({}, ("timeouts", "request"), "1h 30m"),
    ({}, ("timeouts", "request"), "5 minutes"),
    ({}, ("timeouts", "request"), "400d"),
    ({}, ("timeouts", "request"), "-5s"),
    ({}, ("timeouts", "request"), "9" * 50),
    ({}, ("database", "pool", "recycle"), "0.5s"),
    ({}, ("session", "lifetime"), "12.5h"),
    ({}, ("session", "lifetime"), "2y"),
    ({}, ("session", "idle_timeout"), "90.5s"),
    (REDIS, ("session", "redis", "health_check_interval"), "2.5s"),
    ({"session": {"permanent": "remember-me"}}, ("session", "remember_cookie_duration"), "1500ms"),
    # milliseconds are fine: nginx, systemd, PostgreSQL, the pool's wait
    ({}, ("timeouts", "nginx", "proxy_read_timeout"), "1.5s"),
    ({}, ("timeouts", "nginx", "proxy_read_timeout"), 1.5),
    ({}, ("timeouts", "nginx", "proxy_read_timeout"), "0.0001s"),
    ({}, ("timeouts", "nginx", "proxy_read_timeout"), "abc"),
    ({}, ("timeouts", "nginx", "proxy_read_timeout"), "2 weeks"),
    ({}, ("timeouts", "systemd", "TimeoutStopSec"), "1.5m"),
    ({}, ("timeouts", "postgres", "statement_timeout"), "30d"),
    ({}, ("timeouts", "postgres", "statement_timeout"), "1.5s"),
    ({}, ("database", "pool", "timeout"), 0.5),
    # the cleanup timer's calendar steps
    (FILES, ("session", "cleanup", "every"), "7m"),
    (FILES, ("session", "cleanup", "every"), "90s"),
    (FILES, ("session", "cleanup", "every"), "2d"),
    (FILES, ("session", "cleanup", "every"), "1.5m"),
    (FILES, ("session", "cleanup", "every"), "abc"),
    (FILES, ("session", "cleanup", "every"), "400d"),
    (FILES, ("session", "cleanup", "every"), str(10**15)),
    # a choice written in the wrong case, or nearly
    ({}, ("session", "cookie", "samesite"), "lax"),
    ({}, ("session", "cookie", "samesite"), "strict"),
    ({}, ("session", "cookie", "samesite"), "none"),
    ({}, ("session", "cookie", "samesite"), "LAX"),
    ({}, ("server", "worker_class"), "Sync"),
    ({}, ("server", "worker_class"), "gthreads"),
    ({}, ("session", "store"), "Redis"),
    ({}, ("app", "framework"), "Flask"),
    # other kinds' whole seconds
    (DJANGO, ("django", "CONN_MAX_AGE"), "0.5s"),
    (DJANGO, ("django", "SECURE_HSTS_SECONDS"), "1.5d"),
    (DJANGO, ("session", "idle_timeout"), "30.5m"),
    (DJANGO, ("session", "cookie", "samesite"), "strict"),
    (PHP, ("timeouts", "php-fpm", "request_terminate_timeout"), "1500ms"),
    (PHP, ("timeouts", "php-fpm", "process_control_timeout"), "0.5s"),
    (PHP, ("timeouts", "php", "max_execution_time"), "2.5s"),
    (PHP, ("timeouts", "request"), "1.5s"),
    (PHP, ("php", "session.cookie_lifetime"), 1.5),
    (overlay(PHP, ONDEMAND), ("server", "process_idle_timeout"), "0.5s"),
    (PHP, ("session", "cookie", "samesite"), "none"),
]


def _put(data: dict, path: tuple, value) -> dict:
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return data


def _load(make_site, base: dict, path: tuple, value):
    # A deep copy: DJANGO and PHP are other modules' too.
    site, problems = load_site(str(make_site(_put(copy.deepcopy(base), path, value))))
    return site, [str(p) for p in problems]


def _suggested(message: str) -> list[str]:
    """The values a message suggests: `write A`, `write A or B`, `write e.g. A, B or C`, `did you mean 'A'?`."""
    found = re.search(r": did you mean '([^']*)'\?$", message)
    if found:
        return [found[1]]
    found = re.search(r": write (?:e\.g\. )?([^:]+)$", message)
    return re.split(r", | or ", found[1]) if found else []


@pytest.mark.parametrize(("base", "path", "value"), BAD, ids=lambda v: repr(v) if not isinstance(v, dict) else "")
def test_each_suggested_value_loads_where_it_is_suggested(make_site, base, path, value):
    site, problems = _load(make_site, base, path, value)
    key = ".".join(path)
    assert site is None and len(problems) == 1 and f": {key}: " in problems[0], problems
    suggested = _suggested(problems[0])
    assert suggested, f"no value suggested: {problems[0]}"
    for written in suggested:
        fixed, problems = _load(make_site, base, path, yaml.safe_load(written))
        assert problems == [] and fixed is not None, (written, problems)


@pytest.mark.parametrize(("value", "message"), [
    ("1.5s", "'1.5s': gunicorn.timeout takes whole seconds (gunicorn reads an integer): write 2s or 1s"),
    ("1500ms", "'1500ms': gunicorn.timeout takes whole seconds (gunicorn reads an integer): write 2s or 1s"),
    ("1200ms", "'1200ms': gunicorn.timeout takes whole seconds (gunicorn reads an integer): write 1s or 2s"),
    ("0.4s", "'0.4s': gunicorn.timeout takes whole seconds (gunicorn reads an integer): write 1s"),
    ("1.5m", "'1.5m': fractions are not accepted (nginx and gunicorn reject them): write 1m30s"),
    ("abc", "'abc' is not a duration: write e.g. 30s, 5m, 12h, 1d or 1h30m"),
])
def test_whole_seconds_name_the_layer_and_round(make_site, value, message):
    _, [problem] = _load(make_site, {}, ("timeouts", "gunicorn", "timeout"), value)
    assert problem.endswith(f": timeouts.gunicorn.timeout: {message}"), problem


@pytest.mark.parametrize(("path", "value", "message"), [
    (("timeouts", "nginx", "proxy_read_timeout"), "1.5s",
     "'1.5s': fractions are not accepted (nginx and gunicorn reject them): write 1500ms"),
    (("timeouts", "nginx", "proxy_read_timeout"), "abc",
     "'abc' is not a duration: write e.g. 500ms, 30s, 5m, 12h, 1d or 1h30m"),
    (("timeouts", "request"), "30m5h", "'30m5h': units go once each, largest first: write 5h30m"),
    (("timeouts", "postgres", "statement_timeout"), "30d",
     "'30d' is above PostgreSQL's limit of 2147483647ms (about 24.8 days): write 24d"),
    (("session", "cookie", "samesite"), "lax",
     "Input should be 'Lax', 'Strict' or 'None' (got 'lax'): did you mean 'Lax'?"),
    (("session", "cookie", "samesite"), "none",
     "Input should be 'Lax', 'Strict' or 'None' (got 'none'): did you mean 'None'?"),
])
def test_messages_suggest_what_the_field_takes(make_site, path, value, message):
    _, [problem] = _load(make_site, {}, path, value)
    assert problem.endswith(f": {'.'.join(path)}: {message}"), problem


def test_php_fpm_whole_seconds_say_why(make_site):
    _, [problem] = _load(make_site, PHP, ("timeouts", "php-fpm", "request_terminate_timeout"), "1500ms")
    assert problem.endswith(": timeouts.php-fpm.request_terminate_timeout: '1500ms': php-fpm.request_terminate_timeout "
                            "takes whole seconds (php-fpm misreads anything else: 1.5s as 1s, 100ms as 100s): "
                            "write 2s or 1s"), problem


@pytest.mark.parametrize(("text", "written", "suggested"), [
    ("workers: 3", "workers: 0x3", ["3"]),
    ("workers: 3", "workers: 010", ["10", "8"]),
    ("request: 60s", "request: 1:30", ["90"]),
    ("request: 60s", "request: 1_000", ["1000"]),
])
def test_yaml_numbers_suggest_the_decimal(make_site, text, written, suggested):
    site = make_site()
    source = site.read_text()
    assert text in source
    site.write_text(source.replace(text, written))
    _, problems = load_site(str(site))
    [problem] = [str(p) for p in problems]
    assert "is not a plain decimal number" in problem and _suggested(problem) == suggested, problem
    for value in suggested:
        site.write_text(source.replace(text, written.replace(written.split(": ")[1], value)))
        assert load_site(str(site))[1] == [], value


def test_unknown_key_suggestion_loads(make_site):
    site = make_site({"timeouts": {"nginx": {"proxy_read_timout": "120s"}}})
    _, [problem] = load_site(str(site))
    [key] = _suggested(str(problem))
    site.write_text(site.read_text().replace("proxy_read_timout", key))
    assert load_site(str(site))[1] == []


# -- durations print as written ------------------------------------------------------------------

def _json(cli, *args):
    result = cli(*args)
    assert result.exit_code in (0, 1), result.stderr
    return json.loads(result.stdout)


def test_a_written_lifetime_prints_as_written_in_findings_and_explain(make_site, cli):
    site = make_site({"session": {"lifetime": "12h", "permanent": "remember-me"}})
    [f] = [f for f in _json(cli, "validate", "--format", "json", site) if f["code"] == "DG503"]
    assert f["detail"] == "flask.PERMANENT_SESSION_LIFETIME=12h with session.permanent=remember-me"
    assert f["settings"] == {"flask.PERMANENT_SESSION_LIFETIME": "12h"}
    text = cli("validate", site).stdout
    assert "[flask.PERMANENT_SESSION_LIFETIME=12h with" in text and "43200" not in text

    [report] = _json(cli, "explain", "--format", "json", site)
    rows = {r["setting"]: r for r in report["settings"]}
    assert rows["flask.PERMANENT_SESSION_LIFETIME"]["value"] == "12h"
    assert rows["flask.PERMANENT_SESSION_LIFETIME"]["source"] == "written"
    # derived from it: the natural form from an hour up
    assert rows["flask.REMEMBER_COOKIE_DURATION"]["value"] == "12h"
    assert report["session"]["lifetime"] == "12h"
    explained = cli("explain", site).stdout
    [row] = [line for line in explained.splitlines() if line.startswith("flask.PERMANENT_SESSION_LIFETIME ")]
    assert row.split()[1] == "12h", row


def test_written_text_wins_and_derived_values_keep_seconds_below_an_hour(make_site, cli):
    site = make_site({"timeouts": {"request": 300, "nginx": {"proxy_read_timeout": "1m"}},
                      "session": {"lifetime": "90m"}})
    [report] = _json(cli, "explain", "--format", "json", site)
    rows = {r["setting"]: r["value"] for r in report["settings"]}
    assert report["request"] == "300s"  # a bare integer is seconds
    assert rows["gunicorn.timeout"] == "300s"  # derived, below an hour: seconds, as the layers print them
    assert rows["nginx.proxy_read_timeout"] == "1m"  # as written
    assert rows["flask.PERMANENT_SESSION_LIFETIME"] == "90m"  # as written, not 1h30m
    assert rows["sqlalchemy.pool_recycle"] == "1800s"
    [f] = [f for f in _json(cli, "validate", "--format", "json", site) if f["code"] == "DG101"]
    assert f["detail"] == "nginx.proxy_read_timeout=1m < gunicorn.timeout=300s"
    # `settings` is the effective value in its stable form: seconds below an hour
    assert f["settings"] == {"nginx.proxy_read_timeout": "60s", "gunicorn.timeout": "300s"}
