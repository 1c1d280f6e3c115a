"""`deploygen drill` of a PHP site: php-fpm runs the PHP probe from the rendered pool, behind nginx's FastCGI.

The app server's layer is `php-fpm`: a request past request_terminate_timeout ends with FPM's SIGTERM
to the child and nginx's 502, before nginx's own 504 at fastcgi_read_timeout. PostgreSQL's limits come
from the DSN the pool passes (its options), and cancel a slow query (57014) before both.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from conftest import SITES, merge, require_binary
from test_drill import _ours

from deploygen.sitefile.duration import Duration

YAYIN = SITES / "yayin.yaml"
# yayin's 60 s budget at 1/30: request_terminate_timeout 2 s, fastcgi_read_timeout 2.87 s, statement_timeout
# 1.8 s, process_control_timeout 2 s, TimeoutStopSec 3 s: a drill of some 13 s.
SCALE = "1/30"
PHP_SCENARIOS = [
    "request within the budget", "query longer than statement_timeout",
    "PHP work longer than request_terminate_timeout", "lock wait longer than lock_timeout",
    "transaction idle past idle_in_transaction_session_timeout", "session set by one worker, read by another",
    "graceful reload (USR2)", "graceful stop (QUIT)",
]
FIELDS = {"scenario", "expected_layer", "observed_layer", "status", "seconds", "verdict", "note", "chain_layer",
          "chain_holds"}
LAYERS = {"app", "postgres", "php-fpm", "nginx", "systemd"}


def _servers() -> None:
    require_binary("nginx")
    for name in ("initdb", "postgres", "psql"):
        require_binary(name, f"/usr/lib/postgresql/15/bin/{name}")
    require_binary("php-fpm8.2", "/usr/sbin/php-fpm8.2")


def _folder() -> Path:
    """A TMPDIR for the drill that the postgres user can enter (pytest's own is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="deploygen-drill-php-test-", dir="/tmp"))
    os.chmod(folder, 0o755)
    return folder


@pytest.fixture
def tmp_path():
    folder = _folder()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _drill(site: Path, tmpdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    return subprocess.run([sys.executable, "-m", "deploygen", "drill", str(site), "--format", "json", *args],
                          capture_output=True, text=True, env=env, timeout=180, check=False)


def _php_site(folder: Path, overrides: dict) -> Path:
    """yayin's site file with `overrides` merged in (None deletes a key)."""
    target = folder / "yayin.yaml"
    target.write_text(yaml.safe_dump(merge(yaml.safe_load(YAYIN.read_text()), overrides), sort_keys=False))
    return target


def _by_name(result: subprocess.CompletedProcess) -> dict[str, dict]:
    outcomes = json.loads(result.stdout)
    assert [o["scenario"] for o in outcomes] == PHP_SCENARIOS, result.stdout + result.stderr
    assert all(set(o) == FIELDS for o in outcomes)
    assert {o["observed_layer"] for o in outcomes} <= LAYERS
    return {o["scenario"]: o for o in outcomes}


def _layer(outcome: dict) -> tuple:
    return outcome["expected_layer"], outcome["observed_layer"], outcome["status"]


def test_yayin_holds_its_chain(tmp_path):
    """The request within the budget is the probe's 200; the slow query and the lock wait are cancelled by
    the timeouts the pool's DSN carries (503 with the SQLSTATE); PHP work past request_terminate_timeout
    ends with FPM's SIGTERM to the child (502, its log says so) before nginx's fastcgi_read_timeout; the
    session one child wrote is read by the others from the pool's session folder; a reload (USR2) and
    systemd's stop (QUIT to every process, as KillMode=control-group sends it) let the request in flight
    finish. Exit 0, nothing left running."""
    _servers()
    result = _drill(YAYIN, tmp_path, "--scale", SCALE)
    assert result.returncode == 0, result.stdout + result.stderr
    by_name = _by_name(result)
    assert {o["verdict"] for o in by_name.values()} == {"pass"}
    assert _layer(by_name["request within the budget"]) == ("app", "app", 200)
    query = by_name["query longer than statement_timeout"]
    assert _layer(query) == ("postgres", "postgres", 503) and 1.7 < query["seconds"] < 2.0  # 54 s / 30
    assert query["note"] == "SQLSTATE 57014"  # statement_timeout, from the DSN's options
    work = by_name["PHP work longer than request_terminate_timeout"]
    assert _layer(work) == ("php-fpm", "php-fpm", 502) and work["note"] == "php-fpm logged execution timed out"
    assert 2.0 <= work["seconds"] < 2.8  # request_terminate_timeout 2 s, checked every 2/3 s
    lock = by_name["lock wait longer than lock_timeout"]
    assert _layer(lock) == ("postgres", "postgres", 503) and lock["note"] == "SQLSTATE 55P03"
    # idle_in_transaction_session_timeout = the budget = request_terminate_timeout: FPM ends the child while
    # it sleeps in its transaction, before PostgreSQL's 25P03 could reach it.
    idle = by_name["transaction idle past idle_in_transaction_session_timeout"]
    assert _layer(idle) == ("php-fpm", "php-fpm", 502)
    session = by_name["session set by one worker, read by another"]
    assert session["observed_layer"] == "app" and session["note"].endswith("all saw one session")
    assert not session["note"].startswith("1 of"), session
    for scenario in ("graceful reload (USR2)", "graceful stop (QUIT)"):
        assert _layer(by_name[scenario]) == ("app", "app", 200), scenario
    assert _ours(tmp_path) == [] and list(tmp_path.iterdir()) == []


def test_nginx_inside_fpms_check_window_is_named_whoever_wins(tmp_path):
    """fastcgi_read_timeout 10% over request_terminate_timeout (66 s over 60 s): FPM looks for children past
    their limit every third of it, so it ends one between 60 s and 80 s, and nginx's 66 s falls in between.
    Which answers first is chance (the request's moment against FPM's timer): the drill says so beside
    whatever it saw, and fails only when nginx won."""
    _servers()
    site = _php_site(tmp_path, {"timeouts": {"nginx": {"fastcgi_read_timeout": "66s"}}})
    result = _drill(site, tmp_path, "--scale", "1/60")
    by_name = _by_name(result)
    window = ("nginx's 1100ms falls inside FPM's window for ending the child (1s to 1333ms: it checks every "
              "333ms): nginx answers first for about 70% of requests")
    for scenario in ("PHP work longer than request_terminate_timeout",
                     "transaction idle past idle_in_transaction_session_timeout"):
        outcome = by_name[scenario]
        assert outcome["expected_layer"] == "php-fpm" and outcome["observed_layer"] in ("php-fpm", "nginx"), outcome
        assert outcome["note"].endswith(window), outcome
    won = by_name["PHP work longer than request_terminate_timeout"]["observed_layer"] == "nginx"
    lost_idle = by_name["transaction idle past idle_in_transaction_session_timeout"]["observed_layer"] == "nginx"
    assert result.returncode == (1 if won or lost_idle else 0), result.stdout + result.stderr
    assert ("the chain does not hold: PHP work" in result.stderr) == won
    assert _ours(tmp_path) == [] and [p.name for p in tmp_path.iterdir()] == ["yayin.yaml"]


def test_misaligned_php_site_shows_nginx_and_systemd_giving_up_first(tmp_path):
    """nginx's 2 s under FPM's 4 s (DG801), and a TimeoutStopSec under process_control_timeout: the drill sees
    nginx's 504 while the child still runs, and systemd's SIGKILL ending the request a graceful stop should
    have let finish. What the settings predict is what happens (each verdict passes), but the chain does not
    hold: exit 1, each broken link named."""
    _servers()
    site = _php_site(tmp_path, {"timeouts": {
        "request": "4s", "nginx": {"fastcgi_read_timeout": "2s"}, "systemd": {"TimeoutStopSec": "500ms"}}})
    result = _drill(site, tmp_path, "--scale", "1/2")
    assert "DG801 error" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1, result.stdout + result.stderr
    by_name = _by_name(result)
    assert {o["verdict"] for o in by_name.values()} == {"pass"}
    work = by_name["PHP work longer than request_terminate_timeout"]
    assert _layer(work) == ("nginx", "nginx", 504)
    assert work["note"] == "the worker was still running when nginx answered"
    assert 0.9 < work["seconds"] < 1.5  # fastcgi_read_timeout 2 s at 1/2
    assert _layer(by_name["query longer than statement_timeout"]) == ("nginx", "nginx", 504)
    stop = by_name["graceful stop (QUIT)"]
    assert (stop["expected_layer"], stop["observed_layer"]) == ("systemd", "systemd"), stop
    assert stop["note"] == "TimeoutStopSec passed: the drill killed what was left, as systemd does"
    chain = [line for line in result.stderr.splitlines() if "the chain does not hold" in line]
    said = "deploygen: yayin: the chain does not hold:"
    assert chain == [
        f"{said} query longer than statement_timeout: stopped by nginx with 504 instead of by postgres",
        f"{said} PHP work longer than request_terminate_timeout: stopped by nginx with 504 instead of by php-fpm",
        f"{said} graceful stop (QUIT): stopped by systemd with {stop['status']} instead of answered by the app"
        if stop["status"] is not None else
        f"{said} graceful stop (QUIT): stopped by systemd with no answer instead of answered by the app",
    ], result.stderr
    assert _ours(tmp_path) == [] and [p.name for p in tmp_path.iterdir()] == ["yayin.yaml"]


# -- without the servers: what the drill needs, and what it changes ---------------------------

@pytest.mark.parametrize("version", ["8.2", "8.3"])
def test_missing_php_fpm_is_named_with_its_debian_package(version, tmp_path, monkeypatch, cli):
    """Only nginx on PATH (PostgreSQL's programs are found in their own folder): php-fpmX.Y is missing."""
    nginx = require_binary("nginx")
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "nginx").symlink_to(nginx)
    monkeypatch.setenv("PATH", str(folder))
    result = cli("drill", _php_site(tmp_path, {"app": {"php_version": version}}))
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1] == (f"deploygen drill needs php-fpm{version}: install it with: "
                                              f"apt-get install -y php{version}-fpm")
    assert "Traceback" not in result.stderr


def test_missing_pdo_pgsql_is_named_with_its_debian_package(tmp_path, monkeypatch, cli):
    from deploygen.drill import probes

    _servers()

    def modules(args, **kwargs):
        assert args[1:] == ["-m"]
        return subprocess.CompletedProcess(args, 0, "[PHP Modules]\nCore\nPDO\npgsql\n\n[Zend Modules]\n", "")

    monkeypatch.setattr(probes.subprocess, "run", modules)
    result = cli("drill", _php_site(tmp_path, {}))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == ("deploygen drill needs PHP's pdo_pgsql extension for php-fpm8.2: "
                                              "install it with: apt-get install -y php8.2-pgsql")


def test_the_loopback_copy_scales_the_dsn_and_runs_the_pool_here(tmp_path):
    """The DSN's options are derived as text before the scaling, and a connection's own settings win over
    the role's: the drill rewrites them to the scaled values, with the drill's PostgreSQL as its host. The
    pool listens on a socket in the drill's folder, its children and the socket's owner one account of
    this machine, its slow log in the drill's folder."""
    from fractions import Fraction

    from deploygen.drill.prepare import prepare
    from deploygen.drill.probes import PROBES
    from deploygen.drill.stack import _loopback_pool
    from deploygen.sitefile.load import load_site

    site = _php_site(tmp_path, {"timeouts": {"php-fpm": {"request_slowlog_timeout": "30s"}}})
    loaded, problems = load_site(str(site))
    assert not problems
    app = tmp_path / "app"
    prepared = prepare(loaded, app, 40001, None, PROBES["php"], pg_port=40002)
    assert prepared.scale == Fraction(1, 15)  # request_terminate_timeout 60 s -> 4 s
    eff = prepared.effective
    assert eff.value("php.DATABASE_DSN") == (
        "pgsql:host=127.0.0.1;port=40002;dbname=yayin;options='-c statement_timeout=3600ms -c lock_timeout=666ms "
        "-c idle_in_transaction_session_timeout=4s'")
    pool = next(f for f in prepared.rendered.files if f.role == "php-fpm-pool").content.decode()
    assert _ini(pool, "listen") == [f"{tmp_path}/php-fpm.sock"] and _ini(pool, "chdir") == [str(app)]
    assert _ini(pool, "request_terminate_timeout") == _ini(pool, "process_control_timeout") == ["4s"]
    assert _ini(pool, "php_admin_value[session.save_path]") == [f"{tmp_path}/sessions"]
    nginx = next(f for f in prepared.rendered.files if f.role == "nginx-site").content.decode()
    assert f"root {app}/public;" in nginx and f"server unix:{tmp_path}/php-fpm.sock" in nginx
    # The slow log's 2 s (30 s / 15) makes FPM's heartbeat 666 ms: its window ends before nginx's wait.
    assert PROBES["php"].race(eff, eff.value("nginx.fastcgi_read_timeout")) == ""
    assert PROBES["php"].race(eff, Duration(4500)) == (
        "nginx's 4500ms falls inside FPM's window for ending the child (4s to 4666ms: it checks every 666ms): "
        "nginx answers first for about 25% of requests")
    source = tmp_path / "pool.conf"
    source.write_text(pool)
    for account in (("nobody", "nogroup"), None):
        target = tmp_path / "local.conf"
        _loopback_pool(source, target, "/drill/state", account, tmp_path / "slow.log")
        local = target.read_text()
        for key, value in (("user", 0), ("listen.owner", 0), ("group", 1), ("listen.group", 1)):
            assert _ini(local, key) == ([account[value]] if account else []), (key, local)
        assert _ini(local, "slowlog") == [f"{tmp_path}/slow.log"]
        assert _ini(local, "env[DRILL_STATE_DIR]") == ["/drill/state"]
        assert local.index("[yayin]") < local.index("env[DRILL_STATE_DIR]")
        assert "[global]" in local.splitlines() and _ini(local, "clear_env") == ["yes"]


def _ini(text: str, key: str) -> list[str]:
    """The values of `key` in an FPM ini file, without their quotes and trailing comments."""
    values = []
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() == key and not line.lstrip().startswith(";"):
            value = value.split(" ;", 1)[0].strip()
            values.append(value[1:-1] if len(value) > 1 and value[0] == value[-1] == '"' else value)
    return values


def test_a_chain_that_breaks_as_predicted_still_fails_the_drill():
    from fractions import Fraction

    from deploygen.drill.runner import DrillReport, format_table
    from deploygen.drill.scenarios import Outcome

    work = Outcome("PHP work longer than request_terminate_timeout", "nginx", "nginx", 504, 2.0, holds="php-fpm")
    report = DrillReport("yayin", Fraction(1), [work])
    assert work.verdict == "pass" and not report.passed
    assert format_table(report).splitlines()[-3:] == [
        "prediction: 1 of 1 scenarios as predicted",
        "chain: does not hold: clients lose 1 kind of request:",
        "  PHP work longer than request_terminate_timeout: stopped by nginx with 504 instead of by php-fpm",
    ]
