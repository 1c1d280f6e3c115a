"""`audit` and `import` of PHP-FPM servers: php-fpm.conf and its pools, php.ini, nginx's
fastcgi_pass, php-fpm's unit; parsed as php-fpm and PHP parse them (the real binaries are the
measure here), audited through the same rules, imported into a php site file.

tests/corpus/php-debian/ is a Debian 12 server: Debian's own php-fpm.conf, www.conf, php.ini
and unit, with a shop pool, its nginx site and a drop-in written out of line on purpose (SOURCE).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SITES, require_binary

from deploygen.audit.fpm_pool import php_settings, read_ini
from deploygen.audit.fpm_reader import (
    BOOL_KEYS,
    INT_KEYS,
    TIME_KEYS,
    fpm_seconds,
    read_fpm,
)
from deploygen.audit.php_ini import IniError, atoi, scan
from deploygen.audit.source import Tree
from deploygen.errors import InputError

CORPUS = "tests/corpus/php-debian"
FPM = f"{CORPUS}/etc/php/8.2/fpm"


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def _findings(stdout: str) -> list[tuple[str, str]]:
    return [(line.split(": ")[0], line.split(": ")[1].split(" [")[0]) for line in stdout.splitlines()]


# -- the scanner, against PHP's own parser --------------------------------------------------

# Values as people write them, and what PHP's scanner does with each (parse_ini_string decides).
_VALUES = [
    "60s", " 60 ", '"a;b" c', "'raw $x \"q'", "on", "On ", "onion", "on-site", "none", "NULL", "yes", "no",
    "E_ALL & ~E_DEPRECATED", "E_ALL", "5 | 2", "(1|2)&3", "!0", "~0", "a & b", "www-data", "/run/php/x.sock",
    "127.0.0.1:9000", '"x\\"y\\\\z\\$w\\n"', "${HOME}/x", '"${HOME}"', "a ${NOPE} b", "$pool.sock", "$HOME",
    '"a" "b"', '"a"b', 'a"b"', '"a" ; c', "x;y", '"%R - %u %t \\"%m %r\\" %s"', ".php .php8", "1.5s", "-5",
    "PHPSESSID", "MY_SESSION", "tcp://127.0.0.1:6379?database=3", "", "a=b", "on foo", '"unclosed', "'unclosed",
    "${", "a{b}c", "[x]", "a]b", "pgsql:host=localhost;dbname=x", '"pgsql:host=localhost;dbname=x"', "True",
    "FALSE", "yes please", "a\tb", "100%", "@x", "a!b", "c:\\path", '"\\\\"', "x # y",
]


@pytest.mark.parametrize("value", _VALUES)
def test_the_scanner_reads_a_value_as_php_does(value):
    php = require_binary("php", "php8.2")
    text = f"k = {value}\n"
    env = {"HOME": "/root"}
    code = 'echo json_encode(@parse_ini_string(file_get_contents("php://stdin"), false, INI_SCANNER_NORMAL));'
    out = subprocess.run([php, "-n", "-r", code], input=text, capture_output=True, text=True, env=env,
                         check=True).stdout
    theirs = json.loads(out)
    if isinstance(theirs, dict):
        theirs = {k: str(v) for k, v in theirs.items()}
    try:
        ours = {i.name: i.value for i in scan(text, whole_file=True, lookup=lambda n: env.get(n, ""),
                                              unknown_var=lambda n: "")}
    except IniError:
        ours = False
    assert ours == theirs


def test_the_scanner_agrees_with_php_on_a_thousand_random_values():
    """Random values of the characters that mean something to the scanner, one PHP run for all.
    Left out: an empty `''` followed by more, where PHP's scanner has quirks no config relies on."""
    import random

    php = require_binary("php", "php8.2")
    rng = random.Random(20261201)
    alphabet = [*"ab=;\"$ {}()&|^~!\t01E_ALLonyesnu:/.-x'", "${HOME}", "on", "off", "E_ALL", " "]
    cases = []
    while len(cases) < 1000:
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        if "''" not in value:
            cases.append(f"k = {value}\n")
    code = ('$out = []; foreach (json_decode(file_get_contents("php://stdin"), true) as $t) {'
            ' $r = @parse_ini_string($t, false, INI_SCANNER_NORMAL);'
            ' $out[] = $r === false ? false : (object) array_map("strval", $r); } echo json_encode($out);')
    out = subprocess.run([php, "-n", "-r", code], input=json.dumps(cases), capture_output=True, text=True,
                         env={"HOME": "/root"}, check=True).stdout
    differ = []
    for text, theirs in zip(cases, json.loads(out)):
        try:
            ours = {e.name: e.value for e in scan(text, whole_file=True, lookup=lambda n: {"HOME": "/root"}.get(n, ""),
                                                  unknown_var=lambda n: "") if not e.bare}
        except IniError:
            ours = False
        if ours != theirs:
            differ.append((text, ours, theirs))
    assert differ == []


def test_debian_php_ini_reads_as_php_reads_it():
    php = require_binary("php", "php8.2")
    for sapi in ("fpm", "cli"):
        path = f"{CORPUS}/etc/php/8.2/{sapi}/php.ini"
        ours = {k: v.text for k, v in read_ini(Tree(), [path]).values.items()}
        code = f'echo json_encode(parse_ini_file("{path}", false, INI_SCANNER_NORMAL));'
        out = subprocess.run([php, "-n", "-r", code], capture_output=True, text=True, check=True).stdout
        assert ours == json.loads(out) and len(ours) == 100


def test_fpm_times_as_php_fpm_reads_them():
    """fpm_conf_set_time: the last character is the unit, atoi() the rest, 32-bit ints."""
    assert [fpm_seconds(t) for t in ("60", "60s", "1m", "2h", "1d", "1.5s", "100ms", "1m30s", "abcs", "-5s",
                                     "2147483647m", "0x10")] == [60, 60, 60, 7200, 86400, 1, 100, 1, 0, -5, -60, 0]
    for bad in ("", "60S", "5x"):
        with pytest.raises(ValueError):
            fpm_seconds(bad)
    assert atoi("99999999999") == 1215752191  # what php-fpm -tt shows for it


# -- php-fpm's structure, against php-fpm -tt ----------------------------------------------


def _fpm_dump(fpm: str, conf: Path, prefix: Path, env: dict[str, str]) -> dict[str, dict[str, list[str]]]:
    """php-fpm -tt's effective values: {section: {directive: [values as dumped]}}."""
    out = subprocess.run([fpm, "-tt", "-y", str(conf), "-p", str(prefix)], capture_output=True, text=True,
                         env=env, timeout=60, check=False)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in text.splitlines():
        match = re.match(r"\[[^]]*\] NOTICE: (.*)$", line)
        if not match:
            continue
        body = match.group(1)
        head = re.fullmatch(r"\[(.+)\]", body)
        if head:
            current = sections.setdefault(head.group(1), {})
        elif current is not None and (entry := re.fullmatch(r"\t(\S+) = (.*)", body)):
            current.setdefault(entry.group(1), []).append(entry.group(2))
    return sections


def _as_dumped(name: str, text: str, prefix: str) -> str:
    from deploygen.audit.fpm_pool import listen_path

    if name in TIME_KEYS:
        # php-fpm -tt writes this one without its unit.
        return f"{fpm_seconds(text)}{'' if name == 'pm.process_idle_timeout' else 's'}"
    if name in BOOL_KEYS:
        return "yes" if text == "1" else "no"
    if name in INT_KEYS:
        return str(atoi(text))
    if name == "listen":
        return listen_path(text, prefix)
    if name == "pm":
        return text.lower()
    if name in ("slowlog", "access.log", "error_log", "pid") and not text.startswith("/"):
        return f"{prefix}/{text}"
    return text


def _assert_parity(config, dump: dict, prefix: Path) -> int:
    """Every directive and array entry read equals php-fpm's; returns how many were compared."""
    compared = 0
    for name, value in config.globals.items():
        assert dump["global"][name] == [_as_dumped(name, value.text, str(prefix))], name
        compared += 1
    assert sorted(dump) == sorted(["global", *(p.name for p in config.pools)])
    for pool in config.pools:
        theirs = dump[pool.name]
        for name, value in pool.settings.items():
            if name in ("prefix",):
                continue
            assert theirs[name] == [_as_dumped(name, value.text, str(prefix))], (pool.name, name)
            compared += 1
        for array, table in (("php_value", pool.php_values), ("php_admin_value", pool.php_admin_values),
                             ("env", pool.env)):
            dumped = {}
            for key, entries in theirs.items():
                match = re.fullmatch(rf"{array}\[(.+)\]", key)
                if match:
                    # php-fpm dumps an array last written first, and applies it in that order:
                    # the entry written first is the one its children run with.
                    dumped[match.group(1)] = entries[-1]
            assert {k: v.text for k, v in table.items()} == dumped, (pool.name, array)
            compared += len(dumped)
    return compared


_MAIN = """\
; a master with its pools in two files
[global]
error_log = log/fpm.log
process_control_timeout = 1m
emergency_restart_interval = 1.5s

[a]
user = nobody
listen = a.sock
pm = Static
PM.MAX_CHILDREN = 4
request_terminate_timeout = 100ms
slowlog = log/$pool.slow
request_slowlog_timeout = 30s
catch_workers_output = yes
clear_env = off
security.limit_extensions = ".php .php8"
access.format = "%R - %u %t \\"%m %r\\" %s"
php_value[session.gc_maxlifetime] = 100
php_admin_value[session.gc_maxlifetime] = "200" ; the admin's
php_value[session.gc_maxlifetime] = 300
php_flag[display_errors] = off
php_admin_value[session.save_path] = "/var/x;y"
php_value[error_reporting] = E_ALL & ~E_DEPRECATED
env[A] = $HOME
env[B] = "x y"
env[C] = ${FOO}/z
env[D] = 'raw $x "q'
include = inc/*.conf
pm.max_requests = 7
"""
_INCLUDED = {
    "inc/b.conf": """\
[b]
user = nobody
listen = 127.0.0.1:9001
pm = ondemand
pm.max_children = 2
pm.process_idle_timeout = 2m
listen.mode = 0600
[GLOBAL]
process_control_timeout = 45s
""",
    "inc/c.conf": """\
[A]
request_terminate_timeout = 2m
""",
}


def test_php_fpm_conf_parses_as_php_fpm_tt_dumps_it(tmp_path):
    """Includes (a glob under the prefix, in name order), [global] in a pool's file, a pool
    continued in another file and in any case, the section an include ends in taking the lines
    after it, case-insensitive names, quotes, comments, `$pool`, `${VAR}`, arrays' first-wins."""
    fpm = require_binary("php-fpm8.2", "/usr/sbin/php-fpm8.2")
    (tmp_path / "log").mkdir()
    (tmp_path / "inc").mkdir()
    for name, text in _INCLUDED.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "php-fpm.conf").write_text(_MAIN)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/root", "FOO": "bar"}
    config = read_fpm(str(tmp_path / "php-fpm.conf"), Tree(), str(tmp_path),
                      lambda name: (env.get(name, ""), ""))
    assert [p.name for p in config.pools] == ["a", "b"]
    a = config.pools[0]
    assert a.settings["request_terminate_timeout"].text == "2m"  # c.conf's [A], read after a.conf's line
    assert a.settings["pm.max_requests"].location.line == 30  # after the include: c.conf's section, pool a
    assert config.globals["process_control_timeout"].location.file.endswith("inc/b.conf")
    dump = _fpm_dump(fpm, tmp_path / "php-fpm.conf", tmp_path, env)
    assert _assert_parity(config, dump, tmp_path) >= 25
    assert dump["a"]["php_admin_value[session.gc_maxlifetime]"] == ["200"]


def test_debians_files_and_the_shop_pool_parse_as_php_fpm_does(tmp_path):
    """The corpus's php-fpm.conf, www.conf and shop.conf (its user and chdir made this machine's,
    which php-fpm -t checks), with its include made relative to a prefix."""
    fpm = require_binary("php-fpm8.2", "/usr/sbin/php-fpm8.2")
    (tmp_path / "log").mkdir()
    (tmp_path / "pool.d").mkdir()
    main = Path(FPM, "php-fpm.conf").read_text()
    main = main.replace("include=/etc/php/8.2/fpm/pool.d/*.conf", "include=pool.d/*.conf")
    main = main.replace("error_log = /var/log/php8.2-fpm.log", "error_log = log/fpm.log")
    main = main.replace("pid = /run/php/php8.2-fpm.pid", f"pid = {tmp_path}/fpm.pid")
    (tmp_path / "php-fpm.conf").write_text(main)
    for name in ("www.conf", "shop.conf"):
        text = Path(FPM, "pool.d", name).read_text()
        text = re.sub(r"(?m)^(user|group|listen\.owner|listen\.group) = \S+", lambda m: f"{m.group(1)} = nobody"
                      if "user" in m.group(1) or "owner" in m.group(1) else f"{m.group(1)} = nogroup", text)
        text = text.replace("chdir = /srv/shop", f"chdir = {tmp_path}")
        text = text.replace("/run/php/", f"{tmp_path}/")
        (tmp_path / "pool.d" / name).write_text(text)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    config = read_fpm(str(tmp_path / "php-fpm.conf"), Tree(), str(tmp_path), lambda name: ("", ""))
    dump = _fpm_dump(fpm, tmp_path / "php-fpm.conf", tmp_path, env)
    assert _assert_parity(config, dump, tmp_path) >= 30
    assert dump["global"]["process_control_timeout"] == ["10s"]  # shop.conf's [global]


def _fastcgi_get(path: str, script: str) -> str:
    """One FastCGI request (the responder role, GET), its stdout."""
    def record(kind: int, content: bytes) -> bytes:
        return struct.pack("!BBHHBx", 1, kind, 1, len(content), 0) + content

    def pair(name: str, value: str) -> bytes:
        def length(n: int) -> bytes:
            return bytes([n]) if n < 128 else struct.pack("!I", n | 0x80000000)
        return length(len(name)) + length(len(value)) + name.encode() + value.encode()

    params = {"SCRIPT_FILENAME": script, "REQUEST_METHOD": "GET", "SCRIPT_NAME": "/i.php",
              "SERVER_PROTOCOL": "HTTP/1.1", "GATEWAY_INTERFACE": "CGI/1.1"}
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        body = b"".join(pair(k, v) for k, v in params.items())
        s.sendall(record(1, struct.pack("!HB5x", 1, 0)) + record(4, body) + record(4, b"") + record(5, b""))
        out = b""
        while True:
            head = s.recv(8, socket.MSG_WAITALL)
            if len(head) < 8:
                break
            _, kind, _, length, padding = struct.unpack("!BBHHBx", head)
            content = s.recv(length + padding, socket.MSG_WAITALL)[:length] if length + padding else b""
            if kind == 6:
                out += content
            if kind == 3:
                break
    return out.decode()


def test_the_values_a_pools_children_run_with_are_the_ones_audit_reads(tmp_path):
    """php_admin_value over php_value over php.ini, the first of two array entries: asked of the
    children themselves over FastCGI, not of a dump."""
    fpm = require_binary("php-fpm8.2", "/usr/sbin/php-fpm8.2")
    (tmp_path / "log").mkdir()
    ini = tmp_path / "php.ini"
    ini.write_text("[PHP]\nmax_execution_time = 30\n[Session]\nsession.gc_maxlifetime = 1440\n"
                   "session.cookie_lifetime = 0\nsession.use_strict_mode = 0\nsession.name = FROMINI\n")
    root = os.geteuid() == 0
    user = "root" if root else os.environ.get("USER", "nobody")
    (tmp_path / "pool.conf").write_text(
        f"[global]\nerror_log = log/fpm.log\n[t]\nuser = {user}\nlisten = {tmp_path}/t.sock\npm = static\n"
        "pm.max_children = 1\n"
        "php_value[max_execution_time] = 300\nphp_admin_value[max_execution_time] = 120\n"
        "php_value[session.cookie_lifetime] = 111\nphp_value[session.cookie_lifetime] = 222\n"
        "php_admin_flag[session.use_strict_mode] = on\nphp_value[session.name] = POOL\n")
    script = tmp_path / "i.php"
    script.write_text('<?php foreach (["max_execution_time", "session.gc_maxlifetime", "session.cookie_lifetime", '
                      '"session.use_strict_mode", "session.name"] as $k) echo $k, "=", ini_get($k), "\\n";')
    command = [fpm, "-F", "-y", str(tmp_path / "pool.conf"), "-p", str(tmp_path), "-c", str(ini)]
    process = subprocess.Popen([*command, *(["-R"] if root else [])], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            if (tmp_path / "t.sock").exists():
                break
            time.sleep(0.05)
        body = _fastcgi_get(str(tmp_path / "t.sock"), str(script))
    finally:
        process.terminate()
        process.wait(timeout=10)
    ran = dict(line.split("=", 1) for line in body.split("\r\n\r\n", 1)[1].splitlines())
    config = read_fpm(str(tmp_path / "pool.conf"), Tree(), str(tmp_path), lambda name: ("", ""))
    settings = php_settings(config.pools[0], read_ini(Tree(), [str(ini)]))
    assert ran == {"max_execution_time": "120", "session.gc_maxlifetime": "1440", "session.cookie_lifetime": "111",
                   "session.use_strict_mode": "1", "session.name": "POOL"}
    assert (settings["php.max_execution_time"].value.ms, settings["php.session.gc_maxlifetime"].value.ms,
            settings["php.session.cookie_lifetime"].value.ms, settings["php.session.use_strict_mode"].value,
            settings["php.session.name"].value) == (120_000, 1_440_000, 111_000, True, "POOL")
    assert settings["php.session.gc_maxlifetime"].location.file == str(ini)


def test_php_admin_value_wins_and_each_value_is_located():
    tree = Tree(str(REPO / CORPUS))
    config = read_fpm("/etc/php/8.2/fpm/php-fpm.conf", tree)
    shop = next(p for p in config.pools if p.name == "shop")
    ini = read_ini(tree, [tree.local("/etc/php/8.2/fpm/php.ini")])
    settings = php_settings(shop, ini)
    shop_conf = str(REPO / FPM / "pool.d/shop.conf")
    execution = settings["php.max_execution_time"]
    assert (execution.value.ms, execution.location.file, execution.location.line) == (120_000, shop_conf, 22)
    lifetime = settings["php.session.gc_maxlifetime"]
    assert (lifetime.value.ms, lifetime.location.line) == (43_200_000, 23)  # php_value over php.ini's 1440
    strict = settings["php.session.use_strict_mode"]
    assert (strict.value, strict.location.file.endswith("fpm/php.ini"), strict.location.line) == (False, True, 1383)
    folder = settings["php.session.save_path"]
    assert (folder.value, folder.default) == ("/var/lib/php/sessions", True)  # Debian's build: php.ini leaves it out


# -- what php-fpm refuses, audit refuses: one located line, exit 2 --------------------------

_REFUSED = [
    ("# a hash is no comment", 2, "without `= value`"),
    ("request_terminate_timeout = 60S", 2, "unknown suffix used in time value"),
    ("request_terminate_timeout =", 2, "invalid time value"),
    ("pm.max_children = five", 2, "is not a valid number"),
    ("no_such_directive = 1", 2, "unknown entry 'no_such_directive'"),
    ("PHP_VALUE[x] = 1", 2, "unknown directive 'PHP_VALUE'"),
    ("env[X] =", 2, "empty value"),
    ("slowlog = a=b", 2, "unexpected '='"),
    ('slowlog = "never closed', 2, "a double quote is never closed"),
    ("  [indented]", 2, "syntax error"),
    ("catch_workers_output = maybe", 2, "invalid boolean value"),
]


@pytest.mark.parametrize(("line", "number", "says"), _REFUSED)
def test_what_php_fpm_refuses_is_one_located_problem(line, number, says, cli, tmp_path):
    pool = tmp_path / "pool.conf"
    pool.write_text(f"[www]\n{line}\nuser = nobody\nlisten = {tmp_path}/x.sock\npm = static\npm.max_children = 1\n")
    result = cli("audit", "--fpm", pool)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{pool}:{number}:") and says in lines[0], lines
    assert "Traceback" not in result.stderr
    fpm = shutil.which("php-fpm8.2") or ("/usr/sbin/php-fpm8.2" if os.path.exists("/usr/sbin/php-fpm8.2") else None)
    if fpm:
        (tmp_path / "log").mkdir(exist_ok=True)
        refused = subprocess.run([fpm, "-t", "-y", str(pool), "-p", str(tmp_path)], capture_output=True, check=False)
        assert refused.returncode != 0


def test_an_array_in_global_and_a_php_ini_syntax_error_are_refused(cli, tmp_path):
    pool = tmp_path / "pool.conf"
    pool.write_text("[global]\nphp_value[x] = 1\n[www]\nlisten = /run/x.sock\n")
    result = cli("audit", "--fpm", pool)
    assert result.exit_code == 2 and f"{pool}:2:1: php-fpm.php_value[x]: could not be read: arrays are not " \
        "allowed in the global section" in result.stderr
    pool.write_text("[www]\nlisten = /run/x.sock\npm = static\npm.max_children = 1\n")
    ini = tmp_path / "php.ini"
    ini.write_text("[PHP]\nmemory_limit = 128M\nerror_reporting = E_ALL & (\n")
    result = cli("audit", "--fpm", pool, "--php-ini", ini, "--format", "json")
    assert result.exit_code == 2
    [problem] = json.loads(result.stdout)
    assert (problem["file"], problem["line"], problem["code"]) == (str(ini), 3, None)


# -- includes: bounded, and never out of the tree -------------------------------------------


def _root(tmp_path: Path, pool: str, main: str = "[global]\ninclude=/etc/php/8.2/fpm/pool.d/*.conf\n") -> Path:
    root = tmp_path / "root"
    (root / "etc/php/8.2/fpm/pool.d").mkdir(parents=True)
    (root / "etc/php/8.2/fpm/php-fpm.conf").write_text(main)
    (root / "etc/php/8.2/fpm/pool.d/app.conf").write_text(pool)
    return root


def test_an_include_never_leaves_the_root(cli, tmp_path):
    """`..` stops at ROOT and an absolute link is ROOT's: the machine's /etc is never read."""
    root = _root(tmp_path, "[app]\nlisten = /run/app/php-fpm.sock\npm = static\npm.max_children = 1\n"
                           "include = ../../../../../../../../etc/secret.conf\n")
    (root / "etc/secret.conf").write_text("request_terminate_timeout = 7s\n")  # ROOT's own /etc/secret.conf
    (root / "etc/php/8.2/fpm/pool.d/z-link.conf").symlink_to("/etc/hostname")
    result = cli("audit", "--root", root, "--format", "json")
    assert result.exit_code == 2
    [problem] = json.loads(result.stdout)
    # The link is followed to ROOT/etc/hostname, which is not there: never to this machine's.
    assert problem["file"] == str(root / "etc/php/8.2/fpm/php-fpm.conf") and problem["line"] == 2
    assert f"{root}/etc/hostname: No such file or directory" in problem["message"]
    (root / "etc/php/8.2/fpm/pool.d/z-link.conf").unlink()
    from deploygen.audit.assemble import audit_root

    [app] = audit_root(str(root)).apps
    terminate = app.effective["php-fpm.request_terminate_timeout"]
    assert (terminate.value.ms, terminate.provenance.location.file) == (7000, str(root / "etc/secret.conf"))


def test_a_file_named_on_the_command_line_includes_nothing_outside_its_folder(cli, tmp_path):
    folder = tmp_path / "fpm"
    folder.mkdir()
    pool = folder / "php-fpm.conf"
    pool.write_text("[global]\ninclude=/etc/passwd\n")
    result = cli("audit", "--fpm", pool)
    assert result.exit_code == 2
    assert f"{pool}:2:1: php-fpm.include: could not be read: '/etc/passwd' is outside {folder}" in result.stderr
    assert "root:" not in result.stderr
    (folder / "pool.d").mkdir()
    (folder / "pool.d/evil.conf").symlink_to("/etc/passwd")  # inside by its name, outside by where it leads
    pool.write_text("[global]\ninclude=pool.d/*.conf\n")
    result = cli("audit", "--fpm", pool, "--unit", _unit_with_prefix(tmp_path, folder))
    assert result.exit_code == 2 and "is outside" in result.stderr and "root:" not in result.stderr


def _unit_with_prefix(tmp_path: Path, prefix: Path) -> Path:
    unit = tmp_path / "php8.2-fpm.service"
    unit.write_text(f"[Service]\nExecStart=/usr/sbin/php-fpm8.2 --nodaemonize -p {prefix} --fpm-config "
                    f"{prefix}/php-fpm.conf\n")
    return unit


def test_an_include_of_itself_and_a_missing_folder_are_refused(tmp_path):
    (tmp_path / "a.conf").write_text("[global]\ninclude = b.conf\n")
    (tmp_path / "b.conf").write_text("include = a.conf\n")
    with pytest.raises(InputError) as loop:
        read_fpm(str(tmp_path / "a.conf"), Tree(), str(tmp_path))
    assert "includes itself" in str(loop.value.problems[0])
    (tmp_path / "a.conf").write_text("[global]\ninclude = nowhere/*.conf\n")
    with pytest.raises(InputError) as missing:
        read_fpm(str(tmp_path / "a.conf"), Tree(), str(tmp_path))
    assert "is no folder (php-fpm refuses to start: unable to globalize)" in str(missing.value.problems[0])
    (tmp_path / "a.conf").write_text("[global]\ninclude = none*.conf\n[p]\nlisten = /run/p.sock\n")
    tree = Tree()
    assert [p.name for p in read_fpm(str(tmp_path / "a.conf"), tree, str(tmp_path)).pools] == ["p"]
    assert "nothing matches (php-fpm warns and reads on)" in tree.unread["php-fpm"][0]


def test_an_include_bomb_stops_at_the_entry_cap(tmp_path):
    """Each file includes the next one three times: 3^12 copies of the last without a cap."""
    for level in range(12):
        (tmp_path / f"f{level}.conf").write_text(f"include = f{level + 1}.conf\n" * 3)
    (tmp_path / "f12.conf").write_text("[p]\n" + "listen = /run/p.sock\n" * 10)
    started = time.monotonic()
    with pytest.raises(InputError) as capped:
        read_fpm(str(tmp_path / "f0.conf"), Tree(), str(tmp_path))
    assert "entries once includes are expanded" in str(capped.value.problems[0])
    assert time.monotonic() - started < 10


# -- audit: findings at the lines that cause them ------------------------------------------


def test_audit_of_a_misaligned_debian_server(cli):
    result = cli("audit", "--root", CORPUS)
    assert result.exit_code == 1, result.output
    shop, www = f"{FPM}/pool.d/shop.conf", f"{FPM}/pool.d/www.conf"
    found = _findings(result.stdout)
    assert (f"{CORPUS}/etc/nginx/sites-enabled/shop:13:1", "DG801 error") in found  # nginx's 60s, its location
    assert (f"{shop}:25:1", "DG802 error") in found  # the DSN's statement_timeout 150s
    assert (f"{shop}:30:1", "DG804 error") in found  # [global] in the pool's file: 10s
    assert (f"{shop}:23:1", "DG809 error") in found  # 12h sessions, sessionclean's 24 min
    assert (f"{www}:4:1", "DG803 error") in found  # Debian's www pool: no request_terminate_timeout
    assert (f"{CORPUS}/lib/systemd/system/php8.2-fpm.service:1:1", "DG806 warning") in found
    assert (f"{FPM}/php.ini:1383:1", "DG811 warning") in found
    assert {code for _, code in found} == {"DG801 error", "DG802 error", "DG803 error", "DG804 error",
                                           "DG806 warning", "DG809 error", "DG811 warning", "DG906 error"}
    assert "read: shop: nginx: tests/corpus/php-debian/etc/nginx/sites-enabled/shop:1 server block, " \
           "location ~ \\.php$ -> unix:/run/php/php8.2-fpm-shop.sock" in result.stderr
    assert "read: www: nginx: no server block reaches unix:/run/php/php8.2-fpm.sock" in result.stderr
    assert "read: shop: sessions: Debian's phpsessionclean (fpm 8.2's php.ini: 24 min) sweeps " \
           "/var/lib/php/sessions" in result.stderr


def test_audit_json_names_the_settings_and_skips_what_the_files_lack(cli):
    report = json.loads(cli("audit", "--root", CORPUS, "--format", "json").stdout)
    [dg801] = [f for f in report if f.get("code") == "DG801" and f["severity"] == "error"]
    assert dg801["site"] == "shop" and dg801["settings"] == {"nginx.fastcgi_read_timeout": "60s",
                                                             "php-fpm.request_terminate_timeout": "120s"}
    skipped = {(f["code"], f["site"]) for f in report if f["severity"] == "skipped"}
    # gunicorn's rules are not about a pool at all: not listed; PostgreSQL's lack the SQL not read.
    assert ("DG101", "shop") not in skipped and ("DG202", "shop") in skipped


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "server"
    shutil.copytree(REPO / CORPUS, root, symlinks=True)
    return root


def test_request_terminate_timeout_0_is_no_limit(cli, tmp_path):
    """0 is off: DG803 says so, and nginx's 60 s is then no shorter limit than FPM's (no DG801)."""
    root = _copy(tmp_path)
    pool = root / "etc/php/8.2/fpm/pool.d/shop.conf"
    pool.write_text(pool.read_text().replace("request_terminate_timeout = 120s", "request_terminate_timeout = 0"))
    result = cli("audit", "--root", root)
    codes = {(line.split(": ")[0], line.split(" ")[1]) for line in result.stdout.splitlines()}
    assert (f"{pool}:18:1", "DG803") in codes
    assert not any(code == "DG801" for _, code in codes)


def test_a_drop_in_and_a_tcp_pool_behind_an_upstream(cli, tmp_path):
    """KillSignal= and TimeoutStopSec= from php-fpm's drop-ins over its unit; a pool on
    127.0.0.1:9000 reached by `fastcgi_pass php;` through an upstream block on localhost:9000."""
    root = _copy(tmp_path)
    (root / "etc/systemd/system/php8.2-fpm.service.d/override.conf").write_text(
        "[Service]\nKillSignal=SIGQUIT\nTimeoutStopSec=5\n")
    pool = root / "etc/php/8.2/fpm/pool.d/shop.conf"
    pool.write_text(pool.read_text().replace("listen = /run/php/php8.2-fpm-shop.sock", "listen = 127.0.0.1:9000"))
    site = root / "etc/nginx/sites-enabled/shop"
    site.write_text("upstream php { server localhost:9000; }\n" + site.read_text().replace(
        "fastcgi_pass unix:/run/php/php8.2-fpm-shop.sock;", "fastcgi_pass php;\n        fastcgi_read_timeout 200s;"))
    result = cli("audit", "--root", root, "--format", "json")
    report = json.loads(result.stdout)
    codes = {(f["code"], f["site"]) for f in report if f["severity"] in ("error", "warning")}
    assert ("DG801", "shop") not in codes and ("DG806", "shop") not in codes
    [dg805] = [f for f in report if f.get("code") == "DG805" and f["site"] == "shop"]
    assert dg805["settings"] == {"systemd.TimeoutStopSec": "5s", "php-fpm.process_control_timeout": "10s"}
    assert dg805["file"] == str(root / "etc/systemd/system/php8.2-fpm.service.d/override.conf")
    assert any("location ~ \\.php$ -> php" in f["message"] for f in report if f["severity"] == "read")
    out = tmp_path / "shop.yaml"
    assert cli("import", "--root", root, "--app", "shop", "-o", out).exit_code == 0
    text = out.read_text()
    assert "# server.bind: the pool listens on '127.0.0.1:9000', a TCP port" in text
    assert yaml.safe_load(text)["server"]["bind"] == "unix:/run/shop/php-fpm.sock"


def test_debians_own_www_pool_imports_under_another_name(cli, tmp_path):
    out = tmp_path / "site.yaml"
    result = cli("import", "--root", CORPUS, "--app", "www", "-o", out)
    assert result.exit_code == 0, result.stderr
    text = out.read_text()
    data = yaml.safe_load(text)
    assert data["name"] == "app" and "user" not in data["app"]
    assert "(the pool's name 'www' is PHP's own)" in text
    assert "# app.user: the pool runs as www-data, nginx's user" in text
    assert data["timeouts"]["php-fpm"]["request_terminate_timeout"] == "0s"  # what runs: no limit
    assert cli("validate", out).exit_code == 1  # DG803 says so


# -- import ---------------------------------------------------------------------------------

# What a PHP site's derived values are about: the timeout chain and the sessions.
_CHAIN = ("deploygen.request", "php-fpm.", "php.", "nginx.fastcgi_", "nginx.send_timeout", "systemd.TimeoutStopSec",
          "systemd.KillSignal", "postgres.statement_timeout", "postgres.lock_timeout",
          "postgres.idle_in_transaction_session_timeout", "deploygen.cleanup")


def _derived(path: Path) -> dict[str, object]:
    from deploygen.derive import derive
    from deploygen.sitefile.load import load_sites

    [site] = load_sites([str(path)])
    return {s.key: s.value for s in derive(site) if s.key.startswith(_CHAIN)}


def test_import_of_a_rendered_php_site_gives_back_its_derived_values(cli, tmp_path):
    """render yayin -> audit the tree -> import -> the same timeouts and sessions; and the import
    is a fixed point (importing what it renders gives the same file)."""
    first = tmp_path / "first"
    assert cli("render", SITES / "yayin.yaml", "-o", first).exit_code == 0
    audit = cli("audit", "--root", first / "yayin/root")
    assert audit.exit_code == 0, audit.output
    imported = tmp_path / "imported/yayin.yaml"
    imported.parent.mkdir()
    result = cli("import", "--root", first / "yayin/root", "-o", imported)
    assert result.exit_code == 0, result.stderr
    assert cli("validate", "--strict", imported).exit_code == 0
    assert _derived(imported) == _derived(SITES / "yayin.yaml")
    data = yaml.safe_load(imported.read_text())
    assert data["app"]["framework"] == "php" and data["server"]["bind"] == "unix:/run/yayin/php-fpm.sock"
    assert data["app"]["secrets_file"] == "/etc/yayin/secrets.env"  # the pool's include of it, not in the copy
    second = tmp_path / "second"
    assert cli("render", imported, "-o", second).exit_code == 0
    again = tmp_path / "again.yaml"
    assert cli("import", "--root", second / "yayin/root", "-o", again).exit_code == 0
    assert again.read_bytes() == imported.read_bytes()


def test_import_of_the_misaligned_pool_keeps_what_runs_today(cli, tmp_path):
    out = tmp_path / "shop.yaml"
    asked = cli("import", "--root", CORPUS, "-o", out)
    assert asked.exit_code == 2 and "found 2 apps (shop, www)" in asked.stderr
    result = cli("import", "--root", CORPUS, "--app", "shop", "-o", out)
    assert result.exit_code == 0, result.stderr
    text = out.read_text()
    data = yaml.safe_load(text)
    assert data["timeouts"]["request"] == "2m"
    assert data["timeouts"]["nginx"]["fastcgi_read_timeout"] == "1m"
    assert data["timeouts"]["php-fpm"] == {"process_control_timeout": "10s"}
    assert data["timeouts"]["php"] == {"max_execution_time": "2m"}
    assert data["session"]["idle_timeout"] == "12h"
    assert data["database"] == {"name": "shop", "role": "shop"}
    assert data["nginx"]["snippet"] == "shop.locations.conf"
    assert "location ~ /\\.ht {\n    deny all;\n}" in (tmp_path / "shop.locations.conf").read_text()
    assert "# server.bind: the pool listens on '/run/php/php8.2-fpm-shop.sock'" in text
    assert re.search(r"(?m)^#   nginx\.fastcgi_read_timeout: 60s today, [0-9]+s derived \(request_terminate_timeout", text)
    validated = cli("validate", out)
    assert validated.exit_code == 1 and {"DG801", "DG802", "DG804"} <= {
        line.split()[1] for line in validated.stdout.splitlines()}


def test_a_value_that_would_leave_its_place_is_refused_or_left_out(cli, tmp_path):
    """A session name with a quote is left out, said; a chdir with a space (it would split the
    rendered pool's line) is bad input located in the pool, and nothing is written."""
    root = _copy(tmp_path)
    pool = root / "etc/php/8.2/fpm/pool.d/shop.conf"
    pool.write_text(pool.read_text().replace(
        "php_value[session.gc_maxlifetime] = 43200",
        "php_value[session.gc_maxlifetime] = 43200\nphp_admin_value[session.name] = 'a\"] = x'"))
    out = tmp_path / "shop.yaml"
    result = cli("import", "--root", root, "--app", "shop", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert "# session.cookie.name: 'a\"] = x' is no cookie name a site file holds: left out" in out.read_text()
    pool.write_text(pool.read_text().replace("chdir = /srv/shop", 'chdir = "/srv/my shop"'))
    out.unlink()
    refused = cli("import", "--root", root, "--app", "shop", "-o", out)
    assert refused.exit_code == 2 and f"{pool}:" in refused.stderr and "nothing written" in refused.stderr
    assert not out.exists()


def test_audit_and_import_name_fpm_files_on_the_command_line(cli, tmp_path):
    args = ("--fpm", f"{FPM}/pool.d/shop.conf", "--php-ini", f"{FPM}/php.ini",
            "--nginx", f"{CORPUS}/etc/nginx/sites-enabled/shop", "--unit", f"{CORPUS}/lib/systemd/system/php8.2-fpm.service")
    result = cli("audit", *args)
    assert result.exit_code == 1
    assert {code for _, code in _findings(result.stdout)} >= {"DG801 error", "DG802 error", "DG809 error"}
    out = tmp_path / "shop.yaml"
    assert cli("import", *args, "-o", out).exit_code == 0
    assert yaml.safe_load(out.read_text())["app"]["docroot"] == "/srv/shop/public"
    both = cli("audit", "--root", CORPUS, "--fpm", f"{FPM}/php-fpm.conf")
    assert both.exit_code == 2 and "--root finds nginx, gunicorn and the units itself (php-fpm's too)" in both.stderr
    helped = cli("audit", "--help").output
    assert "--fpm PATH" in helped and "--php-ini PATH" in helped and "PHP-FPM pool" in helped


def test_two_hundred_pools_audit_in_seconds(cli, tmp_path):
    """A host with 200 PHP sites: 200 pool files, 200 nginx sites, Debian's php.ini read once."""
    root = tmp_path / "root"
    pools = root / "etc/php/8.2/fpm/pool.d"
    pools.mkdir(parents=True)
    (root / "etc/nginx/sites-enabled").mkdir(parents=True)
    shutil.copy(REPO / FPM / "php-fpm.conf", root / "etc/php/8.2/fpm/php-fpm.conf")
    shutil.copy(REPO / FPM / "php.ini", root / "etc/php/8.2/fpm/php.ini")
    for i in range(200):
        (pools / f"site{i}.conf").write_text(
            f"[site{i}]\nuser = site{i}\ngroup = site{i}\nlisten = /run/site{i}/php-fpm.sock\npm = ondemand\n"
            f"pm.max_children = 4\nrequest_terminate_timeout = {30 + i % 90}s\n"
            f"php_admin_value[session.save_path] = /var/lib/site{i}/sessions\n")
        (root / f"etc/nginx/sites-enabled/site{i}").write_text(
            f"server {{\n  server_name site{i}.example.com;\n  root /srv/site{i}/public;\n"
            f"  location ~ \\.php$ {{\n    fastcgi_pass unix:/run/site{i}/php-fpm.sock;\n"
            f"    fastcgi_read_timeout 100s;\n  }}\n}}\n")
    started = time.monotonic()
    result = cli("audit", "--root", root, "--format", "json")
    seconds = time.monotonic() - started
    report = json.loads(result.stdout)
    # php-fpm's default process_control_timeout 0 under every pool's limit: every site says so.
    assert len({f["site"] for f in report if f.get("code") == "DG804"}) == 200
    # request_terminate_timeout above 100 s for 19 of each 90: fastcgi_read_timeout gives up first.
    errors = [f for f in report if f.get("code") == "DG801" and f["severity"] == "error"]
    assert len(errors) == sum(1 for i in range(200) if 30 + i % 90 > 100)
    assert seconds < 20, seconds
    print(f"200 pools audited in {seconds:.2f} s")


def test_more_pools_than_audit_audits_is_one_located_line(cli, tmp_path):
    from deploygen.audit.fpm_reader import MAX_POOLS

    pools = "".join(f"[p{i}]\nlisten = /run/p{i}/php-fpm.sock\n" for i in range(MAX_POOLS + 1))
    root = _root(tmp_path, pools)
    result = cli("audit", "--root", root)
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    pool_file = root / "etc/php/8.2/fpm/pool.d/app.conf"
    assert line == (f"{pool_file}:{2 * MAX_POOLS + 1}:1: php-fpm: could not be read: its pools take audit past the "
                    f"{MAX_POOLS:,} PHP-FPM pools it audits in all")


def test_a_php_ini_that_doubles_itself_is_one_located_line_not_a_gib(cli, tmp_path):
    """`${a}${a}` on each line doubles the value before it: 27 lines would make a GiB."""
    root = _copy(tmp_path)
    ini = root / "etc/php/8.2/fpm/php.ini"
    bomb = '\n[x]\nbomb0 = "AAAAAAAAAAAAAAAA"\n' + "".join(
        f'bomb{i} = "${{bomb{i - 1}}}${{bomb{i - 1}}}"\n' for i in range(1, 27))
    ini.write_text(ini.read_text() + bomb + 'session.save_path = "${bomb26}"\n')
    started = time.monotonic()
    result = cli("audit", "--root", root)
    assert result.exit_code == 2 and "Traceback" not in result.stderr, result.stderr
    assert "a value longer than 65536 characters once its ${...} are expanded" in result.stderr
    assert time.monotonic() - started < 20


def test_named_files_never_make_audit_read_an_environment_file_elsewhere(cli, tmp_path):
    """Without --root, a unit's EnvironmentFile= outside its folder stays unread: through ${VAR}
    in a pool its values would reach audit's messages."""
    elsewhere = tmp_path / "elsewhere.env"
    elsewhere.write_text("DATABASE_PASSWORD=s3cr3t-elsewhere\n")
    folder = tmp_path / "named"
    (folder / "pool.d").mkdir(parents=True)
    (folder / "php-fpm.conf").write_text(f"[global]\ninclude={folder}/pool.d/*.conf\n")
    (folder / "pool.d/a.conf").write_text("[a]\nuser = a\ngroup = a\nlisten = /run/${DATABASE_PASSWORD}.sock\n"
                                          "pm = static\npm.max_children = 1\n")
    unit = folder / "php8.2-fpm.service"
    for env_file, seen in ((elsewhere, False), (folder / "beside.env", True)):
        (folder / "beside.env").write_text("DATABASE_PASSWORD=s3cr3t-beside\n")
        unit.write_text(f"[Service]\nEnvironmentFile={env_file}\n"
                        f"ExecStart=/usr/sbin/php-fpm8.2 --nodaemonize --fpm-config {folder}/php-fpm.conf\n")
        result = cli("audit", "--fpm", folder / "php-fpm.conf", "--unit", unit)
        assert "s3cr3t-elsewhere" not in result.stdout + result.stderr
        assert ("s3cr3t-beside" in result.stdout + result.stderr) == seen, result.stdout + result.stderr
