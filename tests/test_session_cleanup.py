"""The filesystem store's cleanup: the rendered cleaner on real cachelib files, and its units."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import cachelib
import pytest

from conftest import require_binary

ROOT = "root/etc"


def _render(cli, make_site, tmp_path, overrides):
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "python").symlink_to(sys.executable)
    (tmp_path / "approot").mkdir()
    site = make_site({"app": {"venv": str(tmp_path / "venv"), "root": str(tmp_path / "approot")}, **overrides})
    out = tmp_path / "out"
    result = cli("render", site, "-o", out)
    assert result.exit_code == 0, result.stderr
    return out / "shop" / ROOT


def test_cleaner_removes_only_expired_sessions(cli, make_site, tmp_path):
    etc = _render(cli, make_site, tmp_path, {"session": {"store": "filesystem", "lifetime": "1h"}})
    cleaner = etc / "deploygen" / "shop" / "session_cleanup.py"
    assert os.access(cleaner, os.X_OK)
    store = tmp_path / "sessions"
    cache = cachelib.FileSystemCache(str(store), threshold=0)
    cache.set("shop:session:dead", {"user": "a"}, timeout=1)
    cache.set("shop:session:alive", {"user": "b"}, timeout=3600)
    cache.set("shop:session:forever", {"user": "c"}, timeout=0)
    alive = Path(cache._get_filename("shop:session:alive"))
    dead = Path(cache._get_filename("shop:session:dead"))
    # An old mtime says nothing: the expiry written in the file does.
    day_ago = time.time() - 86400
    os.utime(alive, (day_ago, day_ago))
    (store / "README").write_text("x")
    time.sleep(2.1)
    before = sorted(p.name for p in store.iterdir())

    dry = subprocess.run([sys.executable, cleaner, "--dir", store, "--dry-run"], capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert sorted(p.name for p in store.iterdir()) == before
    assert re.fullmatch(rf"would remove {dead} \(expired [0-9]+s ago\)\n"
                        rf"would remove 1 expired session file\(s\) in {store}\n", dry.stdout), dry.stdout

    run = subprocess.run([sys.executable, cleaner, "--dir", store], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1] == f"removed 1 expired session file(s) in {store}"
    assert not dead.exists()
    assert sorted(p.name for p in store.iterdir()) == sorted(set(before) - {dead.name})
    assert cache.get("shop:session:alive") == {"user": "b"}
    assert cache.get("shop:session:forever") == {"user": "c"}

    again = subprocess.run([sys.executable, cleaner, "--dir", store], capture_output=True, text=True)
    assert again.stdout == f"removed 0 expired session file(s) in {store}\n"


def test_cleaner_defaults_to_the_rendered_directory(cli, make_site, tmp_path):
    etc = _render(cli, make_site, tmp_path, {"session": {"store": "filesystem", "directory": "/var/lib/shop/s"}})
    text = (etc / "deploygen" / "shop" / "session_cleanup.py").read_text()
    assert 'DEFAULT_DIR = "/var/lib/shop/s"' in text
    unit = (etc / "systemd" / "system" / "shop.service").read_text()
    assert "StateDirectory=shop/s\n" in unit


@pytest.mark.parametrize(("every", "calendar"), [("15m", "*-*-* *:00/15:00"), ("1h", "hourly"),
                                                  ("6h", "*-*-* 00/06:00:00"), ("1d", "daily")])
def test_timer_and_cleanup_service_pass_systemd(cli, make_site, tmp_path, every, calendar):
    analyze = require_binary("systemd-analyze")
    etc = _render(cli, make_site, tmp_path, {"session": {"store": "filesystem", "lifetime": "1d",
                                                         "cleanup": {"every": every}}})
    units = etc / "systemd" / "system"
    timer, service = units / "shop-session-cleanup.timer", units / "shop-session-cleanup.service"
    assert f"OnCalendar={calendar}\n" in timer.read_text() and "Persistent=true\n" in timer.read_text()
    verify = subprocess.run([analyze, "verify", timer, service], capture_output=True, text=True)
    ours = [line for line in verify.stderr.splitlines() if "shop-session-cleanup" in line]
    assert verify.returncode == 0 and ours == [], verify.stderr
    cal = subprocess.run([analyze, "calendar", calendar], capture_output=True, text=True)
    assert cal.returncode == 0, cal.stderr
    security = subprocess.run([analyze, "security", "--offline=true", service], capture_output=True, text=True)
    level = float(re.search(r"Overall exposure level for \S+: (\d+\.\d+)", security.stdout).group(1))
    assert level <= 2.5, security.stdout


def test_custom_cleanup_command_replaces_the_cleaner(cli, make_site, tmp_path):
    command = f"{tmp_path}/venv/bin/python -m flask --app app session_cleanup"
    etc = _render(cli, make_site, tmp_path, {"session": {"store": "redis", "cleanup": {"command": command}}})
    service = (etc / "systemd" / "system" / "shop-session-cleanup.service").read_text()
    assert f"ExecStart={command}\n" in service
    assert not (etc / "deploygen" / "shop" / "session_cleanup.py").exists()


def test_cookie_and_redis_stores_need_no_timer(cli, make_site, tmp_path):
    for store in ("cookie", "redis"):
        out = tmp_path / store
        result = cli("render", make_site({"session": {"store": store}}), "-o", out)
        assert result.exit_code == 0
        assert not list(out.rglob("*.timer"))
