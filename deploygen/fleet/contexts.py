"""A loaded fleet -> the contexts rules check: each site once per host that runs it."""

from __future__ import annotations

from deploygen.derive import derive
from deploygen.derive.settings import Effective
from deploygen.fleet.load import FleetHost, LoadedFleet
from deploygen.fleet.model import PostgresFacts
from deploygen.rules.base import SiteContext, is_local_postgres, server_name


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
            server, facts = postgres_server(fleet, host, effective)
            contexts.append(SiteContext(site, effective, host, facts, server))
    return contexts


def postgres_server(fleet: LoadedFleet, host: FleetHost, effective: Effective) -> tuple[str | None, PostgresFacts | None]:
    """The PostgreSQL server of a site on `host`, named as the fleet tells servers apart, and
    what the fleet says of it: a local one is the host's own, another host's address is that
    host's own, any other address a server the fleet may list in `postgres_servers`."""
    if "postgres.host" not in effective:
        return None, None
    address = effective.value("postgres.host")
    port = effective.value("postgres.port") if "postgres.port" in effective else 5432
    owner = host if is_local_postgres(address) else next((h for h in fleet.hosts if h.address == address), None)
    if owner is not None:
        return server_name("localhost", port, owner.name), owner.postgres
    return server_name(address, port, ""), fleet.postgres_servers.get(address)
