"""The first install of a site on a fresh server: accounts, secrets, SQL, systemd, nginx, ACME.

Each rendered helper runs for real: the bootstrap SQL against a throwaway PostgreSQL (twice),
nginx-check and check-secrets as /bin/sh runs them on Debian, on real files with real owners
and modes (the tests run as root), and nginx serves the ACME challenge on a loopback port.
The manifest's `post_install` is checked for the order a fresh server needs.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shlex
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import crossplane
import pg_cluster
import pytest
import yaml
from conftest import REPO, SITES, nginx_test, require_binary
from test_real_tools import effective, pg_ms

from deploygen.render.site import render_site
from deploygen.sitefile.acme import ACME_CHALLENGE, ACME_WEBROOT
from deploygen.sitefile.load import load_site

postgres = pg_cluster.postgres  # this module's cluster
NO_TLS: dict = {}  # BASE_SITE has no tls
SECRET_VALUE = "s3cr3t-Value-never-shown"


def _run(args: list, *, env: dict | None = None, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60, check=False,
                          env=env, input=input)


def _explain(proc: subprocess.CompletedProcess) -> str:
    return f"$ {proc.args}\nexit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def _render(cli, site: Path, out: Path) -> tuple[Path, dict]:
    """(the site's root/ folder, its manifest) after `render SITE -o OUT`."""
    result = cli("render", site, "-o", out)
    assert result.exit_code == 0, result.stderr
    name = yaml.safe_load(site.read_text())["name"]
    return out / name / "root", json.loads((out / name / "manifest.json").read_text())


def _plan(site: Path, **facts):
    loaded, problems = load_site(str(site))
    assert not problems, problems
    return render_site(loaded, **facts).plan


# -- post_install: what a fresh server needs, in order --------------------------------


def test_post_install_on_a_fresh_server_runs_in_the_order_it_needs(make_site, cli, tmp_path):
    site = make_site({"app": {"user": "shop", "group": "shop"}, "session": {"store": "filesystem"}})
    _, manifest = _render(cli, site, tmp_path / "out")
    assert manifest["post_install"] == [
        "getent group shop >/dev/null || groupadd --system shop",
        ("id -u shop >/dev/null 2>&1 || useradd --system --gid shop --home-dir /var/www/shop --no-create-home "
         "--shell /usr/sbin/nologin shop"),
        "usermod -aG shop www-data",
        (f"test ! -L {ACME_WEBROOT} || {{ echo '{ACME_WEBROOT} is a symbolic link: remove it, then run "
         "post_install again' >&2; exit 1; }"),
        f"install -d -m 0755 -o root -g root {ACME_WEBROOT}",
        "/etc/deploygen/shop/check-secrets",
        "runuser -u postgres -- psql -X -v ON_ERROR_STOP=1 -d postgres -f /etc/deploygen/shop/postgres-bootstrap.sql",
        "runuser -u postgres -- psql -X -v ON_ERROR_STOP=1 -d shop_db -f /etc/deploygen/shop/postgres.sql",
        "systemctl daemon-reload",
        "systemctl enable shop.service",
        "systemctl restart shop.service",
        "systemctl enable --now shop-session-cleanup.timer",
        "/etc/deploygen/shop/nginx-check /etc/nginx/sites-available/shop.conf",
        "ln -sf /etc/nginx/sites-available/shop.conf /etc/nginx/sites-enabled/shop.conf",
        "nginx -t || { rm -f /etc/nginx/sites-enabled/shop.conf; exit 1; }",
        "systemctl reload nginx",
    ]


@pytest.mark.parametrize("site", ["analytics", "dokon", "sergeli0606"])
def test_each_step_of_a_shipped_site_comes_after_what_it_needs(site, cli, tmp_path):
    _, manifest = _render(cli, SITES / f"{site}.yaml", tmp_path / "out")
    steps = manifest["post_install"]

    def at(part: str) -> int:
        (index,) = [i for i, step in enumerate(steps) if part in step]
        return index

    restart = at("systemctl restart ")
    # The accounts before anything that names them (analytics has its own user).
    accounts = [i for i, step in enumerate(steps) if step.startswith(("getent group", "id -u"))]
    assert accounts == list(range(len(accounts))) and (site != "analytics" or accounts == [0])
    # The role and database, then their timeouts, then the app's first connections.
    assert at("-d postgres -f /etc/deploygen/") < at("/postgres.sql") < restart
    assert at(f"/etc/deploygen/{site}/check-secrets") < restart
    assert at("systemctl daemon-reload") < at(f"systemctl enable {site}.service") < restart
    candidate = at(f"/etc/deploygen/{site}/nginx-check /etc/nginx/sites-available/{site}.conf")
    assert candidate < at("ln -sf ") < at("nginx -t") < at("systemctl reload nginx") == len(steps) - 1


def test_readme_shows_the_post_install_commands_render_prints_for_dokon(cli, tmp_path):
    _, manifest = _render(cli, SITES / "dokon.yaml", tmp_path / "out")
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Installing on a server", 1)[1].split("\n## ", 1)[0]
    # A console session there prints them with jq; tests/test_readme.py runs it, and this says it is dokon's.
    assert "$ jq -r '.post_install[]' out/dokon/manifest.json\n" + "\n".join(manifest["post_install"]) + "\n```" \
        in section


@pytest.mark.parametrize(("database", "bootstrap"), [
    # Another machine's server: as role postgres over the network (a password from ~/.pgpass).
    ({"host": "10.0.0.5", "port": 5433},
     "psql -h 10.0.0.5 -p 5433 -U postgres -X -v ON_ERROR_STOP=1 -d postgres -f /etc/deploygen/shop/postgres-bootstrap.sql"),
    # This machine's, through a socket folder of its own: the postgres OS user, peer authentication.
    ({"host": "/srv/pg/run"},
     ("runuser -u postgres -- psql -h /srv/pg/run -X -v ON_ERROR_STOP=1 -d postgres "
      "-f /etc/deploygen/shop/postgres-bootstrap.sql")),
    ({"host": "127.0.0.1", "port": 5434},
     "runuser -u postgres -- psql -p 5434 -X -v ON_ERROR_STOP=1 -d postgres -f /etc/deploygen/shop/postgres-bootstrap.sql"),
])
def test_the_sql_runs_where_the_database_is(database, bootstrap, make_site, cli, tmp_path):
    _, manifest = _render(cli, make_site({"database": database}), tmp_path / "out")
    steps = manifest["post_install"]
    assert bootstrap in steps
    assert steps[steps.index(bootstrap) + 1] == bootstrap.replace("-d postgres", "-d shop_db").replace(
        "postgres-bootstrap.sql", "postgres.sql")


def test_without_a_database_or_secrets_there_is_no_sql_and_no_check(make_site, cli, tmp_path):
    site = make_site({"database": None, "app": {"secrets_file": None}, "server": {"workers": 1}})
    root, manifest = _render(cli, site, tmp_path / "out")
    assert not any("psql" in step or "check-secrets" in step for step in manifest["post_install"])
    assert sorted(p.name for p in (root / "etc/deploygen/shop").iterdir()) == [
        "flask.env", "gunicorn.conf.py", "manifest.json", "nginx-check"]


def test_nginx_joins_the_apps_group_only_to_reach_its_socket(make_site, tmp_path):
    own = {"app": {"user": "shop", "group": "shop"}}
    socket_site = make_site(own, filename="a.yaml")
    plan = _plan(socket_site, nginx_user="nginx")  # a fleet host whose nginx runs as `nginx`
    assert plan.join_group and plan.nginx_user == "nginx"
    tcp = _plan(make_site({**own, "server": {"bind": "127.0.0.1:8001"}}, filename="b.yaml"))
    assert not tcp.join_group
    shared = _plan(make_site({}, filename="c.yaml"))  # www-data's own group
    assert (shared.create_user, shared.create_group, shared.join_group) == (False, False, False)
    # Its own user in www-data's group: the user is made, no group is joined.
    own_user = _plan(make_site({"app": {"user": "shop"}}, filename="d.yaml"), nginx_user="nginx")
    assert (own_user.create_user, own_user.create_group, own_user.join_group) == (True, False, False)
    # www-data in a group of its own: nginx's user is the socket's owner already.
    own_group = _plan(make_site({"app": {"group": "shop"}}, filename="e.yaml"))
    assert (own_group.create_user, own_group.create_group, own_group.join_group) == (False, True, False)
    # root's group (DG701 reports it): never created, never joined.
    roots = _plan(make_site({"app": {"user": "shop", "group": "root"}}, filename="f.yaml"))
    assert (roots.create_user, roots.create_group, roots.join_group) == (True, False, False)


# -- accounts the system ships: refused at load ------------------------------------------

LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<key>[\w.]+): (?P<msg>.+)$")


@pytest.mark.parametrize("name", ["docker", "sudo", "shadow", "disk", "adm", "staff", "postgres", "redis",
                                  "messagebus", "systemd-journal", "systemd-network", "nobody", "nogroup",
                                  "daemon", "nginx", "sshd", "_ssh", "ssl-cert", "kmem", "lxd"])
@pytest.mark.parametrize("key", ["user", "group"])
def test_a_site_may_not_name_an_account_the_system_ships(name, key, make_site, cli, tmp_path):
    """`group: docker` made the first install run `usermod -aG docker www-data` (root-equivalent
    for every www-data process); `user: postgres` ran the app as the database's superuser."""
    other = {"user": "shop", "group": "shop"}
    site = make_site({"app": {**other, key: name}})
    result = cli("render", site, "-o", tmp_path / "out")
    assert result.exit_code == 2 and not (tmp_path / "out" / "shop").exists(), result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    found = LOCATED.match(line)
    assert found and found["file"] == str(site) and found["key"] == f"app.{key}", line
    assert site.read_text().splitlines()[int(found["line"]) - 1].strip() == f"{key}: {name}"
    assert f"{name!r} is an account the system ships" in found["msg"]


def test_every_account_debians_base_passwd_ships_is_refused_but_www_data_and_root():
    from deploygen.sitefile.system_accounts import why_system_account

    master = Path("/usr/share/base-passwd")
    if not master.is_dir():
        pytest.skip("no /usr/share/base-passwd (Debian's base-passwd package)")
    names = {line.split(":", 1)[0] for file in ("passwd.master", "group.master")
             for line in (master / file).read_text().splitlines() if line}
    assert {"root", "www-data", "sudo", "shadow", "disk"} <= names
    assert sorted(n for n in names - {"root", "www-data"} if why_system_account(n, "group") is None) == []
    assert why_system_account("root", "user") is None and why_system_account("www-data", "group") is None
    assert why_system_account("shop", "user") is None and why_system_account("systemd-oom", "user")


def test_www_data_and_root_still_load_and_root_is_dg701s(make_site, cli):
    assert cli("validate", make_site({"app": {"user": "www-data", "group": "www-data"}})).exit_code == 0
    result = cli("validate", make_site({"app": {"user": "root", "group": "root"}}, filename="root.yaml"))
    assert result.exit_code == 1 and "DG701" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("role", ["none", "public", "current_user", "current_role", "session_user", "NONE",
                                  "pg_shop", "postgres"])
def test_a_role_postgresql_reserves_is_refused_at_load(role, make_site, cli, tmp_path):
    site = make_site({"database": {"role": role}})
    result = cli("render", site, "-o", tmp_path / "out")
    assert result.exit_code == 2, result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    found = LOCATED.match(line)
    assert found and found["key"] == "database.role", line
    assert site.read_text().splitlines()[int(found["line"]) - 1].strip() == f"role: {role}"
    assert "PostgreSQL" in found["msg"] and "give the site one of its own" in found["msg"]


@pytest.mark.parametrize(("overrides", "keys"), [
    ({}, ("FLASK_SECRET_KEY", "DATABASE_URL")),
    ({"session": {"store": "redis"}}, ("FLASK_SECRET_KEY", "DATABASE_URL", "REDIS_URL")),
    ({"database": None}, ("FLASK_SECRET_KEY",)),
    # Django: a password over TCP (localhost too); peer authentication on a socket folder needs none.
    ({"app": {"framework": "django", "wsgi": "shop.wsgi:application"},
      "session": {"lifetime": None, "idle_timeout": "30m"}},
     ("DJANGO_SECRET_KEY", "DATABASE_PASSWORD")),
    ({"app": {"framework": "django", "wsgi": "shop.wsgi:application"},
      "session": {"lifetime": None, "idle_timeout": "30m", "store": "cached_db"},
      "database": {"host": "/var/run/postgresql"}},
     ("DJANGO_SECRET_KEY", "REDIS_URL")),
    ({"app": {"framework": "wsgi"}, "session": None}, ()),
    ({"app": {"framework": "asgi"}, "session": None, "server": {"worker_class": None}}, ()),
])
def test_each_kind_names_the_secrets_its_app_reads(overrides, keys, make_site, cli, tmp_path):
    site = make_site(overrides)
    plan = _plan(site)
    assert plan.secret_keys == keys
    root, _ = _render(cli, site, tmp_path / "out")
    script = (root / "etc/deploygen/shop/check-secrets").read_text()
    assert f"\nkeys={shlex.quote(' '.join(keys))}\n" in script


# -- the bootstrap SQL on a real PostgreSQL -------------------------------------------


def _catalog(postgres, role: str, database: str) -> str:
    """The role's and the database's rows, oids included: a re-created object has a new oid."""
    proc = postgres.query(
        f"SELECT oid, rolcanlogin, rolsuper, rolpassword IS NULL FROM pg_authid WHERE rolname = '{role}'",
        f"SELECT d.oid, pg_get_userbyid(d.datdba) FROM pg_database d WHERE datname = '{database}'")
    assert proc.returncode == 0, _explain(proc)
    return proc.stdout


def test_the_bootstrap_creates_the_role_and_database_once_then_the_timeouts_apply(postgres, make_site, cli,
                                                                                   tmp_path):
    runuser = require_binary("runuser")
    require_binary("psql", "/usr/lib/postgresql/15/bin/psql")
    site = make_site({})
    root, manifest = _render(cli, site, tmp_path / "out")
    # The manifest's own commands, run as they are on a server, with the files where the postgres
    # OS user can read them and libpq pointed at the test cluster.
    folder = postgres.socket_dir / "sql"
    folder.mkdir()
    for name in ("postgres-bootstrap.sql", "postgres.sql"):
        shutil.copy(root / "etc/deploygen/shop" / name, folder / name)
    shutil.chown(folder, "postgres")
    sql_steps = [step.replace("/etc/deploygen/shop/", f"{folder}/") for step in manifest["post_install"]
                 if "psql" in step]
    assert len(sql_steps) == 2 and all(step.startswith(f"{Path(runuser).name} -u postgres -- psql ")
                                       for step in sql_steps)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PG")},
           "PGHOST": str(postgres.socket_dir), "PGPORT": str(postgres.port)}
    bootstrap, timeouts = sql_steps

    first = _run(["sh", "-c", bootstrap], env=env)
    assert first.returncode == 0 and not first.stderr, _explain(first)
    assert first.stdout.split() == ["CREATE", "ROLE", "CREATE", "DATABASE"], _explain(first)
    created = _catalog(postgres, "shop", "shop_db")
    # LOGIN, no superuser, no password; the database is the role's.
    assert created.splitlines()[0].split("|")[1:] == ["t", "f", "t"] and created.splitlines()[1].endswith("|shop")

    second = _run(["sh", "-c", bootstrap], env=env)
    assert second.returncode == 0 and not second.stderr and not second.stdout, _explain(second)
    assert _catalog(postgres, "shop", "shop_db") == created

    applied = _run(["sh", "-c", timeouts], env=env)
    assert applied.returncode == 0 and "ERROR" not in applied.stderr, _explain(applied)
    shown = postgres.query("SHOW statement_timeout", user="shop", database="shop_db")
    assert shown.returncode == 0, _explain(shown)
    assert pg_ms(shown.stdout) == effective(site).value("postgres.statement_timeout").ms


def test_hosts_sharing_a_server_may_run_the_bootstrap_at_once(postgres, make_site, cli, tmp_path):
    """Two hosts of one site, one PostgreSQL: both saw the role missing and the second CREATE
    failed on pg_authid's or pg_database's unique index (37 of 40 concurrent runs). The advisory
    lock the file takes first makes them take turns; it goes when psql exits."""
    require_binary("runuser")
    require_binary("psql", "/usr/lib/postgresql/15/bin/psql")
    site = make_site({"database": {"name": "race_db", "role": "race"}})
    root, manifest = _render(cli, site, tmp_path / "out")
    folder = postgres.socket_dir / "sql-race"
    folder.mkdir()
    shutil.copy(root / "etc/deploygen/shop/postgres-bootstrap.sql", folder / "postgres-bootstrap.sql")
    shutil.chown(folder, "postgres")
    [bootstrap] = [step.replace("/etc/deploygen/shop/", f"{folder}/") for step in manifest["post_install"]
                   if "-d postgres -f" in step]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PG")},
           "PGHOST": str(postgres.socket_dir), "PGPORT": str(postgres.port)}
    for attempt in range(8):
        dropped = postgres.query("DROP DATABASE IF EXISTS race_db", "DROP ROLE IF EXISTS race")
        assert dropped.returncode == 0, _explain(dropped)
        hosts = [subprocess.Popen(["sh", "-c", bootstrap], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2)]
        outputs = [host.communicate(timeout=60) for host in hosts]
        failed = [(host.returncode, err) for host, (_, err) in zip(hosts, outputs) if host.returncode or err]
        assert not failed, f"attempt {attempt + 1}: {failed}"
        # One of them created both, the other nothing.
        said = sorted(out.split() for out, _ in outputs)
        assert said == [[], ["CREATE", "ROLE", "CREATE", "DATABASE"]], said
        assert _catalog(postgres, "race", "race_db").splitlines()[1].endswith("|race")
    # Nothing holds the lock once psql is gone.
    held = postgres.query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
    assert held.returncode == 0 and held.stdout.strip() == "0", _explain(held)


def test_the_bootstrap_quotes_names_as_postgresql_does(make_site, cli, tmp_path):
    root, _ = _render(cli, make_site({"database": {"name": "Shop-DB", "role": "shop-app"}}), tmp_path / "out")
    sql = (root / "etc/deploygen/shop/postgres-bootstrap.sql").read_text()
    assert "SELECT format('CREATE DATABASE %I OWNER %I', 'Shop-DB', 'shop-app')\n" in sql
    assert "WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'shop-app')\\gexec\n" in sql
    assert "PASSWORD" not in sql.upper().replace("NO PASSWORD", "").replace("\\PASSWORD", "")


# -- nginx-check: a candidate tested before it is enabled ------------------------------


def _temp_folders() -> set[str]:
    return {p.name for p in Path("/tmp").glob("nginx-check.*")}


@pytest.fixture
def checker(make_site, cli, tmp_path):
    """(the rendered nginx-check, the rendered site file) of a site without tls."""
    require_binary("nginx", "/usr/sbin/nginx")
    root, _ = _render(cli, make_site(NO_TLS), tmp_path / "out")
    return root / "etc/deploygen/shop/nginx-check", root / "etc/nginx/sites-available/shop.conf"


def test_nginx_check_passes_the_rendered_site_as_post_install_and_ansible_run_it(checker, tmp_path):
    script, conf = checker
    assert os.stat(script).st_mode & 0o777 == 0o755
    before = _temp_folders()
    direct = _run([script, conf])
    assert direct.returncode == 0 and not direct.stdout and not direct.stderr, _explain(direct)
    # Ansible's copy `validate: /bin/sh CHECK %s`: a temp copy elsewhere, named like the destination.
    copy = tmp_path / "ansible-tmp" / "tmpk2j4_x7q.conf"
    copy.parent.mkdir()
    shutil.copy(conf, copy)
    validate = _run(["/bin/sh", script, copy])
    assert validate.returncode == 0, _explain(validate)
    assert _temp_folders() == before


@pytest.mark.parametrize(("broken", "said"), [
    (lambda text: text.replace("    location / {\n", "    location / {\n        proxy_read_timout 60s;\n", 1),
     'unknown directive "proxy_read_timout"'),
    (lambda text: text.replace("listen 80;", "listen 80;\n    ssl_certificate /nonexistent/fullchain.pem;\n"
                               "    ssl_certificate_key /nonexistent/privkey.pem;\n    listen 8443 ssl;", 1),
     'cannot load certificate "/nonexistent/fullchain.pem"'),
    (lambda text: text.rstrip().removesuffix("}"), "unexpected end of file"),
])
def test_nginx_check_fails_a_broken_candidate_as_nginx_t_does(broken, said, checker, tmp_path):
    nginx = require_binary("nginx", "/usr/sbin/nginx")
    script, conf = checker
    candidate = tmp_path / "candidate dir" / "shop.conf"  # a space: the path is quoted for nginx
    candidate.parent.mkdir()
    candidate.write_text(broken(conf.read_text()))
    before = _temp_folders()
    proc = _run([script, candidate])
    assert proc.returncode == 1, _explain(proc)
    assert said in proc.stderr and "[emerg]" in proc.stderr, _explain(proc)
    assert _temp_folders() == before
    # The same verdict as the tests' own harness, which the script mirrors.
    assert nginx_test(nginx, candidate.read_text(), tmp_path / "harness").returncode != 0


def test_nginx_check_says_how_it_is_run_and_refuses_what_it_cannot_test(checker, tmp_path):
    script, _ = checker
    usage = _run([script])
    assert usage.returncode == 2 and "usage: nginx-check CANDIDATE" in usage.stderr
    missing = _run([script, tmp_path / "missing.conf"])
    assert missing.returncode == 2 and "no readable file" in missing.stderr
    globbed = _run([script, tmp_path / "s*.conf"])
    assert globbed.returncode == 2 and "glob character" in globbed.stderr


def _nginx_steps(manifest: dict, prefix: Path, script: Path, nginx: str) -> str:
    """The post_install commands that concern nginx, as `sh -e` runs them piped in, with the
    server's paths in `prefix` and nginx -t on the prefix's main config; no reload."""
    steps = manifest["post_install"]
    first = next(i for i, step in enumerate(steps) if "/nginx-check " in step)
    ours = [step for step in steps[first:] if step != "systemctl reload nginx"]
    assert len(ours) == 3 and steps[-1] == "systemctl reload nginx", steps
    main = f"{nginx} -t -c {prefix}/nginx.conf -p {prefix}/ -e stderr"
    return "\n".join(step.replace("/etc/deploygen/shop/nginx-check", str(script))
                     .replace("/etc/nginx/", f"{prefix}/").replace("nginx -t", main) for step in ours) + "\n"


def _nginx_prefix(prefix: Path, conf: Path, others: dict[str, str]) -> None:
    """A server's nginx in `prefix`: a main config that includes sites-enabled/*.conf, the
    site's file in sites-available, and the other sites enabled already."""
    for folder in ("sites-available", "sites-enabled"):
        (prefix / folder).mkdir(parents=True)
    shutil.copy(conf, prefix / "sites-available/shop.conf")
    for name, text in others.items():
        (prefix / "sites-available" / name).write_text(text)
        (prefix / "sites-enabled" / name).symlink_to(prefix / "sites-available" / name)
    temp = "".join(f"    {t}_temp_path {prefix / t};\n" for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (prefix / "nginx.conf").write_text(f"pid {prefix / 'nginx.pid'};\nerror_log stderr;\nevents {{}}\nhttp {{\n"
                                       f"    access_log off;\n{temp}    include {prefix}/sites-enabled/*.conf;\n}}\n")


OTHER_SITE = "upstream {upstream} {{\n    server 127.0.0.1:9;\n}}\nserver {{\n    listen 8081;\n" \
             "    server_name other.example.com;\n    location / {{\n        proxy_pass http://{upstream};\n    }}\n}}\n"


def test_a_site_that_fails_only_with_the_rest_leaves_sites_enabled_without_it(make_site, cli, tmp_path):
    """nginx-check passes the candidate alone; another enabled file already has its upstream's
    name, so the whole configuration fails: the link must go again, or nginx's next start (a
    reboot) would fail for every site."""
    nginx = require_binary("nginx", "/usr/sbin/nginx")
    root, manifest = _render(cli, make_site(NO_TLS), tmp_path / "out")
    script, conf = root / "etc/deploygen/shop/nginx-check", root / "etc/nginx/sites-available/shop.conf"
    assert "upstream shop_gunicorn {" in conf.read_text()
    prefix = tmp_path / "etc-nginx"
    _nginx_prefix(prefix, conf, {"other.conf": OTHER_SITE.format(upstream="shop_gunicorn")})
    before = sorted(p.name for p in (prefix / "sites-enabled").iterdir())
    proc = _run(["sh", "-e"], input=_nginx_steps(manifest, prefix, script, nginx))
    assert proc.returncode == 1, _explain(proc)
    assert 'duplicate upstream "shop_gunicorn"' in proc.stderr, _explain(proc)
    assert sorted(p.name for p in (prefix / "sites-enabled").iterdir()) == before == ["other.conf"]
    # The rest of the server still passes, as its next start will test it.
    alone = _run([nginx, "-t", "-c", prefix / "nginx.conf", "-p", f"{prefix}/", "-e", "stderr"])
    assert alone.returncode == 0, _explain(alone)


def test_a_site_that_passes_with_the_rest_is_enabled(make_site, cli, tmp_path):
    nginx = require_binary("nginx", "/usr/sbin/nginx")
    root, manifest = _render(cli, make_site(NO_TLS), tmp_path / "out")
    script, conf = root / "etc/deploygen/shop/nginx-check", root / "etc/nginx/sites-available/shop.conf"
    prefix = tmp_path / "etc-nginx"
    _nginx_prefix(prefix, conf, {"other.conf": OTHER_SITE.format(upstream="other_gunicorn")})
    steps = _nginx_steps(manifest, prefix, script, nginx)
    for _ in range(2):  # and again: each step is safe to repeat
        proc = _run(["sh", "-e"], input=steps)
        assert proc.returncode == 0, _explain(proc)
        link = prefix / "sites-enabled/shop.conf"
        assert link.is_symlink() and os.readlink(link) == str(prefix / "sites-available/shop.conf")


# -- the ACME webroot: root's, never through a link -------------------------------------


def _webroot_steps(manifest: dict, webroot: Path) -> str:
    steps = [step for step in manifest["post_install"] if ACME_WEBROOT in step]
    assert len(steps) == 2, steps
    return "\n".join(step.replace(ACME_WEBROOT, str(webroot)) for step in steps) + "\n"


def test_the_acme_webroot_is_made_roots_whoever_owned_it(make_site, cli, tmp_path):
    _, manifest = _render(cli, make_site(NO_TLS), tmp_path / "out")
    webroot = tmp_path / "www" / "_letsencrypt"
    steps = _webroot_steps(manifest, webroot)
    made = _run(["sh", "-e"], input=steps)  # missing: created
    assert made.returncode == 0, _explain(made)
    assert (webroot.stat().st_uid, webroot.stat().st_gid, webroot.stat().st_mode & 0o7777) == (0, 0, 0o755)
    # A folder someone else made there first (and could answer the CA's challenge from).
    shutil.chown(webroot, "nobody", "nogroup")
    os.chmod(webroot, 0o777)
    again = _run(["sh", "-e"], input=steps)
    assert again.returncode == 0, _explain(again)
    assert (webroot.stat().st_uid, webroot.stat().st_gid, webroot.stat().st_mode & 0o7777) == (0, 0, 0o755)


def test_a_link_in_place_of_the_acme_webroot_stops_the_install(make_site, cli, tmp_path):
    _, manifest = _render(cli, make_site(NO_TLS), tmp_path / "out")
    elsewhere = tmp_path / "planted"
    elsewhere.mkdir()
    shutil.chown(elsewhere, "nobody", "nogroup")
    os.chmod(elsewhere, 0o700)
    webroot = tmp_path / "www" / "_letsencrypt"
    webroot.parent.mkdir()
    webroot.symlink_to(elsewhere)
    proc = _run(["sh", "-e"], input=_webroot_steps(manifest, webroot) + "echo after\n")
    assert proc.returncode == 1 and "after" not in proc.stdout, _explain(proc)
    assert proc.stderr == f"{webroot} is a symbolic link: remove it, then run post_install again\n"
    assert webroot.is_symlink()
    assert (elsewhere.stat().st_uid, elsewhere.stat().st_mode & 0o7777) == (65534, 0o700)


# -- check-secrets: the secrets file, by key name, never by value -----------------------


@pytest.fixture
def private_folder():
    """A folder only root may change, on a path only root may change (/run: root's, 0755), as
    check-secrets wants every folder above a secrets file: pytest's own are under /tmp (1777)."""
    base = Path("/run")
    if base.stat().st_uid != 0 or base.stat().st_mode & 0o022 or Path("/").stat().st_mode & 0o022:
        pytest.skip("/run or / is not root's alone")
    folder = Path(tempfile.mkdtemp(prefix="deploygen-secrets.", dir=base))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def secrets(make_site, cli, tmp_path, private_folder):
    """(check-secrets of a site whose secrets file is `FOLDER/secrets.env`, that file's path)."""
    require_binary("stat")
    file = private_folder / "secrets.env"
    root, _ = _render(cli, make_site({"app": {"secrets_file": str(file)}}), tmp_path / "out")
    return root / "etc/deploygen/shop/check-secrets", file


def _write_secrets(file: Path, keys=("FLASK_SECRET_KEY", "DATABASE_URL"), mode=0o600, owner="root",
                   group="root", text: str | None = None) -> None:
    file.write_text(text if text is not None else "".join(f"{key}={SECRET_VALUE}\n" for key in keys))
    shutil.chown(file, owner, group)
    os.chmod(file, mode)


def _check(script: Path, *args) -> subprocess.CompletedProcess:
    proc = _run(["/bin/sh", script, *args])
    assert SECRET_VALUE not in proc.stdout + proc.stderr, _explain(proc)
    return proc


@pytest.mark.parametrize(("mode", "group"), [(0o600, "root"), (0o400, "root"), (0o600, "www-data"),
                                             (0o600, "nogroup")])
def test_check_secrets_passes_a_file_only_root_may_read_whatever_its_group(mode, group, secrets):
    script, file = secrets
    _write_secrets(file, mode=mode, group=group)
    proc = _check(script)  # no argument: the site's own secrets_file
    assert proc.returncode == 0 and not proc.stderr, _explain(proc)
    assert f"{file}: owned by root, mode {mode:04o}, with FLASK_SECRET_KEY DATABASE_URL" in proc.stdout


def test_check_secrets_names_a_missing_key_and_never_a_value(secrets):
    script, file = secrets
    _write_secrets(file, keys=("FLASK_SECRET_KEY",))
    proc = _check(script, file)
    assert proc.returncode == 1, _explain(proc)
    assert f"{file} lacks DATABASE_URL;" in proc.stderr and "    DATABASE_URL=..." in proc.stderr
    assert "FLASK_SECRET_KEY" not in proc.stderr


@pytest.mark.parametrize("mode", [0o640, 0o440, 0o644, 0o660, 0o604, 0o700, 0o4600, 0o610])
def test_check_secrets_refuses_any_bit_beyond_0600(mode, secrets):
    """Group read too: nginx's workers join the app's group for its socket, and with them every
    other www-data process (php-fpm pools, another site) could read a root:GROUP 0640 file."""
    script, file = secrets
    _write_secrets(file, mode=mode, group="www-data")
    proc = _check(script, file)
    assert proc.returncode == 1, _explain(proc)
    assert f"{file} has mode {mode:04o}:" in proc.stderr and f"    chmod 0600 {file}" in proc.stderr


def test_check_secrets_refuses_a_file_root_does_not_own(secrets):
    script, file = secrets
    _write_secrets(file, owner="nobody", group="root")
    proc = _check(script, file)
    assert proc.returncode == 1, _explain(proc)
    assert "belongs to uid 65534, not root" in proc.stderr and f"    chown root:root {file}" in proc.stderr


def test_check_secrets_says_how_to_create_a_missing_file(secrets):
    script, file = secrets
    proc = _check(script, file)
    assert proc.returncode == 1, _explain(proc)
    assert proc.stderr.splitlines() == [
        f"check-secrets: {file} does not exist; create it, readable by root only:",
        f"check-secrets:     install -D -m 0600 -o root -g root /dev/null {file}",
        "check-secrets: then add one line per key, each with its value (this script never shows one):",
        "check-secrets:     FLASK_SECRET_KEY=...",
        "check-secrets:     DATABASE_URL=...",
    ]
    # The fix it prints makes a file it passes, once the keys are in.
    made = _run(["sh", "-c", proc.stderr.splitlines()[1].removeprefix("check-secrets:").strip()])
    assert made.returncode == 0, _explain(made)
    with open(file, "a") as out:
        out.write(f"FLASK_SECRET_KEY={SECRET_VALUE}\nDATABASE_URL={SECRET_VALUE}\n")
    assert _check(script, file).returncode == 0


def test_check_secrets_refuses_a_link_or_a_folder(secrets, private_folder):
    script, file = secrets
    real = private_folder / "elsewhere.env"
    _write_secrets(real)
    file.symlink_to(real)
    link = _check(script, file)
    assert link.returncode == 1 and "is a symbolic link" in link.stderr, _explain(link)
    folder = _check(script, private_folder)
    assert folder.returncode == 1 and "is not a regular file" in folder.stderr, _explain(folder)


def _acl_access(*named_users: int) -> bytes:
    """A POSIX ACL in the kernel's xattr form (what setfacl writes): owner rw, each named user
    read, and a mask of none, so that stat's mode still says 0600."""
    entries = [(0x01, 6, 0xFFFFFFFF), *((0x02, 4, uid) for uid in named_users), (0x04, 0, 0xFFFFFFFF),
               (0x10, 0, 0xFFFFFFFF), (0x20, 0, 0xFFFFFFFF)]
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", tag, perm, who) for tag, perm, who in entries)


def test_check_secrets_refuses_a_file_with_an_acl(secrets):
    script, file = secrets
    _write_secrets(file)
    try:
        os.setxattr(file, "system.posix_acl_access", _acl_access(65534))
    except OSError as error:
        pytest.skip(f"no POSIX ACLs on {file.parent}: {error}")
    assert os.stat(file).st_mode & 0o7777 == 0o600  # the mode alone looks private
    listing = _run(["ls", "-ld", file]).stdout
    assert listing.split()[0] == "-rw-------+", listing
    proc = _check(script, file)
    assert proc.returncode == 1, _explain(proc)
    assert f"{file} has an ACL" in proc.stderr and f"    setfacl -b {file}" in proc.stderr


@pytest.mark.parametrize(("change", "said"), [
    (lambda d: shutil.chown(d, "nobody"), "belongs to uid 65534, not root: that user could swap"),
    (lambda d: os.chmod(d, 0o775), "has mode 0775: its group or others could swap"),
    (lambda d: os.chmod(d, 0o757), "has mode 0757: its group or others could swap"),
])
def test_check_secrets_refuses_a_folder_someone_else_may_change(change, said, secrets, private_folder):
    """Whoever may write the folder could put a link (or a FIFO) where the file is, between the
    check and systemd's read as PID 1."""
    script, _ = secrets
    inner = private_folder / "site"
    inner.mkdir()
    moved = inner / "secrets.env"
    _write_secrets(moved)
    change(inner)
    proc = _check(script, moved)
    assert proc.returncode == 1, _explain(proc)
    assert f"the folder {inner} {said} {moved} for a link" in proc.stderr, _explain(proc)


def test_check_secrets_follows_a_folder_link_to_the_folders_that_count(secrets, private_folder, tmp_path):
    script, _ = secrets
    target = tmp_path / "real"  # under /tmp: anyone may write there
    target.mkdir()
    _write_secrets(target / "secrets.env")
    (private_folder / "conf").symlink_to(target)
    proc = _check(script, private_folder / "conf" / "secrets.env")
    assert proc.returncode == 1, _explain(proc)
    assert "the folder /tmp (mode 1777) is anyone's to write in: keep" in proc.stderr, _explain(proc)
    assert f"the folder {private_folder} " not in proc.stderr


@pytest.mark.parametrize(("text", "verdict"), [
    (f"FLASK_SECRET_KEY={SECRET_VALUE}\nDATABASE_URL=\n", "empty"),
    (f"FLASK_SECRET_KEY={SECRET_VALUE}\nDATABASE_URL=   \n", "empty"),
    # The last line that sets a key is the one systemd keeps.
    (f"FLASK_SECRET_KEY={SECRET_VALUE}\nDATABASE_URL={SECRET_VALUE}\nDATABASE_URL=\n", "empty"),
    # systemd ignores `export`: no assignment to the key.
    (f"FLASK_SECRET_KEY={SECRET_VALUE}\nexport DATABASE_URL={SECRET_VALUE}\n", "missing"),
    (f"FLASK_SECRET_KEY={SECRET_VALUE}\n# DATABASE_URL={SECRET_VALUE}\n", "missing"),
    # systemd takes blanks around the name and before the value.
    (f"FLASK_SECRET_KEY = {SECRET_VALUE}\n  DATABASE_URL\t=\t{SECRET_VALUE}\n", "ok"),
    (f"FLASK_SECRET_KEY={SECRET_VALUE}\nDATABASE_URL=\nDATABASE_URL={SECRET_VALUE}\n", "ok"),
])
def test_check_secrets_wants_each_key_with_a_value(text, verdict, secrets):
    script, file = secrets
    _write_secrets(file, text=text)
    proc = _check(script, file)
    if verdict == "ok":
        assert proc.returncode == 0 and not proc.stderr, _explain(proc)
        return
    assert proc.returncode == 1, _explain(proc)
    said = "sets DATABASE_URL to nothing; give each its value:" if verdict == "empty" else "lacks DATABASE_URL;"
    assert f"{file} {said}" in proc.stderr and "    DATABASE_URL=..." in proc.stderr, _explain(proc)
    assert "FLASK_SECRET_KEY" not in proc.stderr


def test_check_scripts_are_posix_sh_and_shellcheck_clean(cli, tmp_path):
    shellcheck = require_binary("shellcheck")
    assert cli("render", SITES, "-o", tmp_path / "out").exit_code == 0
    scripts = sorted((tmp_path / "out").glob("*/root/etc/deploygen/*/*-check")) + sorted(
        (tmp_path / "out").glob("*/root/etc/deploygen/*/check-*"))
    assert len(scripts) == 8
    proc = _run([shellcheck, "-s", "sh", *scripts])
    assert proc.returncode == 0, _explain(proc)


def test_nothing_the_app_user_runs_reads_the_secrets_file_itself(cli, tmp_path):
    """Only systemd's EnvironmentFile= names it (read as root, before User= applies): the app,
    its session cleanup and the settings each kind renders get the values from the environment."""
    assert cli("render", SITES, "-o", tmp_path / "out").exit_code == 0
    for site in ("analytics", "dokon", "sergeli0606"):
        secrets_file = yaml.safe_load((SITES / f"{site}.yaml").read_text())["app"]["secrets_file"]
        root = tmp_path / "out" / site / "root"
        naming = sorted(str(p.relative_to(root)) for p in root.rglob("*")
                        if p.is_file() and secrets_file in p.read_text())
        units = [p for p in naming if p.startswith("etc/systemd/system/")]
        assert naming == sorted([*units, f"etc/deploygen/{site}/check-secrets"]), naming
        for unit in units:
            lines = [line for line in (root / unit).read_text().splitlines() if secrets_file in line]
            assert lines == [f"EnvironmentFile={secrets_file}"], (unit, lines)


# -- the ACME challenge on port 80 ------------------------------------------------------


def _servers(conf: Path) -> list[list[dict]]:
    payload = crossplane.parse(str(conf), single=True, check_ctx=False, comments=False)
    assert payload["status"] == "ok", payload["errors"]
    return [d["block"] for d in payload["config"][0]["parsed"] if d["directive"] == "server"]


ACME_LOCATION = {"directive": "location", "args": ["^~", ACME_CHALLENGE],
                 "block": [("root", [ACME_WEBROOT]), ("default_type", ["text/plain"])]}


def _shape(d: dict) -> dict:
    return {"directive": d["directive"], "args": d["args"],
            "block": [(x["directive"], x["args"]) for x in d.get("block", [])]}


def test_the_redirect_server_answers_the_challenge_before_it_redirects(cli, tmp_path):
    root, _ = _render(cli, SITES / "dokon.yaml", tmp_path / "out")
    port_80, _ = _servers(root / "etc/nginx/sites-available/dokon.conf")
    assert [d["directive"] for d in port_80] == ["listen", "listen", "server_name", "location", "location"]
    acme, rest = _shape(port_80[3]), _shape(port_80[4])
    assert acme == ACME_LOCATION
    # The redirect is a location's: at the server's level it would run before any location.
    assert rest == {"directive": "location", "args": ["/"], "block": [("return", ["301", "https://$host$request_uri"])]}


def test_without_tls_the_apps_server_answers_the_challenge(make_site, cli, tmp_path):
    nginx = require_binary("nginx", "/usr/sbin/nginx")
    root, _ = _render(cli, make_site(NO_TLS), tmp_path / "out")
    conf = root / "etc/nginx/sites-available/shop.conf"
    (server,) = _servers(conf)
    locations = [_shape(d) for d in server if d["directive"] == "location"]
    assert locations[0] == ACME_LOCATION and [d["args"] for d in locations] == [["^~", ACME_CHALLENGE], ["/"]]
    proc = nginx_test(nginx, conf.read_text(), tmp_path / "nginx")
    assert proc.returncode == 0, _explain(proc)


def test_with_tls_a_site_location_of_the_challenges_path_is_its_own(make_site, cli, tmp_path):
    tls = {"tls": {"certificate": "/etc/ssl/shop/fullchain.pem", "certificate_key": "/etc/ssl/shop/privkey.pem"},
           "nginx": {"aliases": {ACME_CHALLENGE: "/srv/shop/acme"}}}
    root, _ = _render(cli, make_site(tls), tmp_path / "out")
    port_80, port_443 = _servers(root / "etc/nginx/sites-available/shop.conf")
    assert next(_shape(d) for d in port_80 if d["directive"] == "location") == ACME_LOCATION
    assert {"directive": "location", "args": [ACME_CHALLENGE], "block": [("alias", ["/srv/shop/acme/"])]} in [
        _shape(d) for d in port_443 if d["directive"] == "location"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(port: int, path: str) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": "dokon.uz"})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_nginx_serves_the_challenge_certbot_writes_and_redirects_the_rest(cli, tmp_path):
    """The rendered dokon server blocks on loopback ports, the webroot in a temp folder: what
    `certbot certonly --webroot -w /var/www/_letsencrypt -d dokon.uz` needs from port 80."""
    nginx = require_binary("nginx", "/usr/sbin/nginx")
    openssl = require_binary("openssl")
    root, _ = _render(cli, SITES / "dokon.yaml", tmp_path / "out")
    prefix = tmp_path / "nginx"
    webroot = prefix / "letsencrypt"
    (webroot / ACME_CHALLENGE.strip("/")).mkdir(parents=True)
    (webroot / ACME_CHALLENGE.strip("/") / "tok3n").write_text("tok3n.thumbprint")
    cert, key = prefix / "cert.pem", prefix / "key.pem"
    made = _run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=dokon.uz"])
    assert made.returncode == 0, _explain(made)
    http_port, https_port = _free_port(), _free_port()

    def local(block: list) -> list:
        out = []
        for d in block:
            args = d["args"]
            if d["directive"] == "listen":
                if args[0].startswith("["):
                    continue
                args = [f"127.0.0.1:{http_port if args[0] == '80' else https_port}", *args[1:]]
            elif d["directive"] == "root" and args == [ACME_WEBROOT]:
                args = [str(webroot)]
            elif d["directive"] in ("ssl_certificate", "ssl_certificate_key"):
                args = [str(cert if d["directive"] == "ssl_certificate" else key)]
            elif d["directive"] == "alias":
                continue  # /static/: not this test's
            out.append({**d, "args": args, **({"block": local(d["block"])} if "block" in d else {})})
        return out

    parsed = crossplane.parse(str(root / "etc/nginx/sites-available/dokon.conf"), single=True, check_ctx=False,
                              comments=False)["config"][0]["parsed"]
    (prefix / "site.conf").write_text(crossplane.build(local(parsed)) + "\n")
    temp = "".join(f"    {t}_temp_path {prefix / t};\n" for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    # One process, as root: the temp webroot need not be readable by a worker's user.
    (prefix / "nginx.conf").write_text(f"daemon off;\nmaster_process off;\npid {prefix / 'nginx.pid'};\n"
                                       f"error_log stderr;\nevents {{}}\nhttp {{\n    access_log off;\n{temp}"
                                       f"    include {prefix / 'site.conf'};\n}}\n")
    with open(prefix / "stderr", "w") as log:
        server = subprocess.Popen([nginx, "-c", prefix / "nginx.conf", "-p", f"{prefix}/", "-e", "stderr"],
                                  stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert server.poll() is None, (prefix / "stderr").read_text()
            try:
                socket.create_connection(("127.0.0.1", http_port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, (prefix / "stderr").read_text()
                time.sleep(0.05)
        status, headers, body = _get(http_port, f"{ACME_CHALLENGE}tok3n")
        assert (status, body) == (200, b"tok3n.thumbprint")
        assert headers["Content-Type"] == "text/plain"
        status, headers, _ = _get(http_port, "/cart?x=1")
        assert (status, headers["Location"]) == (301, "https://dokon.uz/cart?x=1")
        assert _get(http_port, f"{ACME_CHALLENGE}missing")[0] == 404  # never redirected, never the app
    finally:
        server.terminate()
        server.wait(timeout=20)


# -- import and audit of a tree deploygen rendered without tls --------------------------


def _settings(text: str) -> list[str]:
    """What nginx reads of a file: no comment lines, no comments after a value (where an
    imported value says `written` and the original `derived`)."""
    return [re.sub(r"\s+# .*$", "", line) for line in text.splitlines() if not line.strip().startswith("#")]


def test_import_of_a_rendered_tree_without_tls_is_a_fixed_point_and_audit_is_clean(make_site, cli, tmp_path):
    first, _ = _render(cli, make_site(NO_TLS), tmp_path / "first")
    audited = cli("audit", "--root", first)
    assert audited.exit_code == 0 and "DG" not in audited.stdout, audited.stdout + audited.stderr
    imported = tmp_path / "imported" / "shop.yaml"
    imported.parent.mkdir()
    result = cli("import", "--root", first, "-o", imported)
    assert result.exit_code == 0, result.stderr
    assert "snippet" not in imported.read_text()  # the ACME location is deploygen's, not the site's
    second, _ = _render(cli, imported, tmp_path / "second")
    conf = "etc/nginx/sites-available/shop.conf"
    assert _settings((second / conf).read_text()) == _settings((first / conf).read_text())
    again = tmp_path / "again.yaml"
    assert cli("import", "--root", second, "-o", again).exit_code == 0
    assert again.read_bytes() == imported.read_bytes()


def test_import_leaves_out_a_servers_own_challenge_location_and_says_so(make_site, cli, tmp_path):
    root, _ = _render(cli, make_site(NO_TLS), tmp_path / "out")
    conf = root / "etc/nginx/sites-available/shop.conf"
    conf.write_text(conf.read_text().replace(f"root {ACME_WEBROOT};", "root /var/www/certbot;"))
    imported = tmp_path / "shop.yaml"
    result = cli("import", "--root", root, "-o", imported)
    assert result.exit_code == 0, result.stderr
    text = imported.read_text()
    assert f"# nginx: location ^~ {ACME_CHALLENGE} left out: deploygen's port-80 server answers the ACME " \
           f"challenge from {ACME_WEBROOT}" in text
    assert "snippet" not in text
