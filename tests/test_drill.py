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

from conftest import REPO, SITES, require_binary

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
                          capture_output=True, text=True, env=env, timeout=180)


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
    """nginx's 60 s under gunicorn's 120 s: the drill sees the 504 while the worker runs, as DG101 says."""
    result = _drill(BEFORE_FIX, tmp_path)
    assert "DG101 error" in result.stderr
    outcomes = {o["scenario"]: o for o in json.loads(result.stdout)}
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
    assert format_table(report).splitlines()[-1] == "1 passed, 1 failed"


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
