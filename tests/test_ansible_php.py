"""`deploygen ansible` for PHP sites: the FPM pool, php-fpm's drop-in, the folders no unit makes
in time, and php-fpm's master checked and reloaded once per host, never restarted.

As in test_ansible: the real ansible-playbook into temporary root prefixes. The run with
`deploygen_manage_services: true` has stand-ins for systemctl, php-fpm8.2 and `nginx -t` first
on PATH (systemd is not PID 1 here), which log what the handlers ask of them.
"""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import test_ansible
import yaml
from conftest import SITES, merge
from test_ansible import (
    LOCAL,
    assert_installed,
    fleet_file,
    output,
    overrides,
    play,
    project,
    site_file,
    tree,
)

from deploygen.ansible.host_data import SHARED, STEPS, _site_directories

# test_ansible's fixtures, found here by these names.
playbook_binary = test_ansible.playbook_binary
trees = test_ansible.trees

POOL = "etc/php/8.2/fpm/pool.d/{}.conf"
DROPIN = "etc/systemd/system/php8.2-fpm.service.d/deploygen-{}.conf"


def php_site(folder: Path, name: str, account: str, overrides_: dict | None = None) -> Path:
    """sites/yayin.yaml as `name`, run by `account`, without its certificate (not on this machine)."""
    data = yaml.safe_load((SITES / "yayin.yaml").read_text())
    data = merge(data, {"name": name, "domains": [f"{name}.example.org"], "tls": None,
                        "app": {"root": f"/srv/{name}", "docroot": f"/srv/{name}/public", "user": account,
                                "group": account, "secrets_file": f"/etc/{name}/secrets.env"},
                        "server": {"bind": f"unix:/run/{name}/php-fpm.sock"},
                        "database": {"name": name, "role": name}})
    path = folder / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(merge(data, overrides_ or {}), sort_keys=False))
    return path


@pytest.fixture
def account():
    """A throwaway system user and group the play creates (deploygen_manage_users), removed after."""
    name = f"dgphp{random.randrange(10_000, 99_999)}"
    yield name
    subprocess.run(["userdel", name], capture_output=True, check=False)
    subprocess.run(["groupdel", name], capture_output=True, check=False)


def host_vars(out: Path, host: str = "web1") -> dict:
    return yaml.safe_load((out / "host_vars" / f"{host}.yml").read_text().replace("!unsafe ", ""))


def test_php_project_files_folders_and_handlers(cli, playbook_binary, tmp_path):
    """What the project says of two PHP sites beside a Flask one: each PHP site's reload (its
    check's words, the shared unit) and folders, parents first; the pool is the app's
    configuration and the drop-in a unit, neither with a validate:; the handlers, in order,
    check then reload the shared services each once, only with deploygen_manage_services."""
    php_site(tmp_path / "sites", "yayin", "yayin")
    php_site(tmp_path / "sites", "kitob", "kitob")
    site_file(tmp_path / "sites", "shop")
    out = project(cli, fleet_file(tmp_path, {"web1": {"sites": ["sites"]}}), tmp_path / "deploy")
    data = host_vars(out)
    sites = {s["name"]: s for s in data["deploygen_sites"]}
    fpm = [{"unit": "php8.2-fpm.service", "check": ["php-fpm8.2", "-t"]}]
    assert sites["yayin"]["reloads"] == sites["kitob"]["reloads"] == fpm and sites["shop"]["reloads"] == []
    assert sites["yayin"]["services"] == [] and sites["yayin"]["timers"] == ["yayin-session-cleanup.timer"]
    assert [(d["path"], d["mode"], d["owner"], d["group"]) for d in data["deploygen_site_directories"]] == [
        ("/run/kitob", "0755", "root", "root"), ("/run/yayin", "0755", "root", "root"),
        ("/var/lib/kitob", "0755", "root", "root"), ("/var/lib/kitob/sessions", "0700", "kitob", "kitob"),
        ("/var/lib/yayin", "0755", "root", "root"), ("/var/lib/yayin/sessions", "0700", "yayin", "yayin")]
    assert "/run" in data["deploygen_probe"]["paths"]  # the one find sees them too
    files = {f["dest"]: f for f in data["deploygen_files"]}
    pool, dropin = files["/" + POOL.format("yayin")], files["/" + DROPIN.format("yayin")]
    assert (pool["kind"], pool["step"], pool["validate"]) == ("php-fpm-pool", "app", None)
    assert (dropin["kind"], dropin["step"], dropin["validate"]) == ("systemd-dropin", "units", None)
    assert set(SHARED) <= set(pool["notify"]) and set(SHARED) <= set(dropin["notify"])
    assert "Reload systemd" in dropin["notify"] and "Reload systemd" not in pool["notify"]
    assert set(SHARED).isdisjoint(STEPS["nginx"] + STEPS["support"])

    handlers = yaml.safe_load((out / "handlers.yml").read_text())
    names = [h["name"] for h in handlers]
    assert names == ["Reload systemd", "Restart the changed sites", *SHARED, "Test the nginx configuration",
                     "Reload nginx"]
    check, reload = handlers[2], handlers[3]
    assert check["ansible.builtin.command"] == {"argv": "{{ item.check }}"} and check["changed_when"] is False
    assert reload["ansible.builtin.systemd_service"] == {"name": "{{ item.unit }}", "state": "reloaded"}
    assert check["loop"] == reload["loop"] == "{{ deploygen_reload }}"
    assert all(h["when"] == "deploygen_manage_services | bool" for h in handlers)
    # site.yml's syntax: --list-tasks below parses it whole.
    proc, _ = play(playbook_binary, out, "rollback.yml", args=("--syntax-check",))
    assert proc.returncode == 0, output(proc)
    rollback = yaml.safe_load((out / "rollback.yml").read_text())[0]
    restore = next(t for t in rollback["tasks"] if t["name"].startswith("Put back the files"))
    assert restore["notify"] == names

    # Ansible's own templating of the playbooks' expressions: each shared unit once, however
    # many of its sites changed; none for a site of another kind; a drop-in is no unit to stop.
    def evaluate(playbook: dict, name: str, **variables):
        from ansible.parsing.dataloader import DataLoader
        from ansible.template import Templar, trust_as_template
        return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(playbook["vars"][name]))

    site_yml = yaml.safe_load((out / "site.yml").read_text())[0]
    every = data["deploygen_sites"]
    assert evaluate(site_yml, "deploygen_reload", deploygen_sites=every,
                    deploygen_changed=["yayin", "shop", "kitob", "yayin"]) == fpm
    assert evaluate(site_yml, "deploygen_reload", deploygen_sites=every, deploygen_changed=["shop"]) == []
    assert evaluate(rollback, "deploygen_reload", deploygen_sites=every, deploygen_rolled_back=["kitob", "yayin"]) == fpm
    changes = [{"dest": "/" + DROPIN.format("kitob"), "kind": "systemd-dropin", "step": "units", "absent": True},
               {"dest": "/etc/systemd/system/kitob-session-cleanup.timer", "kind": "systemd-timer", "step": "units",
                "absent": True}]
    assert evaluate(rollback, "deploygen_removed_units", deploygen_changes=changes) == ["kitob-session-cleanup.timer"]

    proc, _ = play(playbook_binary, out, "site.yml", args=("--list-tasks",))
    assert proc.returncode == 0, output(proc)
    listed = [line.split("\t")[0].strip() for line in proc.stdout.splitlines() if "TAGS:" in line][1:]
    folders = next(i for i, n in enumerate(listed) if n.startswith("The folders the sites' services need"))
    assert listed.index("What is installed now (one look at every path this play manages)") < folders
    assert folders < listed.index("deploygen's scripts, SQL and manifest copies")


def test_a_folder_two_ways_is_refused():
    """One folder with two owners or modes on a host, or one deploygen keeps root:root 0755 with
    another: each run would undo the other's."""
    def plan(site, *directories):
        return SimpleNamespace(site=site, directories=directories)

    mine = ("/var/lib/yayin/sessions", "0700", "yayin", "yayin")
    with pytest.raises(ValueError, match="/var/lib/yayin/sessions is a folder of both yayin .* and kitob"):
        _site_directories([plan("yayin", mine), plan("kitob", (*mine[:2], "kitob", "kitob"))], set())
    with pytest.raises(ValueError, match="/var/lib/deploygen: a folder of yayin"):
        _site_directories([plan("yayin", ("/var/lib/deploygen", "0700", "yayin", "yayin"))], {"/var/lib/deploygen"})
    # A parent named as a folder too keeps what it was named with, and comes first; one the
    # root:root folders make before (/var/lib, beside /var/lib/deploygen) needs no entry.
    found = _site_directories([plan("yayin", mine, ("/var/lib/yayin", "0750", "root", "yayin"))],
                              {"/var/lib/deploygen"})
    assert [(d["path"], d["mode"]) for d in found] == [("/var/lib/yayin", "0750"), ("/var/lib/yayin/sessions", "0700")]


STAND_INS = {
    # What systemd_service reads of a unit: loaded, running, enabled.
    "systemctl": """\
echo "systemctl $*" >> {log}
case "$1" in
    show) printf 'Id=%s\\nLoadState=loaded\\nActiveState=active\\nSubState=running\\nUnitFileState=enabled\\n' "$2" ;;
    is-enabled) echo enabled ;;
esac
""",
    "php-fpm8.2": """\
echo "php-fpm8.2 $*" >> {log}
if [ -e {fail} ]; then echo "ERROR: [pool yayin] failed to post process the configuration" >&2; exit 78; fi
""",
    # The handler's whole `nginx -t` only: nginx-check's own test is the real nginx's.
    "nginx": """\
if [ "$*" = "-t" ]; then echo "nginx -t" >> {log}; exit 0; fi
exec /usr/sbin/nginx "$@"
""",
}


def test_php_install_reload_once_failed_check_rollback_and_a_link(
        cli, playbook_binary, trees, account, tmp_path, monkeypatch):
    """A PHP site into a temp root, stand-ins first on PATH: --check --diff changes nothing; the
    install with services off makes the socket folder (root:root 0755) and the sessions folder
    (the app's, 0700, in a root:root parent), puts the pool and drop-in where php-fpm and
    systemd read them, and asks nothing of a service; with services on, a second run changes
    nothing and asks nothing either. Then the pool changed, with a failing check: the check,
    the host failed, no daemon-reload (a pool is no unit), no reload of php-fpm or nginx;
    rollback.yml puts the pool back, then the check and one reload, after daemon-reload and
    before nginx's, never a restart of php-fpm. A link in the sessions folder's place fails the
    host, never followed."""
    log, fail = tmp_path / "services.log", tmp_path / "check-fails"
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for name, body in STAND_INS.items():
        (bin_ / name).write_text("#!/bin/sh\n" + body.format(log=log, fail=fail))
        (bin_ / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_}:{os.environ['PATH']}")

    # Each playbook run costs about a second a file: no database, no secrets file, and PHP's own
    # session GC instead of the cleanup timer; the folders and the reload are the same.
    lite = {"app": {"secrets_file": None}, "database": None, "php": {"session.gc_probability": 1}}
    php_site(tmp_path / "a/sites", "yayin", account, lite)
    php_site(tmp_path / "b/sites", "yayin", account, merge(lite, {"server": {"max_children": 8}}))
    a, b = (project(cli, fleet_file(tmp_path / v, {"web1": {"sites": ["sites"], "vars": LOCAL}}),
                    tmp_path / v / "deploy") for v in ("a", "b"))
    root = trees / "web1"
    root.mkdir()
    services_off = overrides(tmp_path / "services-off.yml", {"web1": root}, deploygen_manage_users=True)
    services_on = overrides(tmp_path / "services-on.yml", {"web1": root}, deploygen_manage_users=True,
                            deploygen_manage_services=True)
    pool, dropin = POOL.format("yayin"), DROPIN.format("yayin")

    def logged() -> list[str]:
        lines = log.read_text().splitlines() if log.exists() else []
        log.unlink(missing_ok=True)
        return lines

    proc, recap = play(playbook_binary, a, "site.yml", services_off, args=("--check", "--diff"))
    assert proc.returncode == 0 and recap["web1"][1] > 0, output(proc)
    assert f"+++ after: {a}/files/web1/{pool}" in proc.stdout, output(proc)
    assert "[WARNING]" not in proc.stdout.replace("root/etc' path", ""), output(proc)
    assert list(root.iterdir()) == []

    proc, recap = play(playbook_binary, a, "site.yml", services_off)
    assert proc.returncode == 0 and recap["web1"][1] > 0, output(proc)
    assert logged() == []
    assert_installed(a, "web1", root)
    installed = tree(root)
    assert installed["run/yayin"] == ("dir", "root", "root", "0o755")
    assert installed["var/lib/yayin"] == ("dir", "root", "root", "0o755")
    assert installed["var/lib/yayin/sessions"] == ("dir", account, account, "0o700")
    for path in (pool, dropin):
        assert installed[path][:4] == ("file", "root", "root", "0o644"), path
        assert (root / path).read_bytes() == (a / "files/web1" / path).read_bytes()

    proc, recap = play(playbook_binary, a, "site.yml", services_on)
    assert proc.returncode == 0 and recap["web1"][1] == 0, output(proc)
    assert logged() == [] and tree(root) == installed

    fail.touch()
    proc, recap = play(playbook_binary, b, "site.yml", services_on)
    assert proc.returncode != 0 and recap["web1"][3] == 1, output(proc)
    assert "failed to post process the configuration" in proc.stdout, output(proc)
    # The check failed: the master and nginx keep what they run.
    assert logged() == ["php-fpm8.2 -t"]
    assert (root / pool).read_bytes() == (b / "files/web1" / pool).read_bytes()

    fail.unlink()
    proc, recap = play(playbook_binary, b, "rollback.yml", services_on)
    assert proc.returncode == 0 and recap["web1"][1] > 0, output(proc)
    lines = logged()
    assert lines.count("php-fpm8.2 -t") == 1 and lines.count("systemctl reload php8.2-fpm.service") == 1, lines
    assert not [line for line in lines if "restart" in line or " stop " in line], lines
    order = [lines.index(line) for line in ("systemctl daemon-reload", "php-fpm8.2 -t",
                                             "systemctl reload php8.2-fpm.service", "nginx -t",
                                             "systemctl reload nginx")]
    assert order == sorted(order), lines
    assert tree(root)[pool] == installed[pool]

    sessions = root / "var/lib/yayin/sessions"
    elsewhere = trees / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    sessions.rmdir()
    sessions.symlink_to(elsewhere)
    proc, recap = play(playbook_binary, a, "site.yml", services_off)
    assert proc.returncode != 0 and recap["web1"][3] == 1, output(proc)
    assert f"{sessions} already exists as a link" in proc.stdout, output(proc)
    info = elsewhere.stat()
    assert (info.st_uid, oct(info.st_mode & 0o7777)) == (0, "0o755")  # never the app's
