"""Readers of existing configuration: nginx (crossplane) and gunicorn (ast); units, SQL and Flask env files
have their own (test_unit_reader, test_sql_reader, test_env_reader)."""

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
