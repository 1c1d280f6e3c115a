"""The rules on what audit read: each app as a source the runner takes, from each location.

The same runner as `validate` (deploygen.rules.runner), on settings read from a server's files
rather than derived from a site file: a rule whose keys the files do not say is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from deploygen.audit.assemble import AuditedApp, as_setting, server_facts
from deploygen.audit.found import ReadSetting
from deploygen.audit.nginx_reader import ProxiedServer
from deploygen.derive.settings import Effective, Provenance, Setting
from deploygen.errors import Location


@dataclass(frozen=True)
class _Named:
    name: str


@dataclass(frozen=True)
class _Source:
    """What the runner and rules ask of a site's source beyond its settings, when there is no
    site file: where it was found, its kind and its name (`SiteContext.name`)."""

    file: str
    kind: str
    site: _Named
    layers: frozenset[str]  # whose files were read (SiteContext.has_read)


def _context(app: AuditedApp):
    """The app as rules see it; its name is a setting too (`deploygen.name`, DG901), named by its file."""
    from deploygen.rules.base import SiteContext

    file = app.file or app.name
    settings = {s.key: s for s in app.effective}
    settings["deploygen.name"] = Setting("deploygen.name", app.name,
                                         Provenance("written", "the unit's name", "", Location(file, 1, 1)))
    return SiteContext(_Source(file, app.kind, _Named(app.name), app.layers), Effective(settings))


def audit_rules(apps: list[AuditedApp]):
    """(findings, skipped) of every rule on the apps, as `validate` runs them on site files:
    a rule whose keys an app's files do not say is skipped for it, with the reason.

    An app reached from several locations is audited from each: the rules that read nginx
    run again with that location's settings (a `/api/` with its own proxy_read_timeout)."""
    from deploygen.rules import RULES
    from deploygen.rules.base import Rule
    from deploygen.rules.runner import run

    findings, skipped = run([_context(app) for app in apps])
    # Rules of one site (not those that compare sites, which override check_all) that read nginx.
    per_location = tuple(rule for rule in RULES if rule.check_all is Rule.check_all and any(
        k.startswith("nginx.") or k == "deploygen.tls" for k in (*rule.keys, *rule.optional)))
    views = [_context(replace(app, effective=_seen_from(app, server), nginx=server))
             for app in apps for server in app.locations]
    if views:
        more, _ = run(views, per_location)
        findings = sorted(set(findings) | set(more))
    return findings, skipped


def _seen_from(app: AuditedApp, server: ProxiedServer) -> Effective:
    """The app's settings with one other location's nginx settings in place of its first's."""
    # Who nginx's workers are is nginx.conf's and the server's accounts', the same from every location.
    settings = {s.key: s for s in app.effective if not s.key.startswith("nginx.") or s.key == "nginx.user.groups"}
    located = {**server.settings, **server_facts(server)}
    for key, read in located.items():
        if not read.unknown:
            settings[key] = as_setting(read)
    if "nginx.upstream.keepalive" not in located and "nginx.proxy_read_timeout" in server.settings:
        # A proxy_pass straight to an address keeps no idle connections; a fastcgi_pass location
        # has no proxy settings at all, and no such key.
        where = server.settings["nginx.proxy_read_timeout"].location
        settings["nginx.upstream.keepalive"] = as_setting(ReadSetting("nginx.upstream.keepalive", 0, where, default=True))
    return Effective(dict(sorted(settings.items())))


def check_audited(apps: list[AuditedApp]) -> list:
    """The findings of every rule on the apps (the rules skipped for lack of settings: `audit_rules`)."""
    return audit_rules(apps)[0]
