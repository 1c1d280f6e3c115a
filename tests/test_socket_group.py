"""DG703 nginx-cannot-reach-socket: nginx's workers must be let into gunicorn's unix socket.

On servers (`deploygen audit --root`): the unit's User=/Group=/RuntimeDirectory=/
RuntimeDirectoryMode=, gunicorn's umask, a socket unit's SocketUser=/SocketGroup=/SocketMode=,
nginx.conf's `user` and the tree's /etc/group (and /etc/passwd for a unit without Group=). On
site files the same keys are derived, and deploygen's first install puts nginx's user in the
app's group: the rule never fires there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import BASE_SITE, REPO, SITES, merge

from deploygen.rules.dg703_nginx_cannot_reach_socket import NginxCannotReachSocket

UNIT = """[Unit]
Description=shop

[Service]
User=shop
Group=shop
RuntimeDirectory=shop
RuntimeDirectoryMode={mode}
ExecStart=/srv/shop/venv/bin/gunicorn {flags}--bind {bind} app:app
"""
GROUP_LINE = 6  # Group=shop in UNIT
SITE = """server {{
    listen 80;
    server_name shop.example.com;
    location / {{
        proxy_pass {target};
        proxy_set_header Host $host;
    }}
}}
"""
GROUPS = "root:x:0:\nwww-data:x:33:\nshop:x:999:{members}\n"
PASSWD = "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n" \
         "shop:x:999:999::/srv/shop:/usr/sbin/nologin\n"


def server(tmp_path: Path, *, bind: str = "unix:/run/shop/gunicorn.sock", mode: str = "0750", flags: str = "",
           unit: str | None = None, members: str = "", group: str | None = None, passwd: str | None = None,
           nginx_conf: str | None = "user www-data;\n", gunicorn: str | None = None,
           socket: str | None = None) -> Path:
    """A copy of a server's tree: shop.service, nginx proxying to its bind, its accounts."""
    root = tmp_path / "root"
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "etc/nginx/sites-enabled").mkdir(parents=True)
    (root / "etc/systemd/system/shop.service").write_text(unit or UNIT.format(mode=mode, flags=flags, bind=bind))
    target = f"http://unix:{bind.removeprefix('unix:')}" if bind.startswith("unix:") else f"http://{bind}"
    (root / "etc/nginx/sites-enabled/shop").write_text(SITE.format(target=target))
    if nginx_conf is not None:
        (root / "etc/nginx/nginx.conf").write_text(
            nginx_conf + "events {}\nhttp {\n    include /etc/nginx/sites-enabled/*;\n}\n")
    if group is not None or members is not None:
        (root / "etc/group").write_text(group if group is not None else GROUPS.format(members=members))
    if passwd is not None:
        (root / "etc/passwd").write_text(passwd)
    if gunicorn is not None:
        (root / "srv/shop").mkdir(parents=True)
        (root / "srv/shop/gunicorn.conf.py").write_text(gunicorn)
    if socket is not None:
        (root / "etc/systemd/system/shop.socket").write_text(socket)
    return root


def audit(cli, root: Path) -> tuple[int, list[dict]]:
    result = cli("audit", "--root", root, "--format", "json")
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def dg703(report: list[dict], severity: str | None = None) -> list[dict]:
    return [e for e in report if e.get("code") == "DG703" and (severity is None or e["severity"] == severity)]


def said(report: list[dict]) -> list[str]:
    return [e["message"] for e in report if e["severity"] == "read"]


# -- on a server ----------------------------------------------------------------------------------

def test_fires_when_nginx_is_not_in_the_apps_group(cli, tmp_path):
    root = server(tmp_path)
    status, report = audit(cli, root)
    assert status == 1
    [finding] = dg703(report)
    assert finding["severity"] == "error"
    assert (finding["file"], finding["line"]) == (str(root / "etc/systemd/system/shop.service"), GROUP_LINE)
    assert finding["detail"] == "nginx.user=www-data not in systemd.Group=shop"
    assert finding["settings"] == {"nginx.user": "www-data", "systemd.Group": "shop",
                                   "systemd.RuntimeDirectoryMode": "0750", "nginx.user.groups": "[www-data]"}
    message = finding["message"]
    assert "/run/shop (RuntimeDirectoryMode=0750, shop:shop)" in message
    assert "www-data is neither shop nor in group shop" in message
    assert "(13: Permission denied)" in message
    assert "usermod -aG shop www-data, then systemctl reload nginx" in message
    # The text format prints the Group= line and exits 1.
    text = cli("audit", "--root", root)
    assert text.exit_code == 1
    assert f"shop.service:{GROUP_LINE}:1: DG703 error [nginx.user=www-data not in systemd.Group=shop]" in text.stdout


def test_quiet_when_nginx_is_in_the_apps_group(cli, tmp_path):
    status, report = audit(cli, server(tmp_path, members="www-data"))
    assert status == 0 and dg703(report) == []


def test_quiet_when_the_directive_gives_nginx_the_apps_group(cli, tmp_path):
    status, report = audit(cli, server(tmp_path, nginx_conf="user www-data shop;\n"))
    assert status == 0 and dg703(report) == []


def test_quiet_for_a_tcp_bind_even_without_accounts(cli, tmp_path):
    status, report = audit(cli, server(tmp_path, bind="127.0.0.1:8000", members=None))
    assert status == 0 and dg703(report) == []  # not skipped either: nothing to permit
    assert not any("etc/group" in line for line in said(report))


def test_quiet_when_others_may_enter_the_folder_and_write_the_socket(cli, tmp_path):
    status, report = audit(cli, server(tmp_path, mode="0755"))
    assert status == 0 and dg703(report) == []
    # The same with gunicorn's umask written as its default.
    status, report = audit(cli, server(tmp_path / "b", mode="0755", flags="--umask 0 "))
    assert status == 0 and dg703(report) == []


def test_gunicorns_umask_closes_the_socket_in_an_open_folder(cli, tmp_path):
    root = server(tmp_path, mode="0755", flags="-c /srv/shop/gunicorn.conf.py ", gunicorn="umask = 0o007\n")
    status, report = audit(cli, root)
    assert status == 1
    [finding] = dg703(report)
    assert "write to the socket (umask=0007: mode 0770, shop:shop)" in finding["message"]
    assert finding["settings"]["gunicorn.umask"] == "0007"
    # The unit's UMask= never reaches the socket: gunicorn sets its own around bind().
    unit = UNIT.format(mode="0755", flags="", bind="unix:/run/shop/gunicorn.sock") + "UMask=0077\n"
    status, report = audit(cli, server(tmp_path / "b", unit=unit))
    assert status == 0 and dg703(report) == []


def test_a_group_whose_bits_bar_it_too_says_both(cli, tmp_path):
    root = server(tmp_path, mode="0755", flags="--umask 077 ")
    [finding] = dg703(audit(cli, root)[1])
    assert "usermod -aG shop www-data, let the group write to it" in finding["message"]
    # nginx in the group, and the group still barred: the mode is the fix, located at it.
    root = server(tmp_path / "b", mode="0700", members="www-data")
    [finding] = dg703(audit(cli, root)[1])
    assert finding["line"] == GROUP_LINE + 2  # RuntimeDirectoryMode=
    assert finding["detail"] == "nginx.user=www-data denied by systemd.RuntimeDirectoryMode=0700"
    assert "RuntimeDirectoryMode=0750" in finding["message"]


def test_missing_etc_group_skips_the_rule_and_says_why(cli, tmp_path):
    status, report = audit(cli, server(tmp_path, members=None))
    assert status == 0
    [skipped] = dg703(report, "skipped")
    assert "needs nginx.user.groups" in skipped["skipped"] and "/etc/group" in skipped["skipped"]
    assert any(line.startswith("not read: ") and "etc/group: No such file or directory" in line
               and "DG703 skipped" in line for line in said(report))


def test_etc_group_is_read_inside_root_only(cli, tmp_path):
    """A link out of ROOT means ROOT's file: the auditing machine's /etc/group is never read."""
    outside = tmp_path / "outside-group"
    outside.write_text(GROUPS.format(members="www-data"))
    root = server(tmp_path, members=None)
    os.symlink(str(outside), root / "etc/group")
    status, report = audit(cli, root)
    assert status == 0 and dg703(report, "skipped")
    assert any("etc/group" in line and "DG703 skipped" in line for line in said(report))


def test_an_etc_group_that_is_no_small_regular_file_is_not_read(cli, tmp_path):
    root = server(tmp_path, group="shop:x:999:\n" + "x" * (1 << 20))
    status, report = audit(cli, root)
    assert status == 0 and dg703(report, "skipped")
    assert any("bytes allowed" in line and "DG703 skipped" in line for line in said(report))
    root = server(tmp_path / "fifo", members=None)
    os.mkfifo(root / "etc/group")
    status, report = audit(cli, root)
    assert status == 0 and dg703(report, "skipped")  # refused at once, never waited on


def test_a_unit_without_group_runs_with_its_users_primary_group(cli, tmp_path):
    unit = UNIT.format(mode="0750", flags="", bind="unix:/run/shop/gunicorn.sock").replace("Group=shop\n", "")
    root = server(tmp_path, unit=unit, passwd=PASSWD)
    [finding] = dg703(audit(cli, root)[1])
    assert finding["line"] == GROUP_LINE - 1  # User=, where Group= would go
    assert finding["settings"]["systemd.Group"] == "shop"
    # Without /etc/passwd the group is unknown: skipped, and said.
    root = server(tmp_path / "b", unit=unit)
    status, report = audit(cli, root)
    assert status == 0
    [skipped] = dg703(report, "skipped")
    assert "systemd.Group" in skipped["skipped"]
    assert any("etc/passwd" in line and "DG703 skipped" in line for line in said(report))


def test_nginx_conf_without_user_runs_nginxs_compiled_in_user(cli, tmp_path):
    root = server(tmp_path, nginx_conf="", members="www-data")
    [finding] = dg703(audit(cli, root)[1])
    assert finding["settings"]["nginx.user"] == "nobody"
    assert "run as nobody (nginx.conf sets no `user`" in finding["message"]
    assert "usermod -aG shop nobody" in finding["message"]
    # `nobody` in the group: quiet.
    root = server(tmp_path / "b", nginx_conf="", members="nobody")
    assert dg703(audit(cli, root)[1]) == []


def test_without_nginx_conf_debians_www_data(cli, tmp_path):
    root = server(tmp_path, nginx_conf=None, members="www-data")
    assert dg703(audit(cli, root)[1]) == []
    root = server(tmp_path / "b", nginx_conf=None)
    [finding] = dg703(audit(cli, root)[1])
    assert finding["settings"]["nginx.user"] == "www-data" and "Debian's says `user www-data;`" in finding["message"]


SOCKET = "[Socket]\nListenStream=/run/shop.sock\n{extra}\n[Install]\nWantedBy=sockets.target\n"


def test_a_socket_unit_decides_with_its_own_owner_and_mode(cli, tmp_path):
    # The unit's --bind is ignored: systemd hands gunicorn the socket it made, /run/shop.sock.
    unit = UNIT.format(mode="0750", flags="", bind="unix:/run/shop/gunicorn.sock")
    extra = "SocketUser=shop\nSocketGroup=shop\nSocketMode=0660"
    root = server(tmp_path, unit=unit, bind="unix:/run/shop.sock", socket=SOCKET.format(extra=extra))
    [finding] = dg703(audit(cli, root)[1])
    assert finding["line"] == 4 and finding["file"].endswith("shop.socket")  # SocketGroup=
    assert finding["settings"]["systemd.SocketMode"] == "0660"
    assert "write to the socket (SocketMode=0660, shop:shop)" in finding["message"]
    assert "usermod -aG shop www-data" in finding["message"]
    root = server(tmp_path / "member", unit=unit, bind="unix:/run/shop.sock", socket=SOCKET.format(extra=extra),
                  members="www-data")
    assert dg703(audit(cli, root)[1]) == []
    # systemd's default SocketMode=0666: anyone may connect.
    root = server(tmp_path / "b", unit=unit, bind="unix:/run/shop.sock", socket=SOCKET.format(extra=""))
    assert dg703(audit(cli, root)[1]) == []


def test_a_socket_in_a_folder_no_unit_creates_is_skipped(cli, tmp_path):
    root = server(tmp_path, bind="unix:/srv/shop/run/gunicorn.sock")
    [skipped] = dg703(audit(cli, root)[1], "skipped")
    assert "/srv" in skipped["skipped"] and "RuntimeDirectory=" in skipped["skipped"]


def test_values_from_the_server_reach_the_message_printable(cli, tmp_path):
    unit = UNIT.format(mode="0750", flags="", bind="unix:/run/shop/gunicorn.sock").replace(
        "Group=shop", "Group=sh\x1bop")
    root = server(tmp_path, unit=unit, group="root:x:0:\nsh\x1bop:x:999:\n")
    result = cli("audit", "--root", root)
    assert "\x1b" not in result.stdout
    # No user or group name either: skipped, and the reason says it printable.
    [skipped] = dg703(audit(cli, root)[1], "skipped")
    assert "systemd.Group=sh\\x1bop is no POSIX user or group name" in skipped["skipped"]


@pytest.mark.parametrize(("key", "value"), [
    ("Group", "shop;touch${IFS}/tmp/pwned"), ("Group", "shop$(reboot)"), ("User", "shop`id`"),
    ("User", "-shop"), ("Group", "sh op"), ("Group", "a" * 33),
])
def test_a_name_no_account_may_have_is_skipped_and_never_reaches_a_command(key, value, cli, tmp_path):
    """DG703 suggests `usermod -aG GROUP USER` with the server's own values: a unit's Group= is
    whatever its file says, and a suggested command is one someone pastes into a root shell."""
    unit = UNIT.format(mode="0750", flags="", bind="unix:/run/shop/gunicorn.sock").replace(
        f"{key}=shop", f"{key}={value}")
    accounts = GROUPS.format(members="") + f"{value}:x:998:\n"
    passwd = PASSWD + f"{value}:x:998:998::/srv/shop:/usr/sbin/nologin\n"
    root = server(tmp_path, unit=unit, group=accounts, passwd=passwd)
    _, report = audit(cli, root)
    assert dg703(report, "error") == []
    [skipped] = dg703(report, "skipped")
    assert f"systemd.{key}=" in skipped["skipped"] and "is no POSIX user or group name" in skipped["skipped"]
    assert "usermod" not in json.dumps(report)


def test_a_posix_name_with_a_dot_still_gets_its_fix(cli, tmp_path):
    unit = UNIT.format(mode="0750", flags="", bind="unix:/run/shop/gunicorn.sock").replace(
        "Group=shop", "Group=shop.web")
    root = server(tmp_path, unit=unit, group="root:x:0:\nwww-data:x:33:\nshop.web:x:999:\n")
    [finding] = dg703(audit(cli, root)[1])
    assert "fix: usermod -aG shop.web www-data, then systemctl reload nginx" in finding["message"]


# -- on site files --------------------------------------------------------------------------------

def test_no_shipped_site_fires_it(cli):
    result = cli("validate", "--format", "json", SITES)
    assert result.exit_code in (0, 1)
    assert [f for f in json.loads(result.stdout) if f.get("code") == "DG703"] == []


# gunicorn's sites: a PHP pool's socket is nginx's user's own (listen.owner; tests/test_kinds_php.py).
@pytest.mark.parametrize("site", sorted(p.name for p in SITES.glob("*.yaml") if "framework: php" not in p.read_text()))
def test_shipped_sites_derive_what_the_first_install_does(site):
    from deploygen.render.install import install_plan
    from deploygen.render.layout import targets
    from deploygen.rules.dg703_nginx_cannot_reach_socket import NginxCannotReachSocket
    from deploygen.rules.runner import contexts
    from deploygen.sitefile.load import load_site

    loaded, problems = load_site(str(SITES / site))
    assert loaded is not None, problems
    [context] = contexts([loaded])
    eff = context.effective
    assert NginxCannotReachSocket.needs(context) is None
    assert list(NginxCannotReachSocket().check(context)) == []
    app = loaded.site.app
    assert eff.value("nginx.user") == "www-data"
    assert eff.value("systemd.RuntimeDirectoryMode") == "0750" and eff.value("gunicorn.umask") == "0007"
    plan = install_plan(loaded.site, {t.role: t.path for t in targets(loaded.site)}, "www-data")
    groups = eff.value("nginx.user.groups")
    assert (app.group in groups) == (plan.join_group or app.group == "www-data")
    if plan.join_group:
        assert eff["nginx.user.groups"].provenance.how.startswith(f"first install: usermod -aG {app.group} www-data")


@pytest.mark.parametrize(("app", "nginx_user"), [({"user": "shop", "group": "root"}, "www-data"),
                                                ({"user": "shop", "group": "www-data"}, "nginx")])
def test_a_group_the_first_install_does_not_join_is_derived_so(app, nginx_user, tmp_path):
    """The first install joins only a group it creates: never root's, nor www-data's on a host whose
    nginx runs as another user. The derived groups say the same, so DG703 tells of the 502."""
    import yaml

    from deploygen.derive import derive
    from deploygen.render.install import install_plan
    from deploygen.render.layout import targets
    from deploygen.rules.base import SiteContext
    from deploygen.sitefile.load import load_site

    site = tmp_path / "shop.yaml"
    site.write_text(yaml.safe_dump(merge(BASE_SITE, {"app": app})))
    loaded, problems = load_site(str(site))
    assert loaded is not None, problems
    plan = install_plan(loaded.site, {t.role: t.path for t in targets(loaded.site)}, nginx_user)
    assert not plan.join_group and not plan.create_group
    context = SiteContext(loaded, derive(loaded, nginx_user))
    assert context.effective.value("nginx.user.groups") == [nginx_user]
    [finding] = list(NginxCannotReachSocket().check(context))
    assert f"may not enter /run/shop (RuntimeDirectoryMode=0750, shop:{app['group']})" in finding.message


def test_the_derived_modes_are_the_templates(tmp_path):
    """The derived keys are the rendered files' constants: the unit's and gunicorn's config's."""
    from deploygen.derive.gunicorn import GUNICORN_UMASK
    from deploygen.derive.systemd import RUNTIME_DIRECTORY_MODE

    unit = (REPO / "templates/systemd/site.service.j2").read_text().splitlines()
    assert f"RuntimeDirectoryMode={RUNTIME_DIRECTORY_MODE}" in unit
    config = (REPO / "templates/gunicorn/gunicorn.conf.py.j2").read_text().splitlines()
    assert f"umask = 0o{int(GUNICORN_UMASK, 8):03o}" in config


def test_a_fleet_hosts_nginx_user_joins_the_group(cli, tmp_path):
    import yaml

    from deploygen.fleet.contexts import fleet_contexts
    from deploygen.fleet.load import load_fleet

    (tmp_path / "sites").mkdir()
    site = merge(BASE_SITE, {"app": {"user": "shop", "group": "shop"}})
    (tmp_path / "sites/shop.yaml").write_text(yaml.safe_dump(site))
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump({"hosts": {
        "rhel": {"address": "10.0.0.1", "sites": ["sites/"], "nginx_user": "nginx"},
        "debian": {"address": "10.0.0.2", "sites": ["sites/"]}}}))
    by_host = {c.machine: c for c in fleet_contexts(load_fleet(str(tmp_path / "fleet.yaml")))}
    assert by_host["rhel"].effective.value("nginx.user") == "nginx"
    assert by_host["rhel"].effective.value("nginx.user.groups") == ["nginx", "shop"]
    assert by_host["debian"].effective.value("nginx.user.groups") == ["www-data", "shop"]
    how = by_host["debian"].effective["nginx.user.groups"].provenance.how
    assert how.startswith("first install: usermod -aG shop www-data")
    result = cli("validate", "--format", "json", tmp_path / "fleet.yaml")
    assert [f for f in json.loads(result.stdout) if f.get("code") == "DG703"] == []


def test_the_page(cli):
    from deploygen.rules.base import PAGE_SECTIONS

    result = cli("rules", "DG703")
    assert result.exit_code == 0
    assert result.stdout.startswith("# DG703 nginx-cannot-reach-socket (error)\n")
    for section in PAGE_SECTIONS:
        assert f"## {section}\n" in result.stdout
    assert "usermod -aG shop www-data" in result.stdout and "systemctl reload nginx" in result.stdout
    listing = cli("rules").stdout.splitlines()
    assert any(line.startswith("DG703  error    nginx-cannot-reach-socket") for line in listing)


def test_user_from_a_main_level_include(cli, tmp_path):
    root = server(tmp_path, nginx_conf="include /etc/nginx/main.d/*.conf;\n")
    (root / "etc/nginx/main.d").mkdir()
    (root / "etc/nginx/main.d/user.conf").write_text("user www-data shop;\n")
    assert dg703(audit(cli, root)[1]) == []


def test_one_finding_for_an_app_reached_from_several_locations(cli, tmp_path):
    root = server(tmp_path)
    (root / "etc/nginx/sites-enabled/shop").write_text(
        "server {\n    listen 80;\n    server_name shop.example.com;\n"
        "    location / { proxy_pass http://unix:/run/shop/gunicorn.sock; }\n"
        "    location /api/ { proxy_pass http://unix:/run/shop/gunicorn.sock; proxy_read_timeout 120s; }\n}\n")
    assert len(dg703(audit(cli, root)[1], "error")) == 1


def test_a_unit_run_as_root_is_not_fixed_by_joining_roots_group(cli, tmp_path):
    unit = "[Service]\nRuntimeDirectory=shop\nRuntimeDirectoryMode=0750\n" \
           "ExecStart=/srv/shop/venv/bin/gunicorn --bind unix:/run/shop/gunicorn.sock app:app\n"
    report = audit(cli, server(tmp_path, unit=unit))[1]
    [finding] = dg703(report)
    assert finding["line"] == 3  # RuntimeDirectoryMode=
    assert "usermod -aG root" not in finding["message"] and "(DG701)" in finding["message"]
    assert [e["code"] for e in report if e["severity"] == "error"] == ["DG701", "DG703"]


# -- what the readers take from the files ---------------------------------------------------------

def test_the_unit_reader_takes_runtime_directories_and_their_mode(tmp_path):
    from deploygen.audit.unit_reader import read_unit

    unit = tmp_path / "shop.service"
    start = "[Service]\nExecStart=/srv/shop/venv/bin/gunicorn app:app\n"
    unit.write_text(start + "RuntimeDirectory=shop shop/extra\n")
    read = read_unit(str(unit))
    assert read["systemd.RuntimeDirectory"].value == ["shop", "shop/extra"]
    assert (read["systemd.RuntimeDirectoryMode"].value, read["systemd.RuntimeDirectoryMode"].default) == ("0755", True)
    unit.write_text(start + "RuntimeDirectory=shop\nRuntimeDirectoryMode=750\nRuntimeDirectoryMode=bad\n")
    read = read_unit(str(unit))  # a mode systemd cannot parse is ignored: the one before it stays
    mode = read["systemd.RuntimeDirectoryMode"]
    assert (mode.value, mode.location.line) == ("0750", 4)
    unit.write_text(start + "RuntimeDirectory=shop\nRuntimeDirectoryMode=0700\nRuntimeDirectoryMode=\n")
    assert read_unit(str(unit))["systemd.RuntimeDirectoryMode"].value == "0755"
    unit.write_text(start + "RuntimeDirectory=shop\nRuntimeDirectory=\n")
    assert "systemd.RuntimeDirectory" not in read_unit(str(unit))


@pytest.mark.parametrize(("written", "umask"), [
    ("umask = 0o077\n", "0077"), ('umask = "007"\n', "0007"), ("umask = 18\n", "0022"), ("", "0000")])
def test_the_gunicorn_reader_takes_its_umask(tmp_path, written, umask):
    from deploygen.audit.gunicorn_reader import read_gunicorn

    config = tmp_path / "gunicorn.conf.py"
    config.write_text(written)
    assert read_gunicorn(str(config))["gunicorn.umask"].value == umask


def test_gunicorns_umask_flag(tmp_path):
    from deploygen.audit.unit_reader import read_unit

    unit = tmp_path / "shop.service"
    unit.write_text("[Service]\nEnvironment=GUNICORN_CMD_ARGS=--umask=077\n"
                    "ExecStart=/srv/shop/venv/bin/gunicorn -m 007 app:app\n")
    assert read_unit(str(unit))["gunicorn.umask"].value == "0007"  # the command line over GUNICORN_CMD_ARGS
