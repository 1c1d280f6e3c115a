"""Broken and hostile files given to `audit`: a located line and exit 2, or a `could not be read`
note for one value, never a traceback, a hang or unbounded memory."""

from __future__ import annotations

import json
import os

import pytest

from tests.hostile.conftest import LOCATED, assert_bad_input, run_deploygen
from tests.hostile.test_audit_root import SITE, server_tree

OPTIONS = ("--nginx", "--gunicorn", "--unit", "--sql", "--flask-env")


def _fifo(tmp_path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "directory", "missing", "too big"])
def test_a_named_file_that_cannot_be_read(option, kind, tmp_path):
    """Never blocks on a FIFO, never reads /dev/zero, never click's usage text: `FILE:1:1: ...`."""
    if kind == "fifo":
        path, reason = _fifo(tmp_path), "a FIFO, not a regular file"
    elif kind == "/dev/zero":
        path, reason = "/dev/zero", "a character device, not a regular file"
    elif kind == "directory":
        path, reason = tmp_path, "a directory, not a regular file"
    elif kind == "missing":
        path, reason = tmp_path / "missing", "No such file or directory"
    else:
        path, reason = tmp_path / "big", "more than the 1048576 bytes allowed"
        path.write_bytes(b"# " + b"x" * (2 << 20) + b"\n")
    result = run_deploygen("audit", option, path, "--role", "r", "--database", "d")
    [problem] = assert_bad_input(result, lines=1)
    assert problem["file"] == str(path) and problem["line"] == "1"
    assert "could not be read" in problem["msg"] and reason.split(",")[0] in problem["msg"], problem.string


@pytest.mark.parametrize("where", ["etc/systemd/system/shop.service", "srv/shop/gunicorn.conf.py",
                                   "etc/nginx/nginx.conf", "etc/nginx/sites-available/shop"])
def test_a_fifo_or_device_under_root(where, tmp_path):
    root = server_tree(tmp_path)
    os.unlink(root / where)
    os.mkfifo(root / where)
    [problem] = assert_bad_input(run_deploygen("audit", "--root", root))
    # An included file that cannot be opened is told at the include that names it.
    assert f"{root}/{where}" in problem.string and "a FIFO" in problem["msg"]

    os.unlink(root / where)
    os.symlink("/dev/zero", root / where)  # ROOT's /dev/zero: not there, and never this machine's
    result = run_deploygen("audit", "--root", root)
    if where == "etc/nginx/sites-available/shop":
        # An included file that is not there is said, and the rest audited (nginx -t would refuse it).
        assert result.returncode in (0, 1), result.stderr
        assert f"include /etc/nginx/sites-enabled/*: not there ({root}/dev/zero)" in result.stderr
        return
    [problem] = assert_bad_input(result)
    assert f"{root}/dev/zero" in problem.string and "No such file" in problem["msg"]


def _audit_file(tmp_path, option, name, content: bytes | str, *extra):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path, run_deploygen("audit", option, path, *extra)


NGINX_BROKEN = {
    "include_self": ("include self.conf;\n" + SITE, "includes itself"),
    "nested_3000": ("server { " * 3000 + "}" * 3000, "nested too deeply"),
    "nameless_upstream": ("upstream { server 127.0.0.1:8000; }\n" + SITE, "`upstream` without a name"),
    "proxy_pass_bare": ("server { location / { proxy_pass; } }\n", "`proxy_pass` without an address"),
    "unbalanced": ("server { location / {\n", 'unexpected end of file'),
    "include_bare": ("include;\n", "`include` without a file name"),
}


@pytest.mark.parametrize("case", sorted(NGINX_BROKEN))
def test_nginx_files_nginx_itself_refuses(case, tmp_path):
    text, reason = NGINX_BROKEN[case]
    path, result = _audit_file(tmp_path, "--nginx", "self.conf", text)
    [problem] = assert_bad_input(result, lines=1)
    assert problem["file"] == str(path) and reason in problem["msg"], problem.string


def test_an_include_cycle_through_two_files(tmp_path):
    (tmp_path / "b.conf").write_text("include a.conf;\n")
    _, result = _audit_file(tmp_path, "--nginx", "a.conf", "events {}\nhttp {\n  include b.conf;\n}\n")
    [problem] = assert_bad_input(result, lines=1)
    assert problem["file"] == str(tmp_path / "b.conf") and "includes itself" in problem["msg"]


def test_an_include_bomb_is_bounded(tmp_path):
    """Each level includes the next ten times: 10**7 directives once expanded, refused at the cap."""
    for level in range(7):
        (tmp_path / f"l{level}.conf").write_text(f"include l{level + 1}.conf;\n" * 10)
    (tmp_path / "l7.conf").write_text("proxy_read_timeout 60s;\n")
    _, result = _audit_file(tmp_path, "--nginx", "main.conf", "events {}\nhttp {\n include l0.conf;\n}\n")
    [problem] = assert_bad_input(result, lines=1)
    assert "directives once includes are expanded" in problem["msg"]


def test_an_nginx_time_nginx_refuses_is_located(tmp_path):
    text = SITE.replace("proxy_read_timeout 90s", "proxy_read_timeout 1y")
    path, result = _audit_file(tmp_path, "--nginx", "shop", text)
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr
    assert f"{path}:5:1: nginx.proxy_read_timeout: could not be read: '1y' is not an nginx time" in result.stderr


GUNICORN_VALUES = {
    "timeout = None": "timeout",
    'timeout = float("inf")': "timeout",
    "bind = []": "bind",
    "timeout = " + "9" * 4000: "timeout",
    "workers = -3": "workers",
    "timeout = " + "[" * 150 + "]" * 150: "timeout",
    'timeout = "30.5"': "timeout",
    "bind = 3": "bind",
}


@pytest.mark.parametrize("line", sorted(GUNICORN_VALUES), ids=lambda line: line[:24])
def test_gunicorn_values_that_cannot_be_read(line, tmp_path):
    path, result = _audit_file(tmp_path, "--gunicorn", "g.py", line + "\n")
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr
    notes = [x for x in result.stderr.splitlines() if "could not be read" in x]
    assert notes and notes[0].startswith(f"{path}:1:1: gunicorn.{GUNICORN_VALUES[line]}: could not be read: ")
    assert all(len(x) < 1000 for x in result.stderr.splitlines())


# `timeout = 30` and then one of these: each binds timeout another way than `NAME = value` at the
# top level, so the 30 is not what gunicorn runs, and the note is where it is bound.
GUNICORN_REBOUND = {
    "if True:\n    timeout = 600": (3, 5),
    "timeout += 100": (2, 1),
    "(timeout := 5)": (2, 2),
    "for timeout in [5]:\n    pass": (2, 5),
    "try:\n    timeout = 5\nexcept Exception:\n    pass": (3, 5),
    "timeout, workers = 5, 2": (2, 1),
    "del timeout": (2, 5),
    "with open('x') as timeout:\n    pass": (2, 19),
    "import x as timeout": (2, 8),
    "from x import y as timeout": (2, 15),
    "def timeout():\n    pass": (2, 1),
    "class timeout:\n    pass": (2, 1),
    "try:\n    pass\nexcept OSError as timeout:\n    pass": (4, 1),
    "match 5:\n    case timeout:\n        pass": (3, 10),
    "workers = [timeout := 5 for x in [1]]": (2, 12),
    "def hook():\n    global timeout\n    timeout = 5": (3, 5),
}


@pytest.mark.parametrize("code", sorted(GUNICORN_REBOUND), ids=lambda code: code.split("\n")[0][:24])
def test_a_gunicorn_setting_bound_another_way_is_not_read(code, tmp_path):
    """Audit used to report the `timeout = 30` above any of these: a clean audit for what it did not read."""
    path, result = _audit_file(tmp_path, "--gunicorn", "g.py", "timeout = 30\n" + code + "\n")
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr
    line, column = GUNICORN_REBOUND[code]
    assert f"{path}:{line}:{column}: gunicorn.timeout: could not be read: " in result.stderr, result.stderr


@pytest.mark.parametrize("code", ["workers = [timeout for timeout in [1]]", "class C:\n    timeout = 5",
                                  "def f(timeout=1):\n    timeout = 5", "timeout = 45", "timeout: int = 45", "timeout: int",
                                  "if True:\n    timeout = 5\ntimeout = 45", "keepalive = timeout = 45"])
def test_bindings_that_leave_the_setting_known(code, tmp_path):
    """Names local to a comprehension, class or function are not the module's; a later top-level
    assignment decides, whatever came before."""
    from deploygen.audit.gunicorn_reader import read_gunicorn

    path = tmp_path / "g.py"
    path.write_text("timeout = 30\n" + code + "\n")
    read = read_gunicorn(str(path))["gunicorn.timeout"]
    assert not read.unknown and read.value.nginx() == ("30s" if "45" not in code else "45s"), read


@pytest.mark.parametrize("code", ['globals()["timeout"] = 5', "exec('timeout = 5')", "vars()['timeout'] = 5",
                                  "locals()['timeout'] = 5", "import sys\nsetattr(sys.modules[__name__], 'x', 1)",
                                  "__import__('os')", "def f():\n    g = globals\n    g()['timeout'] = 5",
                                  "from os import *"])
def test_code_that_can_set_any_name_leaves_every_setting_unknown(code, tmp_path):
    path, result = _audit_file(tmp_path, "--gunicorn", "g.py", "timeout = 30\nworkers = 3\n" + code + "\n")
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr
    notes = [x for x in result.stderr.splitlines() if "could not be read" in x]
    assert any(": gunicorn.timeout: could not be read: " in x for x in notes), result.stderr
    assert any(": gunicorn.workers: could not be read: " in x for x in notes), result.stderr
    assert all(x.startswith(f"{path}:") for x in notes)


@pytest.mark.parametrize("head, line", [("# coding: utf-7", 1), ("#!/usr/bin/env python3\n# -*- coding: latin-1 -*-", 2),
                                        ("# vim: set fileencoding=utf-16 :", 1), ("# coding: no-such-codec", 1)])
def test_a_gunicorn_config_declaring_another_coding_is_refused(head, line, tmp_path):
    """In UTF-7 `+AAo-` is a newline: Python would run `timeout = 5` where audit reads a comment."""
    path, result = _audit_file(tmp_path, "--gunicorn", "g.py", head + "\ntimeout = 30 # +AAo-timeout = 5\n")
    [problem] = assert_bad_input(result, lines=1)
    assert (problem["file"], problem["line"], problem["key"]) == (str(path), str(line), "gunicorn"), problem.string


@pytest.mark.parametrize("head", ["# coding: utf-8", "# -*- coding: UTF8 -*-", "timeout = 31\n# coding: utf-7", "\ufeff"])
def test_a_gunicorn_config_in_utf8_is_read(head, tmp_path):
    """UTF-8 however spelt, a BOM, and a declaration Python ignores (line 2 after code) are read."""
    _, result = _audit_file(tmp_path, "--gunicorn", "g.py", head + "\ntimeout = 30\n")
    assert result.returncode in (0, 1) and "could not be read" not in result.stderr, result.stderr


GUNICORN_FILES = {
    "deep_parentheses": ("timeout = " + "(" * 5000 + "1" + ")" * 5000, "too many nested parentheses"),
    "deep_binop": ("timeout = " + "+".join(["1"] * 200_000), "nested too deeply"),
    "five_thousand_digits": ("timeout = " + "9" * 5000, "Exceeds the limit"),
    "nul_byte": ("timeout = 30\n\0\n", "null bytes"),
    "syntax": ("timeout = = 3\n", "invalid syntax"),
}


@pytest.mark.parametrize("case", sorted(GUNICORN_FILES))
def test_gunicorn_configs_python_cannot_parse(case, tmp_path):
    text, reason = GUNICORN_FILES[case]
    path, result = _audit_file(tmp_path, "--gunicorn", "g.py", text)
    [problem] = assert_bad_input(result, lines=1)
    assert problem["file"] == str(path) and problem["key"] == "gunicorn" and reason in problem["msg"], problem.string


@pytest.mark.parametrize("option", [o for o in OPTIONS if o != "--nginx"])  # nginx reads bytes
def test_invalid_utf8_is_located_at_its_byte(option, tmp_path):
    path, result = _audit_file(tmp_path, option, "bad", b"# fine\nkey = \xff\xfe\n", "--role", "r",
                               "--database", "d")
    [problem] = assert_bad_input(result, lines=1)
    assert (problem["file"], problem["line"], problem["col"]) == (str(path), "2", "7")
    assert "byte 0xff is not UTF-8" in problem["msg"]


UNIT_LINES = {
    "TimeoutStopSec=1y": ("systemd.TimeoutStopSec", "could not be read"),
    "TimeoutStopSec=" + "9" * 400: ("systemd.TimeoutStopSec", "could not be read"),
    "ExecStart=/v/bin/gunicorn --timeout=abc app:app": ("gunicorn.timeout", "could not be read: --timeout"),
    "ExecStart=/v/bin/gunicorn -w " + "9" * 5000 + " app:app": ("gunicorn.workers", "could not be read: -w"),
}


@pytest.mark.parametrize("line", sorted(UNIT_LINES), ids=lambda line: line[:30])
def test_unit_values_are_located_at_their_line(line, tmp_path):
    path, result = _audit_file(tmp_path, "--unit", "u.service", f"[Service]\n{line}\n")
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr
    key, said = UNIT_LINES[line]
    assert any(x.startswith(f"{path}:2:1: {key}: {said}") for x in result.stderr.splitlines()), result.stderr


def test_an_infinite_stop_timeout_is_no_limit(tmp_path):
    """`TimeoutStopSec=infinity`: systemd waits for the graceful stop however long it takes (no DG301)."""
    unit = "[Service]\nUser=app\nExecStart=/v/bin/gunicorn --graceful-timeout 600 app:app\nTimeoutStopSec=infinity\n"
    path, result = _audit_file(tmp_path, "--unit", "u.service", unit)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "DG301" not in result.stdout and "TimeoutStopSec: could not be read" not in result.stderr
    shorter = unit.replace("TimeoutStopSec=infinity", "TimeoutStopSec=5min")
    _, result = _audit_file(tmp_path, "--unit", "v.service", shorter)
    assert "DG301" in result.stdout


def test_an_unclosed_quote_in_exec_start(tmp_path):
    _, result = _audit_file(tmp_path, "--unit", "u.service", "[Service]\nExecStart=/v/bin/gunicorn 'app:app\n")
    [problem] = assert_bad_input(result, lines=1)
    assert (problem["line"], problem["key"]) == ("2", "systemd.ExecStart") and "No closing quotation" in problem["msg"]


def test_a_line_continuation_at_the_end_of_a_unit(tmp_path):
    text = "[Service]\nExecStart=/v/bin/gunicorn \\\n  # a comment inside\n  --timeout 45 \\\n  app:app \\"
    _, result = _audit_file(tmp_path, "--unit", "u.service", text)
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr
    assert "could not be read" not in result.stderr


SQL_FILES = {
    "ALTER ROLE app IN DATABASE;": 2,
    "ALTER ROLE app SET statement_timeout = " + "9" * 400 + ";": 0,
    "ALTER ROLE app SET statement_timeout = '1y';": 0,
    "/* " * 100_000: 0,
    "' " * 100_000: 0,
}


@pytest.mark.parametrize("text", sorted(SQL_FILES), ids=lambda t: t[:30])
def test_sql_that_is_malformed_or_hostile(text, tmp_path):
    _, result = _audit_file(tmp_path, "--sql", "p.sql", text, "--role", "app", "--database", "db")
    if SQL_FILES[text] == 2:
        [problem] = assert_bad_input(result, lines=1)
        assert problem["key"] == "postgres" and "names no database" in problem["msg"]
    else:
        assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr
        assert all(len(x) < 1000 for x in result.stderr.splitlines())


def test_env_values_flask_keeps_as_text(tmp_path):
    text = "FLASK_A=" + "[" * 1000 + "\nFLASK_B=" + "9" * 5000 + "\nFLASK_PERMANENT_SESSION_LIFETIME=1e999\n"
    _, result = _audit_file(tmp_path, "--flask-env", "f.env", text)
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize("fmt", ["json", "github"])
def test_every_format_carries_the_problems(fmt, tmp_path):
    root = server_tree(tmp_path, {"srv/shop/gunicorn.conf.py": "timeout = = 3\n",
                                  "etc/nginx/sites-available/shop": "include /etc/nginx/sites-available/shop;\n"})
    result = run_deploygen("audit", "--root", root, "--format", fmt)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    if fmt == "json":
        problems = json.loads(result.stdout)
        assert [(p["code"], p["file"], p["key"]) for p in problems] == [
            (None, f"{root}/etc/nginx/sites-available/shop", "nginx.include"),
            (None, f"{root}/srv/shop/gunicorn.conf.py", "gunicorn")]
    else:
        lines = result.stdout.splitlines()
        assert len(lines) == 2 and all(x.startswith("::error file=") and "title=bad input" in x for x in lines)


def test_every_problem_of_a_tree_is_reported_not_only_the_first(tmp_path):
    root = server_tree(tmp_path, {"srv/shop/gunicorn.conf.py": "timeout = = 3\n",
                                  "etc/nginx/sites-available/shop": "upstream {}\n"})
    problems = assert_bad_input(run_deploygen("audit", "--root", root), lines=2)
    assert {p["key"] for p in problems} == {"gunicorn", "nginx.upstream"}


def test_newlines_in_values_read_do_not_start_lines(tmp_path):
    """A server_name or bind holding a newline is escaped in every line audit prints."""
    gunicorn = 'bind = "unix:/run/shop/gunicorn.sock\\nDG101 error fake"\ntimeout = "x\\ny"\n'
    root = server_tree(tmp_path, {"srv/shop/gunicorn.conf.py": gunicorn})
    os.rename(root / "etc/systemd/system/shop.service", root / "etc/systemd/system/sh\nop.service")
    result = run_deploygen("audit", "--root", root)
    assert "Traceback" not in result.stderr, result.stderr
    for line in (result.stdout + result.stderr).splitlines():
        assert line.startswith(("read: ", "deploygen", str(root))) or LOCATED.match(line) \
            or line.endswith(("warnings", "warning")), line
    assert "sh\\nop" in result.stderr


def test_an_nginx_file_alone_without_a_proxied_server_audits_nothing(tmp_path):
    path, result = _audit_file(tmp_path, "--nginx", "nginx.conf", "events {}\nhttp { server { listen 80; } }\n")
    [problem] = assert_bad_input(result, lines=1)
    assert problem["file"] == str(path) and "nothing was audited" in problem["msg"]
