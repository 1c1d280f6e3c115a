"""The server block's locations beyond `/`: nginx.app_paths, aliases, websockets and the snippet."""

from __future__ import annotations

import crossplane
import pytest
from conftest import nginx_test, require_binary

from deploygen.sitefile.acme import ACME_CHALLENGE as ACME

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
    # Without tls the app's server is the port-80 one, which answers certbot's challenge.
    assert set(rendered) == {"/static/", "/media/", "/api/", "/admin/", "/ws/", f"^~ {ACME}"}
    assert ("alias", ["/srv/shop/media/"]) in rendered["/media/"]
    assert ("proxy_pass", ["http://shop_gunicorn"]) in rendered["/api/"] == rendered["/admin/"]
    assert ("proxy_set_header", ["Upgrade", "$http_upgrade"]) in rendered["/ws/"]
    assert ("proxy_read_timeout", ["7200s"]) in rendered["/ws/"]
    snippet = root / "etc/deploygen/shop/nginx-locations.conf"
    assert _locations(snippet) == _locations(site.parent / "shop.locations.conf")  # what was written, parsed again
    conf = (root / "etc/nginx/sites-available/shop.conf").read_text()
    assert "    include /etc/deploygen/shop/nginx-locations.conf;\n" in conf

    nginx = require_binary("nginx", "/usr/sbin/nginx")
    proc = nginx_test(nginx, conf.replace("/etc/deploygen/", f"{root}/etc/deploygen/"), tmp_path / "nginx")
    assert proc.returncode == 0, proc.stderr


def test_without_the_keys_the_server_block_is_as_before(make_site, cli, tmp_path):
    site = make_site({})
    cli("render", site, "-o", tmp_path / "out")
    rendered = _locations(tmp_path / "out/shop/root/etc/nginx/sites-available/shop.conf")
    assert set(rendered) == {"/", f"^~ {ACME}"}
    assert not (tmp_path / "out/shop/root/etc/deploygen/shop/nginx-locations.conf").exists()


NOT_A_SNIPPETS = "is no directive a snippet may hold"


@pytest.mark.parametrize(("snippet", "said"), [
    ("location /x { include /etc/passwd; }\n", f"`include` {NOT_A_SNIPPETS}"),
    ("server { listen 80; }\n", "`server`: a snippet holds `location` blocks only"),
    ("}\nlocation /x { return 200; }\n", "unexpected \"}\""),
    ("location /x { return 200;\n", "unexpected end of file"),
    ("location /api/ { return 200; }\n", "location /api/ is in the snippet and rendered by deploygen too"),
    ("location ^~ /api/ { return 200; }\n", "is in the snippet and rendered by deploygen too"),  # one prefix to nginx
    ("location /x { return 200; }\nlocation /x { return 201; }\n", "is here twice (line 1)"),
    ("location { return 200; }\n", "`location` without a path"),
    ("location /x { add_header X \"a\u0007b\"; }\n", "a control character or an escaping backslash"),
    # nginx reads these as root at `nginx -t`: a folder chowned to its worker, files created anywhere,
    # another site's key loaded, code run.
    ("location /x { client_body_temp_path /etc; }\n", f"`client_body_temp_path` {NOT_A_SNIPPETS}"),
    ("location /x { access_log /etc/cron.d/x; }\n", "`access_log` other than `off`"),
    ("location /x { error_log /etc/cron.d/x; }\n", f"`error_log` {NOT_A_SNIPPETS}"),
    ("location /x { proxy_ssl_certificate_key /etc/ssl/private/other.key; }\n", NOT_A_SNIPPETS),
    ("location /x { content_by_lua_block { os.execute('id') } }\n", NOT_A_SNIPPETS),
    ("location /x { alias /etc/; }\n", "`alias` '/etc': nginx would serve a system folder"),
    ("location /x { root /; }\n", "`root` '/': nginx would serve a system folder"),
    # A value that would close its own quotes and carry syntax into the server block.
    ("location /a { add_header X \"\\\"\\'; } include /tmp/x.conf; listen 18082; location /z { add_header Y '\"; }\n",
     "a quote, a control character or an escaping backslash in an argument"),
    ("location /a { \"#\" x; }\n", NOT_A_SNIPPETS),
    (f"location {ACME} {{ root /srv/shop/acme; }}\n", "is in the snippet and rendered by deploygen too"),
    (f"location ^~ {ACME} {{ return 404; }}\n", "is in the snippet and rendered by deploygen too"),
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
    ({"nginx": {"websockets": {"/": {}}}}, "location / is in both app_paths and websockets"),  # default app_paths
    ({"nginx": {"aliases": {"/m": "/srv/shop/m"}}}, "without it, /m../ reaches the folder above"),
    ({"app": {"static": "/srv/shop/static"}, "nginx": {"aliases": {"/static/": "/srv/x"}}},
     "location /static/ is app.static's"),
    # Without tls, the port-80 server is the app's, and deploygen's ACME location is in it.
    ({"nginx": {"app_paths": ["/", ACME]}}, f"nginx.app_paths: location {ACME} is deploygen's own"),
    ({"nginx": {"aliases": {ACME: "/srv/shop/acme"}}}, f"nginx.aliases: location {ACME} is deploygen's own"),
    ({"nginx": {"websockets": {ACME: {}}}}, f"nginx.websockets: location {ACME} is deploygen's own"),
])
def test_location_keys_that_would_leave_their_place_are_refused(keys, said, make_site, cli):
    result = cli("validate", make_site(keys))
    assert result.exit_code == 2 and "Traceback" not in result.stderr, result.stderr
    assert said in result.stderr


def test_a_snippet_is_never_read_through_a_link(make_site, cli, tmp_path):
    """A link could hand a root-only file to a render anyone may read."""
    secret = tmp_path / "secret.conf"
    secret.write_text('location /x { proxy_set_header Authorization "Bearer ROOT-ONLY"; }\n')
    site = make_site({"nginx": {"snippet": "shop.locations.conf"}})
    (site.parent / "shop.locations.conf").symlink_to(secret)
    result = cli("validate", site)
    assert result.exit_code == 2 and "a symbolic link where a file was expected" in result.stderr
    assert "ROOT-ONLY" not in result.stderr


def test_arguments_are_written_by_deploygen_and_read_back_alike(make_site, cli, tmp_path):
    """Bare words stay bare; a space, `;`, braces or a leading `#` go in double quotes, as nginx needs."""
    snippet = ('location ~ "^/a{2}/(.*)$" {\n    add_header X-Tag "#1";\n    add_header X-Note "a; b { c }";\n'
               '    if ($request_method = POST) {\n        return 405;\n    }\n    rewrite ^/aa/(.*)$ /b/$1 break;\n}\n')
    site = make_site({"nginx": {"snippet": "shop.locations.conf"}})
    (site.parent / "shop.locations.conf").write_text(snippet)
    assert cli("render", site, "-o", tmp_path / "out").exit_code == 0
    written = (tmp_path / "out/shop/root/etc/deploygen/shop/nginx-locations.conf").read_text()
    assert 'location ~ "^/a{2}/(.*)$" {' in written and 'add_header X-Tag "#1";' in written
    assert "if ($request_method = POST) {" in written and "rewrite ^/aa/(.*)$ /b/$1 break;" in written
    assert _locations(tmp_path / "out/shop/root/etc/deploygen/shop/nginx-locations.conf") == \
        _locations(site.parent / "shop.locations.conf")


def test_the_drill_includes_the_rendered_snippet_not_this_machines(tmp_path):
    from deploygen.drill.stack import _loopback_listen

    conf = tmp_path / "site.conf"
    conf.write_text("server {\n    listen 80;\n    include /etc/deploygen/shop/nginx-locations.conf;\n}\n")
    _loopback_listen(conf, tmp_path / "local.conf", 18080, tmp_path / "render/root")
    written = (tmp_path / "local.conf").read_text()
    assert f"include {tmp_path}/render/root/etc/deploygen/shop/nginx-locations.conf;" in written
    assert "listen 127.0.0.1:18080;" in written
