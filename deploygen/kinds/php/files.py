"""The files only a PHP site has: its FPM pool, php-fpm's drop-in, and where they go."""

from __future__ import annotations

from deploygen.render.layout import Target

# FPM's session files: `sess_` and the id (ext/session/mod_files.c).
SESSION_FILE = "sess_*"


def fpm_service(site) -> str:
    return f"php{site.app.php_version}-fpm.service"


def targets(site) -> list[Target]:
    version = site.app.php_version
    return [
        Target("php-fpm-pool", "php-fpm-pool", "php/pool.conf.j2", f"/etc/php/{version}/fpm/pool.d/{site.name}.conf"),
        # One drop-in per site: systemd merges them, and the collision rules keep their values one.
        Target("php-fpm-dropin", "systemd-dropin", "php/php-fpm-dropin.conf.j2",
               f"/etc/systemd/system/{fpm_service(site)}.d/deploygen-{site.name}.conf"),
    ]


def cleaner(site, gc_maxlifetime) -> str:
    """What the timer runs for the files handler: remove session files idle longer than the
    lifetime, by mtime, as PHP's own GC does (Debian's sessionclean never sees this folder).
    find's -mmin takes fractions: a lifetime under a minute stays exact."""
    seconds = gc_maxlifetime.seconds
    minutes = str(seconds // 60) if seconds % 60 == 0 else f"{seconds / 60:.4f}".rstrip("0")
    directory = site.session.directory or f"/var/lib/{site.name}/sessions"
    return (f"/usr/bin/find {directory} -mindepth 1 -maxdepth 1 -type f -name {SESSION_FILE} "
            f"-mmin +{minutes} -delete")
