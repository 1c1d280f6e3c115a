"""`deploygen ansible FLEET -o DIR`: the project it writes, run by the real ansible-playbook.

No mocks: every playbook run is ansible-playbook itself, into temporary root prefixes (each
host's `/` is a folder), over `ansible_connection=local` and over real SSH (tests/local_servers:
sshd on 127.0.0.1), its PostgreSQL tasks against a real cluster. Services stay off
(`deploygen_manage_services: false`): systemd is not PID 1 here, and this machine's nginx is
not the tree's; the handlers are checked in site.yml instead.
"""

from __future__ import annotations

import grp
import hashlib
import json
import os
import pwd
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from conftest import BASE_SITE, merge, require_binary
from local_servers import Postgres, Sshd

from deploygen.ansible.host_data import SHARED, STEPS
from deploygen.fleet.model import INVENTORY_VARIABLES

RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)",
                   re.MULTILINE)


@pytest.fixture(scope="module")
def playbook_binary() -> str:
    return require_binary("ansible-playbook")


@pytest.fixture(scope="module")
def postgres():
    require_binary("postgres", "/usr/lib/postgresql/15/bin/postgres")
    with Postgres() as server:
        yield server


@pytest.fixture
def sshd():
    with Sshd(require_binary("sshd", "/usr/sbin/sshd"), require_binary("ssh-keygen"), require_binary("ssh")) as server:
        yield server


def site_file(folder: Path, name: str, overrides: dict | None = None) -> Path:
    """A site like conftest's BASE_SITE, named `name`, whose venv is this Python's: its units'
    ExecStart (bin/gunicorn, bin/python) exists, as systemd-analyze verify wants."""
    data = merge(BASE_SITE, {"name": name, "domains": [f"{name}.example.com"],
                             "app": {"root": f"/var/www/{name}", "venv": sys.prefix,
                                     "secrets_file": f"/etc/{name}/secrets.env"},
                             "server": {"bind": f"unix:/run/{name}/gunicorn.sock"},
                             "database": {"name": f"{name}_db", "role": name}})
    data = merge(data, overrides or {})
    path = folder / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def fleet_file(folder: Path, hosts: dict) -> Path:
    """hosts: {HOST: {"sites": [...], "vars": {...}}}, every host at 127.0.0.1."""
    path = folder / "fleet.yaml"
    path.write_text(yaml.safe_dump({"hosts": {name: {"address": "127.0.0.1", **spec}
                                              for name, spec in hosts.items()}}, sort_keys=False))
    return path


LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}


def overrides(path: Path, roots: dict[str, Path], **variables) -> Path:
    """An inventory of the test's own, read after the project's: each host's root, services off."""
    data = {"all": {"hosts": {host: {"deploygen_root": f"{root}/"} for host, root in roots.items()},
                    "vars": {"deploygen_manage_services": False, "deploygen_manage_postgres": False,
                             **variables}}}
    path.write_text(yaml.safe_dump(data))
    return path


def secrets(root: Path, site: str) -> None:
    """The secrets file an operator writes by hand, as check-secrets wants it: root's, 0600."""
    path = root / "etc" / site / "secrets.env"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("FLASK_SECRET_KEY=not-a-real-secret-but-long-enough-0123456789abcdef\n"
                    f"DATABASE_URL=postgresql://{site}@127.0.0.1/{site}_db\n")
    os.chown(path, 0, 0)
    path.chmod(0o600)


@pytest.fixture
def trees():
    """A folder for the hosts' roots. check-secrets refuses a secrets file below a folder others
    may write in (/tmp, where pytest's tmp_path is): this one is in root's home, root's only."""
    if os.geteuid() != 0:
        pytest.skip("the project installs root:root files: run as root (as .ci/run does)")
    base = Path(tempfile.mkdtemp(prefix="deploygen-ansible-", dir=Path.home()))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def project(cli, fleet: Path, out: Path) -> Path:
    result = cli("ansible", fleet, "-o", out)
    assert result.exit_code == 0, result.stderr
    return out


def play(binary: str, out: Path, playbook: str, *inventories: Path, args: tuple[str, ...] = ()):
    """ansible-playbook on the project; (the process, {host: (ok, changed, unreachable, failed)})."""
    work = out.parent / "ansible-home"
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_HOME": str(work), "ANSIBLE_LOCAL_TEMP": str(work / "tmp"),
           "ANSIBLE_REMOTE_TMP": str(work / "remote"), "PYTHONDONTWRITEBYTECODE": "1",
           "ANSIBLE_DEPRECATION_WARNINGS": "0"}
    command = [binary, "-i", str(out / "inventory.yml")]
    for inventory in inventories:
        command += ["-i", str(inventory)]
    proc = subprocess.run([*command, str(out / playbook), *args], capture_output=True, text=True, env=env,
                          cwd=out.parent, timeout=300, check=False)
    recap = {m[0]: tuple(int(n) for n in m[1:5]) for m in RECAP.findall(proc.stdout)}
    return proc, recap


def output(proc) -> str:
    return f"exit {proc.returncode}\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"


def tree(root: Path) -> dict[str, tuple]:
    """Every path under root: (kind, owner, group, mode, sha256 or link target)."""
    found = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        owner, group = pwd.getpwuid(info.st_uid).pw_name, grp.getgrgid(info.st_gid).gr_name
        if path.is_symlink():
            found[str(path.relative_to(root))] = ("link", os.readlink(path))
        elif path.is_dir():
            found[str(path.relative_to(root))] = ("dir", owner, group, oct(info.st_mode & 0o7777))
        else:
            found[str(path.relative_to(root))] = ("file", owner, group, oct(info.st_mode & 0o7777),
                                                  hashlib.sha256(path.read_bytes()).hexdigest())
    return found


def assert_installed(out: Path, host: str, root: Path) -> None:
    """Every file host_vars lists is under root with its bytes, root:root and its mode; each site's link."""
    data = yaml.safe_load((out / "host_vars" / f"{host}.yml").read_text().replace("!unsafe ", ""))
    for f in data["deploygen_files"]:
        path = root / f["dest"].lstrip("/")
        assert path.read_bytes() == (out / f["src"]).read_bytes(), f["dest"]
        info = path.stat()
        assert (info.st_uid, info.st_gid) == (0, 0), f["dest"]
        assert oct(info.st_mode & 0o7777) == oct(int(f["mode"], 8)), f["dest"]
    for site in data["deploygen_sites"]:
        link = root / site["nginx_enabled"].lstrip("/")
        assert os.readlink(link) == f"../sites-available/{site['name']}.conf"
        assert link.resolve() == (root / site["nginx_site"].lstrip("/")).resolve()


# What each test costs is mostly ansible-playbook's: about a third of a second per module run
# on 2 cores. Each test runs as few playbooks as what it proves needs.


def test_local_install_second_run_change_and_rollback(cli, playbook_binary, trees, postgres, tmp_path):
    """One host into a temp root, over ansible_connection=local:
    --syntax-check and --check --diff (which changes nothing); the first install, which stops
    at the secrets file the operator has not written yet, after creating the app's account;
    the install once it is written, PostgreSQL role, database and timeouts too; a second run
    that changes nothing; then a change (deploy B) and rollback.yml, which puts A back to the
    byte, and A's timeouts in PostgreSQL."""
    account = f"dgans{random.randrange(10_000, 99_999)}"  # a throwaway user and group, removed below
    app = {"app": {"user": account, "group": account}}
    site_file(tmp_path / "a/sites", "shop", app)
    # B: other timeouts, and a session store whose cleanup adds a service, a timer and a script.
    site_file(tmp_path / "b/sites", "shop", merge(app, {"timeouts": {"request": "90s"},
                                                         "session": {"store": "filesystem"}}))
    out, b = (project(cli, fleet_file(tmp_path / v, {"web1": {"sites": ["sites"], "vars": LOCAL}}),
                      tmp_path / v / "deploy") for v in ("a", "b"))
    root = trees / "web1"
    root.mkdir()
    # The default reaches a local server as the postgres OS user over its socket (become); that
    # user cannot run this test's Python (under /root, 0700), so the test takes the network way.
    inventory = overrides(tmp_path / "test-inventory.yml", {"web1": root}, deploygen_manage_postgres=True,
                          deploygen_manage_users=True, deploygen_postgres_login_host="127.0.0.1",
                          deploygen_postgres_port=postgres.port, deploygen_postgres_become=False)

    def statement_timeout(project_dir: Path) -> str:
        rendered = (project_dir / "files/web1/etc/deploygen/shop/postgres.sql").read_text()
        return re.search(r"SET statement_timeout = '([^']+)'", rendered)[1]

    def shown_timeout() -> str:
        with postgres.connect("shop", "shop_db") as conn:  # as the app connects
            return conn.execute("SHOW statement_timeout").fetchone()[0]

    try:
        for playbook in ("site.yml", "rollback.yml"):
            proc, _ = play(playbook_binary, out, playbook, inventory, args=("--syntax-check",))
            assert proc.returncode == 0, output(proc)

        proc, recap = play(playbook_binary, out, "site.yml", inventory, args=("--check", "--diff"))
        assert proc.returncode == 0 and recap["web1"][1] > 0, output(proc)
        assert "+++ after" in proc.stdout and "[WARNING]" not in proc.stdout.replace("root/etc' path", "")
        assert list(root.iterdir()) == []  # --check changed nothing (and skipped copy's validate:)

        proc, recap = play(playbook_binary, out, "site.yml", inventory)
        assert proc.returncode != 0 and recap["web1"][3] == 1, output(proc)
        assert f"{root}/etc/shop/secrets.env does not exist" in proc.stdout, output(proc)
        assert pwd.getpwnam(account).pw_shell == "/usr/sbin/nologin"
        assert "www-data" in grp.getgrnam(account).gr_mem  # nginx may enter the app's socket folder
        assert not os.path.lexists(root / "etc/nginx/sites-enabled/shop.conf")  # never enabled before its checks

        secrets(root, "shop")
        proc, recap = play(playbook_binary, out, "site.yml", inventory)
        assert proc.returncode == 0 and recap["web1"][1] > 0, output(proc)
        assert_installed(out, "web1", root)
        for folder in ("var/www/_letsencrypt", "etc/deploygen/shop", "var/lib/deploygen"):
            assert tree(root)[folder] == ("dir", "root", "root", "0o755")
        record = json.loads((root / "var/lib/deploygen/last-deploy.json").read_text())
        # The stopped first run recorded what it installed; this one kept that and added the link.
        assert record["complete"] is True and all(c["absent"] for c in record["changes"])
        assert {c["kind"] for c in record["changes"]} >= {"nginx-site", "systemd-service", "nginx-enabled"}
        assert shown_timeout() == statement_timeout(out)

        deployed_a = tree(root)
        proc, recap = play(playbook_binary, out, "site.yml", inventory)
        assert proc.returncode == 0 and recap["web1"][1] == 0, output(proc)
        assert tree(root) == deployed_a

        proc, recap = play(playbook_binary, b, "site.yml", inventory)
        assert proc.returncode == 0 and recap["web1"][1] > 0, output(proc)
        assert (root / "etc/systemd/system/shop-session-cleanup.timer").exists()
        assert shown_timeout() == statement_timeout(b) != statement_timeout(out)

        proc, recap = play(playbook_binary, b, "rollback.yml", inventory)
        assert proc.returncode == 0 and recap["web1"][1] > 0, output(proc)
        after = tree(root)
        # Beside A's files: copy's backups (B's deploy kept A's, the rollback B's), and the
        # record, set aside. Everything else is A's, to the byte, owner and mode.
        backups = {p for p in after if re.search(r"\.\d+\.\d{4}-\d\d-\d\d@\d\d:\d\d:\d\d~$", p)}
        assert backups and "var/lib/deploygen/rolled-back.json" in after
        mine = ("var/lib/deploygen/",)
        assert ({p: v for p, v in after.items() if p not in backups and not p.startswith(mine)}
                == {p: v for p, v in deployed_a.items() if not p.startswith(mine)})
        assert shown_timeout() == statement_timeout(out)  # A's postgres.sql, re-applied
    finally:
        subprocess.run(["userdel", account], capture_output=True, check=False)
        subprocess.run(["groupdel", account], capture_output=True, check=False)


def test_fleet_over_ssh_then_a_broken_host_stops_the_rollout(cli, playbook_binary, trees, sshd, tmp_path):
    """Two inventory hosts over real SSH (one sshd, two aliases), each with its own root and
    sites, deployed; then web1's server block fails nginx-check (its certificate is not there):
    copy's validate: keeps it out, web1 fails, and web2's change, later in the rollout, is
    never made."""
    # Sites without a database or a secrets file: fewer files, each a few SSH round trips.
    lite = {"app": {"secrets_file": None}, "database": None, "server": {"workers": 1}}
    site_file(tmp_path / "v1/web1", "shop", lite)
    site_file(tmp_path / "v1/web2", "blog", lite)
    site_file(tmp_path / "v2/web1", "shop", merge(lite, {
        "tls": {"certificate": "/nonexistent/fullchain.pem", "certificate_key": "/nonexistent/privkey.pem"},
        "session": {"cookie": {"secure": True}}}))
    site_file(tmp_path / "v2/web2", "blog", merge(lite, {"timeouts": {"request": "90s"}}))
    # ssh's own options (the test's known_hosts, its control sockets) are no fleet file's to set
    # (ProxyCommand= runs anything on the controller): the test's inventory carries them.
    ssh = sshd.inventory_vars()
    connection = {k: v for k, v in ssh.items() if k in INVENTORY_VARIABLES}
    ssh_own = {k: v for k, v in ssh.items() if k not in INVENTORY_VARIABLES and k != "ansible_host"}
    roots = {host: trees / host for host in ("web1", "web2")}
    for root in roots.values():
        root.mkdir()
    inventory = overrides(tmp_path / "test-inventory.yml", roots, ansible_python_interpreter=sys.executable,
                          **ssh_own)

    def deploy(version: str):
        fleet = fleet_file(tmp_path / version, {host: {"sites": [host], "vars": connection} for host in roots})
        out = project(cli, fleet, tmp_path / version / "deploy")
        return out, *play(playbook_binary, out, "site.yml", inventory)

    out, proc, recap = deploy("v1")
    assert proc.returncode == 0, output(proc)
    assert set(recap) == {"web1", "web2"} and all(r[1] > 0 and r[3] == 0 for r in recap.values())
    assert_installed(out, "web1", roots["web1"])
    assert_installed(out, "web2", roots["web2"])
    assert not (roots["web1"] / "etc/deploygen/blog").exists() and not (roots["web2"] / "etc/deploygen/shop").exists()

    deployed = {host: tree(root) for host, root in roots.items()}
    out, proc, recap = deploy("v2")
    assert proc.returncode != 0, output(proc)
    assert "cannot load certificate" in proc.stdout and "/nonexistent/fullchain.pem" in proc.stdout, output(proc)
    assert recap["web1"][3] == 1 and "web2" not in recap, output(proc)
    assert tree(roots["web2"]) == deployed["web2"]  # never touched
    site = "etc/nginx/sites-available/shop.conf"
    assert tree(roots["web1"])[site] == deployed["web1"][site]  # the candidate never replaced it
    record = json.loads((roots["web1"] / "var/lib/deploygen/last-deploy.json").read_text())
    assert record["complete"] is False  # what web1 got before it failed, for rollback.yml
    assert [c["kind"] for c in record["changes"]] == ["manifest"] and record["changes"][0]["backup"]


# The project itself, without running it.


def test_project_is_deterministic_and_replaces_only_its_own_folder(cli, tmp_path):
    site_file(tmp_path / "sites", "shop")
    fleet = fleet_file(tmp_path, {"web1": {"sites": ["sites"]}, "web2": {"sites": ["sites"]}})
    first = tree(project(cli, fleet, tmp_path / "one"))
    assert first == tree(project(cli, fleet, tmp_path / "two"))
    assert tree(project(cli, fleet, tmp_path / "one")) == first  # replaces its own project
    layout = {p for p, v in first.items() if v[0] == "file"}
    assert {"inventory.yml", "site.yml", "rollback.yml", "handlers.yml", "vars.yml", ".deploygen.json",
            "host_vars/web1.yml", "host_vars/web2.yml", "files/web1/etc/nginx/sites-available/shop.conf",
            "files/web2/etc/systemd/system/shop.service"} <= layout

    edited = tmp_path / "one" / "inventory.yml"
    edited.write_text(edited.read_text() + "# mine\n")
    result = cli("ansible", fleet, "-o", tmp_path / "one")
    assert result.exit_code == 2 and "inventory.yml was changed since deploygen wrote it" in result.stderr
    assert edited.read_text().endswith("# mine\n")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    result = cli("ansible", fleet, "-o", foreign)
    assert result.exit_code == 2 and f"{foreign}:1:1: " in result.stderr
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    assert not [p for p in tmp_path.iterdir() if ".deploygen-" in p.name]  # no staging left behind


def test_bad_input_and_error_findings_write_nothing(cli, tmp_path):
    site = site_file(tmp_path / "sites", "shop")
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("hosts:\n  web1:\n    address: 127.0.0.1\n    sites: [sites]\n"
                     "    vars: {ansible_user: '{{ lookup(\"pipe\", \"id\") }}'}\n")
    result = cli("ansible", fleet, "-o", tmp_path / "out")
    assert result.exit_code == 2 and not (tmp_path / "out").exists()
    assert result.stderr.startswith(f"{fleet}:5:12: hosts.web1.vars.ansible_user: "), result.stderr
    fleet.write_text("hosts:\n  web1:\n    address: 127.0.0.1\n    sites: [missing.yaml, sites]\n")
    result = cli("ansible", fleet, "-o", tmp_path / "out")
    assert result.exit_code == 2 and not (tmp_path / "out").exists()
    assert result.stderr == f"{fleet}:4:13: hosts.web1.sites: missing.yaml: no such file or folder\n"
    result = cli("ansible", site, "-o", tmp_path / "out")
    assert result.exit_code == 2 and "not a fleet file" in result.stderr

    broken = site_file(tmp_path / "broken", "shop", {"timeouts": {"nginx": {"proxy_read_timeout": "5s"}}})
    result = cli("ansible", fleet_file(tmp_path / "broken", {"web1": {"sites": [broken.name]}}), "-o", tmp_path / "out")
    assert result.exit_code == 1 and "error" in result.stderr and "nothing written" in result.stderr
    assert not (tmp_path / "out").exists()


def test_every_string_from_a_site_or_fleet_is_unsafe_for_ansible(cli, tmp_path):
    """Ansible templates the strings it trusts in inventory and host_vars: each string deploygen
    takes from a site or fleet file is !unsafe (untrusted), or, when YAML would read it as a
    number or a boolean, a quoted string, which holds no template mark; the only templates
    are deploygen's own."""
    require_binary("ansible-playbook")  # ansible-core, whose loader reads the files as ansible-playbook does
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import is_trusted_as_template

    site_file(tmp_path / "sites", "shop")
    fleet = fleet_file(tmp_path, {"web1": {"sites": ["sites"], "vars": {"ansible_user": "deploy",
                                                                       "ansible_port": 2222}}})
    out = project(cli, fleet, tmp_path / "deploy")
    trusted, untrusted = [], []

    def walk(value):
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str):
            (trusted if is_trusted_as_template(value) else untrusted).append(str(value))

    for name in ("inventory.yml", "host_vars/web1.yml"):
        walk(DataLoader().load_from_file(str(out / name), trusted_as_template=True))
    templates = {value for value in trusted if "{{" in value or "{%" in value}
    assert templates == {"{{ deploygen_manage_services }}", "{{ deploygen_systemd_verify }}",
                         "/bin/sh {{ deploygen_prefix }}/etc/deploygen/shop/nginx-check %s"}
    for value in ("127.0.0.1", "deploy", "shop", "shop_db", "/etc/shop/secrets.env",
                  "/etc/nginx/sites-available/shop.conf", "files/web1/etc/deploygen/shop/gunicorn.conf.py"):
        assert value in untrusted and value not in trusted, value
    assert any(value.startswith("SELECT ") for value in untrusted)
    assert not any(value.startswith(("SELECT ", "ALTER ")) for value in trusted)


def test_site_yml_handlers_and_steps(cli, tmp_path):
    """The handlers run in this order (Ansible runs them in the order they are written), each
    guarded so that a tree that is not a live system is left alone; each copy step notifies
    what host_vars says its files notify."""
    site_file(tmp_path / "sites", "shop")
    out = project(cli, fleet_file(tmp_path, {"web1": {"sites": ["sites"]}}), tmp_path / "deploy")
    handlers = yaml.safe_load((out / "handlers.yml").read_text())
    assert [h["name"] for h in handlers] == ["Reload systemd", "Restart the changed sites", *SHARED,
                                            "Test the nginx configuration", "Reload nginx"]
    assert all(h["when"] == "deploygen_manage_services | bool" for h in handlers)
    assert handlers[0]["ansible.builtin.systemd_service"] == {"daemon_reload": True}
    assert handlers[4]["ansible.builtin.command"]["argv"] == ["nginx", "-t"]
    assert handlers[5]["ansible.builtin.systemd_service"] == {"name": "nginx", "state": "reloaded"}
    for playbook in ("site.yml", "rollback.yml"):
        play_ = yaml.safe_load((out / playbook).read_text())[0]
        assert play_["serial"] == 1 and play_["max_fail_percentage"] == 0
        assert play_["handlers"] == [{"name": "Handlers, in the order they run",
                                      "ansible.builtin.import_tasks": "handlers.yml"}]
    tasks = yaml.safe_load((out / "site.yml").read_text())[0]["tasks"]
    names = [t["name"] for t in tasks]
    assert names.index("The apps' system groups") < names.index("The apps' system users (no login shell, no home created)")
    block = next(t for t in tasks if "block" in t)
    steps = {}
    for task in block["block"]:
        match = re.search(r"selectattr\('step', 'equalto', '(\w+)'\)", str(task.get("loop", "")))
        if match:
            steps[match[1]] = tuple(task.get("notify", ()))
            assert task["ansible.builtin.copy"]["backup"] is True
    assert steps == STEPS
    # Accounts and folders before the block; in it the files, the secrets, PostgreSQL, the link last.
    modules = [next(k for k in t if k.startswith(("ansible.", "community."))) for t in block["block"]]
    assert modules.index("ansible.builtin.command") < modules.index("community.postgresql.postgresql_query")
    assert modules[-1] == "ansible.builtin.file" and block["block"][-1]["ansible.builtin.file"]["state"] == "link"
    host = yaml.safe_load((out / "host_vars/web1.yml").read_text().replace("!unsafe ", ""))
    for f in host["deploygen_files"]:
        assert tuple(f["notify"]) == STEPS[f["step"]]
        assert (f["owner"], f["group"]) == ("root", "root")
    validated = {f["kind"]: f["validate"] for f in host["deploygen_files"] if f["validate"]}
    assert validated == {"nginx-site": "/bin/sh {{ deploygen_prefix }}/etc/deploygen/shop/nginx-check %s",
                         "systemd-service": "{{ deploygen_systemd_verify }}"}
