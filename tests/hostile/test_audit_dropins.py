"""systemd drop-ins (`NAME.service.d/*.conf`) under `audit --root` and beside `--unit`.

Audit used to read the unit alone: an override's `ExecStart=` or `TimeoutStopSec=1` ran on the
server while audit reported the unit's settings clean, and `TimeoutSec=` was not read at all.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.hostile.conftest import assert_bad_input, run_deploygen
from tests.hostile.test_audit_root import UNIT, assert_not_read, canary, server_tree

UNITS = "etc/systemd/system"
DROPINS = "etc/systemd/system/shop.service.d"
EXEC = "ExecStart=/srv/shop/venv/bin/gunicorn -c gunicorn.conf.py"


def findings(result) -> list[tuple[str, str, str]]:
    """(code, file, line) of each finding of a `--format json` run that read its input."""
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr
    return sorted((f["code"], f["file"], str(f["line"])) for f in json.loads(result.stdout)
                  if f["severity"] in ("error", "warning"))  # rules skipped for lack of settings: tests/test_runner.py


def audit(root: Path):
    return run_deploygen("audit", "--root", root, "--format", "json")


def test_a_dropin_overriding_exec_start_and_the_stop_timeout_is_read_at_its_lines(tmp_path):
    root = server_tree(tmp_path)
    assert findings(audit(root)) == []
    override = f"[Service]\nExecStart=\n{EXEC} --timeout 120 app:app\nTimeoutStopSec=1\n"
    dropin = root / DROPINS / "override.conf"
    dropin.parent.mkdir()
    dropin.write_text(override)
    result = audit(root)
    # gunicorn's 120 s outlasts nginx's 90 s (DG101 is told at nginx's lines, the ones to raise),
    # and systemd's 1 s kills the 30 s graceful stop.
    site = f"{root}/etc/nginx/sites-available/shop"
    assert findings(result) == [("DG101", site, "5"), ("DG301", str(dropin), "4")]
    assert "gunicorn.timeout=120s" in result.stdout
    assert f"read: shop: systemd: {root}/{UNITS}/shop.service, {dropin}\n" in result.stderr

    from deploygen.audit.source import Tree
    from deploygen.audit.unit_reader import read_unit, unit_dropins

    tree = Tree(str(root))
    read = read_unit(tree.local(f"/{UNITS}/shop.service"), tree, unit_dropins(tree, "shop.service"))
    assert (read["gunicorn.timeout"].value.nginx(), read["gunicorn.timeout"].location) == ("120s", (str(dropin), 3, 1))
    assert read["systemd.ExecStart"].location == (str(dropin), 3, 1)


def test_an_empty_exec_start_takes_back_the_units_flags(tmp_path):
    unit = UNIT.replace("-c gunicorn.conf.py", "-c gunicorn.conf.py --timeout 120")
    root = server_tree(tmp_path, {f"{UNITS}/shop.service": unit})
    assert [f[0] for f in findings(audit(root))] == ["DG101"]
    (root / DROPINS).mkdir()
    (root / DROPINS / "x.conf").write_text(f"[Service]\nExecStart=\n{EXEC} app:app\n")
    assert findings(audit(root)) == []  # the config file's 60 s, not the old command's 120 s


def test_a_second_exec_start_without_the_empty_one_is_bad_input(tmp_path):
    """systemd refuses a service with two commands (unless Type=oneshot): none of them runs."""
    root = server_tree(tmp_path, {f"{DROPINS}/x.conf": f"[Service]\n{EXEC} --timeout 5 app:app\n"})
    [problem] = assert_bad_input(run_deploygen("audit", "--root", root), lines=1)
    assert (problem["file"], problem["line"], problem["key"]) == (f"{root}/{DROPINS}/x.conf", "2", "systemd.ExecStart")


def test_timeout_sec_sets_the_stop_timeout(tmp_path):
    unit = UNIT.replace("TimeoutStopSec=90", "TimeoutSec=2")
    root = server_tree(tmp_path, {f"{UNITS}/shop.service": unit})
    assert findings(audit(root)) == [("DG301", f"{root}/{UNITS}/shop.service", "8")]


def test_timeout_sec_and_stop_timeout_the_later_wins(tmp_path):
    """As systemd parses them: one after the other, across the files and within one."""
    root = server_tree(tmp_path, {f"{DROPINS}/10-a.conf": "[Service]\nTimeoutSec=2\n",
                                  f"{DROPINS}/20-b.conf": "[Service]\nTimeoutStopSec=120\n"})
    assert findings(audit(root)) == []
    (root / DROPINS / "20-b.conf").write_text("[Service]\nTimeoutStopSec=120\nTimeoutSec=2\n")
    assert findings(audit(root)) == [("DG301", f"{root}/{DROPINS}/20-b.conf", "3")]
    (root / DROPINS / "20-b.conf").write_text("[Service]\nTimeoutSec=2\nTimeoutStopSec=120\n")
    assert findings(audit(root)) == []


def _dropins(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_order_and_masking_of_dropins_across_folders(tmp_path):
    from deploygen.audit.source import Tree
    from deploygen.audit.unit_reader import unit_dropins

    root = tmp_path / "root"
    _dropins(root, {f"usr/lib/systemd/system/shop.service.d/{n}.conf": "" for n in ("10", "30", "50", "70")})
    _dropins(root, {f"run/systemd/system/shop.service.d/{n}.conf": "" for n in ("30", "40", "80")})
    _dropins(root, {f"usr/local/lib/systemd/system/shop.service.d/{n}.conf": "" for n in ("80", "90")})
    _dropins(root, {f"etc/systemd/system/shop.service.d/{n}.conf": "" for n in ("20", "30", "40")})
    _dropins(root, {"lib/systemd/system/shop.service.d/60.conf": "", "lib/systemd/system/shop.service.d/70.conf": "",
                    "etc/systemd/system/shop.service.d/notes.txt": "",
                    "etc/systemd/system/shop.service.d/.hidden.conf": ""})
    (root / "etc/systemd/system/shop.service.d/50.conf").symlink_to("/dev/null")
    folder = {"10": "usr/lib", "20": "etc", "30": "etc", "40": "etc", "60": "lib", "70": "usr/lib", "80": "run",
              "90": "usr/local/lib"}
    assert unit_dropins(Tree(str(root)), "shop.service") == [
        f"{root}/{folder[n]}/systemd/system/shop.service.d/{n}.conf" for n in sorted(folder)]


def test_a_dropin_hidden_by_a_higher_folder_is_not_read(tmp_path):
    vendor = "usr/lib/systemd/system/shop.service.d"
    root = server_tree(tmp_path, {f"{vendor}/50-stop.conf": "[Service]\nTimeoutStopSec=1\n",
                                  f"{vendor}/60-masked.conf": "[Service]\nTimeoutStopSec=1\n",
                                  "run/systemd/system/shop.service.d/50-stop.conf": "[Service]\nTimeoutStopSec=120\n",
                                  f"{DROPINS}/10-first.conf": "[Service]\nTimeoutStopSec=1\n"})
    (root / DROPINS / "60-masked.conf").symlink_to("/dev/null")
    result = audit(root)
    # 10-first.conf comes first by name, /etc or not: the /run 50-stop.conf after it decides.
    assert findings(result) == []
    assert f"{DROPINS}/10-first.conf, {root}/run/systemd/system/shop.service.d/50-stop.conf\n" in result.stderr
    assert vendor not in result.stderr and "60-masked" not in result.stderr


def test_an_empty_environment_file_in_a_dropin_drops_the_units(tmp_path):
    outside = canary(tmp_path)
    unit = UNIT.replace("TimeoutStopSec=90", "TimeoutStopSec=90\nEnvironmentFile=/etc/shop/flask.env")
    root = server_tree(tmp_path, {f"{UNITS}/shop.service": unit, f"{DROPINS}/env.conf": "[Service]\nEnvironmentFile=\n",
                                  "etc/shop/flask.env": (outside / "flask.env").read_text()})
    result = run_deploygen("audit", "--root", root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "read: shop: env: no EnvironmentFile=" in result.stderr  # a wsgi app: its env files are no Flask settings


def test_a_dropin_that_is_a_fifo_is_bad_input(tmp_path):
    root = server_tree(tmp_path)
    (root / DROPINS).mkdir()
    os.mkfifo(root / DROPINS / "x.conf")
    [problem] = assert_bad_input(run_deploygen("audit", "--root", root), lines=1)
    assert problem["file"] == f"{root}/{DROPINS}/x.conf" and "a FIFO" in problem["msg"], problem.string


def test_a_dropin_linked_outside_root_is_read_inside(tmp_path):
    outside = canary(tmp_path)
    (outside / "stop.conf").write_text("[Service]\nTimeoutStopSec=1\n")
    root = server_tree(tmp_path)
    (root / DROPINS).mkdir()
    (root / DROPINS / "x.conf").symlink_to(outside / "stop.conf")
    result = run_deploygen("audit", "--root", root)
    [problem] = assert_bad_input(result, lines=1)
    assert problem["file"] == f"{root}{outside}/stop.conf" and "No such file" in problem["msg"], problem.string
    assert "DG301" not in result.stderr


def test_a_dropin_folder_linked_outside_root_is_looked_for_inside(tmp_path):
    outside = canary(tmp_path)
    (outside / "stop.conf").write_text("[Service]\nTimeoutStopSec=1\n")
    root = server_tree(tmp_path)
    (root / DROPINS).symlink_to(outside)
    result = run_deploygen("audit", "--root", root)
    assert result.returncode == 0, result.stdout + result.stderr  # ROOT/<outside> holds no drop-in
    assert_not_read(result, outside)
    assert "DG301" not in result.stdout and "stop.conf" not in result.stderr


def test_a_dropin_link_loop_is_located(tmp_path):
    root = server_tree(tmp_path)
    (root / DROPINS).mkdir()
    (root / DROPINS / "a.conf").symlink_to("b.conf")
    (root / DROPINS / "b.conf").symlink_to("a.conf")
    problems = assert_bad_input(run_deploygen("audit", "--root", root))
    assert any("too many levels of symbolic links" in p["msg"] for p in problems), [p.string for p in problems]


def test_dropins_beside_a_unit_named_with_unit(tmp_path):
    unit = tmp_path / "shop.service"
    unit.write_text("[Service]\nExecStart=/v/bin/gunicorn -b unix:/run/s.sock --graceful-timeout 30 app:app\n")
    assert "DG301" not in run_deploygen("audit", "--unit", unit).stdout
    (tmp_path / "shop.service.d").mkdir()
    (tmp_path / "shop.service.d/stop.conf").write_text("[Service]\nTimeoutStopSec=1\n")
    result = run_deploygen("audit", "--unit", unit)
    assert f"{tmp_path}/shop.service.d/stop.conf:2:1: DG301 " in result.stdout, result.stdout + result.stderr
    assert f"read: shop: systemd: {unit}, {tmp_path}/shop.service.d/stop.conf\n" in result.stderr

    os.unlink(tmp_path / "shop.service.d/stop.conf")
    os.mkfifo(tmp_path / "shop.service.d/stop.conf")
    [problem] = assert_bad_input(run_deploygen("audit", "--unit", unit), lines=1)
    assert problem["file"] == f"{tmp_path}/shop.service.d/stop.conf" and "a FIFO" in problem["msg"]
