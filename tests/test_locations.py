"""The server block's locations beyond `/`: nginx.app_paths, aliases, websockets and the snippet."""

from __future__ import annotations

import subprocess

import crossplane
import pytest

from conftest import require_binary

SNIPPET = """\
location = /favicon.ico { access_log off; log_not_found off; }
location ~ ^/legacy/(.*)$ {
    return 301 /new/$1;
}
location / {
    proxy_pass http://127.0.0.1:3000;  # the frontend
    proxy_set_header Host "$host";
}
"""
KEYS = {"nginx": {"app_paths": ["/api/", "/admin/"], "aliases": {"/media/": "/srv/shop/media"},
                  "websockets": {"/ws/": {"proxy_read_timeout": "2h"}}, "snippet": "shop.locations.conf"},
        "app": {"static": "/srv/shop/static"}}


def _locations(conf) -> dict[str, list]:
    """{location args: its directives} of every location in a file, as crossplane parses it."""
    payload = crossplane.parse(str(conf), single=True, check_ctx=False, comments=False)
    assert payload["status"] == "ok", payload["errors"]
    found = {}

    def walk(block):
        for d in block:
            if d["directive"] == "location":
                found[" ".join(d["args"])] = [(x["directive"], x["args"]) for x in d["block"]]
            walk(d.get("block", []))

    walk(payload["config"][0]["parsed"])
    return found


def test_every_location_is_rendered_and_nginx_accepts_them(make_site, cli, tmp_path):
    site = make_site(KEYS)
    (site.parent / "shop.locations.conf").write_text(SNIPPET)
    assert cli("validate", site).exit_code == 0
    result = cli("render", site, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    root = tmp_path / "out/shop/root"
    rendered = _locations(root / "etc/nginx/sites-available/shop.conf")
    assert set(rendered) == {"/static/", "/media/", "/api/", "/admin/", "/ws/"}
    assert ("alias", ["/srv/shop/media/"]) in rendered["/media/"]
    assert ("proxy_pass", ["http://shop_gunicorn"]) in rendered["/api/"] == rendered["/admin/"]
    assert ("proxy_set_header", ["Upgrade", "$http_upgrade"]) in rendered["/ws/"]
    assert ("proxy_read_timeout", ["7200s"]) in rendered["/ws/"]
    snippet = root / "etc/deploygen/shop/nginx-locations.conf"
    assert _locations(snippet) == _locations(site.parent / "shop.locations.conf")  # what was written, parsed again
    conf = (root / "etc/nginx/sites-available/shop.conf").read_text()
    assert "    include /etc/deploygen/shop/nginx-locations.conf;\n" in conf

    nginx = require_binary("nginx", "/usr/sbin/nginx")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    (prefix / "site.conf").write_text(conf.replace("/etc/deploygen/", f"{root}/etc/deploygen/"))
    temp = "".join(f"    {t}_temp_path {prefix / t};\n" for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (prefix / "nginx.conf").write_text(f"pid {prefix / 'nginx.pid'};\nerror_log stderr;\nevents {{}}\nhttp {{\n"
                                       f"{temp}    include {prefix / 'site.conf'};\n}}\n")
    proc = subprocess.run([nginx, "-t", "-c", prefix / "nginx.conf", "-p", f"{prefix}/", "-e", "stderr"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_without_the_keys_the_server_block_is_as_before(make_site, cli, tmp_path):
    site = make_site({})
    cli("render", site, "-o", tmp_path / "out")
    rendered = _locations(tmp_path / "out/shop/root/etc/nginx/sites-available/shop.conf")
    assert set(rendered) == {"/"}
    assert not (tmp_path / "out/shop/root/etc/deploygen/shop/nginx-locations.conf").exists()


@pytest.mark.parametrize(("snippet", "said"), [
    ("location /x { include /etc/passwd; }\n", "`include`: it would not be carried with the snippet"),
    ("server { listen 80; }\n", "`server`: a snippet holds `location` blocks only"),
    ("}\nlocation /x { return 200; }\n", "unexpected \"}\""),
    ("location /x { return 200;\n", "unexpected end of file"),
    ("location /api/ { return 200; }\n", "location /api/ is in the snippet and rendered by deploygen too"),
    ("location /x { add_header X \"a\u0007b\"; }\n", "a control character in a directive"),
])
def test_a_snippet_deploygen_cannot_carry_is_bad_input(snippet, said, make_site, cli, tmp_path):
    site = make_site({"nginx": {"app_paths": ["/api/"], "snippet": "shop.locations.conf"}})
    (site.parent / "shop.locations.conf").write_text(snippet)
    result = cli("render", site, "-o", tmp_path / "out")
    assert result.exit_code == 2 and "Traceback" not in result.stderr, result.stderr
    assert said in result.stderr and "nginx.snippet" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("keys", "said"), [
    ({"nginx": {"snippet": "../x.conf"}}, "is not a valid snippet file"),
    ({"nginx": {"snippet": "missing.conf"}}, "could not be read"),
    ({"nginx": {"aliases": {"/media/ { }": "/srv/x"}}}, "is not a valid location path"),
    ({"nginx": {"aliases": {"/media/": "/etc"}}}, "system folder"),
    ({"nginx": {"app_paths": ["/api/"], "aliases": {"/api/": "/srv/x"}}}, "nginx refuses a duplicate location"),
    ({"nginx": {"websockets": {"/ws/": {"proxy_read_timeout": "0s"}}}}, "nginx.websockets"),
])
def test_location_keys_that_would_leave_their_place_are_refused(keys, said, make_site, cli):
    result = cli("validate", make_site(keys))
    assert result.exit_code == 2 and "Traceback" not in result.stderr, result.stderr
    assert said in result.stderr
