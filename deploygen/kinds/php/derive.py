"""PHP-FPM and PHP from the site's concepts: the pool, nginx's FastCGI limits, the stop, sessions.

The chain (DOMAIN.md, PHP): statement_timeout < request_terminate_timeout (FPM's
wall clock; max_execution_time counts CPU time only) < fastcgi_read_timeout, which
also outwaits FPM's heartbeat (it checks the limit every third of it), and
TimeoutStopSec > process_control_timeout >= request_terminate_timeout so a stop
or reload lets requests in flight finish. FPM reads `1.5s` as 1 s and `100ms`
as 100 s: every FPM value is whole seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deploygen.derive.cleanup import derive_cleanup, derive_wanted
from deploygen.derive.deriver import margin
from deploygen.sitefile.duration import Duration

if TYPE_CHECKING:
    from deploygen.derive.deriver import Deriver

# FPM's own defaults in Debian's www.conf, and PHP's session defaults.
DEFAULT_MAX_CHILDREN = 5
PHP_GC_MAXLIFETIME = Duration.seconds_(1440)


def fpm_latest_end(terminate: Duration) -> Duration:
    """When FPM has ended a request past `request_terminate_timeout` at the latest: its master
    checks the limit on a timer every third of the smallest terminate (or slowlog) timeout of
    its pools, in whole ms (fpm_conf.c: heartbeat), so a request runs up to a third longer."""
    return terminate + Duration(terminate.ms // 3)


def session_handler(site) -> str:
    """session.save_handler: phpredis's `redis`, else PHP's `files`."""
    return "redis" if site.session.store == "redis" else "files"


def gc_maxlifetime(site) -> Duration:
    """How long an idle session lives: the idle timeout, else the lifetime, else PHP's 24 minutes."""
    s = site.session
    return s.idle_timeout or s.lifetime or PHP_GC_MAXLIFETIME


def derive_fpm(d: Deriver) -> None:
    site = d.loaded.site
    pool = site.server
    t = site.timeouts
    request = d.value("deploygen.request")
    # A socket path: the model refuses a TCP listen (FastCGI has no authentication).
    d.put("php-fpm.listen", None, ("server", "bind"), lambda: pool.bind.unix_path, "server.bind")
    d.put("php-fpm.version", site.app.php_version if d.loaded.written("app", "php_version") else None,
          ("app", "php_version"), lambda: site.app.php_version, f"{site.app.php_version} (the site file's default)")
    for key, name in (("php-fpm.user", "user"), ("php-fpm.group", "group")):
        value = getattr(site.app, name)
        d.put(key, value if d.loaded.written("app", name) else None, ("app", name),
              lambda value=value: value, f"{value}: the site's own account, its name")
    pm = d.put("php-fpm.pm", pool.pm if d.loaded.written("server", "pm") else None, ("server", "pm"),
               lambda: "dynamic", "dynamic (FPM's default): children between the spare counts")
    children = d.put("php-fpm.pm.max_children", pool.max_children, ("server", "max_children"),
                     lambda: DEFAULT_MAX_CHILDREN, f"{DEFAULT_MAX_CHILDREN} (Debian's www.conf)")
    if pm == "dynamic":
        low = d.put("php-fpm.pm.min_spare_servers", pool.min_spare_servers, ("server", "min_spare_servers"),
                    lambda: 1, "1 (Debian's www.conf)")
        high = d.put("php-fpm.pm.max_spare_servers", pool.max_spare_servers, ("server", "max_spare_servers"),
                     lambda: max(low, min(3, children)), "min(3, pm.max_children), at least min_spare_servers",
                     "php-fpm.pm.max_children")
        d.put("php-fpm.pm.start_servers", pool.start_servers, ("server", "start_servers"),
              lambda: low + (high - low) // 2, "min_spare + (max_spare - min_spare) / 2 (FPM's own default)",
              "php-fpm.pm.min_spare_servers")
    elif pm == "ondemand":
        d.put("php-fpm.pm.process_idle_timeout", pool.process_idle_timeout, ("server", "process_idle_timeout"),
              lambda: Duration.seconds_(10), "10s (FPM's default): an idle child ends")
    d.put("php-fpm.pm.max_requests", pool.max_requests, ("server", "max_requests"),
          lambda: 500, "500: recycle children to bound slow memory leaks (FPM's 0 never does)")
    f = t.php_fpm
    terminate = d.put("php-fpm.request_terminate_timeout", f.request_terminate_timeout,
                      ("timeouts", "php-fpm", "request_terminate_timeout"), lambda: request,
                      "= timeouts.request: FPM's wall-clock limit (max_execution_time counts CPU time only)",
                      "deploygen.request")
    slow = d.put("php-fpm.request_slowlog_timeout", f.request_slowlog_timeout,
                 ("timeouts", "php-fpm", "request_slowlog_timeout"), lambda: None, "off (FPM's default)")
    d.put("php-fpm.slowlog", None, ("timeouts", "php-fpm", "request_slowlog_timeout"),
          lambda: None if not slow else f"/var/log/php{site.app.php_version}-fpm.{site.name}.slow.log",
          "beside FPM's own log, when request_slowlog_timeout is set", "php-fpm.request_slowlog_timeout")
    d.put("php.max_execution_time", t.php.max_execution_time, ("timeouts", "php", "max_execution_time"),
          lambda: terminate, "= request_terminate_timeout: a CPU-bound loop ends with PHP's own error",
          "php-fpm.request_terminate_timeout")
    d.put("php-fpm.process_control_timeout", f.process_control_timeout,
          ("timeouts", "php-fpm", "process_control_timeout"), lambda: terminate,
          "= request_terminate_timeout: a reload or stop lets every request in flight finish "
          "(FPM's 0 kills them)", "php-fpm.request_terminate_timeout")


def derive_fastcgi(d: Deriver) -> None:
    """nginx in front of FPM: it waits longer than FPM lets a request run."""
    site = d.loaded.site
    n = site.timeouts.nginx
    terminate = d.value("php-fpm.request_terminate_timeout")
    read = d.put("nginx.fastcgi_read_timeout", n.fastcgi_read_timeout, ("timeouts", "nginx", "fastcgi_read_timeout"),
                 lambda: fpm_latest_end(terminate) + margin(terminate),
                 "request_terminate_timeout + a third + min(10s, a tenth): FPM checks the limit every third of "
                 "it, and ends the request before nginx gives up", "php-fpm.request_terminate_timeout")
    d.put("nginx.fastcgi_send_timeout", n.fastcgi_send_timeout, ("timeouts", "nginx", "fastcgi_send_timeout"),
          lambda: read, "= fastcgi_read_timeout", "nginx.fastcgi_read_timeout")
    d.put("nginx.fastcgi_connect_timeout", n.fastcgi_connect_timeout,
          ("timeouts", "nginx", "fastcgi_connect_timeout"), lambda: min(Duration.seconds_(5), read),
          "min(5s, fastcgi_read_timeout): a local FPM accepts at once; fail fast when it is down",
          "nginx.fastcgi_read_timeout")
    d.put("nginx.root", None, ("app", "docroot"), lambda: site.app.docroot, "app.docroot")
    d.put("nginx.index", None, ("app", "front_controller"), lambda: site.app.front_controller,
          "app.front_controller: try_files sends every path without a file to it")


def derive_stop(d: Deriver) -> None:
    """The php-fpm service's drop-in: a graceful stop that outlasts process_control_timeout."""
    site = d.loaded.site
    control = d.value("php-fpm.process_control_timeout")
    d.put("systemd.KillSignal", None, ("timeouts", "php-fpm", "process_control_timeout"), lambda: "SIGQUIT",
          "SIGQUIT: FPM's graceful stop (systemd's SIGTERM stops it at once, killing requests)")
    d.put("systemd.TimeoutStopSec", site.timeouts.systemd.TimeoutStopSec, ("timeouts", "systemd", "TimeoutStopSec"),
          lambda: control + max(Duration.seconds_(5), control.scaled(1, 2)),
          "process_control_timeout + max(5s, half of it): children finish before SIGKILL",
          "php-fpm.process_control_timeout")
    socket_dir = site.server.bind.runtime_directory
    d.put("systemd.RuntimeDirectory", None, ("server", "bind"), lambda: [socket_dir] if socket_dir else [],
          "the socket's folder: php-fpm's unit creates it (root's, 0755) before the master binds")
    d.put("systemd.EnvironmentFile", None, ("app", "secrets_file"), lambda: [],
          "none: the master loads no site's secrets, each pool includes its own")


def derive_php(d: Deriver, tls: bool) -> None:
    """The socket's owner (nginx's user), sessions, and the DSN the app connects with."""
    site = d.loaded.site
    nginx_user = d.value("nginx.user")
    d.put("php-fpm.listen.owner", None, ("server", "bind"), lambda: nginx_user,
          "nginx.user: nginx connects to the socket the master creates", "nginx.user")
    d.put("php-fpm.listen.group", None, ("server", "bind"), lambda: nginx_user,
          "nginx.user's own group", "nginx.user")
    d.put("php-fpm.listen.mode", None, ("server", "bind"), lambda: "0600",
          "0600: nginx's user only (whoever reaches the socket can set PHP's ini and run code as the pool)")
    _derive_sessions(d, tls)
    _derive_limits(d)
    if site.database is not None:
        _derive_dsn(d)


def _derive_sessions(d: Deriver, tls: bool) -> None:
    site = d.loaded.site
    s = site.session
    ini = site.php
    store = d.put("deploygen.store", s.store if d.loaded.written("session", "store") else None,
                  ("session", "store"), lambda: "files", "files (PHP's default)")
    handler = session_handler(site)
    d.put("php.session.save_handler", None, ("session", "store"), lambda: handler,
          "session.store: files, or phpredis's redis", "deploygen.store")
    if handler == "files":
        directory = d.put("php.session.save_path", s.directory, ("session", "directory"),
                          lambda: f"/var/lib/{site.name}/sessions",
                          "/var/lib/NAME/sessions: the site's own, which the cleanup timer sees", "deploygen.store")
        d.put("systemd.StateDirectory", None, ("session", "directory"),
              lambda: directory[len("/var/lib/"):], "the sessions' folder under /var/lib", "php.session.save_path")
    else:
        r = s.redis
        d.put("php.session.save_path", None, ("session", "redis", "address"),
              lambda: f"{r.address}?database={r.database}&prefix={site.name}_sess:",
              "session.redis.address, its database, the site's name as key prefix", "deploygen.store")
    lifetime = d.put("php.session.gc_maxlifetime", s.idle_timeout or s.lifetime,
                     ("session", "idle_timeout" if s.idle_timeout is not None else "lifetime"),
                     lambda: gc_maxlifetime(site), "24m (PHP's default): idle sessions last this long")
    d.put("php.session.cookie_lifetime", ini.session_cookie_lifetime, ("php", "session.cookie_lifetime"),
          lambda: lifetime if s.lifetime is not None else Duration.seconds_(0),
          "= session.lifetime: the cookie ends that long after login" if s.lifetime is not None
          else "0: the cookie lasts until the browser closes, so the session slides with every request",
          *(("php.session.gc_maxlifetime",) if s.lifetime is not None else ()))
    gc = d.put("php.session.gc_probability", ini.session_gc_probability, ("php", "session.gc_probability"),
               lambda: 0, "0 (Debian's): the cleanup timer removes expired sessions, no request pays for it")
    d.put("php.session.gc_divisor", ini.session_gc_divisor, ("php", "session.gc_divisor"),
          lambda: 100, "100 (PHP's default)")
    wanted = derive_wanted(d)
    if handler == "files" and gc == 0 and wanted:
        derive_cleanup(d, "php.session.gc_maxlifetime")
    d.put("php.session.use_strict_mode", ini.session_use_strict_mode, ("php", "session.use_strict_mode"),
          lambda: True, "on: an id the server never issued is refused (PHP's 0 accepts an attacker's)")
    c = s.cookie
    d.put("php.session.name", c.name, ("session", "cookie", "name"), lambda: "PHPSESSID", "PHPSESSID (PHP's default)")
    d.put("php.session.cookie_domain", c.domain, ("session", "cookie", "domain"), lambda: None,
          "none: host-only, the cookie reaches no other subdomain")
    d.put("php.session.cookie_secure", c.secure, ("session", "cookie", "secure"), lambda: tls,
          "on with tls: the cookie never travels over plain HTTP", "deploygen.tls")
    d.put("php.session.cookie_httponly", c.httponly, ("session", "cookie", "httponly"), lambda: True,
          "on: scripts cannot read the session id (PHP's default is off)")
    d.put("php.session.cookie_samesite", c.samesite, ("session", "cookie", "samesite"), lambda: "Lax",
          "Lax: not sent on cross-site POSTs")


def _derive_limits(d: Deriver) -> None:
    ini = d.loaded.site.php
    for name in ("memory_limit", "upload_max_filesize", "post_max_size"):
        d.put(f"php.{name}", getattr(ini, name), ("php", name), lambda: None, "php.ini's")


def _derive_dsn(d: Deriver) -> None:
    """PDO's and pg_connect's connection string: the role's timeouts again in `options`, for an
    app that connects as another role than the one the SQL sets them on."""
    db = d.loaded.site.database
    parts = [f"host={db.host}"]
    if db.port is not None:
        parts.append(f"port={db.port}")
    parts.append(f"dbname={db.name}")
    options = []
    for name in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"):
        value = d.value(f"postgres.{name}")
        if value is not None:
            options.append(f"-c {name}={value.nginx()}")
    if options:
        parts.append("options='" + " ".join(options) + "'")
    d.put("php.DATABASE_DSN", None, ("database",), lambda: "pgsql:" + ";".join(parts),
          "the database's DSN, the role's timeouts in its options: libpq applies them at connect",
          "postgres.statement_timeout")
