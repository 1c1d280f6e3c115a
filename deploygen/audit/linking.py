"""Which nginx server block reaches an app: gunicorn's bind, every location's targets.

A unit's bind (its flags over its config, a relative socket made absolute, a socket unit's
ListenStream=s) is matched by address (deploygen.audit.endpoint) against each location of
every server block, through an index built once per audit: a server with 500 sites links 500
units without scanning 500 blocks each time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from deploygen.audit.endpoint import Endpoint, from_bind
from deploygen.audit.found import ReadSetting
from deploygen.audit.nginx_reader import ProxiedLocation, ProxiedServer
from deploygen.errors import shown


def bind_of(unit: dict[str, ReadSetting], gunicorn: dict[str, ReadSetting]) -> str:
    """gunicorn's bind: a flag on ExecStart beats the config file. A relative socket path is
    relative to where gunicorn runs: its `chdir`, else the unit's WorkingDirectory= (else /)."""
    value = (unit.get("gunicorn.bind") or gunicorn["gunicorn.bind"]).value
    if not isinstance(value, str):
        return ""
    if value.startswith("unix:") and not value.startswith("unix:/"):
        where = [r.value for r in (unit.get("gunicorn.chdir"), gunicorn.get("gunicorn.chdir"),
                                   unit.get("systemd.WorkingDirectory")) if r is not None and isinstance(r.value, str)]
        return "unix:" + os.path.normpath(os.path.join(where[0] if where else "/", value[len("unix:"):]))
    return value


@dataclass
class Link:
    """The server block that reaches an app, its locations that do, and how audit chose it."""

    server: ProxiedServer | None  # seen from the app's first location (`location /` when it is one)
    extra: list[ProxiedServer]  # each other location that reaches the app, seen from it
    note: str
    reaching: list[ProxiedLocation] = field(default_factory=list)  # the first server block's, to the app


class ServerIndex:
    """One nginx's server blocks, found by what their locations reach: a socket path, or a TCP
    port (whose hosts `Endpoint.reaches` then compares). Built once per audit, so that linking
    500 units to 500 server blocks looks each bind up instead of scanning every location."""

    def __init__(self, servers: list[ProxiedServer], via: str = "locations") -> None:
        # `via`: which locations reach an app, `locations` (proxy_pass, for gunicorn) or
        # `fastcgi` (fastcgi_pass, for PHP-FPM's pools).
        self.servers = servers
        self.via = via
        self.proxying = [s for s in servers if getattr(s, via)]
        # One entry per target, holding that target: an upstream of 10,000 servers is 10,000
        # entries, each compared once, never each against all of its location's targets.
        self._by: dict[tuple, list[tuple[int, int, ProxiedServer, ProxiedLocation, Endpoint]]] = {}
        for order, server in enumerate(servers):
            for place, location in enumerate(getattr(server, via)):
                for target in location.targets:
                    key = ("unix", target.path) if target.path else ("tcp", target.port)
                    self._by.setdefault(key, []).append((order, place, server, location, target))
        self._seen: list[str] | None = None

    def reaching(self, binds: list) -> list[tuple[ProxiedServer, list[ProxiedLocation]]]:
        """Each server block with a location that reaches one of `binds`, in file order."""
        found: dict[int, tuple[ProxiedServer, dict[int, ProxiedLocation]]] = {}
        for bind in binds:
            key = ("unix", bind.path) if bind.path else ("tcp", bind.port)
            for order, place, server, location, target in self._by.get(key, []):
                if target.reaches(bind):
                    found.setdefault(order, (server, {}))[1][place] = location
        return [(server, [locs[p] for p in sorted(locs)]) for _, (server, locs) in sorted(found.items())]

    def seen(self) -> list[str]:
        """Every address a location proxies to, for the note of an app no block reaches."""
        if self._seen is None:
            self._seen = sorted({str(t) for s in self.servers for loc in getattr(s, self.via) for t in loc.targets})
        return self._seen


def link(servers: list[ProxiedServer] | ServerIndex, bind: str, also: list[str] = (), what: str = "gunicorn's bind",
         verb: str = "proxy") -> Link:
    """The server block whose locations reach gunicorn's bind (by address: `localhost:8000` is
    `127.0.0.1:8000`, a bind on `0.0.0.0` takes both); a location that proxies elsewhere (a
    Node frontend on `/`) is never the app's. `location /` first when it is one of them."""
    index = servers if isinstance(servers, ServerIndex) else ServerIndex(servers)
    target = from_bind(bind) if bind else None
    if target is None:
        return Link(None, [], f"{what} {shown(bind)} is no address audit can match: nginx not linked")
    # gunicorn listens on every bind it is given (`-b` twice, a socket unit's ListenStream=s).
    targets = [target, *(t for t in map(from_bind, also) if t is not None and t != target)]
    matches = index.reaching(targets)
    if not matches:
        seen = index.seen()
        elsewhere = f" (they {verb} to {', '.join(seen[:5])}{' ...' if len(seen) > 5 else ''})" if seen else ""
        return Link(None, [], f"no server block reaches {target}{elsewhere}: its rules were skipped")
    notes = [f"{server.file}:{server.line} server block, "
             + ", ".join(f"location {loc.path} -> {loc.proxy_pass}" for loc in reaching) for server, reaching in matches]
    views = [server.to(loc) for server, reaching in matches for loc in reaching]
    return Link(views[0], views[1:], "; ".join(notes), matches[0][1])


def link_app(servers: list[ProxiedServer] | ServerIndex, unit: dict[str, ReadSetting],
          gunicorn: dict[str, ReadSetting]) -> Link:
    """The app's server block by gunicorn's bind; when no file gave the bind (nginx named
    alone), the one server block that proxies, said so."""
    servers = servers if isinstance(servers, ServerIndex) else ServerIndex(servers)
    bind = unit.get("gunicorn.bind") or gunicorn["gunicorn.bind"]
    proxying = servers.proxying
    every = unit.get("gunicorn.bind_all") or gunicorn.get("gunicorn.bind_all")
    linked = link(servers, bind_of(unit, gunicorn), every.value if every and isinstance(every.value, list) else [])
    # Only with no unit: a unit that names no bind runs gunicorn's default, which is known.
    if not unit and bind.default and len(proxying) == 1 and not linked.server:
        server = proxying[0]
        views = [server.to(loc) for loc in server.locations]
        return Link(views[0], views[1:], f"{server.file}:{server.line} server block (gunicorn's bind not read: "
                    "the one server block that proxies)", server.locations)
    return linked
