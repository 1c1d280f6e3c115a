"""What a kind of app is: its site model, what it derives, the files it owns.

The core (derive, render, rules, explain) asks the site's kind; it never
branches on the kind's name. A kind that adds nothing to a hook inherits the
empty default here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from deploygen.derive.deriver import Deriver
    from deploygen.derive.settings import Effective, Setting
    from deploygen.render.layout import Target
    from deploygen.rules.base import SiteContext
    from deploygen.sitefile.load import LoadedSite
    from deploygen.sitefile.model import SiteBase


class Kind:
    """One `app.framework`. Subclasses set the class attributes and override the hooks they need."""

    name: ClassVar[str]
    site_model: ClassVar[type[SiteBase]]
    # gunicorn's worker class when the site file names none.
    worker_class: ClassVar[str] = "sync"
    # The site file's short names of worker classes, as gunicorn's `worker_class` spells them.
    worker_classes: ClassVar[dict[str, str]] = {}
    # The shared concepts of the site file (`session.cookie.secure`) -> this kind's own key.
    concepts: ClassVar[dict[str, str]] = {}
    # The line the app's own code adds, shown by README and `explain` (empty: nothing to add).
    app_snippet: ClassVar[str] = ""
    # The app server's limit on one request (what PostgreSQL's statement_timeout stays under),
    # and nginx's wait for the app's reply (which stays above it).
    worker_timeout: ClassVar[str] = "gunicorn.timeout"
    # How many processes serve requests, each holding its connections (DG402's count).
    process_count: ClassVar[str] = "gunicorn.workers"
    upstream_read_timeout: ClassVar[str] = "nginx.proxy_read_timeout"
    # The first install adds nginx's user to the app's group, for a socket only that group may
    # reach (gunicorn's, in the unit's RuntimeDirectory=0750); False where the socket is
    # nginx's user's already (php-fpm's listen.owner).
    nginx_joins_group: ClassVar[bool] = True
    # How the secrets file is written and read: systemd's EnvironmentFile= (`env`), which the
    # app's units load, or php-fpm's `env[NAME] = "..."` (`fpm`), which its pool includes.
    secrets_format: ClassVar[str] = "env"

    def derive_server(self, d: Deriver) -> None:
        """The process that runs requests: gunicorn unless the kind has its own."""
        from deploygen.derive.gunicorn import derive_gunicorn

        derive_gunicorn(d, self)

    def derive_upstream(self, d: Deriver) -> None:
        """What nginx speaks to the app: proxy_* to gunicorn unless the kind has its own."""
        from deploygen.derive.nginx import derive_nginx_proxy

        derive_nginx_proxy(d)

    def derive_stop(self, d: Deriver) -> None:
        """How systemd stops and restarts the app's service."""
        from deploygen.derive.systemd import derive_systemd

        derive_systemd(d)

    def server_targets(self, site: SiteBase) -> list[Target]:
        """The app server's files: gunicorn's config and the site's own unit."""
        from deploygen.render.layout import Target

        name = site.name
        return [Target("gunicorn-config", "gunicorn-config", "gunicorn/gunicorn.conf.py.j2",
                       f"/etc/deploygen/{name}/gunicorn.conf.py"),
                Target("app-service", "systemd-service", "systemd/site.service.j2",
                       f"/etc/systemd/system/{name}.service")]

    def services(self, site: SiteBase) -> tuple[str, ...]:
        """The units the first install enables and restarts: the site's own."""
        return (f"{site.name}.service",)

    def directories(self, site: SiteBase) -> tuple[tuple[str, str, str, str], ...]:
        """(path, mode, owner, group) of folders the first install creates, no unit doing it in time."""
        return ()

    def reloads(self, site: SiteBase) -> tuple[tuple[str, str], ...]:
        """(check command, unit) pairs: a service the site shares with others, reloaded (never
        restarted) after its whole configuration passed the check."""
        return ()

    def derive_pool(self, d: Deriver) -> None:
        """The app's connections to PostgreSQL (called only for a site with a database)."""

    def derive_app(self, d: Deriver, tls: bool) -> None:
        """The framework's own settings: sessions, cookies, hosts."""

    def targets(self, site: SiteBase) -> list[Target]:
        """The files only this kind renders (the common ones are render.layout's)."""
        return []

    def context(self, loaded: LoadedSite, eff: Effective, paths: dict[str, str],
                values: dict[str, dict], notes: dict[str, dict[str, str]]) -> dict:
        """What this kind's templates need beyond the common context (`values` and `notes`: every
        layer's values and provenance notes, as the common context has them)."""
        return {}

    def environment(self, site: SiteBase, eff: Effective) -> list[tuple[str, str]]:
        """`Environment=` pairs of the app's unit (and of its cleanup job)."""
        return []

    def environment_files(self, site: SiteBase, paths: dict[str, str]) -> list[str]:
        """Rendered `EnvironmentFile=`s of the app's unit, before the secrets file."""
        return []

    def secret_keys(self, site: SiteBase) -> list[str]:
        """The keys the app reads from its secrets file (`app.secrets_file`): the first install
        checks that each is there, by name, never by value."""
        return []

    def cleaner(self, site: SiteBase) -> str | None:
        """The command that removes this kind's expired sessions, or None when its store needs none
        (render.layout.cleanup_command puts the site's own command and `enabled` first)."""
        return None

    def connections_per_process(self, site: SiteContext) -> tuple[int, list[Setting]] | None:
        """How many PostgreSQL connections one gunicorn worker may hold, and the settings that say so.

        Without a pool deploygen knows of, a worker holds at least one per thread: a lower
        bound, so the budget rule fires only when even that cannot fit."""
        threads = site.effective["gunicorn.threads"]
        return threads.value, [threads]

    def explain_neighbours(self, site: SiteContext) -> dict[str, str | None] | None:
        """For `explain`'s margins: each setting -> the one it must outlast; None: gunicorn's chain."""
        return None

    def explain_session(self, site: SiteContext) -> tuple[dict | None, list[str]]:
        """The session part of `explain`: its JSON object and its lines of text."""
        return None, []
