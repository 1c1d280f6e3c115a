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
import subprocess
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
        f"install -d -m 0755 {ACME_WEBROOT}",
        "/etc/deploygen/shop/check-secrets",
        "runuser -u postgres -- psql -X -v ON_ERROR_STOP=1 -d postgres -f /etc/deploygen/shop/postgres-bootstrap.sql",
        "runuser -u postgres -- psql -X -v ON_ERROR_STOP=1 -d shop_db -f /etc/deploygen/shop/postgres.sql",
        "systemctl daemon-reload",
        "systemctl enable shop.service",
        "systemctl restart shop.service",
        "systemctl enable --now shop-session-cleanup.timer",
        "/etc/deploygen/shop/nginx-check /etc/nginx/sites-available/shop.conf",
        "ln -sf /etc/nginx/sites-available/shop.conf /etc/nginx/sites-enabled/shop.conf",
        "nginx -t",
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
    section = readme.split("### Installing on a server", 1)[1].split("\n### ", 1)[0]
    assert "```sh\n" + "\n".join(manifest["post_install"]) + "\n```" in section


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


# -- check-secrets: the secrets file, by key name, never by value -----------------------


@pytest.fixture
def secrets(make_site, cli, tmp_path):
    """(check-secrets of a site whose secrets file is `tmp_path/secrets.env`, that file's path)."""
    require_binary("stat")
    require_binary("getent")
    file = tmp_path / "secrets.env"
    root, _ = _render(cli, make_site({"app": {"secrets_file": str(file)}}), tmp_path / "out")
    return root / "etc/deploygen/shop/check-secrets", file


def _write_secrets(file: Path, keys=("FLASK_SECRET_KEY", "DATABASE_URL"), mode=0o640, owner="root",
                   group="www-data") -> None:
    file.write_text("".join(f"{key}={SECRET_VALUE}\n" for key in keys))
    shutil.chown(file, owner, group)
    os.chmod(file, mode)


def _check(script: Path, *args) -> subprocess.CompletedProcess:
    proc = _run(["/bin/sh", script, *args])
    assert SECRET_VALUE not in proc.stdout + proc.stderr, _explain(proc)
    return proc


@pytest.mark.parametrize("mode", [0o640, 0o600, 0o440])
def test_check_secrets_passes_a_private_file_holding_every_key(mode, secrets):
    script, file = secrets
    _write_secrets(file, mode=mode)
    proc = _check(script)  # no argument: the site's own secrets_file
    assert proc.returncode == 0 and not proc.stderr, _explain(proc)
    assert f"{file}: root:www-data, mode {mode:04o}, with FLASK_SECRET_KEY DATABASE_URL" in proc.stdout


def test_check_secrets_names_a_missing_key_and_never_a_value(secrets):
    script, file = secrets
    _write_secrets(file, keys=("FLASK_SECRET_KEY",))
    proc = _check(script, file)
    assert proc.returncode == 1, _explain(proc)
    assert f"{file} lacks DATABASE_URL;" in proc.stderr and "    DATABASE_URL=..." in proc.stderr
    assert "FLASK_SECRET_KEY" not in proc.stderr


@pytest.mark.parametrize("mode", [0o644, 0o660, 0o604, 0o740, 0o4640])
def test_check_secrets_refuses_a_mode_beyond_0640(mode, secrets):
    script, file = secrets
    _write_secrets(file, mode=mode)
    proc = _check(script, file)
    assert proc.returncode == 1, _explain(proc)
    assert f"{file} has mode {mode:04o}:" in proc.stderr and f"    chmod 0640 {file}" in proc.stderr


@pytest.mark.parametrize(("owner", "group"), [("nobody", "www-data"), ("root", "root")])
def test_check_secrets_refuses_a_file_root_and_the_apps_group_do_not_own(owner, group, secrets):
    script, file = secrets
    _write_secrets(file, owner=owner, group=group)
    proc = _check(script, file)
    assert proc.returncode == 1, _explain(proc)
    assert "not root and www-data" in proc.stderr and f"    chown root:www-data {file}" in proc.stderr


def test_check_secrets_says_how_to_create_a_missing_file(secrets):
    script, file = secrets
    proc = _check(script, file)
    assert proc.returncode == 1, _explain(proc)
    assert proc.stderr.splitlines() == [
        f"check-secrets: {file} does not exist; create it, readable by root and the group www-data only:",
        f"check-secrets:     install -D -m 0640 -o root -g www-data /dev/null {file}",
        "check-secrets: then add one line per key, each with its value (this script never shows one):",
        "check-secrets:     FLASK_SECRET_KEY=...",
        "check-secrets:     DATABASE_URL=...",
    ]


def test_check_secrets_refuses_a_link_or_a_folder(secrets, tmp_path):
    script, file = secrets
    real = tmp_path / "elsewhere.env"
    _write_secrets(real)
    file.symlink_to(real)
    link = _check(script, file)
    assert link.returncode == 1 and "is a symbolic link" in link.stderr, _explain(link)
    folder = _check(script, tmp_path)
    assert folder.returncode == 1 and "is not a regular file" in folder.stderr, _explain(folder)


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
