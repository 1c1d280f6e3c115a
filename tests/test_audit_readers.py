"""Readers of existing configuration: nginx (crossplane), gunicorn (ast), units, SQL, Flask env."""

from __future__ import annotations

from pathlib import Path

from deploygen.audit.gunicorn_reader import read_gunicorn
from deploygen.audit.nginx_reader import nginx_time, read_nginx, read_server_block

CORPUS = Path(__file__).parent / "corpus"


def test_nginx_defaults_apply_where_directives_are_absent():
    """The dokon server block before its fix: no timeouts written, so nginx's 60 s run."""
    path = CORPUS / "seed000-before/etc/nginx/sites-available/dokon"
    [server] = read_server_block(str(path))
    assert server.server_names == ["dokon.uz", "www.dokon.uz"]
    assert server.upstream == "http://127.0.0.1:8001"
    read = server.settings["nginx.proxy_read_timeout"]
    assert (read.value.nginx(), read.default) == ("60s", True)
    assert (read.location.file, read.location.line) == (str(path.resolve()), 9)  # the `location /` lacking it


def test_nginx_inherits_from_http_and_server_and_reads_the_upstream():
    root = CORPUS / "debian/etc/nginx"
    [server] = read_nginx(str(root / "nginx.conf"))
    s = server.settings
    assert (s["nginx.proxy_read_timeout"].value.nginx(), s["nginx.proxy_read_timeout"].default) == ("90s", False)
    assert s["nginx.proxy_read_timeout"].location.file.endswith("nginx.conf")
    assert s["nginx.proxy_read_timeout"].location.line == 14
    assert s["nginx.proxy_send_timeout"].value.nginx() == "120s"
    assert s["nginx.proxy_send_timeout"].location.file.endswith("sites-enabled/shop")
    assert s["nginx.keepalive_timeout"].value.nginx() == "65s"
    assert s["nginx.proxy_connect_timeout"].default
    assert s["nginx.upstream.keepalive"].value == 16
    assert (s["nginx.upstream.keepalive_timeout"].value.nginx(), s["nginx.upstream.keepalive_timeout"].default) \
        == ("60s", True)
    assert s["nginx.upstream.server"].value == ["127.0.0.1:8001"]


def test_nginx_time_syntax():
    assert [nginx_time(t).ms for t in ("60", "60s", "1m30s", "500ms", "1h", "1d")] == [
        60000, 60000, 90000, 500, 3600000, 86400000]


def test_gunicorn_config_read_without_running_it():
    path = CORPUS / "seed000-before/var/www/dokon/gunicorn_config.py"
    read = read_gunicorn(str(path))
    assert read["gunicorn.timeout"].value.nginx() == "120s" and read["gunicorn.timeout"].location.line == 7
    assert read["gunicorn.keepalive"].value.nginx() == "2s"
    assert read["gunicorn.workers"].value == 3
    assert read["gunicorn.graceful_timeout"].default and read["gunicorn.graceful_timeout"].value.nginx() == "30s"
    assert read["gunicorn.max_requests"].value is None
    assert "not a literal" in read["gunicorn.max_requests"].unknown
    assert read_gunicorn(str(path), {"TIMEOUT": "300"})["gunicorn.timeout"].value.nginx() == "300s"


def test_unit_without_stop_timeout_gets_systemds_90s():
    from deploygen.audit.unit_reader import read_unit

    path = CORPUS / "seed000-before/etc/systemd/system/dokon.service"
    read = read_unit(str(path))
    stop = read["systemd.TimeoutStopSec"]
    assert (stop.value.nginx(), stop.default) == ("90s", True)
    assert read["gunicorn.config_file"].value == "gunicorn_config.py"
    assert read["systemd.WorkingDirectory"].value == "/var/www/dokon"


def test_exec_start_flags_without_a_config_file():
    from deploygen.audit.unit_reader import read_unit

    read = read_unit(str(CORPUS / "droplet/etc/systemd/system/shop.service"))
    assert read["systemd.TimeoutStopSec"].value.nginx() == "5s" and read["systemd.TimeoutStopSec"].location.line == 12
    assert read["gunicorn.timeout"].value.nginx() == "60s" and read["gunicorn.timeout"].location.line == 11
    assert (read["gunicorn.workers"].value, read["gunicorn.threads"].value) == (3, 4)
    assert read["gunicorn.worker_class"].value == "gthread"
    assert read["gunicorn.bind"].value == "unix:/home/shop/app/shop.sock"
    assert read["systemd.EnvironmentFile"].value == ["/home/shop/app/.env", "/etc/shop/secrets.env"]
    assert "gunicorn.config_file" not in read


def test_systemd_time_spans():
    from deploygen.audit.unit_reader import systemd_time

    assert [systemd_time(t).ms for t in ("45", "45s", "1min 30s", "500ms", "2h")] == [
        45000, 45000, 90000, 500, 7200000]


def test_sql_precedence_role_in_database_over_role_over_database():
    from deploygen.audit.sql_reader import read_sql

    path = str(CORPUS / "seed000-before/var/www/dokon/set_pg_timeouts.sql")
    read = read_sql(path, "dokon", "dokon_db")
    statement = read["postgres.statement_timeout"]
    assert statement.value.nginx() == "120s" and statement.location.line == 5  # role IN DATABASE wins
    assert read["postgres.lock_timeout"].value.nginx() == "30s" and read["postgres.lock_timeout"].location.line == 3
    assert read["postgres.idle_in_transaction_session_timeout"].default
    assert read["postgres.idle_in_transaction_session_timeout"].value is None  # PostgreSQL's 0: off
    other_db = read_sql(path, "dokon", "elsewhere")
    assert other_db["postgres.statement_timeout"].default  # neither the database's nor the scoped one apply


def test_sql_reader_agrees_with_postgresqls_own_parser():
    """pglast (GPL, tests only) parses the same statements: same targets, names and values."""
    import pglast

    from deploygen.audit.sql_reader import _literal, _name, _statements

    path = CORPUS / "seed000-before/var/www/dokon/set_pg_timeouts.sql"
    text = path.read_text()
    ours = [(st.words[1].upper(), _name(st.words[2])) for st in _statements(text) if st.words[0].upper() == "ALTER"]
    theirs = []
    for raw in pglast.parse_sql(text):
        stmt = raw.stmt
        kind = type(stmt).__name__
        if kind == "AlterRoleSetStmt":
            theirs.append(("ROLE", stmt.role.rolename))
        elif kind == "AlterDatabaseSetStmt":
            theirs.append(("DATABASE", stmt.dbname))
    assert ours == theirs
    assert _literal("'it''s'") == "it's"


def test_flask_env_reader():
    from deploygen.audit.env_reader import read_flask_env

    read = read_flask_env(str(CORPUS / "seed000-before/var/www/dokon/.env"))
    assert read["flask.PERMANENT_SESSION_LIFETIME"].value == 28800
    assert read["flask.SESSION_COOKIE_HTTPONLY"].value is True
    assert read["flask.SESSION_COOKIE_SAMESITE"].value == "Lax"
    assert read["flask.SQLALCHEMY_ENGINE_OPTIONS.pool_recycle"].value == 3600
    assert read["flask.SQLALCHEMY_ENGINE_OPTIONS.pool_recycle"].location.line == 5
    assert "flask.DATABASE_URL" not in read and len(read) == 4


def test_nginx_directives_from_an_included_file_reach_the_servers_of_its_level(tmp_path):
    """`include conf.d/*.conf;` in http {} sets what every server inherits, as in nginx;
    `include proxy_params;` in a location sets its headers."""
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "sites-enabled").mkdir()
    (tmp_path / "conf.d/timeouts.conf").write_text("proxy_read_timeout 300s;\n")
    (tmp_path / "proxy_params").write_text("proxy_set_header X-Forwarded-Proto $scheme;\n")
    (tmp_path / "sites-enabled/shop").write_text(
        "server {\n  location / {\n    include proxy_params;\n    proxy_pass http://127.0.0.1:8000;\n  }\n}\n")
    (tmp_path / "nginx.conf").write_text(
        "events {}\nhttp {\n  include conf.d/*.conf;\n  include sites-enabled/*;\n}\n")
    [server] = read_nginx(str(tmp_path / "nginx.conf"))
    read = server.settings["nginx.proxy_read_timeout"]
    assert (read.value.nginx(), read.location) == ("300s", (str(tmp_path / "conf.d/timeouts.conf"), 1, 1))
    header = server.settings["nginx.proxy_set_header.X-Forwarded-Proto"]
    assert (header.value, header.location.file) == ("$scheme", str(tmp_path / "proxy_params"))


def test_unit_lines_join_continuations_as_systemd_does():
    from deploygen.audit.unit_reader import unit_lines

    text = "[Service]\nExecStart=/v/bin/gunicorn \\\n# skipped\n  --timeout 45 \\\n  app:app\nUser=x \\"
    assert list(unit_lines(text)) == [(1, "[Service]"), (2, "ExecStart=/v/bin/gunicorn  --timeout 45  app:app"),
                                      (6, "User=x")]


def test_a_glob_inside_a_root_follows_links_inside_it(tmp_path):
    from deploygen.audit.source import Tree

    (tmp_path / "etc/nginx/sites-available").mkdir(parents=True)
    (tmp_path / "etc/nginx/sites-enabled").mkdir()
    (tmp_path / "etc/nginx/sites-available/b").write_text("")
    (tmp_path / "etc/nginx/sites-enabled/b").symlink_to("/etc/nginx/sites-available/b")
    (tmp_path / "etc/nginx/sites-enabled/a").symlink_to("/nowhere")  # dangling: matched, as by glob(3)
    (tmp_path / "etc/nginx/sites-enabled/.hidden").write_text("")
    tree = Tree(str(tmp_path))
    assert tree.glob("/etc/nginx/sites-enabled/*") == ["/etc/nginx/sites-enabled/a", "/etc/nginx/sites-enabled/b"]
    assert tree.local("/etc/nginx/sites-enabled/b") == str(tmp_path / "etc/nginx/sites-available/b")
    assert tree.glob("/etc/*/sites-enabled/b") == ["/etc/nginx/sites-enabled/b"]


def test_a_units_dropins_are_read_over_it_each_setting_at_its_own_line(tmp_path):
    from deploygen.audit.source import Tree
    from deploygen.audit.unit_reader import read_unit, unit_dropins

    unit = tmp_path / "shop.service"
    unit.write_text("[Service]\nExecStart=/v/bin/gunicorn -w 3 --timeout 60 app:app\nTimeoutStopSec=90\nUser=shop\n")
    (tmp_path / "shop.service.d").mkdir()
    (tmp_path / "shop.service.d/20-b.conf").write_text("[Service]\nTimeoutSec=2\n")
    (tmp_path / "shop.service.d/10-a.conf").write_text(
        "User=ignored-outside-any-section\n[Service]\nExecStart=\nExecStart=/v/bin/gunicorn --timeout 45 app:app\n")
    tree = Tree()
    dropins = unit_dropins(tree, "shop.service", (str(tmp_path),))
    assert dropins == [str(tmp_path / "shop.service.d/10-a.conf"), str(tmp_path / "shop.service.d/20-b.conf")]
    read = read_unit(str(unit), tree, dropins)
    assert (read["gunicorn.timeout"].value.nginx(), read["gunicorn.timeout"].location) == (
        "45s", (dropins[0], 4, 1))
    assert "gunicorn.workers" not in read  # the first command's `-w 3` went with it
    assert (read["systemd.TimeoutStopSec"].value.nginx(), read["systemd.TimeoutStopSec"].location) == (
        "2s", (dropins[1], 2, 1))
    assert (read["systemd.User"].value, read["systemd.User"].location.line) == ("shop", 4)
    assert tree.read["systemd"] == [str(unit), *dropins]
