"""`deploygen diff`: drift between what render writes and what a server has installed."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace

import pytest
from conftest import SITES

from deploygen.render.drift import compare
from deploygen.render.site import render_site
from deploygen.sitefile.load import load_sites


def _install(cli, site, tmp_path):
    out = tmp_path / "out"
    assert cli("render", site, "-o", out).exit_code == 0
    root = tmp_path / "server"
    shutil.copytree(out / site.stem / "root", root, dirs_exist_ok=True)
    return root


def _states(stdout: str) -> dict[str, str]:
    return {line.split()[2]: line.split()[1] for line in stdout.splitlines() if line.startswith("shop: ")}


def test_fresh_install_has_no_drift(cli, make_site, tmp_path):
    site = make_site()
    root = _install(cli, site, tmp_path)
    result = cli("diff", site, "--root", root)
    assert result.exit_code == 0
    assert set(_states(result.stdout).values()) == {"same"} and len(_states(result.stdout)) == 8


def test_each_kind_of_drift_is_named(cli, make_site, tmp_path):
    site = make_site()
    root = _install(cli, site, tmp_path)
    nginx = root / "etc/nginx/sites-available/shop.conf"
    nginx.write_text(nginx.read_text().replace("proxy_read_timeout 66s;", "proxy_read_timeout 60s;"))
    (root / "etc/deploygen/shop/postgres.sql").unlink()
    unit = root / "etc/systemd/system/shop.service"
    unit.write_text("[Service]\nExecStart=/bin/true\n")
    (root / "etc/deploygen/shop/manifest.json").unlink()  # an old server, no manifest: headers tell
    result = cli("diff", site, "--root", root)
    assert result.exit_code == 1
    states = _states(result.stdout)
    assert states["/etc/nginx/sites-available/shop.conf"] == "edited"
    assert states["/etc/deploygen/shop/postgres.sql"] == "missing"
    assert states["/etc/systemd/system/shop.service"] == "foreign"
    assert states["/etc/deploygen/shop/flask.env"] == "same"
    assert "-        proxy_read_timeout 60s;" in result.stdout
    assert "+        proxy_read_timeout 66s;" in result.stdout


def test_a_changed_site_file_makes_installed_files_outdated_not_edited(cli, make_site, tmp_path):
    root = _install(cli, make_site(), tmp_path)
    changed = make_site({"timeouts": {"request": "90s"}})
    result = cli("diff", changed, "--root", root)
    assert result.exit_code == 1
    states = _states(result.stdout)
    assert states["/etc/nginx/sites-available/shop.conf"] == "outdated"
    assert states["/etc/deploygen/shop/gunicorn.conf.py"] == "outdated"


def test_the_manifest_travels_with_the_files(cli, tmp_path):
    assert cli("render", SITES / "dokon.yaml", "-o", tmp_path).exit_code == 0
    copy = tmp_path / "dokon/root/etc/deploygen/dokon/manifest.json"
    assert copy.read_bytes() == (tmp_path / "dokon/manifest.json").read_bytes()


# --- Comments are no settings -----------------------------------------------------------------

def _states_of(name: str, stdout: str) -> dict[str, str]:
    return {line.split()[2]: line.split()[1] for line in stdout.splitlines() if line.startswith(f"{name}: ")}


def _edit(path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_a_changed_comment_is_told_apart_from_a_changed_setting_and_is_no_drift(cli, make_site, tmp_path):
    site = make_site()
    root = _install(cli, site, tmp_path)
    nginx = root / "etc/nginx/sites-available/shop.conf"
    _edit(nginx, "server {\n", "# ops: behind the new load balancer since May\nserver {\n")
    _edit(root / "etc/deploygen/shop/gunicorn.conf.py", "umask = 0o007\n", "umask = 0o007\n\n# see ticket 12\n")
    _edit(root / "etc/systemd/system/shop.service", "[Service]\n", "[Service]\n; reviewed\n")
    _edit(root / "etc/deploygen/shop/flask.env", "\n# SECRET_KEY", "\n\n# (reviewed)\n# SECRET_KEY")
    _edit(root / "etc/deploygen/shop/postgres.sql", "BEGIN;\n", "BEGIN;\n-- applied by hand on the 3rd\n")
    result = cli("diff", site, "--root", root)
    assert result.exit_code == 0, result.stdout
    states = _states(result.stdout)
    for target in ("/etc/nginx/sites-available/shop.conf", "/etc/deploygen/shop/gunicorn.conf.py",
                   "/etc/systemd/system/shop.service", "/etc/deploygen/shop/flask.env",
                   "/etc/deploygen/shop/postgres.sql"):
        assert states[target] == "comments", target
    assert states["/etc/deploygen/shop/check-secrets"] == "same"
    # Still printed, and said why: a reader sees what changed without alarm.
    assert "shop: comments   /etc/nginx/sites-available/shop.conf (only comments differ; changed by hand)" \
        in result.stdout
    assert "-# ops: behind the new load balancer since May" in result.stdout


def test_an_edited_trailing_comment_is_a_comment_and_an_edited_value_beside_it_is_not(cli, make_site, tmp_path):
    site = make_site()
    root = _install(cli, site, tmp_path)
    nginx = root / "etc/nginx/sites-available/shop.conf"
    gunicorn = root / "etc/deploygen/shop/gunicorn.conf.py"
    pool = "shop.yaml: server.workers"
    _edit(gunicorn, f"workers = 3  # {pool}", "workers = 3 # three: see the capacity plan")
    _edit(nginx, "proxy_read_timeout 66s;  # derived:", "proxy_read_timeout 66s;# derived, and checked:")
    _edit(root / "etc/deploygen/shop/flask.env", "# shop.yaml: session.lifetime\n", "")  # a note removed
    result = cli("diff", site, "--root", root)
    assert result.exit_code == 0
    assert set(_states(result.stdout).values()) == {"same", "comments"}

    _edit(nginx, "proxy_read_timeout 66s;", "proxy_read_timeout 60s;")
    result = cli("diff", site, "--root", root)
    assert result.exit_code == 1
    states = _states(result.stdout)
    assert states["/etc/nginx/sites-available/shop.conf"] == "edited"
    assert states["/etc/deploygen/shop/gunicorn.conf.py"] == "comments"


def test_a_value_changed_with_its_comment_is_a_setting(cli, make_site, tmp_path):
    root = _install(cli, make_site(), tmp_path)
    changed = make_site({"server": {"workers": 5}})
    result = cli("diff", changed, "--root", root)
    assert result.exit_code == 1
    assert _states(result.stdout)["/etc/deploygen/shop/gunicorn.conf.py"] == "outdated"


def test_a_hash_inside_quotes_is_no_comment(cli, make_site, tmp_path):
    # nginx-locations.conf holds the snippet's `add_header`, quoted by deploygen: `#` inside
    # the quotes is the header's value, whatever follows it.
    snippet = tmp_path / "shop-locations.conf"
    snippet.write_text('location /api/ {\n    add_header X-Note "one # two";\n    proxy_pass http://shop_gunicorn;\n}\n')
    site = make_site({"nginx": {"snippet": snippet.name}})
    root = _install(cli, site, tmp_path)
    locations = root / "etc/deploygen/shop/nginx-locations.conf"
    assert '"one # two"' in locations.read_text()
    _edit(locations, '"one # two"', '"one # three"')
    result = cli("diff", site, "--root", root)
    assert result.exit_code == 1
    assert _states(result.stdout)["/etc/deploygen/shop/nginx-locations.conf"] == "edited"

    _edit(locations, '"one # three";', '"one # two";  # a note')
    result = cli("diff", site, "--root", root)
    assert result.exit_code == 0
    assert _states(result.stdout)["/etc/deploygen/shop/nginx-locations.conf"] == "comments"


# (kind, target of a file the shipped site renders, a line with a quoted comment mark, the
# same line with the text after the mark changed). Appended to the rendered file and to the
# installed copy, so that they differ only inside the quotes.
QUOTED = [
    ("dokon", "/etc/deploygen/dokon/gunicorn.conf.py", 'proc_name = "dokon # web"', 'proc_name = "dokon # api"'),
    ("dokon", "/etc/deploygen/dokon/gunicorn.conf.py", "raw_env = ['A=1 # b']", "raw_env = ['A=1 # c']"),
    ("dokon", "/etc/deploygen/dokon/gunicorn.conf.py", 'x = """\n# one\n"""', 'x = """\n# two\n"""'),
    ("analytics", "/etc/deploygen/analytics/deploygen_settings.py",
     'ADMINS = [("ops # a", "a@example.org")]', 'ADMINS = [("ops # b", "a@example.org")]'),
    ("dokon", "/etc/deploygen/dokon/flask.env", 'FLASK_NOTE="a\n# b"', 'FLASK_NOTE="a\n# c"'),
    ("dokon", "/etc/deploygen/dokon/flask.env", "FLASK_NOTE=a # b", "FLASK_NOTE=a # c"),
    ("dokon", "/etc/deploygen/dokon/flask.env", "FLASK_NOTE=a\\\n# b", "FLASK_NOTE=a\\\n# c"),
    ("dokon", "/etc/systemd/system/dokon.service", "Environment=A=1 # b", "Environment=A=1 # c"),
    ("dokon", "/etc/systemd/system/dokon.service", "Environment=A=1 \\\n# b\n B=2", "Environment=A=1 \\\n# c\n B=2"),
    ("dokon", "/etc/deploygen/dokon/postgres.sql", "SELECT '-- a';", "SELECT '-- b';"),
    ("dokon", "/etc/deploygen/dokon/postgres.sql", "SELECT 'x\n-- a';", "SELECT 'x\n-- b';"),
    ("dokon", "/etc/deploygen/dokon/postgres.sql", 'SELECT 1 AS "-- a";', 'SELECT 1 AS "-- b";'),
    ("dokon", "/etc/deploygen/dokon/postgres.sql", "\\echo -- a", "\\echo -- b"),
    ("dokon", "/etc/deploygen/dokon/postgres.sql", "SELECT $$ -- a $$;", "SELECT $$ -- b $$;"),
    ("dokon", "/etc/nginx/sites-available/dokon.conf", 'map $a $b { default "x # a"; }', 'map $a $b { default "x # b"; }'),
    ("dokon", "/etc/nginx/sites-available/dokon.conf", "map $a $b { default x#a; }", "map $a $b { default x#b; }"),
    ("dokon", "/etc/nginx/sites-available/dokon.conf", "map $a $b { default 'x\n# a'; }",
     "map $a $b { default 'x\n# b'; }"),
    ("yayin", "/etc/php/8.2/fpm/pool.d/yayin.conf", 'env[NOTE] = "a ; b"', 'env[NOTE] = "a ; c"'),
    ("yayin", "/etc/php/8.2/fpm/pool.d/yayin.conf", 'env[NOTE] = "a\n; b"', 'env[NOTE] = "a\n; c"'),
    ("yayin", "/etc/php/8.2/fpm/pool.d/yayin.conf", "env[NOTE] = a;b", "env[NOTE] = a;c"),
    ("yayin", "/etc/php/8.2/fpm/pool.d/yayin.conf", "# php-fpm reads this line", "# and this one"),
]


def _appended(name: str, target: str, rendered_line: str, installed_line: str, tmp_path) -> dict[str, str]:
    """States of the shipped site NAME's files when `target`, as rendered, ends with
    `rendered_line` and its installed copy with `installed_line`."""
    site = render_site(load_sites([str(SITES / f"{name}.yaml")])[0])
    assert any(f.target == target for f in site.files)
    site = replace(site, files=[replace(f, content=f.content + rendered_line.encode() + b"\n")
                                if f.target == target else f for f in site.files])
    root = tmp_path / "server"
    for f in site.files:
        path = root / f.target.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f.content.replace(rendered_line.encode(), installed_line.encode())
                         if f.target == target else f.content)
    states = {d.target: d.state for d in compare(site, root)}
    assert {s for t, s in states.items() if t != target} == {"same"}
    return states


@pytest.mark.parametrize(("name", "target", "rendered_line", "installed_line"), QUOTED)
def test_a_change_after_a_quoted_comment_mark_is_a_setting(name, target, rendered_line, installed_line, tmp_path):
    assert _appended(name, target, rendered_line, installed_line, tmp_path)[target] == "edited"


# The same way, lines that differ in comments only, as each file's reader sees them.
COMMENTED = [
    ("dokon", "/etc/deploygen/dokon/gunicorn.conf.py", 'proc_name = "#"  # a', 'proc_name = "#"'),
    ("dokon", "/etc/deploygen/dokon/gunicorn.conf.py", "raw_env = [  # a\n    'A=1',\n]",
     "raw_env = [\n\n    # b\n    'A=1',  # c\n]"),
    ("analytics", "/etc/deploygen/analytics/deploygen_settings.py", "ADMINS = []  # a", "ADMINS = []\n# b"),
    ("dokon", "/etc/deploygen/dokon/flask.env", "# a\nFLASK_NOTE='#'", "; b\n\n  # c\nFLASK_NOTE='#'"),
    ("analytics", "/etc/systemd/system/analytics-session-cleanup.timer", "# a", "; b\n\n"),
    ("yayin", "/etc/systemd/system/php8.2-fpm.service.d/deploygen-yayin.conf", "# a\nNice=1", "Nice=1\n  # b"),
    ("dokon", "/etc/systemd/system/dokon.service", "Environment=A=1 \\\n B=2", "# a\nEnvironment=A=1 \\\n B=2"),
    ("dokon", "/etc/deploygen/dokon/postgres.sql", "SELECT '--', \"--\";  -- a", "SELECT '--', \"--\";"),
    ("dokon", "/etc/deploygen/dokon/postgres.sql", "SELECT 1\n-- a\n;", "SELECT 1\n;"),
    ("dokon", "/etc/nginx/sites-available/dokon.conf", 'map $a $b { default "#"; }  # a', 'map $a $b { default "#"; }'),
    ("dokon", "/etc/nginx/sites-available/dokon.conf", "map $a $b {\n    default x;# a\n}#b",
     "map $a $b {\n\n    default x;\n}"),
    ("yayin", "/etc/php/8.2/fpm/pool.d/yayin.conf", 'env[NOTE] = "a ; b"  ; c', 'env[NOTE] = "a ; b"'),
    ("yayin", "/etc/php/8.2/fpm/pool.d/yayin.conf", "[www2] ; a\nuser = www2", "\n;b\n[www2]\nuser = www2"),
]


# A lone CR (or another break some program takes for one) after a comment: the programs start a
# new line there, so what follows is a setting, whatever the readers here would make of it.
HIDDEN = [
    ("dokon", "/etc/deploygen/dokon/gunicorn.conf.py", "# a", '# a\rimport os; os.system("id")'),
    ("dokon", "/etc/systemd/system/dokon.service", "# a", "# a\rExecStartPre=/bin/evil"),
    ("dokon", "/etc/deploygen/dokon/flask.env", "# a", "# a\rFLASK_DEBUG=1"),
    ("yayin", "/etc/php/8.2/fpm/pool.d/yayin.conf", "; a", "; a\rpm.max_children = 77"),
    ("dokon", "/etc/deploygen/dokon/postgres.sql", "-- a", "-- a\rALTER ROLE dokon SUPERUSER;"),
    ("dokon", "/etc/nginx/sites-available/dokon.conf", "# a", "# a\u2028server_tokens on;"),
    ("dokon", "/etc/deploygen/dokon/gunicorn.conf.py", "# a", "# a\x0cb = 1"),
]


@pytest.mark.parametrize(("name", "target", "rendered_line", "installed_line"), HIDDEN)
def test_a_setting_hidden_behind_another_line_break_is_a_setting(name, target, rendered_line, installed_line,
                                                                 tmp_path):
    assert _appended(name, target, rendered_line, installed_line, tmp_path)[target] == "edited"


@pytest.mark.parametrize(("name", "target", "rendered_line", "installed_line"), COMMENTED)
def test_a_change_of_comments_alone_is_told_for_every_kind(name, target, rendered_line, installed_line, tmp_path):
    assert _appended(name, target, rendered_line, installed_line, tmp_path)[target] == "comments"


def test_comments_left_by_an_older_deploygen_are_said_so(cli, tmp_path):
    # A server installed by a deploygen whose templates said other comments: the manifest's
    # checksum is the installed file's, so deploygen wrote it, and only its comments are old.
    site = SITES / "yayin.yaml"
    root = _install(cli, site, tmp_path)
    pool = root / "etc/php/8.2/fpm/pool.d/yayin.conf"
    _edit(pool, "; Only .php files run, whatever nginx passes.\n", "; Only .php files run.\n")
    _edit(pool, "pm.max_children = 10  ; yayin.yaml: server.max_children", "pm.max_children = 10  ; yayin.yaml:16")
    manifest = root / "etc/deploygen/yayin/manifest.json"
    data = json.loads(manifest.read_text())
    for f in data["files"]:
        if f["target"] == "/etc/php/8.2/fpm/pool.d/yayin.conf":
            f["sha256"] = hashlib.sha256(pool.read_bytes()).hexdigest()
    manifest.write_text(json.dumps(data))
    result = cli("diff", site, "--root", root)
    assert result.exit_code == 0
    assert ("yayin: comments   /etc/php/8.2/fpm/pool.d/yayin.conf (only comments differ; as deploygen last "
            "wrote it)") in result.stdout


def test_comments_beside_a_missing_file_still_drift(cli, tmp_path):
    site = SITES / "analytics.yaml"
    root = _install(cli, site, tmp_path)
    _edit(root / "etc/deploygen/analytics/deploygen_settings.py", "DEBUG = False  #", "DEBUG = False  # never! ")
    (root / "etc/systemd/system/analytics-session-cleanup.timer").unlink()
    result = cli("diff", site, "--root", root)
    assert result.exit_code == 1
    states = _states_of("analytics", result.stdout)
    assert states["/etc/deploygen/analytics/deploygen_settings.py"] == "comments"
    assert states["/etc/systemd/system/analytics-session-cleanup.timer"] == "missing"


def test_what_no_reader_is_sure_of_differs_in_settings(cli, make_site, tmp_path):
    site = make_site()
    root = _install(cli, site, tmp_path)
    # Shell: a `#` line may be inside a quote or a heredoc; deploygen does not read shell.
    _edit(root / "etc/deploygen/shop/check-secrets", "set -u\n", "# local\nset -u\n")
    # A comment line inside a line continued with a backslash: versions of systemd differ.
    _edit(root / "etc/systemd/system/shop.service", "ExecStart=", "ExecStart=\\\n# x\n")
    # A coding line in Python's first two lines changes how the file is read: a setting.
    gunicorn = root / "etc/deploygen/shop/gunicorn.conf.py"
    gunicorn.write_text("# -*- coding: latin-1 -*-\n" + gunicorn.read_text())
    result = cli("diff", site, "--root", root)
    assert result.exit_code == 1
    states = _states(result.stdout)
    assert states["/etc/deploygen/shop/check-secrets"] == "edited"
    assert states["/etc/systemd/system/shop.service"] == "edited"
    assert states["/etc/deploygen/shop/gunicorn.conf.py"] == "edited"


def test_a_file_deploygen_never_wrote_stays_foreign_whatever_its_comments(cli, make_site, tmp_path):
    site = make_site()
    root = _install(cli, site, tmp_path)
    (root / "etc/deploygen/shop/manifest.json").unlink()
    unit = root / "etc/systemd/system/shop.service"
    unit.write_text(unit.read_text().split("\n", 2)[2])  # the header's two lines gone
    result = cli("diff", site, "--root", root)
    assert result.exit_code == 1
    assert _states(result.stdout)["/etc/systemd/system/shop.service"] == "foreign"


@pytest.mark.parametrize("name", ["dokon", "analytics", "yayin"])
def test_every_rendered_file_with_a_reader_reads_back_and_its_comments_can_change(name, tmp_path):
    # Each kind's reader takes every file deploygen renders (else a comment there would drift),
    # and a file with all its comments gone holds the same settings.
    from deploygen.render.comments import settings_lines

    site = render_site(load_sites([str(SITES / f"{name}.yaml")])[0])
    for f in site.files:
        text = f.content.decode()
        lines = settings_lines(f.kind, text)
        if f.kind == "check-script":
            assert lines is None
            continue
        assert lines, f.target
        assert not any(line.startswith(("#", ";", "--")) for line in lines), f.target
        assert "yaml: " not in "\n".join(lines), f.target
