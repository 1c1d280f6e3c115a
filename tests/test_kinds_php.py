"""The PHP kind: its keys, what it derives from the one budget, the files and first install it renders."""

from __future__ import annotations

import json

import pytest
import yaml

from conftest import merge
from test_first_install import private_folder  # noqa: F401  (a fixture)
from deploygen.derive import derive
from deploygen.render.site import render_site
from deploygen.sitefile.duration import Duration
from deploygen.sitefile.load import load_site

# The contract's minimal PHP site.
MINIMAL = {
    "name": "yayin", "domains": ["yayin.example.org"],
    "app": {"framework": "php", "root": "/srv/yayin", "docroot": "/srv/yayin/public",
            "secrets_file": "/etc/yayin/secrets.env"},
    "server": {"bind": "unix:/run/yayin/php-fpm.sock"},
    "timeouts": {"request": "60s"},
    "database": {"name": "yayin", "role": "yayin"},
    "session": {"idle_timeout": "30m"},
}


def _write(tmp_path, data: dict, name: str = "yayin.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _effective(tmp_path, overrides: dict | None = None):
    loaded, problems = load_site(str(_write(tmp_path, merge(MINIMAL, overrides or {}))))
    assert loaded is not None, problems
    return loaded, derive(loaded)


def _files(tmp_path, overrides: dict | None = None) -> dict[str, str]:
    loaded, _ = _effective(tmp_path, overrides)
    return {f.role: f.content.decode() for f in render_site(loaded).files}


def test_the_contracts_minimal_php_site_renders_a_pool_and_a_drop_in_not_gunicorn(tmp_path, cli):
    site = _write(tmp_path, MINIMAL)
    assert cli("validate", "--strict", site).exit_code == 0
    assert cli("render", site, "-o", tmp_path / "out").exit_code == 0
    manifest = json.loads((tmp_path / "out" / "yayin" / "manifest.json").read_text())
    kinds = {f["target"]: f["kind"] for f in manifest["files"]}
    assert kinds["/etc/php/8.2/fpm/pool.d/yayin.conf"] == "php-fpm-pool"
    assert kinds["/etc/systemd/system/php8.2-fpm.service.d/deploygen-yayin.conf"] == "systemd-dropin"
    assert "gunicorn-config" not in kinds.values() and "/etc/systemd/system/yayin.service" not in kinds


def test_the_chain_is_derived_from_the_budget_in_whole_seconds(tmp_path):
    _, eff = _effective(tmp_path, {"timeouts": {"request": "45s"}})
    s = lambda n: Duration.seconds_(n)  # noqa: E731
    assert eff.value("php-fpm.request_terminate_timeout") == s(45)
    assert eff.value("postgres.statement_timeout") < eff.value("php-fpm.request_terminate_timeout") \
        < eff.value("nginx.fastcgi_read_timeout")
    assert eff.value("php-fpm.process_control_timeout") >= eff.value("php-fpm.request_terminate_timeout")
    assert eff.value("systemd.TimeoutStopSec") > eff.value("php-fpm.process_control_timeout")
    assert eff.value("systemd.KillSignal") == "SIGQUIT"
    assert eff.value("php.session.gc_maxlifetime") == s(1800) and eff.value("php.session.cookie_lifetime") == s(0)


def test_a_written_neighbour_moves_what_is_derived_around_it(tmp_path):
    _, eff = _effective(tmp_path, {"timeouts": {"request": "60s",
                                                "php-fpm": {"request_terminate_timeout": "30s"}}})
    assert eff.value("nginx.fastcgi_read_timeout") == Duration.seconds_(43)  # 30 + a third + 3
    assert eff.value("postgres.statement_timeout") == Duration.seconds_(27)


def test_the_pool_file_carries_the_derived_values(tmp_path):
    pool = _files(tmp_path)["php-fpm-pool"]
    assert "request_terminate_timeout = 60s\n" in pool and "process_control_timeout = 60s\n" in pool
    assert 'listen = "/run/yayin/php-fpm.sock"' in pool and 'listen.owner = "www-data"' in pool
    assert "listen.mode = 0600" in pool and 'user = "yayin"' in pool and 'group = "yayin"' in pool
    assert "php_admin_value[session.gc_maxlifetime] = 1800 " in pool
    assert "php_admin_flag[session.use_strict_mode] = on" in pool
    assert "clear_env = yes" in pool
    # The secrets reach this pool's children only: included by the pool, never the master's environment.
    assert pool.endswith("include = /etc/yayin/secrets.env\n") and "$" not in pool.split("include")[0]
    assert "options='-c statement_timeout=54s -c lock_timeout=10s" in pool


def test_nginx_runs_only_existing_php_files_and_clears_httpoxy(tmp_path):
    conf = _files(tmp_path, {"tls": {"certificate": "/etc/ssl/y.pem", "certificate_key": "/etc/ssl/y.key"},
                             "app": {"front_controller": "app/front.php"}})["nginx-site"]
    assert "root /srv/yayin/public;" in conf
    assert "try_files $uri $uri/ /app/front.php$is_args$args;" in conf
    assert "try_files $uri =404;" in conf and 'fastcgi_param HTTP_PROXY "";' in conf
    assert conf.index("location ~ /\\.(?!well-known/) {\n        deny all;") < conf.index("location ~ \\.php$")
    assert "fastcgi_param HTTPS on;" in conf and "fastcgi_read_timeout 86s;" in conf
    assert "proxy_pass" not in conf


def test_the_drop_in_stops_gracefully_and_creates_the_socket_folder(tmp_path):
    dropin = _files(tmp_path)["php-fpm-dropin"]
    assert "KillSignal=SIGQUIT\n" in dropin and "TimeoutStopSec=90s\n" in dropin
    assert "RuntimeDirectory=yayin\n" in dropin
    # php-fpm's one master serves every PHP site: no site's secrets in its environment.
    assert "EnvironmentFile" not in dropin


@pytest.mark.parametrize(("overrides", "timer"), [
    ({}, True),
    ({"php": {"session.gc_probability": 1}}, False),  # PHP's own GC
    ({"session": {"store": "redis"}}, False),  # Redis expires the keys
    ({"session": {"cleanup": {"enabled": False}}}, False),
])
def test_the_cleanup_timer_exists_only_where_nothing_else_removes_sessions(tmp_path, overrides, timer):
    files = _files(tmp_path, overrides)
    assert ("cleanup-timer" in files) == timer
    if timer:
        assert "ExecStart=/usr/bin/find /var/lib/yayin/sessions -mindepth 1 -maxdepth 1 -type f -name sess_* " \
               "-mmin +30 -delete\n" in files["cleanup-service"]


def test_a_lifetime_under_a_minute_keeps_its_seconds_in_the_cleaner(tmp_path):
    files = _files(tmp_path, {"session": {"idle_timeout": "90s"}})
    assert "-mmin +1.5 -delete" in files["cleanup-service"]


def test_redis_sessions_carry_the_sites_prefix(tmp_path):
    pool = _files(tmp_path, {"session": {"store": "redis", "redis": {"address": "tcp://10.0.0.7:6380",
                                                                    "database": 3}}})["php-fpm-pool"]
    assert 'php_admin_value[session.save_path] = "tcp://10.0.0.7:6380?database=3&prefix=yayin_sess:"' in pool
    assert "php_admin_value[session.save_handler] = redis" in pool


def test_the_first_install_creates_folders_then_reloads_the_shared_master(tmp_path):
    loaded, _ = _effective(tmp_path)
    commands = json.loads(render_site(loaded).manifest)["post_install"]
    sessions = commands.index("install -d -m 0700 -o yayin -g yayin /var/lib/yayin/sessions")
    socket_dir = commands.index("install -d -m 0755 -o root -g root /run/yayin")
    check = commands.index("php-fpm8.2 -t")
    assert commands.index("systemctl daemon-reload") < socket_dir < check and sessions < check
    assert commands[sessions - 1].startswith("test ! -L /var/lib/yayin/sessions || {")
    assert commands[check + 1] == "systemctl reload-or-restart php8.2-fpm.service"
    assert not any("restart yayin.service" in c or "usermod" in c for c in commands)
    # The pool's own account, created first.
    assert commands[0] == "getent group yayin >/dev/null || groupadd --system yayin"
    assert "systemctl enable --now yayin-session-cleanup.timer" in commands


def test_php_version_picks_the_pool_folder_and_unit(tmp_path):
    loaded, _ = _effective(tmp_path, {"app": {"php_version": "8.3"}})
    targets = [f.target for f in render_site(loaded).files]
    assert "/etc/php/8.3/fpm/pool.d/yayin.conf" in targets
    assert "/etc/systemd/system/php8.3-fpm.service.d/deploygen-yayin.conf" in targets


def test_rendering_is_deterministic(tmp_path):
    assert _files(tmp_path) == _files(tmp_path)


@pytest.mark.parametrize(("overrides", "key"), [
    ({"timeouts": {"php-fpm": {"request_terminate_timeout": "1500ms"}}}, "timeouts.php-fpm.request_terminate_timeout"),
    ({"timeouts": {"php-fpm": {"process_control_timeout": "100ms"}}}, "timeouts.php-fpm.process_control_timeout"),
    ({"app": {"docroot": "/srv/other/public"}}, "app"),
    ({"app": {"front_controller": "../index.php"}}, "app.front_controller"),
    ({"app": {"front_controller": "index.php;evil"}}, "app.front_controller"),
    ({"app": {"user": "root"}}, "app.user"),
    ({"app": {"php_version": "5.6"}}, "app.php_version"),
    ({"server": {"pm": "adaptive"}}, "server.pm"),
    ({"server": {"workers": 3}}, "server.workers"),
    ({"session": {"lifetime": "12h"}}, "session"),
    ({"session": {"refresh_each_request": False}}, "session"),
    ({"session": {"store": "redis", "redis": {"address": "tcp://evil\n:6379"}}}, "session.redis.address"),
    ({"php": {"memory_limit": "128M\nphp_admin_value[x]"}}, "php.memory_limit"),
    ({"php": {"session.gc_probability": -1}}, "php.session.gc_probability"),
    ({"nginx": {"websockets": {"/ws/": {}}}}, "nginx"),
    ({"nginx": {"app_paths": ["/api/"]}}, "nginx"),
    ({"timeouts": {"gunicorn": {"timeout": "30s"}}}, "timeouts.gunicorn"),
    # FastCGI has no authentication: on a port any local user could set PHP's ini.
    ({"server": {"bind": "127.0.0.1:9000"}}, "server.bind"),
    # nginx's user owns every pool's socket.
    ({"app": {"user": "www-data"}}, "app.user"),
    ({"app": {"group": "root"}}, "app.group"),
    ({"app": {"user": "postgres"}}, "app.user"),
    ({"server": {"slowlog": "/etc/nologin"}}, "server.slowlog"),
    ({"name": "php", "server": {"bind": "unix:/run/php/php-fpm.sock"}}, ""),
    ({"name": "www", "server": {"bind": "unix:/run/www/php-fpm.sock"}}, ""),
    ({"name": "global", "server": {"bind": "unix:/run/global/php-fpm.sock"}}, ""),
    ({"session": {"cookie": {"name": "12345"}}}, ""),
    ({"timeouts": {"nginx": {"proxy_read_timeout": "30s"}}}, "timeouts.nginx.proxy_read_timeout"),
])
def test_bad_php_input_is_one_located_line_and_exit_2(tmp_path, cli, overrides, key):
    site = _write(tmp_path, merge(MINIMAL, overrides))
    result = cli("render", site, "-o", tmp_path / "out")
    assert result.exit_code == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(f"{site}:") and f" {key}" in lines[0], lines[0]
    assert not (tmp_path / "out").exists()


def test_check_secrets_reads_fpms_env_lines(tmp_path, cli, private_folder):
    """The PHP site's secrets file is php-fpm's `env[NAME] = "..."`, which the pool includes."""
    import os
    import subprocess

    file = private_folder / "secrets.conf"
    site = _write(tmp_path, merge(MINIMAL, {"app": {"secrets_file": str(file)}}))
    assert cli("render", site, "-o", tmp_path / "out").exit_code == 0
    script = tmp_path / "out/yayin/root/etc/deploygen/yayin/check-secrets"
    for text, status, said in [
        ('env[DATABASE_PASSWORD] = "s3cret"\n', 0, "with DATABASE_PASSWORD"),
        ("DATABASE_PASSWORD=s3cret\n", 1, 'env[DATABASE_PASSWORD] = "..."'),
        ('env[DATABASE_PASSWORD] = ""\n', 1, "sets DATABASE_PASSWORD to nothing"),
        ("env[DATABASE_PASSWORD] =\n", 1, "sets DATABASE_PASSWORD to nothing"),
    ]:
        file.write_text(text)
        os.chmod(file, 0o600)
        if os.getuid() != 0:
            pytest.skip("check-secrets refuses a file root does not own")
        proc = subprocess.run(["/bin/sh", str(script)], capture_output=True, text=True, timeout=30)
        assert proc.returncode == status and said in proc.stdout + proc.stderr, (text, proc.stdout, proc.stderr)
        assert "s3cret" not in proc.stdout + proc.stderr


@pytest.mark.parametrize(("location", "said"), [
    # Any site's snippet could reach a pool's socket, and through PHP_VALUE run code as the pool.
    ("location /x/ { fastcgi_pass unix:/run/yayin/php-fpm.sock; }", "fastcgi_pass"),
    ("location /x/ { fastcgi_pass yayin_fpm; }", "fastcgi_pass"),
    ("location /x/ { uwsgi_pass unix:/run/yayin/uwsgi.sock; }", "uwsgi_pass"),
    ("location /x/ { fastcgi_param PHP_VALUE auto_prepend_file=php://input; }", "PHP_VALUE"),
    ("location /x/ { fastcgi_param php_admin_value allow_url_include=On; }", "php_admin_value"),
])
def test_a_snippet_reaches_no_pool_but_its_own(tmp_path, cli, location, said):
    (tmp_path / "evil.locations.conf").write_text(location + "\n")
    site = _write(tmp_path, {"name": "evil", "domains": ["evil.example.org"],
                             "app": {"framework": "flask", "wsgi": "app:app", "root": "/srv/evil",
                                     "venv": "/srv/evil/venv"},
                             "server": {"bind": "unix:/run/evil/gunicorn.sock"}, "timeouts": {"request": "30s"},
                             "nginx": {"snippet": "evil.locations.conf"}}, "evil.yaml")
    result = cli("validate", site)
    assert result.exit_code == 2 and said in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_a_php_sites_snippet_may_pass_to_its_own_pool(tmp_path, cli):
    (tmp_path / "yayin.locations.conf").write_text("location = /status.php { fastcgi_pass yayin_fpm; }\n")
    site = _write(tmp_path, merge(MINIMAL, {"nginx": {"snippet": "yayin.locations.conf"}}))
    result = cli("validate", site)
    assert result.exit_code == 0, result.stderr
