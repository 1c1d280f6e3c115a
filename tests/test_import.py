"""`deploygen import`: a site file that renders the settings a server runs, and a fixed point."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import SITES


def _settings_only(text: str) -> list[str]:
    """A rendered file without its comments: what the layer itself reads."""
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("#", "--")):
            continue
        out.append(re.sub(r"\s+(#|--) .*$", "", line))
    return out


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "manifest.json"}


@pytest.mark.parametrize("site", ["dokon", "sergeli0606"])
def test_import_of_a_rendered_tree_renders_the_same_settings(site, cli, tmp_path):
    first = tmp_path / "first"
    assert cli("render", SITES / f"{site}.yaml", "-o", first).exit_code == 0
    imported = tmp_path / "imported" / f"{site}.yaml"
    imported.parent.mkdir()
    result = cli("import", "--root", first / site / "root", "-o", imported)
    assert result.exit_code == 0, result.stderr
    assert cli("validate", "--strict", imported).exit_code == 0

    second = tmp_path / "second"
    assert cli("render", imported, "-o", second).exit_code == 0
    before, after = _tree(first / site / "root"), _tree(second / site / "root")
    assert sorted(before) == sorted(after)
    for name in before:
        assert _settings_only(after[name]) == _settings_only(before[name]), name

    # The imported form is a fixed point: importing what it renders gives it back byte for byte.
    again = tmp_path / "again.yaml"
    assert cli("import", "--root", second / site / "root", "-o", again).exit_code == 0
    assert again.read_bytes() == imported.read_bytes()


def test_import_of_the_outage_notes_what_deploygen_would_change(cli, tmp_path, monkeypatch):
    from conftest import REPO

    monkeypatch.chdir(REPO)
    before = "tests/corpus/seed000-before"
    out = tmp_path / "dokon.yaml"
    result = cli("import", "--unit", f"{before}/etc/systemd/system/dokon.service",
                 "--nginx", f"{before}/etc/nginx/sites-available/dokon",
                 "--gunicorn", f"{before}/var/www/dokon/gunicorn_config.py", "-o", out)
    assert result.exit_code == 0, result.stderr
    text = out.read_text()
    assert "# could not be read: gunicorn.max_requests at" in text
    assert "# what the rules find in it today:" in text and "DG101 error" in text
    assert "#   nginx.proxy_read_timeout: 60s today, 130s derived (gunicorn.timeout + min(10s" in text
    assert "#   systemd.TimeoutStopSec: 90s today, 45s derived" in text
    # What runs today is what the file says: nginx's default 60 s, gunicorn's 120 s.
    validate = cli("validate", "--format", "json", out)
    assert validate.exit_code == 1 and '"DG101"' in validate.stdout


# A unit as published in a Flask deployment tutorial: named gunicorn.service, run as root,
# TimeoutSec= for both timeouts, proxied by an upstream block.
_TUTORIAL_UNIT = """\
[Unit]
Description=Gunicorn instance to serve Flask App
After=network.target

[Service]
User=root
Group=www-data
WorkingDirectory=/root
ExecStart=/usr/local/bin/gunicorn --workers 3 --bind 127.0.0.1:8000 server:app
Restart=always
RestartSec=3
TimeoutSec=30

[Install]
WantedBy=multi-user.target
"""
_TUTORIAL_NGINX = """\
events {}
http {
    upstream gunicorn-flask { server 127.0.0.1:8000 fail_timeout=0; }
    server {
        listen 49152;
        location / { proxy_pass http://gunicorn-flask; }
    }
}
"""


def test_a_unit_named_gunicorn_imports_under_the_name_given(cli, tmp_path):
    root = tmp_path / "root"
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "etc/nginx").mkdir(parents=True)
    (root / "etc/systemd/system/gunicorn.service").write_text(_TUTORIAL_UNIT)
    (root / "etc/nginx/nginx.conf").write_text(_TUTORIAL_NGINX)
    site = tmp_path / "shop.yaml"
    # No server_name, and /root is no site's folder: the generic `app`, said at the top.
    unnamed = cli("import", "--root", root, "-o", site)
    assert unnamed.exit_code == 0, unnamed.stderr
    assert "name: app\n" in site.read_text()
    assert "# name: app (no unit, server_name or folder gave a site name: rename it)" in site.read_text()
    result = cli("import", "--root", root, "--name", "shop", "-o", site)
    assert result.exit_code == 0, result.stderr
    text = site.read_text()
    assert "name: shop\n" in text and "user: root\n" in text
    validated = cli("validate", site)
    assert {"DG301", "DG701"} <= {line.split()[1] for line in validated.stdout.splitlines()}


def test_a_root_with_two_apps_imports_the_one_named(cli, tmp_path):
    """Two units, two server blocks: import asks which, and --app picks it by its unit's name."""
    root = tmp_path / "root"
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "etc/nginx/conf.d").mkdir(parents=True)
    for name, port in (("shop", 8001), ("blog", 8002)):
        (root / f"etc/systemd/system/{name}.service").write_text(
            f"[Service]\nUser={name}\nWorkingDirectory=/srv/{name}\n"
            f"ExecStart=/srv/{name}/venv/bin/gunicorn -b 127.0.0.1:{port} app:app\n")
        (root / f"etc/nginx/conf.d/{name}.conf").write_text(
            f"server {{ server_name {name}.example.com; location / {{ proxy_pass http://localhost:{port}; }} }}\n")
    site = tmp_path / "blog.yaml"
    asked = cli("import", "--root", root, "-o", site)
    assert asked.exit_code == 2 and "found 2 apps (blog, shop); import one at a time with --app UNIT" in asked.stderr
    result = cli("import", "--root", root, "--app", "blog", "-o", site)
    assert result.exit_code == 0, result.stderr
    data = yaml.safe_load(site.read_text())
    # localhost:8002 in nginx is the bind 127.0.0.1:8002: the blog's server block, not the shop's.
    assert (data["name"], data["domains"], data["server"]["bind"]) == ("blog", ["blog.example.com"], "127.0.0.1:8002")
    missing = cli("import", "--root", root, "--app", "wiki", "-o", site)
    assert missing.exit_code == 2 and "no app here runs from wiki.service; found: blog, shop" in missing.stderr


def _one_site_tree(tmp_path, locations: str):
    root = tmp_path / "root"
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "etc/nginx/sites-enabled").mkdir(parents=True)
    (root / "etc/systemd/system/shop.service").write_text(
        "[Service]\nUser=shop\nWorkingDirectory=/srv/shop\nExecStart=/srv/shop/venv/bin/gunicorn -b 127.0.0.1:8000 app:app\n")
    (root / "etc/nginx/sites-enabled/shop").write_text(
        f"server {{\n    server_name shop.example.com;\n{locations}}}\n")
    return root


def test_a_location_with_access_rules_is_carried_whole_never_opened(cli, tmp_path):
    """`allow`/`deny`/`auth_basic` on /admin/: app_paths would proxy it to everyone; the snippet keeps them."""
    root = _one_site_tree(tmp_path, "    location / { proxy_pass http://127.0.0.1:8000; }\n"
                                    "    location /admin/ {\n        allow 10.0.0.0/8;\n        deny all;\n"
                                    "        proxy_pass http://127.0.0.1:8000;\n    }\n"
                                    "    location /m { alias /srv/shop/m; }\n")
    site = tmp_path / "out/shop.yaml"
    site.parent.mkdir()
    assert cli("import", "--root", root, "-o", site).exit_code == 0
    data = yaml.safe_load(site.read_text())
    assert "app_paths" not in data.get("nginx", {}) and "aliases" not in data.get("nginx", {})
    snippet = (tmp_path / "out/shop.locations.conf").read_text()
    assert "location /admin/ {\n    allow 10.0.0.0/8;\n    deny all;\n    proxy_pass http://shop_gunicorn;\n}" in snippet
    # `location /m` without its slash serves /m../ from the folder above: carried as it is, not made an alias.
    assert "location /m {\n    alias /srv/shop/m;\n}" in snippet


def test_a_value_that_would_close_its_quotes_is_left_out_of_the_snippet(cli, tmp_path):
    """nginx accepts this `add_header`; written back by crossplane it would carry `location /leak/` out of it."""
    root = _one_site_tree(tmp_path, "    location / { proxy_pass http://127.0.0.1:8000; }\n"
                                    "    location /x {\n        add_header X-Note \"\\\"\\'; } location /leak/ { alias /etc/; }"
                                    " location = /z { add_header Y '\";\n        return 204;\n    }\n")
    site = tmp_path / "out/shop.yaml"
    site.parent.mkdir()
    result = cli("import", "--root", root, "-o", site)
    assert result.exit_code == 0, result.stderr
    snippet = (tmp_path / "out/shop.locations.conf").read_text()
    assert "/leak/" not in snippet and "location /x {\n    return 204;\n}" in snippet
    assert "# nginx: location /x: `add_header` has a quote or an escaping backslash in an argument: left out" \
        in site.read_text()


def test_the_server_blocks_own_directives_it_does_not_carry_are_said(cli, tmp_path):
    root = _one_site_tree(tmp_path, "    add_header X-Frame-Options DENY;\n    root /srv/shop/public;\n"
                                    "    client_max_body_size 10m;\n"
                                    "    location / { proxy_pass http://127.0.0.1:8000; }\n")
    site = tmp_path / "out/shop.yaml"
    site.parent.mkdir()
    assert cli("import", "--root", root, "-o", site).exit_code == 0
    head = site.read_text()
    conf = f"{root}/etc/nginx/sites-enabled/shop"
    assert f"# nginx: `add_header X-Frame-Options DENY` ({conf}:3) is the server block's own: not carried" in head
    assert f"# nginx: `root /srv/shop/public` ({conf}:4)" in head
    assert "client_max_body_size 10m` (" not in head  # read: nginx.client_max_body_size carries it
    assert yaml.safe_load(head)["nginx"]["client_max_body_size"] == "10m"


@pytest.mark.parametrize("name", ["-other.yaml", ".yaml", "..yaml"])
def test_a_site_file_name_its_snippet_cannot_be_named_after_is_refused(name, cli, tmp_path):
    """A fallback snippet name would be another site's (`shop.locations.conf` beside `shop.yaml`)."""
    root = _one_site_tree(tmp_path, "    location / { proxy_pass http://127.0.0.1:8000; }\n"
                                    "    location = /x { return 204; }\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "shop.locations.conf").write_text("location = /y { return 205; }\n")
    result = cli("import", "--root", root, "-o", out / name)
    assert result.exit_code == 2 and "its nginx snippet is named after it; nothing written" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["shop.locations.conf"]
    assert "205" in (out / "shop.locations.conf").read_text()
