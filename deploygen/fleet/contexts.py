"""A loaded fleet -> the contexts rules check: each site once per host that runs it."""

from __future__ import annotations

from deploygen.derive import derive
from deploygen.derive.settings import Effective
from deploygen.fleet.load import FleetHost, LoadedFleet
from deploygen.fleet.model import PostgresFacts
from deploygen.rules.base import SiteContext, is_local_postgres


def fleet_contexts(fleet: LoadedFleet) -> list[SiteContext]:
    """Every (host, site) pair, host by host in the fleet file's order; a site is derived once
    for each user nginx runs as on its hosts (`nginx_user`)."""
    derived: dict[tuple[int, str], Effective] = {}
    contexts = []
    for host in fleet.hosts:
        for site in host.sites:
            effective = derived.get((id(site), host.nginx_user))
            if effective is None:
                effective = derived[(id(site), host.nginx_user)] = derive(site, host.nginx_user)
            contexts.append(SiteContext(site, effective, host, postgres_facts(fleet, host, effective)))
    return contexts


def postgres_facts(fleet: LoadedFleet, host: FleetHost, effective: Effective) -> PostgresFacts | None:
    """What the fleet says of the PostgreSQL server the site's database is on: the host's own
    for a local one, else the shared server the fleet lists under that address."""
    if "postgres.host" not in effective:
        return None
    address = effective.value("postgres.host")
    if is_local_postgres(address):
        return host.postgres
    return fleet.postgres_servers.get(address)
