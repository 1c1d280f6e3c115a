"""`audit --root`: every path a server's files name is that server's, resolved inside ROOT.

Each case plants a canary outside ROOT: a site whose `proxy_read_timeout 5s` is under
gunicorn's 60 s, which would be a DG101 error and name `canary.example` if audit read it.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.hostile.conftest import assert_bad_input, run_deploygen

UNIT = """[Unit]
Description=shop

[Service]
User=shop
WorkingDirectory=/srv/shop
ExecStart=/srv/shop/venv/bin/gunicorn -c gunicorn.conf.py app:app
TimeoutStopSec=90
"""
GUNICORN = 'bind = "unix:/run/shop/gunicorn.sock"\ntimeout = 60\ngraceful_timeout = 30\n'
NGINX_CONF = "events {}\nhttp {\n    include /etc/nginx/sites-enabled/*;\n}\n"
SITE = """server {
    server_name shop.example.com;
    location / {
        proxy_pass http://unix:/run/shop/gunicorn.sock;
        proxy_read_timeout 90s;
        proxy_send_timeout 90s;
        proxy_set_header X-Forwarded-Proto $scheme;
    }
}
"""
CANARY = SITE.replace("shop.example.com", "canary.example").replace("90s", "5s")


def server_tree(tmp_path: Path, files: dict[str, str] | None = None) -> Path:
    """ROOT with one gunicorn app and its nginx site (overridden or extended by `files`)."""
    root = tmp_path / "root"
    tree = {"etc/systemd/system/shop.service": UNIT, "srv/shop/gunicorn.conf.py": GUNICORN,
            "etc/nginx/nginx.conf": NGINX_CONF, "etc/nginx/sites-available/shop": SITE, **(files or {})}
    for name, text in tree.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    enabled = root / "etc/nginx/sites-enabled"
    enabled.mkdir(parents=True, exist_ok=True)
    if not (enabled / "shop").exists():
        (enabled / "shop").symlink_to("/etc/nginx/sites-available/shop")  # absolute, as Debian's are
    return root


def canary(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "site.conf").write_text(CANARY)
    (outside / "gunicorn.py").write_text('bind = "unix:/run/shop/gunicorn.sock"\ntimeout = 600\n')
    (outside / "flask.env").write_text("FLASK_PERMANENT_SESSION_LIFETIME=1\n")
    return outside


def assert_not_read(result, outside: Path) -> None:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert "canary.example" not in output and "DG101" not in output, output
    for line in output.splitlines():
        if line.startswith("read: "):
            assert str(outside) not in line.split(": ", 2)[-1].replace(str(outside.parent / "root"), ""), line


def test_the_tree_as_written_is_clean_and_says_what_it_read(tmp_path):
    root = server_tree(tmp_path)
    result = run_deploygen("audit", "--root", root)
    assert result.returncode == 0, result.stderr
    assert f"read: nginx: 2 file(s): {root}/etc/nginx/nginx.conf, {root}/etc/nginx/sites-available/shop" \
        in result.stderr
    assert f"read: shop: systemd: {root}/etc/systemd/system/shop.service" in result.stderr
    assert f"read: shop: gunicorn: {root}/srv/shop/gunicorn.conf.py" in result.stderr
    assert f"read: shop: nginx: {root}/etc/nginx/sites-available/shop:1 server block, location / -> " \
           "http://unix:/run/shop/gunicorn.sock" in result.stderr


def test_a_sites_enabled_link_to_an_absolute_path_outside_is_read_inside_root(tmp_path):
    outside = canary(tmp_path)
    root = server_tree(tmp_path)
    (root / "etc/nginx/sites-enabled/x").symlink_to(outside / "site.conf")
    result = run_deploygen("audit", "--root", root)
    # nginx itself would fail on the dangling link: the one at ROOT/<outside>/site.conf. audit says so
    # and audits the rest, never reading the canary.
    assert result.returncode == 0, result.stderr
    assert f"not read: {root}/etc/nginx/nginx.conf:3: include /etc/nginx/sites-enabled/*: not there " \
           f"({root}{outside}/site.conf)" in result.stderr
    assert_not_read(result, outside)


def test_a_link_to_etc_passwd_reads_roots_own(tmp_path):
    root = server_tree(tmp_path, {"etc/passwd": "root:x:0:0::/root:/bin/sh\n"})
    (root / "etc/nginx/sites-enabled/x").symlink_to("/etc/passwd")
    result = run_deploygen("audit", "--root", root)
    [problem] = assert_bad_input(result)
    # ROOT's passwd, parsed as nginx would: not the auditing machine's.
    assert problem["file"] == f"{root}/etc/passwd", problem.string
    assert "daemon:" not in result.stderr


def test_an_absolute_include_names_roots_file_not_this_machines(tmp_path):
    """`include /etc/nginx/mime.types;` is ROOT's mime.types, even where this machine has one."""
    conf = "events {}\nhttp {\n    include /etc/nginx/mime.types;\n    include /etc/nginx/sites-enabled/*;\n}\n"
    root = server_tree(tmp_path, {"etc/nginx/nginx.conf": conf, "etc/nginx/mime.types": "types { text/html html; }\n"})
    result = run_deploygen("audit", "--root", root)
    assert result.returncode == 0, result.stderr
    assert f"{root}/etc/nginx/mime.types" in result.stderr
    assert ", /etc/nginx" not in result.stderr

    # Not in ROOT: never this machine's, but the text Debian's nginx-common ships, said so.
    os.unlink(root / "etc/nginx/mime.types")
    result = run_deploygen("audit", "--root", root)
    assert result.returncode == 0, result.stderr
    assert f"not read: {root}/etc/nginx/nginx.conf:3: include /etc/nginx/mime.types: not there, read as " \
           "Debian's nginx-common ships it" in result.stderr
    assert ", /etc/nginx" not in result.stderr


def test_an_absolute_include_of_a_canary_outside_root(tmp_path):
    outside = canary(tmp_path)
    conf = f"events {{}}\nhttp {{\n    include {outside}/*.conf;\n    include /etc/nginx/sites-enabled/*;\n}}\n"
    root = server_tree(tmp_path, {"etc/nginx/nginx.conf": conf})
    result = run_deploygen("audit", "--root", root)
    assert result.returncode == 0, result.stderr  # the glob matches nothing inside ROOT
    assert_not_read(result, outside)


def test_dotdot_includes_stop_at_root(tmp_path):
    canary(tmp_path)
    conf = "events {}\nhttp {\n    include ../../../../../../../../../../outside/site.conf;\n" \
           "    include /etc/nginx/sites-enabled/*;\n}\n"
    root = server_tree(tmp_path, {"etc/nginx/nginx.conf": conf})
    result = run_deploygen("audit", "--root", root)
    assert result.returncode == 0, result.stderr
    assert f"not there ({root}/outside/site.conf): what it sets is unknown" in result.stderr


def test_a_config_named_with_dotdot_stays_in_root(tmp_path):
    canary(tmp_path)
    unit = UNIT.replace("-c gunicorn.conf.py", "-c ../../../../../../../../outside/gunicorn.py")
    root = server_tree(tmp_path, {"etc/systemd/system/shop.service": unit})
    result = run_deploygen("audit", "--root", root)
    [problem] = assert_bad_input(result)
    assert problem["file"] == f"{root}/etc/systemd/system/shop.service" and problem["line"] == "7"
    assert problem["key"] == "gunicorn.config_file"
    assert f"{root}/outside/gunicorn.py: No such file or directory" in problem["msg"]

    # With the file where ROOT puts it, that one is read, and never the canary's 600 s.
    (root / "outside").mkdir()
    (root / "outside/gunicorn.py").write_text(GUNICORN)
    result = run_deploygen("audit", "--root", root)
    assert result.returncode == 0, result.stderr
    assert f"read: shop: gunicorn: {root}/outside/gunicorn.py" in result.stderr


def test_a_config_linked_outside_root_is_read_inside(tmp_path):
    outside = canary(tmp_path)
    root = server_tree(tmp_path)
    os.unlink(root / "srv/shop/gunicorn.conf.py")
    (root / "srv/shop/gunicorn.conf.py").symlink_to(outside / "gunicorn.py")
    [problem] = assert_bad_input(run_deploygen("audit", "--root", root))
    assert f"{root}{outside}/gunicorn.py" in problem["msg"]


def test_environment_files_stay_in_root(tmp_path):
    outside = canary(tmp_path)
    unit = UNIT.replace("TimeoutStopSec=90", f"TimeoutStopSec=90\nEnvironmentFile={outside}/flask.env\n"
                                             "EnvironmentFile=-../../../../../../../outside/flask.env")
    root = server_tree(tmp_path, {"etc/systemd/system/shop.service": unit})
    result = run_deploygen("audit", "--root", root)
    assert result.returncode == 0, result.stderr
    assert f"{root}{outside}/flask.env (not there: skipped)" in result.stderr
    assert f"{root}/outside/flask.env (not there: skipped)" in result.stderr
    assert "DG4" not in result.stdout  # the canary's 1-second session lifetime was not read


def _swappable(tmp_path: Path) -> tuple[Path, Path]:
    """ROOT and its gunicorn folder, with a link beside that folder to a canary folder outside."""
    outside = canary(tmp_path)
    (outside / "gunicorn.conf.py").write_text((outside / "gunicorn.py").read_text())
    root = server_tree(tmp_path)
    (root / "srv/link").symlink_to(outside)
    return root, root / "srv/shop"


def test_a_folder_swapped_for_a_link_after_resolving_is_still_read_inside_root(tmp_path):
    """`Tree.local` answers from the tree as it was; the read walks it again as it is, inside ROOT."""
    from deploygen.audit.source import Tree
    from deploygen.errors import InputError

    root, folder = _swappable(tmp_path)
    tree = Tree(str(root))
    local = tree.local("/srv/shop/gunicorn.conf.py")
    os.rename(folder, root / "srv/real")
    os.rename(root / "srv/link", folder)  # after resolving, before reading
    try:
        tree.read_bytes(local, "gunicorn")
    except InputError as exc:
        assert "No such file" in exc.problems[0].message  # ROOT/<outside>/gunicorn.conf.py
    else:
        raise AssertionError("read a file through a link out of ROOT")


def test_a_folder_swapped_for_a_link_while_audit_reads_never_leads_out(tmp_path):
    """The race itself for a bounded time (one `import --root` in 224 read the canary before)."""
    from deploygen.audit.source import Tree
    from deploygen.errors import InputError
    from tests.hostile.test_diff import _race

    root, folder = _swappable(tmp_path)
    tree = Tree(str(root))

    def read() -> bytes | None:
        try:
            return tree.read_bytes(tree.local("/srv/shop/gunicorn.conf.py"), "gunicorn")
        except (InputError, OSError):
            return None

    seen = _race(root, folder, read)
    assert not any(b"timeout = 600" in (data or b"") for data in seen)
    assert GUNICORN.encode() in seen  # the race was run, not only lost


def test_a_symlink_loop_is_a_located_error(tmp_path):
    root = server_tree(tmp_path)
    (root / "etc/nginx/sites-enabled/a").symlink_to("/etc/nginx/sites-enabled/b")
    (root / "etc/nginx/sites-enabled/b").symlink_to("/etc/nginx/sites-enabled/a")
    [*problems] = assert_bad_input(run_deploygen("audit", "--root", root))
    assert any("too many levels of symbolic links" in p["msg"] for p in problems), [p.string for p in problems]


def test_a_tree_without_a_gunicorn_unit_is_not_clean_but_unaudited(tmp_path):
    """A standard Debian tree audited for nothing used to exit 0: now it says nothing was audited."""
    root = server_tree(tmp_path)
    os.unlink(root / "etc/systemd/system/shop.service")
    (root / "etc/systemd/system/cron.service").write_text("[Service]\nExecStart=/usr/sbin/cron -f\n")
    # Its nginx still proxies: audited alone, and said so with the units that were read.
    result = run_deploygen("audit", "--root", root)
    assert result.returncode in (0, 1), result.stderr
    assert f"read: shop.example.com: nginx: {root}/etc/nginx/sites-available/shop:1 server block, audited alone: " \
           f"no unit runs gunicorn as audit can see ({root}/etc/systemd/system/cron.service runs " \
           "'/usr/sbin/cron -f')" in result.stderr

    os.unlink(root / "etc/nginx/sites-available/shop")
    [problem] = assert_bad_input(run_deploygen("audit", "--root", root), lines=1)
    assert problem["file"] == f"{root}/etc/systemd/system"
    assert "nothing was audited" in problem["msg"]


def test_a_masked_unit_is_skipped(tmp_path):
    root = server_tree(tmp_path)
    (root / "etc/systemd/system/other.service").symlink_to("/dev/null")
    (root / "dev").mkdir()
    os.mkfifo(root / "dev/null")  # what a careless copy of /dev might hold: never opened
    result = run_deploygen("audit", "--root", root)
    assert result.returncode == 0, result.stderr


def _sites(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"s{i}").write_text("server { listen 80; }\n")


def test_a_folder_of_more_files_than_audit_reads_is_one_located_line(tmp_path):
    """100,000 site files ran into the CPU limit with no message; past the cap audit stops, and says where."""
    from deploygen.audit.source import MAX_FILES

    root = server_tree(tmp_path)
    os.unlink(root / "etc/nginx/nginx.conf")  # each enabled site is then read on its own
    _sites(root / "etc/nginx/sites-enabled", MAX_FILES)
    [problem] = assert_bad_input(run_deploygen("audit", "--root", root), lines=1)
    assert problem["file"] == f"{root}/etc/nginx/sites-enabled" and problem["key"] == "audit", problem.string
    assert f"{MAX_FILES:,} files" in problem["msg"]


def test_the_cap_counts_files_in_all_not_per_folder(tmp_path):
    from deploygen.audit.source import MAX_FILES

    conf = "events {}\nhttp {\n    include conf.d/*;\n    include sites-enabled/*;\n}\n"
    root = server_tree(tmp_path, {"etc/nginx/nginx.conf": conf})
    _sites(root / "etc/nginx/conf.d", MAX_FILES // 2 + 1)
    _sites(root / "etc/nginx/sites-enabled", MAX_FILES // 2)
    [problem] = assert_bad_input(run_deploygen("audit", "--root", root), lines=1)
    assert problem["file"] == f"{root}/etc/nginx/sites-enabled", problem.string

    # The files named on the command line count the same way.
    [problem] = assert_bad_input(run_deploygen("audit", "--nginx", root / "etc/nginx/nginx.conf"), lines=1)
    assert problem["file"] == f"{root}/etc/nginx/sites-enabled", problem.string


def test_root_that_is_a_file_or_missing(tmp_path):
    (tmp_path / "file").write_text("")
    for root in (tmp_path / "file", tmp_path / "missing"):
        [problem] = assert_bad_input(run_deploygen("audit", "--root", root), lines=1)
        assert problem["file"] == str(root) and "not a folder" in problem["msg"]
