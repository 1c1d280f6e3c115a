"""The PHP kind's rendered files, accepted and read back as derived by the real programs.

For several PHP sites (sites/yayin.yaml as shipped, and variants: pm static, dynamic and
ondemand, a TCP bind, Redis sessions, no database, a slowlog, with and without TLS), each
with app.root and docroot in a temporary folder and an account that exists:

- php-fpm8.2 -t passes on the pool alone (`-y POOL`) and included from a copy of Debian's
  php-fpm.conf, and -tt's effective values are deploygen's derived ones (FPM's times,
  the pm counts, listen, the php_admin_value session settings, the DSN);
- php8.2 knows every php.ini name the pool sets and keeps each value as written;
- nginx -t accepts the server block; systemd-analyze verify accepts Debian's
  php8.2-fpm.service with the rendered drop-in beside it, and the session-cleanup units;
- FPM checks request_terminate_timeout on a heartbeat (measured from its debug log), and
  nginx must wait longer than that for FPM's 502 to come before its own 504.

Every check has a hand-broken twin that must fail, so that none passes by not looking. FPM
values must be whole seconds (FPM reads `1.5s` as 1 s and `100ms` as 100 s): the rendered
ones are, and a site file that writes a fraction is refused at load. A missing binary skips
locally and fails under CI=true (`require_binary`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import SITES, merge, nginx_test, require_binary
from local_servers import PhpFpm, free_port
from test_real_tools import effective, explain, run, tls_pair  # noqa: F401 (tls_pair: a fixture)

from deploygen.cli import main
from deploygen.derive.settings import Effective

# The account the pools run as here, one every Debian system has (Debian's own www.conf runs as
# it). A site may not name it (nginx's user owns every socket), so each pool's own account, the
# site's name by default, is swapped for it in the copy FPM checks (local_pool): the test needs
# no account of its own on the machine.
POOL_USER, POOL_GROUP = "www-data", "www-data"
# Where the copy FPM checks writes its slow log (the rendered one is under /var/log).
SLOWLOG = "/tmp/deploygen-php-real.slow.log"
FPM_EXIT_CONFIG = 78  # php-fpm's exit status for a configuration it refuses (EX_CONFIG)


def php_fpm_binary() -> str:
    return require_binary("php-fpm8.2", "/usr/sbin/php-fpm8.2")


# -- sites ----------------------------------------------------------------------


def php_site(name: str, root: Path, **sections) -> dict:
    """A PHP site file's data: `root` as app.root, `root`/public as docroot, `sections` merged last."""
    site = {
        "name": name,
        "domains": [f"{name}.example.org"],
        "app": {"framework": "php", "root": str(root), "docroot": str(root / "public")},
        "server": {"bind": f"unix:/run/{name}/php-fpm.sock"},
        "timeouts": {"request": "60s"},
    }
    return merge(site, sections)


def app_folder(folder: Path) -> Path:
    root = folder / "app"
    (root / "public").mkdir(parents=True, exist_ok=True)
    return root


def variant_data(variant: str, folder: Path, tls: tuple[Path, Path]) -> dict:
    """The site file of one variant, its paths in `folder`."""
    root = app_folder(folder)
    with_tls = {"certificate": str(tls[0]), "certificate_key": str(tls[1])}
    if variant == "shipped-yayin":
        data = yaml.safe_load((SITES / "yayin.yaml").read_text())
        return merge(data, {"app": {"root": str(root), "docroot": str(root / "public")}, "tls": with_tls})
    if variant == "static-tcp-nodb-plain":
        return php_site("statictcp", root, server={"pm": "static", "max_children": 3},
                        session={"idle_timeout": "30m"})
    if variant == "ondemand-slowlog-tls":
        return php_site("ondemand", root, tls=with_tls,
                        server={"pm": "ondemand", "max_children": 6, "process_idle_timeout": "7s"},
                        timeouts={"request": "45s", "php-fpm": {"request_slowlog_timeout": "5s"}},
                        database={"name": "ondemand", "role": "ondemand", "host": "/var/run/postgresql"},
                        session={"lifetime": "12h", "directory": "/var/lib/ondemand/s"})
    if variant == "dynamic-redis-plain":
        return php_site("redisapp", root,
                        server={"pm": "dynamic", "max_children": 8, "start_servers": 3,
                                "min_spare_servers": 2, "max_spare_servers": 6, "max_requests": 0},
                        database={"name": "redisapp", "role": "redisapp", "host": "127.0.0.1", "port": 5433},
                        session={"store": "redis", "idle_timeout": "45m",
                                 "redis": {"address": "tcp://127.0.0.1:6380", "database": 3},
                                 "cookie": {"name": "RSESS", "samesite": "Strict"}},
                        php={"memory_limit": "256M", "upload_max_filesize": "20M", "post_max_size": "21M"})
    if variant == "written-7s":
        return php_site("written", root,
                        server={"max_children": 4},
                        timeouts={"request": "7s", "php-fpm": {"process_control_timeout": "12s"},
                                  "php": {"max_execution_time": "5s"}},
                        database={"name": "written", "role": "written"},
                        session={"idle_timeout": "10m", "cookie": {"domain": "written.example.org"}})
    raise AssertionError(variant)


VARIANTS = ["shipped-yayin", "static-tcp-nodb-plain", "ondemand-slowlog-tls", "dynamic-redis-plain", "written-7s"]


@dataclass
class Rendered:
    """One rendered site: its site file, derived settings, and files by their server path."""

    name: str
    site: Path
    eff: Effective
    files: dict[str, Path]
    folder: Path

    def file(self, target: str) -> Path:
        return self.files[target]

    @property
    def pool(self) -> Path:
        return self.file(f"/etc/php/8.2/fpm/pool.d/{self.name}.conf")

    @property
    def local(self) -> Path:
        """The rendered pool as FPM can check it here (local_pool): this machine's account."""
        path = self.folder / "local-pool.conf"
        path.write_text(local_pool(self.pool.read_text()))
        return path

    @property
    def dropin(self) -> Path:
        return self.file(f"/etc/systemd/system/php8.2-fpm.service.d/deploygen-{self.name}.conf")

    @property
    def nginx(self) -> Path:
        return self.file(f"/etc/nginx/sites-available/{self.name}.conf")

    def cleanup(self, suffix: str) -> Path | None:
        return self.files.get(f"/etc/systemd/system/{self.name}-session-cleanup.{suffix}")


def write_site(folder: Path, data: dict) -> Path:
    path = folder / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def render_site(site: Path, out: Path, *extra: str) -> dict[str, Path]:
    """`deploygen render SITE -o OUT`: {server path: rendered file}, from the manifest."""
    result = CliRunner().invoke(main, ["render", str(site), "-o", str(out), *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    folders = [p for p in out.iterdir() if (p / "manifest.json").is_file()]
    assert len(folders) == 1, folders
    manifest = json.loads((folders[0] / "manifest.json").read_text())
    return {entry["target"]: folders[0] / entry["path"] for entry in manifest["files"]}


def render_variant(data: dict, folder: Path) -> Rendered:
    site = write_site(folder, data)
    return Rendered(data["name"], site, effective(site), render_site(site, folder / "out"), folder)


@pytest.fixture(scope="module", params=VARIANTS)
def rendered(request, tmp_path_factory, tls_pair) -> Rendered:  # noqa: F811
    folder = tmp_path_factory.mktemp(request.param)
    return render_variant(variant_data(request.param, folder, tls_pair), folder)


def replace_once(text: str, old: str, new: str) -> str:
    """`old` -> `new` where `old` occurs exactly once: a render that changed fails here, loudly,
    rather than leaving a test to check the unchanged line."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in:\n{text}"
    return text.replace(old, new)


def replace_line(text: str, key: str, line: str | None) -> str:
    """The pool's one `key = ...` line replaced by `line` (None: removed), whatever its quoting."""
    pattern = re.compile(rf"^{re.escape(key)} = .*\n", re.MULTILINE)
    assert len(pattern.findall(text)) == 1, f"{key} is set {len(pattern.findall(text))} times in:\n{text}"
    return pattern.sub(lambda _: "" if line is None else f"{line}\n", text)


def local_pool(text: str, *, listen: str | None = None, session_dir: Path | None = None,
               debug: bool = False) -> str:
    """A rendered pool adapted to run here: another `listen` and session folder, FPM's debug log;
    as non-root without the user and socket-owner lines (root's to apply: FPM refuses them)."""
    if listen is not None:
        text = replace_line(text, "listen", f'listen = "{listen}"')
    if session_dir is not None:
        text = replace_line(text, "php_admin_value[session.save_path]",
                            f'php_admin_value[session.save_path] = "{session_dir}"')
    if debug:
        text = replace_once(text, "\n[global]\n", "\n[global]\nlog_level = debug\n")
    if "\nslowlog = " in text:
        # php-fpm -t creates the slow log as root: never under this machine's /var/log.
        text = replace_line(text, "slowlog", f'slowlog = "{SLOWLOG}"')
    if os.geteuid() == 0:
        text = replace_line(text, "user", f'user = "{POOL_USER}"')
        text = replace_line(text, "group", f'group = "{POOL_GROUP}"')
    else:
        for key in ("user", "group", *(("listen.owner", "listen.group") if "\nlisten.owner = " in text else ())):
            text = replace_line(text, key, None)
    return text


# -- php-fpm -t and -tt -------------------------------------------------------------

_DUMP_LINE = re.compile(r"^\[[^\]]*\] NOTICE: (?:\t(?P<key>\S+) = (?P<value>.*)|\[(?P<section>[^\]]+)\])$")


def fpm_dump(config: Path, prefix: Path) -> tuple[subprocess.CompletedProcess, dict[str, dict[str, str]]]:
    """`php-fpm8.2 -tt`: the process, and the effective values it printed, {section: {key: value}}."""
    (prefix / "log").mkdir(exist_ok=True)
    proc = run([php_fpm_binary(), "-tt", "-p", prefix, "-y", config])
    sections: dict[str, dict[str, str]] = {}
    current = None
    for line in proc.stderr.splitlines():
        match = _DUMP_LINE.match(line)
        if match and match["section"]:
            current = sections.setdefault(match["section"], {})
        elif match and match["key"] and current is not None:
            current[match["key"]] = match["value"]
    return proc, sections


def expected_fpm(eff: Effective, pool: str) -> dict[str, dict[str, str]]:
    """What -tt must print for a pool of these settings, in FPM's own spelling."""
    value = eff.value

    def seconds(key: str) -> str:
        return f"{value(key).seconds}s"

    def flag(key: str) -> str:
        return "1" if value(key) else "0"

    ours = {
        # The pool's own account, swapped for POOL_USER's in the copy FPM checks (local_pool).
        "user": POOL_USER if os.geteuid() == 0 else value("php-fpm.user"),
        "group": POOL_GROUP if os.geteuid() == 0 else value("php-fpm.group"),
        "listen": value("php-fpm.listen"),
        "pm": value("php-fpm.pm"),
        "pm.max_children": str(value("php-fpm.pm.max_children")),
        "pm.max_requests": str(value("php-fpm.pm.max_requests")),
        "request_terminate_timeout": seconds("php-fpm.request_terminate_timeout"),
        "request_slowlog_timeout": ("0s" if value("php-fpm.request_slowlog_timeout") is None
                                    else seconds("php-fpm.request_slowlog_timeout")),
        "slowlog": SLOWLOG if value("php-fpm.slowlog") else "undefined",
    }
    if value("php-fpm.listen").startswith("/"):
        ours.update({key: value(f"php-fpm.{key}") for key in ("listen.owner", "listen.group", "listen.mode")})
    if ours["pm"] == "dynamic":
        for key in ("pm.start_servers", "pm.min_spare_servers", "pm.max_spare_servers"):
            ours[key] = str(value(f"php-fpm.{key}"))
    if ours["pm"] == "ondemand":
        ours["pm.process_idle_timeout"] = str(value("php-fpm.pm.process_idle_timeout").seconds)  # -tt: no suffix
    admin = {
        "max_execution_time": str(value("php.max_execution_time").seconds),
        "session.save_handler": value("php.session.save_handler"),
        "session.save_path": value("php.session.save_path"),
        "session.gc_maxlifetime": str(value("php.session.gc_maxlifetime").seconds),
        "session.cookie_lifetime": str(value("php.session.cookie_lifetime").seconds),
        "session.gc_probability": str(value("php.session.gc_probability")),
        "session.gc_divisor": str(value("php.session.gc_divisor")),
        "session.use_strict_mode": flag("php.session.use_strict_mode"),
        "session.name": value("php.session.name"),
        "session.cookie_secure": flag("php.session.cookie_secure"),
        "session.cookie_httponly": flag("php.session.cookie_httponly"),
        "session.cookie_samesite": value("php.session.cookie_samesite"),
    }
    if value("php.session.cookie_domain"):
        admin["session.cookie_domain"] = value("php.session.cookie_domain")
    for name in ("memory_limit", "upload_max_filesize", "post_max_size"):
        if value(f"php.{name}") is not None:
            admin[name] = value(f"php.{name}")
    ours.update({f"php_admin_value[{key}]": v for key, v in admin.items()})
    if "php.DATABASE_DSN" in eff:
        ours["env[DATABASE_DSN]"] = value("php.DATABASE_DSN")
    return {"global": {"process_control_timeout": seconds("php-fpm.process_control_timeout")}, pool: ours}


def differences(expected: dict[str, dict[str, str]], actual: dict[str, dict[str, str]]) -> dict:
    """{section.key: (expected, what FPM printed)} for every value that is not as expected."""
    return {f"{section}.{key}": (want, actual.get(section, {}).get(key))
            for section, keys in expected.items() for key, want in keys.items()
            if actual.get(section, {}).get(key) != want}


# FPM's time settings: whatever the suffix, FPM keeps whole seconds (DOMAIN.md, PHP).
FPM_TIMES = ("process_control_timeout", "request_terminate_timeout", "request_slowlog_timeout",
             "pm.process_idle_timeout")


def test_pool_passes_php_fpm_t_and_reads_back_as_derived(rendered, tmp_path):
    php_fpm = php_fpm_binary()
    (tmp_path / "log").mkdir()
    check = run([php_fpm, "-t", "-p", tmp_path, "-y", rendered.local])
    assert check.returncode == 0, explain(check)

    proc, dumped = fpm_dump(rendered.local, tmp_path)
    assert proc.returncode == 0, explain(proc)
    expected = expected_fpm(rendered.eff, rendered.name)
    assert differences(expected, dumped) == {}, proc.stderr

    # Every FPM time is written as whole seconds, and is one in what deploygen derived.
    text = rendered.pool.read_text()
    written = dict(re.findall(rf"^({'|'.join(map(re.escape, FPM_TIMES))}) = (\S+)", text, re.MULTILINE))
    assert {"process_control_timeout", "request_terminate_timeout"} <= written.keys(), text
    assert all(re.fullmatch(r"[1-9]\d*s", v) for v in written.values()), written
    for key, value in written.items():
        derived = rendered.eff.value(f"php-fpm.{key}")
        assert derived.is_whole_seconds and value == f"{derived.seconds}s", (key, derived, value)


def test_pool_included_from_debians_php_fpm_conf_sets_the_masters_global(rendered, tmp_path):
    """Debian's master reads pool.d/*.conf after its own [global]: the pool's [global]
    process_control_timeout must be the one the master runs with."""
    debian = Path("/etc/php/8.2/fpm/php-fpm.conf")
    if not debian.is_file():
        php_fpm_binary()  # the same skip or failure as a missing php-fpm
        pytest.fail(f"{debian} is missing although php-fpm8.2 is installed")
    pool_d = tmp_path / "pool.d"
    pool_d.mkdir()
    shutil.copy(rendered.local, pool_d / f"{rendered.name}.conf")
    text = debian.read_text()
    text = replace_once(text, "\npid = /run/php/php8.2-fpm.pid\n", f"\npid = {tmp_path}/fpm.pid\n")
    text = replace_once(text, "\nerror_log = /var/log/php8.2-fpm.log\n", f"\nerror_log = {tmp_path}/fpm.log\n")
    text = replace_once(text, "\ninclude=/etc/php/8.2/fpm/pool.d/*.conf\n", f"\ninclude={pool_d}/*.conf\n")
    main_conf = tmp_path / "php-fpm.conf"
    main_conf.write_text(text)
    proc, dumped = fpm_dump(main_conf, tmp_path)
    assert proc.returncode == 0, explain(proc)
    assert differences(expected_fpm(rendered.eff, rendered.name), dumped) == {}, proc.stderr
    assert dumped["global"]["error_log"] == f"{tmp_path}/fpm.log", proc.stderr


def test_php_knows_every_ini_name_the_pool_sets(rendered):
    """FPM -t checks no php_value name or value: php8.2 (the same modules as FPM's, Debian's
    conf.d) must know each name, and keep each value as the pool writes it."""
    php = require_binary("php8.2", "/usr/bin/php8.2")
    text = rendered.pool.read_text()
    settings = re.findall(r"^php_admin_(value|flag)\[([^\]]+)\] = (\"[^\"]*\"|\S+)", text, re.MULTILINE)
    assert len(settings) >= 15, text
    args, expected = [], {}
    for kind, name, raw in settings:
        args += ["-d", f"{name}={raw}"]
        if kind == "flag":
            assert raw in ("on", "off"), (name, raw)
            expected[name] = "1" if raw == "on" else ""  # php.ini's on/off, as ini_get() shows them
        else:
            expected[name] = raw.strip('"')
    script = "echo json_encode(array_combine($n = array_slice($argv, 1), array_map('ini_get', $n)));"
    proc = run([php, *args, "-r", script, "--", *expected])
    assert proc.returncode == 0, explain(proc)
    assert "Warning" not in proc.stdout + proc.stderr, explain(proc)
    assert json.loads(proc.stdout) == expected, explain(proc)


def test_php_says_false_for_an_ini_name_it_does_not_know():
    php = require_binary("php8.2", "/usr/bin/php8.2")
    proc = run([php, "-d", "session.gc_maxlifetimes=60", "-r",
                "var_export([ini_get('session.gc_maxlifetimes'), ini_get('session.gc_maxlifetime')]);"])
    assert proc.returncode == 0, explain(proc)
    assert proc.stdout.startswith("array (\n  0 => false,\n  1 => '"), proc.stdout


BROKEN_POOL_LINES = [
    pytest.param("pm", "pm = sometimes", "invalid process manager", id="pm-value"),
    pytest.param("request_terminate_timeout", "request_terminate_timeout = 60x", "request_terminate_timeout",
                 id="time-suffix"),
    pytest.param("request_terminate_timeout", "request_terminate_timeoutt = 60s",
                 "unknown entry 'request_terminate_timeoutt'", id="unknown-key"),
    pytest.param("pm.max_children", "pm.max_children = 0", "pm.max_children", id="zero-children"),
    pytest.param("pm.max_spare_servers", "pm.max_spare_servers = 11", "pm.max_spare_servers", id="spare-over-max"),
]


@pytest.mark.parametrize(("key", "line", "message"), BROKEN_POOL_LINES)
def test_php_fpm_t_refuses_a_hand_broken_pool(key, line, message, tmp_path, tls_pair):  # noqa: F811
    r = render_variant(variant_data("shipped-yayin", tmp_path, tls_pair), tmp_path)
    broken = tmp_path / "broken.conf"
    broken.write_text(replace_line(r.local.read_text(), key, line))
    (tmp_path / "log").mkdir()
    proc = run([php_fpm_binary(), "-t", "-p", tmp_path, "-y", broken])
    assert proc.returncode == FPM_EXIT_CONFIG, explain(proc)
    assert message in proc.stderr, explain(proc)
    ok = run([php_fpm_binary(), "-t", "-p", tmp_path, "-y", r.local])
    assert ok.returncode == 0, explain(ok)


def test_tt_comparison_sees_a_hand_changed_value(tmp_path, tls_pair):  # noqa: F811
    r = render_variant(variant_data("shipped-yayin", tmp_path, tls_pair), tmp_path)
    changed = tmp_path / "changed.conf"
    text = replace_line(r.local.read_text(), "process_control_timeout", "process_control_timeout = 59s")
    changed.write_text(replace_line(text, "pm.max_children", "pm.max_children = 11"))
    proc, dumped = fpm_dump(changed, tmp_path)
    assert proc.returncode == 0, explain(proc)
    assert differences(expected_fpm(r.eff, "yayin"), dumped) == {
        "global.process_control_timeout": ("60s", "59s"), "yayin.pm.max_children": ("10", "11")}


@pytest.mark.parametrize(("written", "read"), [("1.5s", "1s"), ("100ms", "100s"), ("2m", "120s"), ("7", "7s")])
def test_fpm_reads_only_whole_seconds(written, read, tmp_path, tls_pair):  # noqa: F811
    """Why deploygen writes whole seconds: FPM silently misreads anything else."""
    r = render_variant(variant_data("shipped-yayin", tmp_path, tls_pair), tmp_path)
    pool = tmp_path / "misread.conf"
    pool.write_text(replace_line(r.local.read_text(), "request_terminate_timeout",
                                 f"request_terminate_timeout = {written}"))
    proc, dumped = fpm_dump(pool, tmp_path)
    assert proc.returncode == 0, explain(proc)
    assert dumped["yayin"]["request_terminate_timeout"] == read, proc.stderr


@pytest.mark.parametrize("path", [
    ("timeouts", "php-fpm", "request_terminate_timeout"),
    ("timeouts", "php-fpm", "process_control_timeout"),
    ("timeouts", "php-fpm", "request_slowlog_timeout"),
    ("server", "process_idle_timeout"),
    ("timeouts", "request"),
])
def test_a_fraction_of_a_second_for_fpm_is_refused_at_load(path, tmp_path):
    data = php_site("frac", app_folder(tmp_path), server={"pm": "ondemand"})
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = "1500ms"
    site = write_site(tmp_path, data)
    lines = site.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if text.strip().startswith(f"{path[-1]}: 1500ms"))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["render", str(site), "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    problems = result.stderr.splitlines()
    assert len(problems) == 1, result.stderr
    assert re.fullmatch(rf"{re.escape(str(site))}:{line}:\d+: {re.escape('.'.join(path))}: "
                        r"'1500ms': \S+ takes whole seconds .*: write 2s or 1s", problems[0]), problems
    assert not out.exists()


# -- FPM's heartbeat against nginx's wait --------------------------------------------

_HEARTBEAT = re.compile(r"heartbeat have been set up with a timeout of (\d+)ms")


def test_nginx_waits_longer_than_fpm_takes_to_end_a_request(rendered, tmp_path):
    """FPM ends a request past request_terminate_timeout only when its heartbeat timer next
    fires (every third of the smallest terminate or slowlog timeout, DEBUG-logged), so the
    request runs up to terminate + heartbeat; nginx must not give up (504) before that."""
    eff = rendered.eff
    pool = local_pool(rendered.pool.read_text(), listen=str(tmp_path / "fpm.sock"), debug=True)
    with PhpFpm(php_fpm_binary(), pool, str(tmp_path / "fpm.sock")) as fpm:
        deadline = time.monotonic() + 10
        while not (found := _HEARTBEAT.search(fpm.log())) and time.monotonic() < deadline:
            time.sleep(0.02)
        log = fpm.log()
    assert found, log
    heartbeat_ms = int(found.group(1))
    limits = [eff.value("php-fpm.request_terminate_timeout")]
    if eff.value("php-fpm.request_slowlog_timeout") is not None:
        limits.append(eff.value("php-fpm.request_slowlog_timeout"))
    assert heartbeat_ms == min(limit.ms for limit in limits) // 3, log

    terminate = eff.value("php-fpm.request_terminate_timeout")
    read = eff.value("nginx.fastcgi_read_timeout")
    latest_ms = terminate.ms + heartbeat_ms
    # FPM ends such a request terminate..terminate + heartbeat after it began: nginx waits longer.
    assert read.ms > latest_ms, (read, terminate, heartbeat_ms)


# -- nginx --------------------------------------------------------------------


def test_nginx_accepts_the_server_block(rendered, tmp_path):
    nginx = require_binary("nginx", "/usr/sbin/nginx")
    text = rendered.nginx.read_text()
    assert f"fastcgi_pass {rendered.name}_fpm;" in text
    assert f"fastcgi_read_timeout {rendered.eff.value('nginx.fastcgi_read_timeout').nginx()};" in text
    proc = nginx_test(nginx, text, tmp_path / "nginx")
    assert proc.returncode == 0, explain(proc)
    assert "[warn]" not in proc.stderr and "[emerg]" not in proc.stderr, explain(proc)


def test_nginx_t_refuses_a_hand_broken_server_block(tmp_path, tls_pair):  # noqa: F811
    nginx = require_binary("nginx", "/usr/sbin/nginx")
    r = render_variant(variant_data("shipped-yayin", tmp_path, tls_pair), tmp_path)
    broken = replace_once(r.nginx.read_text(), "fastcgi_read_timeout 86s;", "fastcgi_read_timeout 86x;")
    proc = nginx_test(nginx, broken, tmp_path / "nginx")
    assert proc.returncode != 0, explain(proc)
    assert '"fastcgi_read_timeout" directive invalid value' in proc.stderr, explain(proc)


# -- systemd --------------------------------------------------------------------

DEBIAN_FPM_UNIT = Path("/lib/systemd/system/php8.2-fpm.service")


def verify_fpm_with_dropin(dropin_text: str, folder: Path) -> subprocess.CompletedProcess:
    """systemd-analyze verify on Debian's php8.2-fpm.service, the drop-in in its .d folder,
    that folder first in the unit path (the trailing colon keeps systemd's own after it)."""
    analyze = require_binary("systemd-analyze")
    if not DEBIAN_FPM_UNIT.is_file():
        php_fpm_binary()
        pytest.fail(f"{DEBIAN_FPM_UNIT} is missing although php-fpm8.2 is installed")
    units = folder / "units"
    (units / "php8.2-fpm.service.d").mkdir(parents=True)
    shutil.copy(DEBIAN_FPM_UNIT, units / "php8.2-fpm.service")
    (units / "php8.2-fpm.service.d" / "deploygen-site.conf").write_text(dropin_text)
    return run([analyze, "verify", units / "php8.2-fpm.service"],
               env={**os.environ, "SYSTEMD_UNIT_PATH": f"{units}:"})


def test_systemd_verifies_debians_fpm_unit_with_the_dropin(rendered, tmp_path):
    text = rendered.dropin.read_text()
    eff = rendered.eff
    assert "KillSignal=SIGQUIT\n" in text
    assert f"TimeoutStopSec={eff.value('systemd.TimeoutStopSec').systemd()}\n" in text
    assert eff.value("systemd.TimeoutStopSec") > eff.value("php-fpm.process_control_timeout")
    proc = verify_fpm_with_dropin(text, tmp_path)
    # verify exits 0 on warnings about a unit: any line is a failure.
    assert proc.returncode == 0 and proc.stderr == "", explain(proc)


def test_systemd_verify_reports_a_hand_broken_dropin(tmp_path, tls_pair):  # noqa: F811
    r = render_variant(variant_data("shipped-yayin", tmp_path, tls_pair), tmp_path)
    broken = replace_once(r.dropin.read_text(), "KillSignal=SIGQUIT\n", "KillSignal=SIGQUITE\n")
    proc = verify_fpm_with_dropin(broken, tmp_path)
    assert "deploygen-site.conf" in proc.stderr and "SIGQUITE" in proc.stderr, explain(proc)


def verify_cleanup(service: str, timer: str, name: str, folder: Path) -> subprocess.CompletedProcess:
    analyze = require_binary("systemd-analyze")
    folder.mkdir()
    paths = [folder / f"{name}-session-cleanup.service", folder / f"{name}-session-cleanup.timer"]
    paths[0].write_text(service)
    paths[1].write_text(timer)
    return run([analyze, "verify", *paths])


def test_systemd_verifies_the_session_cleanup_units(rendered, tmp_path):
    service, timer = rendered.cleanup("service"), rendered.cleanup("timer")
    if rendered.eff.value("php.session.save_handler") == "redis":
        assert service is None and timer is None  # phpredis's keys expire in Redis
        return
    assert service is not None and timer is not None
    text = service.read_text()
    lifetime = rendered.eff.value("php.session.gc_maxlifetime")
    assert (f"ExecStart=/usr/bin/find {rendered.eff.value('php.session.save_path')} -mindepth 1 -maxdepth 1 "
            f"-type f -name sess_* -mmin +{lifetime.seconds // 60} -delete\n") in text, text
    proc = verify_cleanup(text, timer.read_text(), rendered.name, tmp_path / "units")
    assert proc.returncode == 0, explain(proc)
    ours = [line for line in proc.stderr.splitlines() if f"{rendered.name}-session-cleanup" in line]
    assert ours == [], explain(proc)


def test_systemd_verify_reports_a_hand_broken_cleanup_timer(tmp_path, tls_pair):  # noqa: F811
    r = render_variant(variant_data("shipped-yayin", tmp_path, tls_pair), tmp_path)
    timer = replace_once(r.cleanup("timer").read_text(), "OnCalendar=hourly\n", "OnCalendar=hourlyish\n")
    proc = verify_cleanup(r.cleanup("service").read_text(), timer, "yayin", tmp_path / "units")
    ours = [line for line in proc.stderr.splitlines() if "yayin-session-cleanup.timer" in line]
    assert ours and "hourlyish" in proc.stderr, explain(proc)
