"""A site owns only what is named after it: /run/NAME, /var/lib/NAME and a name Debian does not use.

systemd chowns a unit's RuntimeDirectory= and StateDirectory= to its user and
deletes the runtime one on every stop, and NAME.service in /etc/systemd/system
shadows a unit of that name. Each case is refused at load (exit 2, one line at
the key, nothing written), or, for root as the app's user, found by DG701.
"""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml
from pydantic import TypeAdapter, ValidationError

from deploygen.sitefile.fields import SOCKET_PATH_MAX, Name
from deploygen.sitefile.reserved_names import reserved, why_reserved
from tests.conftest import BASE_SITE, REPO, SITES, merge
from tests.hostile.conftest import assert_bad_input, run_deploygen


def _site(tmp_path, overrides, filename="site.yaml"):
    path = tmp_path / filename
    path.write_text(yaml.safe_dump(merge(BASE_SITE, overrides), sort_keys=False))
    return path


def _refused(tmp_path, overrides, key):
    site = _site(tmp_path, overrides)
    out = tmp_path / "out"
    result = run_deploygen("render", site, "-o", out)
    [line] = assert_bad_input(result, lines=1)
    assert line["key"] == key, line.string
    written = site.read_text().splitlines()[int(line["line"]) - 1]
    assert written.strip().startswith(key.rsplit(".", 1)[-1] + ":"), (written, line.string)
    assert not out.exists() or not any(out.rglob("*.conf")), "nothing may be written"
    return line["msg"]


@pytest.mark.parametrize("bind", [
    "unix:/run/postgresql/x.sock",            # RuntimeDirectory=postgresql: chowned, deleted on stop
    "unix:/run/postgresql/15/main.sock",
    "unix:/run/user/gunicorn.sock",
    "unix:/run/lock/gunicorn.sock",
    "unix:/run/shopx/gunicorn.sock",          # a prefix of the name is not the name
    "unix:/run/sho/gunicorn.sock",
    "unix:/run/other/shop/gunicorn.sock",
])
def test_a_socket_outside_the_sites_run_folder_is_refused(tmp_path, bind):
    message = _refused(tmp_path, {"server": {"bind": bind}}, "server.bind")
    assert "/run/shop/" in message and "RuntimeDirectory=" in message


@pytest.mark.parametrize("bind", ["unix:/run/shop/../postgresql/x.sock", "unix:/run/./postgresql/x.sock",
                                  "unix:/run/shop//x.sock", "unix:/run/gunicorn.sock", "unix:/tmp/x.sock"])
def test_a_socket_path_that_dodges_its_folder_is_refused(tmp_path, bind):
    _refused(tmp_path, {"server": {"bind": bind}}, "server.bind")


@pytest.mark.parametrize("directory", [
    "/var/lib/postgresql/15/main",            # StateDirectory= on PostgreSQL's data
    "/var/lib/postgresql",
    "/var/lib/redis",
    "/var/lib/shopx/sessions",
    "/var/lib/systemd/sessions",
    "/var/lib/other/shop",
])
def test_a_session_folder_outside_the_sites_state_folder_is_refused(tmp_path, directory):
    message = _refused(tmp_path, {"session": {"store": "filesystem", "directory": directory}},
                       "session.directory")
    assert "/var/lib/shop/" in message and "StateDirectory=" in message


def test_both_are_reported_at_once(tmp_path):
    site = _site(tmp_path, {"server": {"bind": "unix:/run/postgresql/x.sock"},
                            "session": {"store": "filesystem", "directory": "/var/lib/postgresql/15/main"}})
    lines = assert_bad_input(run_deploygen("validate", site), lines=2)
    assert sorted(m["key"] for m in lines) == ["server.bind", "session.directory"]


@pytest.mark.parametrize("overrides", [
    {},
    {"server": {"bind": "unix:/run/shop/sub/gunicorn.sock"}},
    {"server": {"bind": "127.0.0.1:8001"}},
    {"session": {"store": "filesystem"}},
    {"session": {"store": "filesystem", "directory": "/var/lib/shop"}},
    {"session": {"store": "filesystem", "directory": "/var/lib/shop/sessions/v2"}},
])
def test_the_sites_own_folders_are_accepted_and_all_it_claims(tmp_path, overrides):
    site = _site(tmp_path, overrides)
    out = tmp_path / "out"
    result = run_deploygen("render", site, "-o", out)
    assert result.returncode == 0, result.stderr
    unit = (out / "shop/root/etc/systemd/system/shop.service").read_text()
    for key in ("RuntimeDirectory", "StateDirectory"):
        for line in re.findall(rf"^{key}=(.*)$", unit, re.MULTILINE):
            for folder in line.split():
                assert folder == "shop" or folder.startswith("shop/"), (key, folder)


@pytest.mark.parametrize("name", ["user", "log", "lock", "rescue", "udev", "postgresql", "nginx", "redis",
                                  "redis-server", "mysql", "apache2", "dbus", "ssh", "cron", "root", "www-data",
                                  "systemd", "systemd-anything", "default", "deploygen"])
def test_a_name_debian_uses_is_refused_and_says_why(tmp_path, name):
    message = _refused(tmp_path, {"name": name, "server": {"bind": f"unix:/run/{name}/gunicorn.sock"}}, "name")
    assert message.startswith(f"{name!r} is ")
    assert "Debian uses (" in message or "systemd's own namespace" in message


def test_every_name_in_the_data_is_refused_by_the_model():
    adapter = TypeAdapter(Name)
    names = reserved()
    for name in names:
        with pytest.raises(ValidationError):
            adapter.validate_python(name)
    assert adapter.validate_python("shop") == "shop"


def test_the_data_is_real_sorted_and_only_site_names():
    text = (REPO / "deploygen/sitefile/reserved_names.tsv").read_text()
    rows = [line.split("\t") for line in text.splitlines() if not line.startswith("#")]
    names = [row[0] for row in rows]
    assert names == sorted(set(names))
    assert all(re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", n) for n in names)
    sources = {s for row in rows for s in row[1].split(",")}
    # Taken from an install, not only typed in: units, folders, accounts and packages.
    assert {"unit", "run", "var-lib", "var-log", "etc", "user", "group", "package"} <= sources
    assert len(names) > 500
    for name, needed in (("user", "run"), ("lock", "run"), ("rescue", "unit"), ("postgresql", "var-lib"),
                         ("nginx", "unit"), ("www-data", "user")):
        assert needed in dict(rows)[name].split(","), name


def test_the_data_ships_in_the_package():
    ignored = subprocess.run(["git", "check-ignore", "-q", "deploygen/sitefile/reserved_names.tsv"], cwd=REPO, check=False)
    assert ignored.returncode == 1, "a .gitignore'd file would be left out of the wheel by hatchling"


@pytest.mark.parametrize("name", ["shop", "other", "earlier", "dokon", "sergeli0606", "good", "bad", "a", "b",
                                  "shop-app"])
def test_the_projects_own_names_stay_free(name):
    assert why_reserved(name) is None


def test_the_shipped_sites_load(tmp_path):
    result = run_deploygen("validate", "--strict", SITES)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "4 sites checked: no findings\n")


def test_a_socket_path_longer_than_sun_path_is_refused(tmp_path):
    prefix = "/run/shop/"
    fits = prefix + "s" * (SOCKET_PATH_MAX - len(prefix) - 5) + ".sock"
    assert len(fits) == SOCKET_PATH_MAX
    ok = run_deploygen("validate", _site(tmp_path, {"server": {"bind": f"unix:{fits}"}}, "fits.yaml"))
    assert ok.returncode in (0, 1), ok.stderr
    too_long = prefix + "s" * (SOCKET_PATH_MAX - len(prefix) - 4) + ".sock"
    message = _refused(tmp_path, {"server": {"bind": f"unix:{too_long}"}}, "server.bind")
    assert "108" in message and str(SOCKET_PATH_MAX + 1) + " bytes" in message
    # Counted in bytes, as the kernel does: 36 two-byte characters are 72 bytes. They are also
    # refused as characters a path may not use, but the length is said first.
    message = _refused(tmp_path, {"server": {"bind": "unix:/run/shop/" + "é" * 50}}, "server.bind")
    assert "bytes" in message


def test_a_huge_bind_is_not_echoed_whole(tmp_path):
    # Just under the site file's 1 MiB cap, so the value itself reaches Bind.
    site = _site(tmp_path, {"server": {"bind": "unix:/run/shop/" + "x" * 1_000_000}})
    [line] = assert_bad_input(run_deploygen("validate", site), lines=1)
    assert "characters)" in line["msg"]


@pytest.mark.parametrize("overrides", [{"app": {"user": "root"}}, {"app": {"group": "root"}}])
def test_root_as_the_apps_user_or_group_is_a_finding(tmp_path, overrides):
    site = _site(tmp_path, overrides)
    result = run_deploygen("validate", site)
    assert result.returncode == 1
    assert " DG701 error " in result.stdout
    line = int(result.stdout.split(":")[1])
    assert site.read_text().splitlines()[line - 1].strip().endswith(": root")
    render = run_deploygen("render", site, "-o", tmp_path / "out")
    assert render.returncode == 1 and not (tmp_path / "out/shop").exists()


@pytest.mark.parametrize(("overrides", "key"), [
    ({"app": {"wsgi": "app:" + "x(" * 400_000}}, "app.wsgi"),
    ({"database": {"name": "shop_db", "role": "r" * 900_000}}, "database.role"),
    ({"server": {"forwarded_allow_ips": "1" * 900_000 + "z"}}, "server.forwarded_allow_ips"),
    ({"session": {"cookie": {"name": "c;" * 400_000}}}, "session.cookie.name"),
    ({"session": {"cleanup": {"command": "/bin/x " + "$" * 900_000}}}, "session.cleanup.command"),
])
def test_a_huge_bad_value_is_echoed_cut_short(tmp_path, overrides, key):
    # Not confinement as such, but the same messages: a value is never repeated whole.
    site = _site(tmp_path, overrides)
    [line] = assert_bad_input(run_deploygen("validate", site), lines=1)
    assert line["key"] == key and len(line.string) < 1000
