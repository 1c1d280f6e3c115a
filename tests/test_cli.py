"""The outside of deploygen: output layout, manifest, atomic writes, commands."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

from conftest import REPO, SITES
from deploygen import __version__


def test_render_layout_and_manifest(cli, tmp_path):
    result = cli("render", SITES / "dokon.yaml", "-o", tmp_path)
    assert result.exit_code == 0, result.stderr
    manifest = json.loads((tmp_path / "dokon" / "manifest.json").read_text())
    assert manifest["site"] == "dokon" and manifest["generator"] == f"deploygen {__version__}"
    kinds = {f["kind"] for f in manifest["files"]}
    assert kinds == {"nginx-site", "gunicorn-config", "systemd-service", "postgres-sql", "flask-env", "check-script"}
    for entry in manifest["files"]:
        path = tmp_path / "dokon" / entry["path"]
        assert entry["path"] == "root" + entry["target"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        assert oct(path.stat().st_mode & 0o777) == "0o" + entry["mode"].lstrip("0")
    on_disk = sorted(str(p.relative_to(tmp_path / "dokon")) for p in (tmp_path / "dokon").rglob("*") if p.is_file())
    copy = "root/etc/deploygen/dokon/manifest.json"
    assert on_disk == sorted([f["path"] for f in manifest["files"]] + ["manifest.json", copy])
    assert manifest["post_install"][-2:] == ["nginx -t || { rm -f /etc/nginx/sites-enabled/dokon.conf; exit 1; }",
                                             "systemctl reload nginx"]
    assert ("ln -sf /etc/nginx/sites-available/dokon.conf /etc/nginx/sites-enabled/dokon.conf"
            in manifest["post_install"])


def test_render_replaces_earlier_output_whole(cli, make_site, tmp_path):
    out = tmp_path / "out"
    site = make_site()
    assert cli("render", site, "-o", out).exit_code == 0
    stale = out / "shop" / "root" / "stale.conf"
    stale.write_text("left over")
    assert cli("render", make_site({"database": None}), "-o", out).exit_code == 0
    assert not stale.exists()
    assert not (out / "shop" / "root" / "etc" / "deploygen" / "shop" / "postgres.sql").exists()
    assert [p.name for p in out.iterdir() if p.name != ".deploygen"] == ["shop"]


def test_unwritable_output_is_reported_and_leaves_nothing(cli, make_site, tmp_path):
    blocker = tmp_path / "out"
    blocker.write_text("a file where the output folder should be")
    result = cli("render", make_site(), "-o", blocker / "sub")
    assert result.exit_code == 2
    assert "cannot write" in result.stderr and "Traceback" not in result.stderr
    assert blocker.read_text() == "a file where the output folder should be"


def test_render_writes_all_sites_of_a_folder(cli, tmp_path):
    result = cli("render", SITES, "-o", tmp_path)
    assert result.exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".deploygen") == ["analytics", "dokon", "sergeli0606", "yayin"]


def test_folder_loads_yaml_and_yml_sorted(cli, make_site, tmp_path):
    folder = tmp_path / "sites"
    make_site({"name": "b", "domains": ["b.example.com"], "server": {"bind": "127.0.0.1:8002"},
               "database": {"role": "b"}}, filename="b.yml", folder=folder)
    make_site({"name": "a", "domains": ["a.example.com"], "database": {"role": "a"}}, filename="a.yaml",
              folder=folder)
    (folder / "notes.txt").write_text("not a site")
    result = cli("render", folder, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert [line.split(":")[0].rsplit("/", 1)[1] for line in result.stdout.splitlines()] == ["a", "b"]


def test_explain_shows_chain_and_provenance(cli):
    result = cli("explain", SITES / "dokon.yaml")
    assert result.exit_code == 0
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in result.stdout.splitlines() if "." in line[:12]}
    assert rows["postgres.statement_timeout"][0] == "290s"
    assert rows["gunicorn.timeout"][1].startswith("+10s over postgres.statement_timeout")
    assert rows["nginx.proxy_read_timeout"][1].startswith("+10s over gunicorn.timeout")
    assert rows["flask.PERMANENT_SESSION_LIFETIME"][1].strip() == "line 38"
    assert "session.permanent = True" in result.stdout


def test_version_and_schema(cli):
    assert cli("--version").stdout.strip() == f"deploygen {__version__}"
    schema = json.loads(cli("schema").stdout)
    assert schema["additionalProperties"] is False
    assert {"name", "domains", "app", "server", "timeouts"} <= set(schema["required"])
    assert "request" in schema["$defs"]["Timeouts"]["properties"]


def test_wheel_installs_and_renders_from_any_directory(tmp_path):
    """`pip install .` (not -e): templates must travel inside the wheel."""
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheels, REPO],
                   check=True, capture_output=True)
    [wheel] = wheels.glob("deploygen-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True)
    py = env_dir / "bin" / "python"
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", wheel], check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([env_dir / "bin" / "deploygen", "render", SITES / "dokon.yaml", "-o", "out"],
                            cwd=elsewhere, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    where = subprocess.run([py, "-c", "import deploygen.render.templating as t; print(t.templates_dir())"],
                           cwd=elsewhere, capture_output=True, text=True, env=env).stdout.strip()
    assert Path(where).is_relative_to(env_dir), where
    golden = Path(__file__).parent / "golden" / "dokon" / "root" / "etc" / "nginx" / "sites-available" / "dokon.conf"
    rendered = elsewhere / "out" / "dokon" / "root" / "etc" / "nginx" / "sites-available" / "dokon.conf"
    assert rendered.read_bytes() == golden.read_bytes()


def test_a_file_named_twice_is_rendered_once(cli, tmp_path):
    result = cli("render", SITES, SITES / "dokon.yaml", "-o", tmp_path)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".deploygen") == ["analytics", "dokon", "sergeli0606", "yayin"]


def test_site_files_are_found_sorted_named_as_written_and_read_once(tmp_path, monkeypatch):
    from deploygen.sitefile.load import expand

    folder = tmp_path / "sites"
    folder.mkdir()
    for name in ("b.yaml", "a.yml", "notes.txt", ".yaml"):
        (folder / name).write_text("name: x\n")
    (folder / "c.yaml").symlink_to(folder / "b.yaml")
    (folder / "sub.yaml").mkdir()
    monkeypatch.chdir(tmp_path)
    assert expand(["./sites/", "sites/b.yaml", "missing.yaml"]) == ["sites/a.yml", "sites/b.yaml", "missing.yaml"]


def test_render_in_worker_processes_is_byte_identical_and_in_order(cli, tmp_path):
    sites = tmp_path / "sites"
    subprocess.run([sys.executable, REPO / "bench" / "generate.py", "5", sites], check=True)
    serial, forked = cli("render", sites, "-o", tmp_path / "one", "-j", "1"), cli(
        "render", sites, "-o", tmp_path / "two", "-j", "2")
    assert serial.exit_code == forked.exit_code == 0
    assert forked.stdout.replace("/two/", "/one/") == serial.stdout
    assert [line.split("/")[-1] for line in forked.stdout.splitlines()] == [
        f"site{i}: 8 files and manifest.json" for i in range(5)]
    def listed(out):
        found = []
        for folder, dirs, names in os.walk(out, followlinks=True):
            dirs[:] = [d for d in dirs if d != ".deploygen"]
            found += [(Path(folder) / n).relative_to(out) for n in dirs + names]
        assert found
        return sorted(found)

    files = listed(tmp_path / "one")
    assert files == listed(tmp_path / "two")
    for relative in files:
        one, two = tmp_path / "one" / relative, tmp_path / "two" / relative
        assert one.stat().st_mode == two.stat().st_mode
        assert one.is_dir() or one.read_bytes() == two.read_bytes()


def test_nothing_is_left_for_the_collector_at_exit():
    # The interpreter's last collection would walk every object still alive (0.1 s after
    # `validate`, more after a big render) to free memory the process gives back anyway.
    script = (
        "import atexit, gc, sys\n"
        "from deploygen.cli import main\n"
        "atexit.register(lambda: print(len(gc.get_objects()), gc.get_freeze_count(), file=sys.stderr))\n"
        "main(['validate', sys.argv[1]])\n"
    )
    done = subprocess.run([sys.executable, "-c", script, SITES], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    tracked, frozen = map(int, done.stderr.split()[-2:])
    assert frozen > 20_000
    assert tracked < 100
