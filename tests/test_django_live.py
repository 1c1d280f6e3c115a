"""The Django kind live: a real project on real PostgreSQL, behind gunicorn's workers, as rendered.

The module starts a throwaway PostgreSQL 15 cluster (test_real_tools' `postgres`
fixture: 127.0.0.1, a free port, a temporary folder, stopped whatever happens),
creates the site's role and database, applies the rendered postgres.sql as the
superuser and runs `manage.py migrate` in the rendered unit's environment. Each
test then starts gunicorn as the unit's ExecStart says (the rendered config,
bind rewritten to a free 127.0.0.1 port, control socket into the test's folder),
with 3 workers, in its own process group, stopped and checked gone in teardown
(test_sessions_live's `services`).

The site has `session: {store: db, idle_timeout: 4s}`: Django's db engine with
SESSION_COOKIE_AGE 4 and SESSION_SAVE_EVERY_REQUEST, the 30-minute idle timeout
of sites/analytics.yaml scaled down. The client ignores the cookie's Max-Age, so
expiry is what the server enforces (a stale cookie is sent and must be refused).

The rendered settings give the database no port (Django's PORT stays empty), so
libpq's PGPORT, which the secrets file (EnvironmentFile=) can hold, points at the
cluster's port.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import test_real_tools
import test_sessions_live
from click.testing import CliRunner
from django_project import (
    SITE_NAME,
    Rendered,
    SiteClient,
    explain,
    make_project,
    render,
    rewrite_gunicorn_config,
    run,
    site_overrides,
    start_gunicorn,
    strong_secret_key,
    write_site,
)
from test_real_tools import Cluster, effective, pg_ms
from test_sessions_live import Reply, free_port, sleep_until, spread, stop_all

from deploygen.cli import main

# Fixtures shared with the Flask tests: a PostgreSQL cluster for the module, and
# servers in their own process groups, stopped and checked gone after each test.
postgres = test_real_tools.postgres
services = test_sessions_live.services

WORKERS = 3
IDLE = 4.0  # session.idle_timeout, whole seconds
ROLE, DATABASE = "shop_live", "shop_live_db"
COOKIE = "sessionid"


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@dataclass
class Deployed:
    """The rendered site, its project and its migrated database."""

    rendered: Rendered
    project: Path
    site_file: Path
    cluster: Cluster
    secrets_env: dict[str, str]  # what the secrets file would hold

    def sql(self, statement: str) -> list[list[str]]:
        """Rows of a query run by the superuser in the site's database."""
        proc = self.cluster.query(statement, database=DATABASE)
        assert proc.returncode == 0, explain(proc)
        return [line.split("|") for line in proc.stdout.splitlines() if line]


@pytest.fixture(scope="module")
def deployed(postgres, tmp_path_factory) -> Deployed:
    tmp = tmp_path_factory.mktemp("django-live")
    project = make_project(tmp)
    venv = tmp / "venv"
    site_file = write_site(tmp / f"{SITE_NAME}.yaml", site_overrides(
        project, venv, session={"idle_timeout": f"{IDLE:.0f}s", "store": "db"},
        server={"workers": WORKERS}, database={"name": DATABASE, "role": ROLE, "host": "127.0.0.1"}))
    rendered = render(_cli, site_file, tmp / "out", venv)

    proc = postgres.query(f'CREATE ROLE "{ROLE}" LOGIN', f'CREATE DATABASE "{DATABASE}" OWNER "{ROLE}"')
    assert proc.returncode == 0, explain(proc)
    proc = postgres.query(database=DATABASE, file=rendered.postgres_sql)
    assert proc.returncode == 0, explain(proc)

    secrets_env = {"DJANGO_SECRET_KEY": strong_secret_key(),
                   "DATABASE_PASSWORD": "unused: the cluster trusts 127.0.0.1",
                   "PGPORT": str(postgres.port)}
    _, cwd, env = rendered.process(f"{SITE_NAME}.service", secrets_env)
    migrate = run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=cwd, env=env)
    assert migrate.returncode == 0, explain(migrate)
    return Deployed(rendered, project, site_file, postgres, secrets_env)


@dataclass
class Stack:
    port: int
    gunicorn: object
    workers: set[int]


@pytest.fixture
def stack(deployed, services, tmp_path) -> Stack:
    port = free_port()
    config = rewrite_gunicorn_config(deployed.rendered.gunicorn_config, tmp_path / "gunicorn.conf.py",
                                     bind=f"127.0.0.1:{port}", control_socket=str(tmp_path / "gunicorn.ctl"))
    gunicorn, workers = start_gunicorn(services, deployed.rendered, config, port, deployed.secrets_env,
                                       tmp_path / "gunicorn.log", workers=WORKERS)
    return Stack(port, gunicorn, {w.pid for w in workers})


def login(client: SiteClient, stack: Stack, deployed: Deployed) -> Reply:
    """POST /login; the session is a row of django_session, valid for IDLE seconds."""
    reply = client("POST", "/login")
    assert reply.status == 200 and reply.user == "alice", (reply, stack.gunicorn.output())
    key = client.jar.get(COOKIE, "")
    assert re.fullmatch(r"[a-z0-9]{32}", key), (reply.set_cookie, client.jar)
    rows = deployed.sql(f"SELECT extract(epoch FROM expire_date - now()) FROM django_session "
                        f"WHERE session_key = '{key}'")
    assert len(rows) == 1 and IDLE - 1.5 < float(rows[0][0]) <= IDLE, rows
    return reply


def test_django_connects_as_the_role_with_the_rendered_timeouts(deployed):
    _, cwd, env = deployed.rendered.process(f"{SITE_NAME}.service", deployed.secrets_env)
    code = ("from django.db import connection\n"
            "with connection.cursor() as c:\n"
            "    c.execute('SELECT current_user, current_database(), current_setting(%s), current_setting(%s)',"
            " ['statement_timeout', 'lock_timeout'])\n"
            "    print('|'.join(c.fetchone()))\n")
    proc = run([sys.executable, "manage.py", "shell", "--no-imports", "-c", code], cwd=cwd, env=env)
    assert proc.returncode == 0, explain(proc)
    user, database, statement, lock = proc.stdout.strip().splitlines()[-1].split("|")
    eff = effective(deployed.site_file)
    assert (user, database) == (ROLE, DATABASE)
    assert pg_ms(statement) == eff.value("postgres.statement_timeout").ms, statement
    assert pg_ms(lock) == eff.value("postgres.lock_timeout").ms, lock
    assert pg_ms(statement) > 0 and pg_ms(lock) > 0


def test_login_holds_on_every_worker(deployed, stack, services):
    client = SiteClient(stack.port)
    logged_in = login(client, stack, deployed)

    replies = spread(client, logged_in.pid)
    lost = [(r.pid, r.user) for r in replies if r.user != "alice"]
    assert not lost, f"{len(lost)} of {len(replies)} requests lost the login: {lost}\n{stack.gunicorn.output()}"
    pids = {r.pid for r in replies} | {logged_in.pid}
    assert pids <= stack.workers, (pids, stack.workers)
    assert len(pids) >= 2, f"only pid {pids} answered {len(replies)} requests"

    stop_all(services)
    assert stack.gunicorn.proc.returncode == 0 and not stack.gunicorn.killed, stack.gunicorn.output()


def test_idle_timeout_slides_for_the_active_and_logs_out_the_idle(deployed, stack):
    active, idle = SiteClient(stack.port), SiteClient(stack.port)
    active_login = login(active, stack, deployed)
    login(idle, stack, deployed)
    idle_first = idle("GET", "/whoami")
    assert idle_first.user == "alice"
    idle_key = idle.jar[COOKIE]

    polls: list[Reply] = []
    idle_last = None
    idle_at = idle_first.received + IDLE + 0.5
    for k in range(1, 6):  # one request a second, for 5 s
        target = active_login.received + k
        if idle_last is None and idle_at <= target:
            sleep_until(idle_at)
            idle_last = idle("GET", "/whoami")
        sleep_until(target)
        polls.append(active("GET", "/whoami"))
    timeline = [(round(p.sent - active_login.received, 2), p.pid, p.user) for p in polls]

    assert [p.user for p in polls] == ["alice"] * 5, (timeline, stack.gunicorn.output())
    # Not vacuous: without the sliding expiry, the last request would be a second past it...
    assert polls[-1].sent - active_login.received >= IDLE + 1, timeline
    # ...and each request came well within IDLE of the one before.
    gaps = [b.received - a.sent for a, b in zip([active_login, *polls], polls, strict=False)]
    assert max(gaps) < IDLE - 1.5, gaps
    # The server moved the row's expiry with the last request.
    (left,) = deployed.sql(f"SELECT extract(epoch FROM expire_date - now()) FROM django_session "
                           f"WHERE session_key = '{active.jar[COOKIE]}'")
    assert IDLE - 1.5 < float(left[0]) <= IDLE, left

    assert idle_last is not None and idle_last.sent - idle_first.received >= IDLE + 0.5
    assert idle_last.status == 200 and idle_last.user is None, \
        f"idle for {IDLE + 0.5} s past a {IDLE} s idle timeout and still logged in\n{stack.gunicorn.output()}"
    # Django deleted the refused cookie; its row stays until clearsessions.
    assert COOKIE not in idle.jar, idle_last.set_cookie
    assert deployed.sql(f"SELECT expire_date < now() FROM django_session WHERE session_key = '{idle_key}'") == [["t"]]


def test_clearsessions_as_the_timer_runs_it_removes_exactly_the_expired_rows(deployed, stack):
    rendered = deployed.rendered
    timer = f"/etc/systemd/system/{SITE_NAME}-session-cleanup.timer"
    assert rendered.kinds.get(timer) == "systemd-timer", sorted(rendered.kinds)
    # A timer without Unit= starts the service of its own name.
    assert "OnCalendar=" in rendered.target(timer).read_text()
    assert "Unit=" not in rendered.target(timer).read_text()
    command, cwd, env = rendered.process(f"{SITE_NAME}-session-cleanup.service", deployed.secrets_env)
    assert command == [sys.executable, str(deployed.project / "manage.py"), "clearsessions"], command
    assert cwd == deployed.project

    doomed, keeper = SiteClient(stack.port), SiteClient(stack.port)
    doomed_login = login(doomed, stack, deployed)
    login(keeper, stack, deployed)
    doomed_key, keeper_key = doomed.jar[COOKIE], keeper.jar[COOKIE]
    for k in (1.5, 3.0, IDLE + 0.3):  # the keeper stays active while the doomed session expires
        sleep_until(doomed_login.received + k)
        assert keeper("GET", "/whoami").user == "alice"

    rows = {key: (expired == "t", alive == "t") for key, expired, alive in deployed.sql(
        "SELECT session_key, expire_date < now(), expire_date > now() + interval '2 seconds' FROM django_session")}
    expired = {key for key, (gone, _) in rows.items() if gone}
    alive = {key for key, (_, later) in rows.items() if later}
    assert expired | alive == set(rows), f"a row expires while the test runs: {rows}"
    assert doomed_key in expired and keeper_key in alive, rows

    proc = run(command, cwd=cwd, env=env)
    assert proc.returncode == 0, explain(proc)

    after = {key for (key,) in deployed.sql("SELECT session_key FROM django_session")}
    assert after == alive, {"before": rows, "after": after}
    assert len(rows) - len(after) == len(expired) >= 1
    # The kept session still logs its user in; the removed one is gone for good.
    assert keeper("GET", "/whoami").user == "alice"
    assert doomed("GET", "/whoami").user is None
