"""A fleet's files: every site of every host, rendered with that host's facts."""

from __future__ import annotations

from dataclasses import dataclass

from deploygen.render.site import RenderedSite, render_site
from deploygen.rules.base import SiteContext


@dataclass(frozen=True)
class RenderedHost:
    """One host's sites, written as OUT/HOST/NAME/ (root/ and manifest.json per site)."""

    name: str
    sites: list[RenderedSite]

    @property
    def files(self) -> list:
        return [f for site in self.sites for f in site.files]

    def parts(self) -> list[tuple[str, RenderedSite]]:
        return [(f"{self.name}/{site.name}", site) for site in self.sites]


def render_context(context: SiteContext) -> RenderedSite:
    """One site as its host runs it (a plain call has no host: Debian's defaults)."""
    host, facts = context.host, context.postgres_facts
    return render_site(context.loaded, context.effective,
                       nginx_user=host.nginx_user if host is not None else "www-data",
                       postgres_version=facts.version if facts is not None else None)


def render_hosts(contexts: list[SiteContext]) -> list[RenderedHost]:
    """Each host's rendered sites, hosts in the order the fleet file names them."""
    hosts: dict[str, list[SiteContext]] = {}
    for context in contexts:
        hosts.setdefault(context.machine, []).append(context)
    return [RenderedHost(name, [render_context(c) for c in group]) for name, group in hosts.items()]
