"""`deploygen drill` on the real stack: the shipped sites hold, the outage shows itself, nothing is left."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import pytest
from conftest import REPO, SITES, merge, require_binary

BEFORE_FIX = REPO / "tests" / "fixtures" / "dokon-before-fix.yaml"


@pytest.fixture
def tmp_path():
    """A TMPDIR for the drill that the postgres user can enter (pytest's own is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="deploygen-drill-test-", dir="/tmp"))
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def _programs():
    for name in ("nginx",):
        require_binary(name)
    for name in ("initdb", "postgres", "psql"):
        require_binary(name, f"/usr/lib/postgresql/15/bin/{name}")


def _ours(folder: Path) -> list[str]:
    """Command lines of live processes that mention `folder` or work in it (the drill's temp dir is
    inside it): the working folder also finds the servers' children that renamed themselves,
    nginx's workers and PostgreSQL's backends."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = next(line for line in (proc / "status").read_text().splitlines() if line.startswith("State:"))
            cwd = os.readlink(proc / "cwd")
        except (OSError, StopIteration):
            continue
        if (str(folder) in cmdline or cwd.startswith(f"{folder}/")) and " Z " not in state + " ":
            found.append(cmdline)
    return found


def _drill(site: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "deploygen", "drill", str(site), "--format", "json", *args],
                          capture_output=True, text=True, env=env, timeout=180, check=False)


@pytest.mark.parametrize("site", ["dokon", "sergeli0606"])
def test_shipped_site_holds_its_chain(site, tmp_path):
    result = _drill(SITES / f"{site}.yaml", tmp_path)
    outcomes = json.loads(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {o["verdict"] for o in outcomes} == {"pass"}
    by_name = {o["scenario"]: o for o in outcomes}
    assert by_name["query longer than statement_timeout"]["observed_layer"] == "postgres"
    assert by_name["query longer than statement_timeout"]["status"] == 503
    assert by_name["lock wait longer than lock_timeout"]["observed_layer"] == "postgres"
    worker = by_name["Python work longer than the worker timeout"]
    if site == "dokon":  # sync workers: gunicorn's timeout bounds the request
        assert (worker["observed_layer"], worker["status"]) == ("gunicorn", 500)
        assert worker["note"] == "gunicorn logged WORKER TIMEOUT"
    else:  # gthread: nothing but nginx does
        assert (worker["observed_layer"], worker["status"]) == ("nginx", 504)
    assert by_name["session set by one worker, read by another"]["note"].endswith("all saw one session")
    assert "2 of" in by_name["session set by one worker, read by another"]["note"] or site == "dokon"
    assert _ours(tmp_path) == [] and list(tmp_path.iterdir()) == []


def test_the_outage_before_its_fix_is_observed(tmp_path):
    """nginx's 60 s under gunicorn's 120 s: the drill sees the 504 while the worker runs, as DG101 says.
    Every prediction is right, and the chain does not hold: exit 1, each lost request named."""
    result = _drill(BEFORE_FIX, tmp_path)
    assert "DG101 error" in result.stderr
    assert result.returncode == 1, result.stdout + result.stderr
    assert {o["verdict"] for o in json.loads(result.stdout)} == {"pass"}
    said = "deploygen: dokon: the chain does not hold:"
    assert [line for line in result.stderr.splitlines() if line.startswith("deploygen: dokon:")] == [
        f"{said} query longer than statement_timeout: stopped by nginx with 504 instead of by postgres",
        f"{said} Python work longer than the worker timeout: stopped by nginx with 504 instead of by gunicorn",
    ]
    outcomes = {o["scenario"]: o for o in json.loads(result.stdout)}
    assert (outcomes["query longer than statement_timeout"]["chain_layer"],
            outcomes["query longer than statement_timeout"]["chain_holds"]) == ("postgres", False)
    worker = outcomes["Python work longer than the worker timeout"]
    assert (worker["expected_layer"], worker["observed_layer"], worker["status"]) == ("nginx", "nginx", 504)
    assert worker["note"] == "the worker was still running when nginx answered"
    query = outcomes["query longer than statement_timeout"]
    assert (query["observed_layer"], query["status"]) == ("nginx", 504)
    assert 1.9 < worker["seconds"] < 2.5  # nginx's 60 s scaled by 1/30
    assert _ours(tmp_path) == []


def test_a_scale_that_would_reorder_the_layers_is_refused(tmp_path, make_site):
    """1/600 makes gunicorn's 300 s 0.5 s, rounded up to 1 s: past nginx's 0.52 s. Refused, nothing started."""
    result = _drill(make_site({"timeouts": {"request": "300s"}}), tmp_path, "--scale", "1/600")
    assert result.returncode == 2 and result.stdout == ""
    assert "--scale 1/600 is too small" in result.stderr and "Traceback" not in result.stderr
    assert _ours(tmp_path) == []


def test_an_observation_that_differs_fails_the_drill():
    from deploygen.drill.runner import DrillReport, format_table
    from deploygen.drill.scenarios import Outcome

    held = Outcome("slow work", "gunicorn", "gunicorn", 500, 4.0)
    broken = Outcome("slow work", "gunicorn", "nginx", 504, 4.1, "the worker was still running when nginx answered")
    assert (held.verdict, broken.verdict) == ("pass", "fail")
    report = DrillReport("shop", Fraction(1, 75), [held, broken])
    assert not report.passed
    assert format_table(report).splitlines()[-3:] == [
        "prediction: 1 of 2 scenarios as predicted; not as predicted:",
        "  slow work: expected gunicorn, observed nginx",
        "chain: holds",
    ]


def test_interrupt_stops_every_server(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "deploygen", "drill", str(SITES / "dokon.yaml")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while not any("nginx" in c for c in _ours(tmp_path)):
            assert time.monotonic() < deadline and proc.poll() is None, "the stack never came up"
            time.sleep(0.1)
        assert any("gunicorn" in c for c in _ours(tmp_path))
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    assert "interrupted" in stderr
    assert _ours(tmp_path) == [] and list(tmp_path.iterdir()) == []


def test_missing_program_is_named_with_how_to_install(tmp_path, make_site, monkeypatch, cli):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    result = cli("drill", make_site())
    assert result.exit_code == 2
    assert "deploygen drill needs nginx: install it with: apt-get install -y nginx postgresql" in result.stderr


# -- Django (and the other kinds): the probe follows the site's kind --------------------------

SCENARIOS = [
    "request within the budget", "query longer than statement_timeout",
    "Python work longer than the worker timeout", "lock wait longer than lock_timeout",
    "transaction idle past idle_in_transaction_session_timeout", "session set by one worker, read by another",
    "keepalive reuse under a short burst", "graceful reload (HUP)", "graceful stop (TERM)",
]
FIELDS = {"scenario", "expected_layer", "observed_layer", "status", "seconds", "verdict", "note", "chain_layer",
          "chain_holds"}


def _require_module(name: str) -> None:
    """A Python package the probe needs: a skip on a laptop, a failure under CI=true (as binaries)."""
    import importlib.util

    from conftest import UNDER_CI

    if importlib.util.find_spec(name) is None:
        message = f"{name} is not installed (pip install -e '.[test]')"
        if UNDER_CI:
            pytest.fail(message)
        pytest.skip(message)


DJANGO_SITE = {
    "app": {"framework": "django", "wsgi": "shop.wsgi:application"},
    "session": {"lifetime": None, "idle_timeout": "30m"},
}


def test_django_site_holds_its_chain(tmp_path):
    """analytics (Django, sessions in PostgreSQL, sync workers): the Django probe runs under the rendered
    deploygen_settings.py, and every layer gives up where the Flask probe's does."""
    _require_module("django")
    result = _drill(SITES / "analytics.yaml", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    outcomes = json.loads(result.stdout)
    assert [o["scenario"] for o in outcomes] == SCENARIOS
    assert all(set(o) == FIELDS for o in outcomes)
    assert {o["verdict"] for o in outcomes} == {"pass"}
    by_name = {o["scenario"]: o for o in outcomes}
    assert (by_name["request within the budget"]["observed_layer"], by_name["request within the budget"]["status"]) \
        == ("app", 200)
    query = by_name["query longer than statement_timeout"]
    assert (query["observed_layer"], query["status"]) == ("postgres", 503)
    assert by_name["lock wait longer than lock_timeout"]["observed_layer"] == "postgres"
    # idle_in_transaction_session_timeout = min(60s, the budget) = gunicorn's timeout: the worker is killed
    # while the probe sleeps in its transaction, before it could see PostgreSQL's 25P03.
    idle = by_name["transaction idle past idle_in_transaction_session_timeout"]
    assert (idle["expected_layer"], idle["observed_layer"], idle["status"]) == ("gunicorn", "gunicorn", 500)
    worker = by_name["Python work longer than the worker timeout"]
    assert (worker["observed_layer"], worker["status"], worker["note"]) == ("gunicorn", 500,
                                                                            "gunicorn logged WORKER TIMEOUT")
    # Django's db engine: the session one worker wrote is read by the others from PostgreSQL.
    session = by_name["session set by one worker, read by another"]
    assert session["note"].endswith("all saw one session") and not session["note"].startswith("1 of")
    assert _ours(tmp_path) == [] and list(tmp_path.iterdir()) == []


def test_django_site_with_pool_threads_and_a_redis_cache(tmp_path, make_site):
    """gthread workers, Django's psycopg pool, cached_db sessions on a Redis the drill starts, a 300 s budget
    and a database.port: the worker timeout bounds nothing (nginx answers), PostgreSQL cancels the query, the
    lock wait and the idle transaction (25P03, through the pool's connection), every worker sees one session."""
    _require_module("django")
    _require_module("psycopg_pool")
    _require_module("redis")
    require_binary("redis-server")
    site = make_site(merge(DJANGO_SITE, {
        "server": {"workers": 2, "worker_class": "gthread", "threads": 2}, "timeouts": {"request": "300s"},
        "database": {"port": 6432},  # the server's: the drill's copy names its own cluster's instead
        "session": {"store": "cached_db"}, "django": {"pool": True}}))
    result = _drill(site, tmp_path, "--format", "text")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "drill of shop: every duration scaled by 1/75 (0.01333x); layers named by who gave up first"
    assert lines[-2:] == ["prediction: 9 of 9 scenarios as predicted", "chain: holds"]
    rows = {line[:59].rstrip(): line[59:].split() for line in lines[3:-3]}
    assert list(rows) == SCENARIOS
    assert rows["Python work longer than the worker timeout"][:3] == ["nginx", "nginx", "504"]
    for scenario in ("query longer than statement_timeout", "lock wait longer than lock_timeout",
                     "transaction idle past idle_in_transaction_session_timeout"):
        assert rows[scenario][:3] == ["postgres", "postgres", "503"], scenario
    assert "2 of 2 workers answered, all saw one session" in lines[3 + SCENARIOS.index(
        "session set by one worker, read by another")]
    assert _ours(tmp_path) == [] and [p.name for p in tmp_path.iterdir()] == ["shop.yaml"]


def test_django_sessions_in_each_workers_memory_are_lost_as_dg511_says(tmp_path, make_site):
    """The cache engine on LocMemCache with 3 workers: DG511's error, and the drill sees it happen (exit 1)."""
    _require_module("django")
    site = make_site(merge(DJANGO_SITE, {"session": {"store": "cache"}, "django": {"cache": "locmem"}}))
    result = _drill(site, tmp_path)
    assert "DG511 error" in result.stderr
    assert result.returncode == 1, result.stdout + result.stderr
    outcomes = {o["scenario"]: o for o in json.loads(result.stdout)}
    session = outcomes.pop("session set by one worker, read by another")
    assert session["verdict"] == "fail" and session["observed_layer"] != "app", session
    assert {o["verdict"] for o in outcomes.values()} == {"pass"}
    assert _ours(tmp_path) == [] and [p.name for p in tmp_path.iterdir()] == ["shop.yaml"]


def test_wsgi_site_is_drilled_with_the_flask_probe(tmp_path, make_site):
    """A plain WSGI site has no framework settings: the Flask probe, a WSGI app like any, stands in for it."""
    site = make_site({"app": {"framework": "wsgi"}, "session": None})
    result = _drill(site, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    outcomes = json.loads(result.stdout)
    assert [o["scenario"] for o in outcomes] == SCENARIOS and {o["verdict"] for o in outcomes} == {"pass"}
    assert _ours(tmp_path) == []


def test_asgi_site_is_refused_in_one_line(tmp_path, make_site):
    site = make_site({"app": {"framework": "asgi", "wsgi": "shop.asgi:application"}, "session": None})
    result = _drill(site, tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines()[-1] == (f"{site}: deploygen drill needs a probe for asgi sites, and has one "
                                              "for django, flask, php, wsgi only")
    assert "Traceback" not in result.stderr
    assert _ours(tmp_path) == [] and [p.name for p in tmp_path.iterdir()] == ["shop.yaml"]


def test_missing_django_is_named_with_how_to_install(make_site, monkeypatch, cli):
    monkeypatch.setitem(sys.modules, "django", None)  # `import django` raises ImportError
    result = cli("drill", make_site(DJANGO_SITE))
    assert result.exit_code == 2
    assert "deploygen drill needs Django: pip install 'deploygen[drill]'" in result.stderr
