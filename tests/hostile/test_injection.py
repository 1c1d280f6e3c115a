"""A site file's name is copied into every rendered file: it must stay a name there.

The header comment of each file and every `FILE: key` provenance note carry the site
file's name. A name that could end its comment line (a newline, CR, U+2028, a form feed
and the other non-printable characters) or continue it (a backslash: systemd's line
continuation, psql's meta-commands) is refused at load: exit 2, one located line, nothing
written. Every other name is accepted, and here each file rendered from an awkward one is
loaded by the program that reads it on a server, which must see exactly what it sees for
the plain `shop.yaml`: gunicorn's own config loader (the same settings, no extra module
name), psql on a throwaway cluster (the same role settings, no other role or database),
systemd-analyze (verify clean, the same security verdict, the same keys), nginx (config
test, a request through the one server block, no other socket), and the env file as a
shell reads it (the same variables). Every consumer runs in an empty folder that must stay
empty: a payload that ran would leave its canary file there.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import crossplane
import pytest
import yaml

from deploygen.drill.stack import Stack, check_programs
from tests.conftest import BASE_SITE, merge, require_binary
from tests.hostile.conftest import assert_bad_input, run_deploygen

PLAIN = "shop.yaml"
TOUCH = "touch canary"  # every payload's effect: a file named canary in the consumer's folder

# Refused: each could end (or continue) the comment it is written into.
HOSTILE = [
    pytest.param(f"shop\nimport os; os.system('{TOUCH}')\n#.yaml", id="newline-python"),
    pytest.param(f"shop\n\\! {TOUCH}\n--.yaml", id="newline-psql-shell"),
    pytest.param("shop\nALTER ROLE shop SUPERUSER;\n--.yaml", id="newline-sql"),
    pytest.param("shop\nUser=root\n#.yaml", id="newline-unit-user"),
    pytest.param("shop\nserver { listen 8080; return 200 owned; }\n#.yaml", id="newline-nginx-server"),
    pytest.param("shop\nLD_PRELOAD=evil.so\n#.yaml", id="newline-env"),
    pytest.param("shop\rUser=root.yaml", id="carriage-return"),
    pytest.param("shop\r\nUser=root.yaml", id="crlf"),
    pytest.param("shop\u2028User=root.yaml", id="line-separator-U+2028"),
    pytest.param("shop\u2029User=root.yaml", id="paragraph-separator-U+2029"),
    pytest.param("shop\u0085User=root.yaml", id="next-line-U+0085"),
    pytest.param("shop\x0cUser=root.yaml", id="form-feed"),
    pytest.param("shop\x0bUser=root.yaml", id="vertical-tab"),
    pytest.param("shop\tUser=root.yaml", id="tab"),
    pytest.param("shop\x1b[2K\x1b[1Aok.yaml", id="terminal-escape"),
    pytest.param("shop\u202egnp.yaml", id="bidi-override-U+202E"),
    pytest.param("shop\u2066x\u2069.yaml", id="bidi-isolate-U+2066"),
    pytest.param("shop\\.yaml", id="backslash"),
    pytest.param("shop.yaml\\", id="trailing-backslash"),
    pytest.param(f"dir\nimport os; os.system('{TOUCH}')/shop.yaml", id="newline-in-the-folder"),
    # Printable, but each is a character some consumer reads even inside a comment, or one that
    # only a name that means to do harm needs: the name keeps to letters, digits, space, . _ @ + -.
    pytest.param(f"coding=utf-7 +AAo-import os+ADs-os.system(+ACI-{TOUCH}+ACI-)+AAo-#.yaml",
                 id="python-coding-utf-7"),
    pytest.param("#shop#.yaml", id="hash"),
    pytest.param("shop's \"site\" '''\"\"\".yaml", id="quotes"),
    pytest.param("shop; ALTER ROLE shop SUPERUSER;.yaml", id="semicolon-sql"),
    pytest.param(f"$({TOUCH})`{TOUCH}`.yaml", id="command-substitution"),
    pytest.param("%n%s%x%%.yaml", id="printf"),
    pytest.param("{{ 7*7 }}{% if 1 %}x{% endif %}{#.yaml", id="jinja"),
    pytest.param("shop } server { listen 8080; return 200 owned; }.yaml", id="nginx-braces"),
    pytest.param("[Service] User=root.yaml", id="unit-section"),
    pytest.param("LD_PRELOAD=evil.so.yaml", id="env-assignment"),
    pytest.param("магазин-dükkan-店-🛒.yaml", id="unicode-letters"),
    # NUL cannot be part of a file name at all: the kernel ends the name there.
]

# Accepted: every character the name may hold, in the places a consumer might care about.
AWKWARD = [
    pytest.param("my shop site.yaml", id="spaces"),
    pytest.param("--shop -- x.yaml", id="dashes"),
    pytest.param("shop@prod+1.2_3.yaml", id="at-plus-dot-underscore"),
    pytest.param("coding utf-7 +AAo-x+AAo-.yaml", id="coding-without-its-colon"),
    pytest.param("s" * 195 + ".yaml", id="200-characters"),
]


# -- the site, rendered under each name -----------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Upstream(BaseHTTPRequestHandler):
    """What nginx proxies to: says who it is, so a request is known to have gone through."""

    def do_GET(self):
        body = f"upstream {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A folder with the app root and venv the unit names, and a live upstream on the site's bind."""
    folder = tmp_path_factory.mktemp("injection")
    root = folder / "approot"
    root.mkdir()
    (root / "app.py").write_text("from flask import Flask\n\napp = Flask(__name__)\n")
    venv = folder / "venv"
    (venv / "bin").mkdir(parents=True)
    # systemd-analyze verify checks that ExecStart's program exists.
    (venv / "bin" / "gunicorn").symlink_to(require_binary(str(Path(sys.executable).parent / "gunicorn"),
                                                          "gunicorn"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"folder": folder, "root": root, "venv": venv, "upstream_port": server.server_address[1]}
    finally:
        server.shutdown()
        server.server_close()


def _site(ws: dict) -> dict:
    """BASE_SITE with a value written for each layer, so that each file has `FILE: key` notes."""
    return merge(BASE_SITE, {
        "app": {"root": str(ws["root"]), "venv": str(ws["venv"])},
        "server": {"bind": f"127.0.0.1:{ws['upstream_port']}", "worker_class": "sync"},
        "timeouts": {"request": "60s",
                     "nginx": {"proxy_read_timeout": "70s", "client_body_timeout": "30s"},
                     "gunicorn": {"keepalive": 4},
                     "postgres": {"statement_timeout": "50s", "lock_timeout": "5s"},
                     "systemd": {"RestartSec": "3s"}},
    })


@pytest.fixture(scope="module")
def rendered(workspace):
    """name -> {kind: rendered file}, rendering the site under that file name once."""
    cache: dict[str, dict[str, Path]] = {}
    text = yaml.safe_dump(_site(workspace), sort_keys=False, allow_unicode=True)

    def get(name: str) -> dict[str, Path]:
        if name not in cache:
            folder = workspace["folder"] / f"case{len(cache)}"
            folder.mkdir()
            site = folder / name
            site.write_text(text)
            out = folder / "out"
            result = run_deploygen("render", site, "-o", out, cwd=folder)
            assert result.returncode == 0, (name, result.stdout, result.stderr)
            manifest = json.loads((out / "shop" / "manifest.json").read_text())
            # The first install's files (the bootstrap SQL, the check scripts) carry the name in
            # their headers too; the cases below read one file of each layer: the timeouts SQL.
            files = {entry["kind"]: out / "shop" / entry["path"] for entry in manifest["files"]
                     if entry["kind"] != "check-script" and not entry["path"].endswith("/postgres-bootstrap.sql")}
            assert set(files) == {"nginx-site", "gunicorn-config", "systemd-service", "flask-env", "postgres-sql"}
            assert files["postgres-sql"].name == "postgres.sql"
            for path in [out / "shop" / entry["path"] for entry in manifest["files"]]:
                assert name in path.read_text(), (path, name)
            for kind, path in files.items():
                # Else the case proves nothing: the name must reach each file.
                assert name in path.read_text(), (kind, name)
            cache[name] = files
        return cache[name]

    return get


@pytest.fixture
def work(tmp_path):
    """The consumer's working folder: a payload that ran leaves its canary here."""
    folder = tmp_path / "work"
    folder.mkdir()
    yield folder
    assert list(folder.iterdir()) == [], "a payload in the file name ran"


def run(args: list, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def explain(proc: subprocess.CompletedProcess) -> str:
    return f"$ {proc.args}\nexit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


# -- refused names ------------------------------------------------------------------


@pytest.mark.parametrize("name", HOSTILE)
def test_a_name_that_could_leave_its_comment_is_refused(tmp_path, name):
    site = tmp_path / name
    site.parent.mkdir(parents=True, exist_ok=True)
    site.write_text(yaml.safe_dump(BASE_SITE, sort_keys=False))
    out = tmp_path / "out"
    result = run_deploygen("render", site, "-o", out, cwd=tmp_path)
    assert_bad_input(result, lines=1)
    # The name is echoed escaped: no character of it may break or hide the message's line.
    assert all(c.isprintable() for c in result.stderr.rstrip("\n")), repr(result.stderr)
    assert not out.exists(), "nothing may be written"
    assert not (tmp_path / "canary").exists()


@pytest.mark.parametrize("name", [HOSTILE[0], HOSTILE[3], HOSTILE[8]])
def test_a_refused_name_in_a_sites_folder_stops_every_site(tmp_path, name):
    """One bad name among good sites: nothing is rendered, not even the good ones."""
    sites = tmp_path / "sites"
    sites.mkdir()
    good = merge(BASE_SITE, {"name": "good", "server": {"bind": "unix:/run/good/gunicorn.sock"},
                             "database": {"name": "good", "role": "good"}})
    (sites / "good.yaml").write_text(yaml.safe_dump(good, sort_keys=False))
    (sites / name).write_text(yaml.safe_dump(BASE_SITE, sort_keys=False))
    out = tmp_path / "out"
    result = run_deploygen("render", sites, "-o", out, cwd=tmp_path)
    assert_bad_input(result, lines=1)
    assert not out.exists()


@pytest.mark.parametrize("command", ["validate", "explain", "diff", "drill"])
def test_every_command_refuses_the_name(tmp_path, command):
    """Each command loads the site file, and each one prints the name: the drill would run the SQL."""
    site = tmp_path / HOSTILE[1].values[0]
    site.write_text(yaml.safe_dump(BASE_SITE, sort_keys=False))
    args = [command, site] + (["--root", tmp_path / "root"] if command == "diff" else [])
    result = run_deploygen(*args, cwd=tmp_path)
    assert_bad_input(result, lines=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == [site.name]


# -- accepted names, read by their real consumers ---------------------------------


_GUNICORN_PROBE = r'''
import json, sys
from gunicorn.app.base import Application
from gunicorn.app.wsgiapp import WSGIApplication

path = sys.argv[1]
# gunicorn's own reading of a config file: the module's names, every one of them.
names = sorted(k for k in Application.get_config_from_filename(None, path) if not k.startswith("__"))
sys.argv = ["gunicorn", "-c", path]
app = WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]", prog="gunicorn")

def shown(value):
    if callable(value):
        return f"{value.__module__}.{value.__qualname__}"
    return repr(value)

print(json.dumps({"names": names, "settings": {k: shown(s.get()) for k, s in sorted(app.cfg.settings.items())}}))
'''


def _gunicorn_reading(conf: Path, cwd: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("GUNICORN_CMD_ARGS", "PYTHONPATH")}
    check = run([sys.executable, "-m", "gunicorn", "--check-config", "-c", conf], cwd=cwd, env=env)
    assert check.returncode == 0, explain(check)
    proc = run([sys.executable, "-c", _GUNICORN_PROBE, conf], cwd=cwd, env=env)
    assert proc.returncode == 0, explain(proc)
    reading = json.loads(proc.stdout)
    assert reading["settings"].pop("config") == repr(str(conf))  # the one setting that is the file's own path
    return reading


@pytest.mark.parametrize("name", AWKWARD)
def test_gunicorn_loads_the_same_settings_and_no_other_name(name, rendered, work, workspace):
    plain_dir = work.parent / "plain"
    plain_dir.mkdir()
    expected = _gunicorn_reading(rendered(PLAIN)["gunicorn-config"], plain_dir)
    got = _gunicorn_reading(rendered(name)["gunicorn-config"], work)
    assert got["names"] == expected["names"]
    assert got["settings"] == expected["settings"]
    settings = got["settings"]
    assert (settings["timeout"], settings["workers"], settings["keepalive"]) == ("60", "3", "4")
    assert settings["bind"] == repr([f"127.0.0.1:{workspace['upstream_port']}"])
    shutil.rmtree(plain_dir)


@pytest.fixture(scope="module")
def cluster():
    """A throwaway PostgreSQL on 127.0.0.1, started (and always stopped) by the drill's own Stack."""
    require_binary("initdb", "/usr/lib/postgresql/15/bin/initdb")
    require_binary("postgres", "/usr/lib/postgresql/15/bin/postgres")
    require_binary("psql", "/usr/lib/postgresql/15/bin/psql")
    folder = Path(tempfile.mkdtemp(prefix="deploygen-injection-pg-", dir="/tmp"))
    os.chmod(folder, 0o755)  # as root the server runs as postgres, who must enter it
    stack = Stack(folder, check_programs())
    try:
        empty = folder / "empty.sql"
        empty.write_text("")
        stack.start_postgres("injection_admin", "injection_admin", empty)
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _psql(stack, cwd: Path, *args) -> subprocess.CompletedProcess:
    # PG* variables of the caller would redirect the connection.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return run([stack.programs["psql"], "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                "-p", stack.pg_port, "-U", "postgres", *args], cwd=cwd, env=env)


_STATE = {
    "settings": "SELECT coalesce(d.datname, '*'), coalesce(r.rolname, '*'), array_to_string(s.setconfig, ',') "
                "FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase "
                "LEFT JOIN pg_roles r ON r.oid = s.setrole ORDER BY 1, 2",
    "roles": "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles "
             "WHERE rolname NOT LIKE 'pg\\_%' ORDER BY 1",
    "databases": "SELECT datname FROM pg_database ORDER BY 1",
}


def _apply(stack, sql: Path, cwd: Path) -> dict[str, str]:
    """The rendered SQL run on a fresh role and database as the manifest says; what the cluster then holds."""
    for statement in ("DROP DATABASE IF EXISTS shop_db", "DROP ROLE IF EXISTS shop", "CREATE ROLE shop LOGIN",
                      "CREATE DATABASE shop_db OWNER shop"):
        proc = _psql(stack, cwd, "-d", "postgres", "-c", statement)
        assert proc.returncode == 0, explain(proc)
    proc = _psql(stack, cwd, "-d", "shop_db", "-f", sql)
    assert proc.returncode == 0, explain(proc)
    state = {}
    for what, query in _STATE.items():
        proc = _psql(stack, cwd, "-d", "postgres", "-c", query)
        assert proc.returncode == 0, explain(proc)
        state[what] = proc.stdout
    return state


@pytest.mark.parametrize("name", AWKWARD)
def test_psql_applies_only_the_role_settings(name, rendered, work, cluster):
    got = _apply(cluster, rendered(name)["postgres-sql"], work)
    expected = _apply(cluster, rendered(PLAIN)["postgres-sql"], work)
    assert got == expected
    [row] = got["settings"].splitlines()
    database, role, config = row.split("|")
    assert (database, role) == ("shop_db", "shop")
    assert config.split(",") == ["statement_timeout=50s", "lock_timeout=5s",
                                 "idle_in_transaction_session_timeout=60s",
                                 "client_connection_check_interval=5s"], config
    assert "shop|f|f|f" in got["roles"].splitlines()


def _unit_keys(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) of a unit file, read by systemd's rules: `#`/`;` comment lines,
    `[Section]` headers, a trailing backslash joining the next line."""
    keys, section, pending = [], "", ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        else:
            key, _, value = line.partition("=")
            keys.append((section, key.strip(), value.strip()))
    return keys


def _systemd_reading(unit: Path, cwd: Path) -> tuple[list, list]:
    analyze = require_binary("systemd-analyze")
    verify = run([analyze, "verify", unit], cwd=cwd)
    assert verify.returncode == 0, explain(verify)
    # Unknown keys and bad values are warnings (exit 0): any line about the unit fails.
    assert not [line for line in verify.stderr.splitlines() if unit.name in line], explain(verify)
    security = run([analyze, "security", "--offline=true", "--json=short", unit], cwd=cwd)
    assert security.returncode == 0, explain(security)
    return json.loads(security.stdout), _unit_keys(unit.read_text())


@pytest.mark.parametrize("name", AWKWARD)
def test_systemd_reads_the_same_unit(name, rendered, work):
    unit = rendered(name)["systemd-service"]
    assert unit.name == "shop.service"
    security, keys = _systemd_reading(unit, work)
    expected_security, expected_keys = _systemd_reading(rendered(PLAIN)["systemd-service"], work)
    assert security == expected_security
    assert keys == expected_keys
    service = {key: value for section, key, value in keys if section == "Service"}
    assert [k for _, k, _ in keys].count("User") == 1 and service["User"] == "www-data"
    assert "LD_PRELOAD" not in unit.read_text().replace(name, "")


def _listening(pids: set[int]) -> set[str]:
    """host:port of every TCP socket in LISTEN state that one of `pids` holds."""
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                address, port = fields[1].split(":")
                host = ".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)) if table == "tcp" else address
                found.add(f"{host}:{int(port, 16)}")
    return found


def _nginx_group(pid: int) -> set[int]:
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[2]) == pid:
                out.add(int(entry.name))
    return out


def _shape(block: list[dict]) -> list:
    return [(d["directive"], d["args"], _shape(d["block"]) if "block" in d else None) for d in block]


@pytest.mark.parametrize("name", AWKWARD)
def test_nginx_serves_the_one_server_block(name, rendered, work, workspace):
    nginx = require_binary("nginx", "/usr/sbin/nginx")
    conf = rendered(name)["nginx-site"]

    def shape(path: Path) -> list:
        payload = crossplane.parse(str(path), single=True, check_ctx=False, comments=False)
        assert payload["status"] == "ok", payload["errors"]
        return _shape(payload["config"][0]["parsed"])

    assert shape(conf) == shape(rendered(PLAIN)["nginx-site"])
    assert [d[0] for d in shape(conf)] == ["upstream", "server"]

    # The file as written, comments and all, with only its two listen lines moved to loopback:
    # a listen that came from the name would stay as it is and show below.
    port = _free_port()
    text = conf.read_text()
    assert text.count("\n    listen 80;\n") == 1 and text.count("\n    listen [::]:80;\n") == 1, text
    text = text.replace("\n    listen 80;\n", f"\n    listen 127.0.0.1:{port};\n").replace(
        "\n    listen [::]:80;\n", "\n")
    prefix = work.parent / "nginx"
    prefix.mkdir()
    site = prefix / "site.conf"
    site.write_text(text)
    temp = "".join(f"    {t}_temp_path {prefix}/{t};\n" for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = prefix / "nginx.conf"
    main.write_text(f"daemon off;\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log;\nworker_processes 1;\n"
                    f"events {{ worker_connections 64; }}\nhttp {{\n    access_log off;\n{temp}    include {site};\n}}\n")
    base = [nginx, "-c", main, "-p", f"{prefix}/", "-e", prefix / "error.log"]
    test = run([*base, "-t"], cwd=work)
    assert test.returncode == 0 and "test is successful" in test.stderr, explain(test)

    process = subprocess.Popen([str(a) for a in base], cwd=work, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (prefix / "error.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not answer"
                time.sleep(0.05)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/probe", headers={"Host": "shop.example.com"})
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"upstream /probe")
        conn.close()
        assert _listening(_nginx_group(process.pid)) == {f"127.0.0.1:{port}"}
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    shutil.rmtree(prefix)


def _env_reading(env_file: Path, cwd: Path) -> dict[str, str]:
    # systemd's EnvironmentFile= and a POSIX shell agree on what deploygen writes (unquoted
    # words and single-quoted strings, `#` comment lines); a shell also runs `$(...)`, so a
    # payload that escaped its comment would show here as a canary.
    bash = require_binary("bash")
    proc = run(["env", "-i", bash, "-c", 'set -a; . "$1"; set +a; exec env -0', "bash", env_file], cwd=cwd)
    assert proc.returncode == 0, explain(proc)
    variables = dict(item.split("=", 1) for item in proc.stdout.split("\0") if item)
    for shell_own in ("PWD", "SHLVL", "_", "OLDPWD"):
        variables.pop(shell_own, None)
    return variables


@pytest.mark.parametrize("name", AWKWARD)
def test_env_file_sets_the_same_variables(name, rendered, work):
    got = _env_reading(rendered(name)["flask-env"], work)
    assert got == _env_reading(rendered(PLAIN)["flask-env"], work)
    assert got and all(key.startswith("FLASK_") for key in got), sorted(got)
    assert got["FLASK_PERMANENT_SESSION_LIFETIME"] == "43200"


def test_the_plain_name_is_written_where_the_awkward_ones_are(rendered):
    """The checks above compare with `shop.yaml`: it reaches the same places (a header, each note)."""
    files = rendered(PLAIN)
    for kind, path in files.items():
        text = path.read_text()
        assert re.search(r"Written by deploygen \S+ from shop\.yaml:", text), kind
        assert re.search(r"shop\.yaml: [a-z_.]+", text), f"{kind} has no `FILE: key` note"


def test_the_drill_runs_the_sql_with_no_more_than_the_postgres_users_rights(cluster, tmp_path):
    """Behind the refusal, a second wall: had a meta-command got into postgres.sql, the drill
    (which applies it, as root on a server) would run it as the postgres user, as post_install does."""
    if os.geteuid() != 0:
        pytest.skip("only root runs psql as another user")
    sql = tmp_path / "postgres.sql"  # in a folder only root can enter: psql reads it on stdin
    sql.write_text("\\! id -un\n")
    assert cluster.psql(None, "postgres", file=sql).strip() == "postgres"
