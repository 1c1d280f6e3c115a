"""Fleets: the fleet file, rules per host and per PostgreSQL server, and `render` of a fleet."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml
from conftest import BASE_SITE, merge
from test_rules import CROSS, FIRST, OTHER

# The fleet rule DG204, as (fleets that must fire it, fleets that must not): site overrides and
# the host's `postgres` facts.
FLEET_CASES = {
    "DG204": (
        [({"timeouts": {"postgres": {"idle_session_timeout": "10m"}}}, {"version": 13}),
         ({"timeouts": {"postgres": {"client_connection_check_interval": "2s"}}}, {"version": 12})],
        [({"timeouts": {"postgres": {"idle_session_timeout": "10m"}}}, {"version": 14}),
         ({"timeouts": {"postgres": {"idle_session_timeout": "10m"}}}, {"max_connections": 100}),
         # A default (client_connection_check_interval's 5s) is left out of the SQL, not refused.
         ({}, {"version": 13})],
    ),
}


def write_site(folder: Path, overrides: dict, name: str | None = None) -> Path:
    """A site file of BASE_SITE + overrides in `folder`, named after the site."""
    data = merge(BASE_SITE, overrides)
    name = name or data["name"]
    data["server"].setdefault("bind", f"unix:/run/{name}/gunicorn.sock")
    if "bind" not in overrides.get("server", {}):
        data["server"]["bind"] = f"unix:/run/{data['name']}/gunicorn.sock"
    if "secrets_file" not in overrides.get("app", {}):
        data["app"]["secrets_file"] = f"/etc/{data['name']}/secrets.env"
    path = folder / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def write_fleet(folder: Path, hosts: dict, **extra) -> Path:
    path = folder / "fleet.yaml"
    path.write_text(yaml.safe_dump({"hosts": hosts, **extra}, sort_keys=False))
    return path


def findings(cli, target: Path) -> list[dict]:
    result = cli("validate", "--format", "json", target)
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.output)


def codes(cli, target: Path) -> list[str]:
    return sorted(f["code"] for f in findings(cli, target))


# -- the fleet file -------------------------------------------------------------------------------


def test_a_fleet_validates_and_renders_every_host(cli, tmp_path):
    write_site(tmp_path / "sites", {})
    write_site(tmp_path / "sites", OTHER)
    fleet = write_fleet(tmp_path, {"web1": {"address": "203.0.113.10", "sites": ["sites/shop.yaml"]},
                                   "web2": {"address": "203.0.113.11", "sites": ["sites/"]}})
    assert cli("validate", fleet).exit_code == 0
    result = cli("render", fleet, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["web1", "web2"]
    assert sorted(p.name for p in (out / "web1").iterdir()) == ["shop"]
    assert sorted(p.name for p in (out / "web2").iterdir()) == ["other", "shop"]
    for host in ("web1", "web2"):
        manifest = json.loads((out / host / "shop" / "manifest.json").read_text())
        assert manifest["site"] == "shop"
        for entry in manifest["files"]:
            data = (out / host / "shop" / entry["path"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    # The same site with the same facts renders the same bytes on both hosts.
    assert _tree(out / "web1" / "shop") == _tree(out / "web2" / "shop")
    first = _tree(out)
    assert cli("render", fleet, "-o", tmp_path / "out").exit_code == 0
    assert _tree(out) == first, "a fleet's render is byte for byte the same each time"


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".deploygen" not in p.relative_to(folder).parts}


def test_site_folders_nest(cli, tmp_path):
    write_site(tmp_path / "sites" / "web1", {})
    write_site(tmp_path / "sites" / "web2" / "more", OTHER)
    result = cli("validate", "--format", "json", tmp_path / "sites")
    assert result.exit_code == 0 and json.loads(result.output) == []
    rendered = cli("render", tmp_path / "sites", "-o", tmp_path / "out")
    assert rendered.exit_code == 0, rendered.output
    assert (tmp_path / "out" / "shop" / "manifest.json").is_file()
    assert (tmp_path / "out" / "other" / "manifest.json").is_file()


def test_a_hidden_folder_is_not_searched(cli, tmp_path):
    write_site(tmp_path / "sites", {})
    (tmp_path / "sites" / ".git").mkdir()
    (tmp_path / "sites" / ".git" / "broken.yaml").write_text("name: [\n")
    assert cli("validate", tmp_path / "sites").exit_code == 0


@pytest.mark.parametrize(("fleet", "where", "message"), [
    ({"hosts": {"web1": {"address": "10.0.0.1", "sites": ["missing.yaml"]}}},
     "hosts.web1.sites", "missing.yaml: no such file or folder"),
    ({"hosts": {"web1": {"address": "10.0.0.1", "sites": ["sites/"], "nginx": "x"}}},
     "hosts.web1.nginx", "unknown key"),
    ({"hosts": {"../etc": {"address": "10.0.0.1", "sites": ["sites/"]}}}, "hosts", "not a valid host name"),
    ({"hosts": {"web1": {"address": "10.0.0.1; rm -rf /", "sites": ["sites/"]}}},
     "hosts.web1.address", "not a valid address"),
    ({"hosts": {"web1": {"address": "10.0.0.1", "sites": ["sites/"],
                         "vars": {"ansible_user": "{{ lookup('pipe', 'id') }}"}}}},
     "hosts.web1.vars.ansible_user", "Ansible would run what a template holds"),
    ({"hosts": {"web1": {"address": "10.0.0.1", "sites": ["sites/"], "vars": {"become": "yes"}}}},
     "hosts.web1.vars", "not a valid inventory variable"),
    # ssh's own options would let a fleet file run a command where the playbook runs.
    ({"hosts": {"web1": {"address": "10.0.0.1", "sites": ["sites/"],
                         "vars": {"ansible_ssh_common_args": "-o ProxyCommand=id"}}}},
     "hosts.web1.vars", "not a valid inventory variable"),
    ({"hosts": {"web1": {"address": "10.0.0.1", "sites": ["sites/"]},
                "WEB1": {"address": "10.0.0.2", "sites": ["sites/"]}}}, "hosts", "differ only in case"),
    ({"hosts": {}}, "hosts", "at least 1 item"),
    ({"hosts": {"web1": {"address": "10.0.0.1", "sites": ["sites/"], "postgres": {"version": 9}}}},
     "hosts.web1.postgres.version", "greater than or equal to 10"),
])
def test_bad_fleet_files_are_bad_input(cli, tmp_path, fleet, where, message):
    write_site(tmp_path / "sites", {})
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(fleet, sort_keys=False))
    for command in ("validate", "render"):
        result = cli(command, path, *(["-o", tmp_path / "out"] if command == "render" else []))
        assert result.exit_code == 2, result.output
        assert "fleet.yaml:" in result.output and f": {where}: " in result.output, result.output
        assert message in result.output, result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_a_broken_site_of_a_fleet_is_located_in_its_own_file(cli, tmp_path):
    site = write_site(tmp_path / "sites", {"server": {"workers": "3"}})
    fleet = write_fleet(tmp_path, {"web1": {"address": "10.0.0.1", "sites": ["sites/shop.yaml"]}})
    result = cli("validate", fleet)
    assert result.exit_code == 2
    assert f"{site}:" in result.output and "server.workers" in result.output


def test_a_fleet_file_is_named_alone(cli, tmp_path):
    site = write_site(tmp_path / "sites", {})
    fleet = write_fleet(tmp_path, {"web1": {"address": "10.0.0.1", "sites": ["sites/"]}})
    result = cli("validate", fleet, site)
    assert result.exit_code == 2 and "a fleet file is named alone" in result.output


# -- rules per host -------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(set(CROSS) - {"DG905"}))
def test_a_collision_is_one_only_on_one_host(code, cli, tmp_path):
    """What two sites must not share on one machine, they may share on two."""
    colliding, _ = CROSS[code]
    first = write_site(tmp_path / "a", FIRST.get(code, {}))
    second = write_site(tmp_path / "b", colliding)
    same = {"web1": {"address": "10.0.0.1", "sites": [f"a/{first.name}", f"b/{second.name}"]}}
    assert code in codes(cli, write_fleet(tmp_path, same))
    apart = {"web1": {"address": "10.0.0.1", "sites": [f"a/{first.name}"]},
             "web2": {"address": "10.0.0.2", "sites": [f"b/{second.name}"]}}
    if code == "DG904":
        # A role belongs to a PostgreSQL server: two hosts' own servers are two servers, ...
        assert code not in codes(cli, write_fleet(tmp_path, apart))
        # ... one server both reach by address is one.
        shared = {"database": {"host": "10.0.0.5"}}
        first = write_site(tmp_path / "a", merge(FIRST.get(code, {}), shared))
        second = write_site(tmp_path / "b", merge(colliding, shared))
        assert code in codes(cli, write_fleet(tmp_path, apart))
    else:
        assert code not in codes(cli, write_fleet(tmp_path, apart))


def test_a_collision_names_its_host(cli, tmp_path):
    write_site(tmp_path / "a", {"server": {"bind": "127.0.0.1:8001"}})
    write_site(tmp_path / "b", {**OTHER, "server": {"bind": "127.0.0.1:8001"}})
    fleet = write_fleet(tmp_path, {"web1": {"address": "10.0.0.1", "sites": ["a/", "b/"]}})
    messages = [f["message"] for f in findings(cli, fleet) if f["code"] == "DG902"]
    assert len(messages) == 2 and all(m.startswith("bind 127.0.0.1:8001 is also used on web1 by ") for m in messages)


def test_one_site_on_two_hosts_is_not_a_collision_and_reports_once(cli, tmp_path):
    write_site(tmp_path / "sites", {"timeouts": {"request": "120s", "nginx": {"proxy_read_timeout": "60s"}}})
    alone = codes(cli, tmp_path / "sites" / "shop.yaml")
    fleet = write_fleet(tmp_path, {"web1": {"address": "10.0.0.1", "sites": ["sites/shop.yaml"]},
                                   "web2": {"address": "10.0.0.2", "sites": ["sites/shop.yaml"]}})
    assert "DG101" in alone
    assert codes(cli, fleet) == alone, "each finding of the site's own file once, no collision with itself"


def test_a_shared_cookie_reaches_browsers_whichever_host_serves_it(cli, tmp_path):
    colliding, fine = CROSS["DG905"]
    write_site(tmp_path / "a", {})
    write_site(tmp_path / "b", colliding)
    apart = {"web1": {"address": "10.0.0.1", "sites": ["a/"]}, "web2": {"address": "10.0.0.2", "sites": ["b/"]}}
    assert "DG905" in codes(cli, write_fleet(tmp_path, apart))
    write_site(tmp_path / "b", fine)
    assert "DG905" not in codes(cli, write_fleet(tmp_path, apart))


# -- the connection budget per PostgreSQL server -------------------------------------------------------

# 3 workers x (5 + 10) = 45 connections per site.
POOL = {"server": {"workers": 3}, "database": {"pool": {"size": 5, "max_overflow": 10}}}


def _budget_fleet(tmp_path: Path, database: dict, web1: dict | None = None, web2: dict | None = None,
                  **extra) -> Path:
    write_site(tmp_path / "a", merge(POOL, {"database": database}))
    write_site(tmp_path / "b", merge(merge(OTHER, POOL), {"database": database}))
    return write_fleet(tmp_path, {"web1": {"address": "10.0.0.1", "sites": ["a/"], **(web1 or {})},
                                  "web2": {"address": "10.0.0.2", "sites": ["b/"], **(web2 or {})}}, **extra)


def test_each_host_has_its_own_local_postgres(cli, tmp_path):
    # 45 + 45 = 90 > 80 - 3 on one server; 45 < 77 on each of two.
    local = {"max_connections": 80}
    assert "DG402" not in codes(cli, _budget_fleet(tmp_path, local))
    one_machine = codes(cli, tmp_path / "a") + codes(cli, tmp_path / "b")
    assert "DG402" not in one_machine
    both = cli("validate", "--format", "json", tmp_path / "a", tmp_path / "b")
    assert "DG402" in {f["code"] for f in json.loads(both.output)}, "the same two sites on one machine"


def test_a_server_every_host_reaches_is_one_budget(cli, tmp_path):
    shared = {"host": "10.0.0.5", "max_connections": 80}
    fleet = _budget_fleet(tmp_path, shared)
    found = [f for f in findings(cli, fleet) if f["code"] == "DG402"]
    assert {f["site"] for f in found} == {"shop", "other"}
    assert all("the sites on 10.0.0.5 can open 90 connections" in f["message"] for f in found), found


def test_a_site_two_hosts_run_counts_twice_against_a_shared_server(cli, tmp_path):
    write_site(tmp_path / "a", merge(POOL, {"database": {"host": "10.0.0.5", "max_connections": 80}}))
    twice = {"web1": {"address": "10.0.0.1", "sites": ["a/"]}, "web2": {"address": "10.0.0.2", "sites": ["a/"]}}
    [finding] = [f for f in findings(cli, write_fleet(tmp_path, twice)) if f["code"] == "DG402"]
    assert "can open 90 connections" in finding["message"]
    once = {"web1": {"address": "10.0.0.1", "sites": ["a/"]}}
    assert "DG402" not in codes(cli, write_fleet(tmp_path, once))


def test_the_fleet_facts_of_a_server_decide_its_budget(cli, tmp_path):
    # The sites say 100 (the default); the fleet knows the server allows 40.
    fleet = _budget_fleet(tmp_path, {}, web1={"postgres": {"max_connections": 40}})
    found = [f for f in findings(cli, fleet) if f["code"] == "DG402"]
    assert [f["site"] for f in found] == ["shop"]
    assert found[0]["settings"]["postgres.max_connections"] == "40"
    shared = _budget_fleet(tmp_path, {"host": "db.internal"},
                           postgres_servers={"db.internal": {"max_connections": 300}})
    assert "DG402" not in codes(cli, shared)
    tight = _budget_fleet(tmp_path, {"host": "db.internal"},
                          postgres_servers={"db.internal": {"max_connections": 60,
                                                            "superuser_reserved_connections": 10}})
    found = [f for f in findings(cli, tight) if f["code"] == "DG402"]
    assert found and all("the server allows 50" in f["message"] for f in found)


# -- the host's PostgreSQL version -------------------------------------------------------------------


@pytest.mark.parametrize("index", range(len(FLEET_CASES["DG204"][0]) + len(FLEET_CASES["DG204"][1])))
def test_dg204(index, cli, tmp_path):
    fire, quiet = FLEET_CASES["DG204"]
    overrides, facts = (fire + quiet)[index]
    write_site(tmp_path / "sites", overrides)
    fleet = write_fleet(tmp_path, {"web1": {"address": "10.0.0.1", "sites": ["sites/"], "postgres": facts}})
    assert ("DG204" in codes(cli, fleet)) == (index < len(fire))


def test_an_older_server_gets_no_statement_it_refuses(cli, tmp_path):
    write_site(tmp_path / "sites", {})
    fleet = write_fleet(tmp_path, {"old": {"address": "10.0.0.1", "sites": ["sites/"], "postgres": {"version": 13}},
                                   "new": {"address": "10.0.0.2", "sites": ["sites/"], "postgres": {"version": 16}}})
    assert cli("render", fleet, "-o", tmp_path / "out").exit_code == 0
    sql = {host: (tmp_path / "out" / host / "shop" / "root/etc/deploygen/shop/postgres.sql").read_text()
           for host in ("old", "new")}
    statements = {host: [line for line in text.splitlines() if line.startswith("ALTER ROLE")]
                  for host, text in sql.items()}
    assert any("client_connection_check_interval" in s for s in statements["new"])
    assert any("RESET idle_session_timeout" in s for s in statements["new"])
    assert not any("idle_session_timeout" in s or "client_connection_check_interval" in s for s in statements["old"])
    assert "-- idle_session_timeout: PostgreSQL 14 and later; this server is 13" in sql["old"]


def test_the_shipped_fleet_is_clean(cli, tmp_path):
    from conftest import REPO

    result = cli("validate", "--format", "json", REPO / "fleet.yaml")
    assert result.exit_code == 0 and json.loads(result.output) == [], result.output
    assert cli("render", REPO / "fleet.yaml", "-o", tmp_path / "out").exit_code == 0


@pytest.mark.parametrize("command", ["explain", "diff", "drill"])
def test_commands_about_one_site_refuse_a_fleet_file(command, cli, tmp_path):
    write_site(tmp_path / "sites", {})
    fleet = write_fleet(tmp_path, {"web1": {"address": "10.0.0.1", "sites": ["sites/"]}})
    result = cli(command, fleet, *(["--root", tmp_path] if command == "diff" else []))
    assert result.exit_code == 2 and "is a fleet file: this command takes a site file" in result.output


def test_a_fleet_file_among_site_files_says_what_it_is(cli, tmp_path):
    write_site(tmp_path / "sites", {})
    write_fleet(tmp_path / "sites", {"web1": {"address": "10.0.0.1", "sites": ["shop.yaml"]}})
    result = cli("validate", tmp_path / "sites")
    assert result.exit_code == 2
    assert "fleet.yaml:1:1: hosts: this is a fleet file, not a site file" in result.output


@pytest.mark.parametrize(("entry", "message"), [
    ("/etc/passwd", "write it relative to the fleet file's folder"),
    ("../outside.yaml", "leads outside the fleet file's folder"),
    ("escape", "leads outside the fleet file's folder"),
])
def test_a_fleet_reads_only_the_sites_beside_it(cli, tmp_path, entry, message):
    """A fleet file someone else wrote must not make deploygen read, and quote in its messages,
    files elsewhere on the machine."""
    (tmp_path / "outside.yaml").write_text("name: SECRET-TOKEN\n")
    inner = tmp_path / "repo"
    write_site(inner / "sites", {})
    (inner / "escape").symlink_to(tmp_path)
    fleet = write_fleet(inner, {"web1": {"address": "10.0.0.1", "sites": ["sites/", entry]}})
    result = cli("validate", fleet)
    assert result.exit_code == 2 and message in result.output, result.output
    assert "SECRET-TOKEN" not in result.output


def test_a_link_inside_a_site_folder_may_not_lead_out(cli, tmp_path):
    (tmp_path / "elsewhere.yaml").write_text("name: SECRET-TOKEN\n")
    inner = tmp_path / "repo"
    write_site(inner / "sites", {})
    (inner / "sites" / "planted.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    result = cli("validate", write_fleet(inner, {"web1": {"address": "10.0.0.1", "sites": ["sites/"]}}))
    assert result.exit_code == 2 and "a link that leads outside the fleet file's folder" in result.output
    assert "SECRET-TOKEN" not in result.output


def test_a_host_with_no_site_file_is_bad_input(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    result = cli("validate", write_fleet(tmp_path, {"web1": {"address": "10.0.0.1", "sites": ["empty/"]}}))
    assert result.exit_code == 2
    assert "hosts.web1.sites: names no site file" in result.output or "no *.yaml" in result.output, result.output
    result = cli("validate", write_fleet(tmp_path, {"web1": {"address": "10.0.0.1", "sites": ["."]}}))
    assert result.exit_code == 2 and "hosts.web1.sites: names no site file" in result.output, result.output


def test_folders_nested_too_deep_are_bad_input_not_a_crash(cli, tmp_path):
    deep = tmp_path / "sites"
    for level in range(40):
        deep = deep / "d"
    deep.mkdir(parents=True)
    write_site(deep, {})
    result = cli("validate", tmp_path / "sites")
    assert result.exit_code == 2 and "nest more than 32 deep" in result.output, result.output
    result = cli("validate", write_fleet(tmp_path, {"web1": {"address": "10.0.0.1", "sites": ["sites/"]}}))
    assert result.exit_code == 2 and "nest more than 32 deep" in result.output, result.output


@pytest.mark.parametrize("second", [
    {"host": "127.0.0.1"},                # another name of the same server
    {"host": "/var/run/postgresql"},      # its socket
    {"host": "10.0.0.1"},                 # web1's address, reached from web2
])
def test_one_server_under_any_of_its_names_is_one_budget(cli, tmp_path, second):
    write_site(tmp_path / "a", merge(POOL, {"database": {"host": "localhost"}}))
    write_site(tmp_path / "b", merge(merge(OTHER, POOL), {"database": second}))
    host_of_b = "web1" if second["host"] != "10.0.0.1" else "web2"
    hosts = {"web1": {"address": "10.0.0.1", "sites": ["a/"], "postgres": {"max_connections": 60}}}
    if host_of_b == "web1":
        hosts["web1"]["sites"].append("b/")
    else:
        hosts["web2"] = {"address": "10.0.0.2", "sites": ["b/"]}
    found = [f for f in findings(cli, write_fleet(tmp_path, hosts)) if f["code"] == "DG402"]
    assert {f["site"] for f in found} == {"shop", "other"}, found
    assert all("the sites on localhost on web1 can open 90 connections" in f["message"] for f in found)


def test_two_clusters_on_one_host_are_two_budgets(cli, tmp_path):
    write_site(tmp_path / "a", merge(POOL, {"database": {"max_connections": 60}}))
    write_site(tmp_path / "b", merge(merge(OTHER, POOL), {"database": {"port": 5433, "max_connections": 60}}))
    fleet = write_fleet(tmp_path, {"web1": {"address": "10.0.0.1", "sites": ["a/", "b/"]}})
    assert "DG402" not in codes(cli, fleet)
    write_site(tmp_path / "b", merge(merge(OTHER, POOL), {"database": {"port": 5432, "max_connections": 60}}))
    assert "DG402" in codes(cli, fleet)


@pytest.mark.parametrize("name", ['f\nevil: "{{ lookup(\'pipe\', \'id\') }}"\n#.yaml', "a{{b}}.yaml", "x&y.yaml"])
def test_a_fleet_file_name_that_could_leave_its_comment_is_refused(cli, tmp_path, name):
    """The fleet file's name heads inventory.yml and host_vars/: a line break there is YAML
    that Ansible would template and run."""
    write_site(tmp_path / "sites", {})
    fleet = tmp_path / name
    fleet.write_text(yaml.safe_dump({"hosts": {"web1": {"address": "10.0.0.1", "sites": ["sites/"]}}}))
    for command in (("validate",), ("render", "-o", tmp_path / "out"), ("ansible", "-o", tmp_path / "deploy")):
        result = cli(command[0], fleet, *command[1:])
        assert result.exit_code == 2 and "the fleet file's path holds" in result.output, result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "deploy").exists()
