"""The PHP kind: PHP-FPM instead of gunicorn, nginx's FastCGI instead of its proxy.

The pool file replaces gunicorn's config and the site's unit: FPM's master is one
service for every pool of its version, so a site adds a drop-in to it and reloads it.
"""

from __future__ import annotations

from deploygen.kinds.base import Kind
from deploygen.kinds.php import files
from deploygen.kinds.php.derive import (
    derive_fastcgi,
    derive_fpm,
    derive_php,
    derive_stop,
    gc_maxlifetime,
    session_handler,
)
from deploygen.kinds.php.model import PhpSite


class PhpKind(Kind):
    name = "php"
    site_model = PhpSite
    worker_timeout = "php-fpm.request_terminate_timeout"
    upstream_read_timeout = "nginx.fastcgi_read_timeout"
    process_count = "php-fpm.pm.max_children"
    nginx_joins_group = False
    secrets_format = "fpm"
    concepts = {
        "session.store": "php.session.save_handler",
        "session.lifetime": "php.session.gc_maxlifetime",
        "session.idle_timeout": "php.session.gc_maxlifetime",
        "session.directory": "php.session.save_path",
        "session.cookie.name": "php.session.name",
        "session.cookie.domain": "php.session.cookie_domain",
        "session.cookie.secure": "php.session.cookie_secure",
        "session.cookie.httponly": "php.session.cookie_httponly",
        "session.cookie.samesite": "php.session.cookie_samesite",
    }

    def derive_server(self, d):
        derive_fpm(d)

    def derive_upstream(self, d):
        derive_fastcgi(d)

    def derive_stop(self, d):
        derive_stop(d)

    def derive_app(self, d, tls):
        derive_php(d, tls)

    def server_targets(self, site):
        return files.targets(site)

    def services(self, site):
        return ()

    def reloads(self, site):
        version = site.app.php_version
        return ((f"php-fpm{version} -t", files.fpm_service(site)),)

    def directories(self, site):
        found = []
        socket_dir = site.server.bind.runtime_directory
        if socket_dir is not None:
            # A reload binds the new pool's socket before a restart would create the folder.
            found.append((f"/run/{socket_dir}", "0755", "root", "root"))
        if session_handler(site) == "files":
            found.append((site.session.directory or f"/var/lib/{site.name}/sessions", "0700",
                          site.app.user, site.app.group))
        return tuple(found)

    def context(self, loaded, eff, paths, values, notes):
        site = loaded.site
        return {"fastcgi": True, "upstream": f"{site.name}_fpm", "fpm_service": files.fpm_service(site)}

    def cleaner(self, site):
        # phpredis's keys expire in Redis; PHP's own GC (gc_probability > 0) needs no timer.
        if session_handler(site) != "files" or (site.php.session_gc_probability or 0) > 0:
            return None
        return files.cleaner(site, gc_maxlifetime(site))

    def secret_keys(self, site):
        # The pool includes the file: its env[] lines reach only this pool's children, never
        # php-fpm's master environment, which every pool of the version shares.
        if site.database is not None and not site.database.host.startswith("/"):
            return ["DATABASE_PASSWORD"]
        return []

    def explain_neighbours(self, site):
        has_db = "postgres.statement_timeout" in site.effective
        return {
            "nginx.fastcgi_read_timeout": "php-fpm.request_terminate_timeout",
            "php-fpm.request_terminate_timeout": "postgres.statement_timeout" if has_db else None,
            "php-fpm.process_control_timeout": "php-fpm.request_terminate_timeout",
            "postgres.statement_timeout": "postgres.lock_timeout",
            "systemd.TimeoutStopSec": "php-fpm.process_control_timeout",
        }

    def explain_session(self, site):
        from deploygen.kinds.php.explain import explain_session

        return explain_session(site)

    def connections_per_process(self, site):
        # A child holds one connection during a request (PDO closes it at the end, a persistent
        # one stays open between requests): one per child either way.
        return 1, []


PHP = PhpKind()
