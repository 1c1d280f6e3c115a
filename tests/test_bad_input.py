"""Bad input: exit 2, one located line per problem, no traceback, nothing written."""

from __future__ import annotations

import re

import pytest

LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?:(?P<key>[\w.\[\]]+): )?(?P<msg>.+)$")


def _render_fails(cli, site_file, out):
    """Render into `out`, which holds an earlier output; return stderr lines."""
    out.mkdir(exist_ok=True)
    (out / "earlier.txt").write_text("earlier output")
    result = cli("render", site_file, "-o", out)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert sorted(p.name for p in out.iterdir()) == ["earlier.txt"]
    lines = result.stderr.splitlines()
    for line in lines:
        assert LINE.match(line), line
    return lines


def _write(tmp_path, text, name="site.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_unknown_key_names_the_key_and_suggests(make_site, cli, tmp_path):
    site = make_site({"timeouts": {"nginx": {"proxy_read_timout": "60s"}}})
    [line] = _render_fails(cli, site, tmp_path / "out")
    m = LINE.match(line)
    assert m["key"] == "timeouts.nginx.proxy_read_timout"
    assert "unknown key" in m["msg"] and "did you mean 'proxy_read_timeout'" in m["msg"]
    assert site.read_text().splitlines()[int(m["line"]) - 1].strip().startswith("proxy_read_timout:")


def test_every_problem_is_reported_with_its_own_line(tmp_path, cli):
    site = _write(tmp_path, """\
name: shop
domains: [shop.example.com]
app:
  framework: flask
  wsgi: app:app
  root: /srv/shop
  venv: /srv/shop/venv
server:
  bind: unix:/run/shop/gunicorn.sock
  workers: "3"
timeouts:
  request: 1.5s
bogus: 1
""")
    lines = _render_fails(cli, site, tmp_path / "out")
    assert len(lines) == 3
    assert lines[0].startswith(f"{site}:10:3: server.workers: Input should be a valid integer")
    assert lines[1] == (f"{site}:12:3: timeouts.request: '1.5s': timeouts.request takes whole seconds "
                        "(gunicorn.timeout is derived from it, and gunicorn reads an integer): write 2s or 1s")
    assert lines[2].startswith(f"{site}:13:1: bogus: unknown key")


def test_duplicate_key(tmp_path, cli, make_site):
    text = make_site().read_text() + "name: other\n"
    site = _write(tmp_path, text, "dup.yaml")
    [line] = _render_fails(cli, site, tmp_path / "out")
    assert ": name: duplicate key (first written at line 1)" in line


def test_missing_required_key(make_site, cli, tmp_path):
    site = make_site({"timeouts": {"request": None}})
    [line] = _render_fails(cli, site, tmp_path / "out")
    assert "timeouts.request: required key is missing" in line


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("# only a comment\n", "empty file"),
        ("- a\n- b\n", "must be a mapping"),
        ("just text\n", "must be a mapping"),
        ("name: [unclosed\n", "YAML syntax error"),
        ("name: !!python/object:os.system x\n", "YAML tag"),
        ("name: !custom shop\n", "YAML tag"),
        ("a: 1\n---\nb: 2\n", "YAML syntax error"),
    ],
    ids=["empty", "comment-only", "list", "scalar", "syntax", "python-tag", "custom-tag", "two-documents"],
)
def test_malformed_documents(tmp_path, cli, text, message):
    site = _write(tmp_path, text)
    lines = _render_fails(cli, site, tmp_path / "out")
    assert any(message in line for line in lines), lines


def test_unreadable_file(tmp_path, cli):
    lines = _render_fails(cli, tmp_path / "missing.yaml", tmp_path / "out")
    assert lines == [f"{tmp_path / 'missing.yaml'}:1:1: cannot read the site file: No such file or directory"]


def test_folder_without_site_files(tmp_path, cli):
    (tmp_path / "empty").mkdir()
    lines = _render_fails(cli, tmp_path / "empty", tmp_path / "out")
    assert "no *.yaml or *.yml site files" in lines[0]


def test_one_bad_site_in_a_folder_writes_no_site_at_all(tmp_path, cli, make_site):
    folder = tmp_path / "sites"
    make_site({"name": "good"}, folder=folder)
    make_site({"name": "bad", "server": {"workers": 0}}, folder=folder)
    lines = _render_fails(cli, folder, tmp_path / "out")
    assert len(lines) == 1 and "bad.yaml" in lines[0] and "server.workers" in lines[0]


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"name": "shop;"}, "name"),
        ({"name": "nginx"}, "name"),
        ({"domains": ["shop.example.com; include /etc/shadow"]}, "domains[0]"),
        ({"domains": ["shop.example.com\n}"]}, "domains[0]"),
        ({"domains": ["a b.example.com"]}, "domains[0]"),
        ({"domains": []}, "domains"),
        ({"app": {"root": "relative/path"}}, "app.root"),
        ({"app": {"root": "/var/www/shop; return 200"}}, "app.root"),
        ({"app": {"static": "/var/www/{shop}"}}, "app.static"),
        ({"app": {"venv": "/var/www/shop/../../etc"}}, "app.venv"),
        ({"app": {"secrets_file": "/etc/shop/secrets.env\nExecStartPre=/bin/sh"}}, "app.secrets_file"),
        ({"app": {"secrets_file": "/etc/%n/secrets.env"}}, "app.secrets_file"),
        ({"app": {"user": "root\nExecStart=/bin/sh"}}, "app.user"),
        ({"app": {"group": "www data"}}, "app.group"),
        ({"app": {"wsgi": "app:app; import os"}}, "app.wsgi"),
        ({"app": {"wsgi": "app"}}, "app.wsgi"),
        ({"tls": {"certificate": "/etc/ssl/a'b.pem", "certificate_key": "/etc/ssl/k.pem"}}, "tls.certificate"),
        ({"database": {"role": 'shop"; DROP ROLE postgres; --'}}, "database.role"),
        ({"database": {"name": "shop_db'; DROP DATABASE x; --"}}, "database.name"),
        ({"server": {"bind": "localhost:8000"}}, "server.bind"),
        ({"server": {"bind": "unix:/tmp/shop.sock"}}, "server.bind"),
        ({"server": {"bind": "127.0.0.1:70000"}}, "server.bind"),
        ({"session": {"cookie": {"name": "a=b; Domain=evil"}}}, "session.cookie.name"),
        ({"nginx": {"client_max_body_size": "10m; root /"}}, "nginx.client_max_body_size"),
        ({"session": {"cleanup": {"command": "/bin/sh -c 'rm -rf /'"}}}, "session.cleanup.command"),
        ({"session": {"cleanup": {"command": "cleanup --all"}}}, "session.cleanup.command"),
        ({"session": {"cleanup": {"command": "/usr/bin/find /var/lib/x -delete;reboot"}}}, "session.cleanup.command"),
        ({"session": {"directory": "/tmp/sessions"}}, "session.directory"),
        ({"session": {"cookie": {"domain": "*.example.com"}}}, "session.cookie.domain"),
    ],
)
def test_values_that_could_break_out_are_refused(make_site, cli, tmp_path, overrides, key):
    site = make_site(overrides)
    lines = _render_fails(cli, site, tmp_path / "out")
    assert [LINE.match(line)["key"] for line in lines] == [key], lines


@pytest.mark.parametrize(
    ("overrides", "key", "message"),
    [
        ({"server": {"workers": 0}}, "server.workers", "greater than or equal to 1"),
        ({"server": {"workers": True}}, "server.workers", "valid integer"),
        ({"server": {"worker_class": "uvicorn"}}, "server.worker_class", "'sync', 'gthread'"),
        ({"timeouts": {"request": "0s"}}, "timeouts.request", "longer than 0"),
        ({"timeouts": {"request": "-5s"}}, "timeouts.request", "not a duration"),
        ({"timeouts": {"request": "5 minutes"}}, "timeouts.request", "not a duration"),
        ({"timeouts": {"request": "30m5h"}}, "timeouts.request", "largest first"),
        ({"timeouts": {"gunicorn": {"timeout": "1500ms"}}}, "timeouts.gunicorn.timeout",
         "'1500ms': gunicorn.timeout takes whole seconds (gunicorn reads an integer): write 2s or 1s"),
        ({"timeouts": {"postgres": {"statement_timeout": "30d"}}}, "timeouts.postgres.statement_timeout",
         "2147483647ms"),
        ({"session": {"lifetime": "2y"}}, "session.lifetime", "not a duration"),
        ({"session": {"permanent": "sometimes"}}, "session.permanent", "'always' or 'remember-me'"),
        ({"session": {"cookie": {"secure": "yes please"}}}, "session.cookie.secure", "valid boolean"),
        ({"app": {"framework": "rails"}}, "app.framework", "'flask'"),
        ({"session": {"cleanup": {"every": "7m"}}}, "session.cleanup.every", "divide an hour"),
        ({"session": {"store": "memcached"}}, "session.store", "'cookie', 'redis' or 'filesystem'"),
    ],
)
def test_wrong_types_and_out_of_range(make_site, cli, tmp_path, overrides, key, message):
    site = make_site(overrides)
    [line] = _render_fails(cli, site, tmp_path / "out")
    m = LINE.match(line)
    assert m["key"] == key and message in m["msg"], line


def test_validate_reports_bad_input_with_status_2(make_site, cli):
    site = make_site({"server": {"workers": -1}})
    result = cli("validate", site)
    assert result.exit_code == 2
    assert "server.workers" in result.stderr and "Traceback" not in result.stderr
