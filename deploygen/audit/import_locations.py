"""`import`: every location of the app's server block, modelled or carried.

Locations that reach the app by a plain prefix become `nginx.app_paths` (a websocket one,
`nginx.websockets` with its read timeout); folders served by a plain prefix, `app.static` and
`nginx.aliases`. Everything else (regex and exact locations, other upstreams, `return`s, a
frontend on `/`) is carried as it is, includes expanded, in the site's nginx snippet
(sitefile.snippet), so rendering an import serves what the server serves today. A location of
the snippet that reached the app is pointed at the rendered upstream; one that reached another
upstream block is pointed at that block's first server, since a snippet sits inside `server {}`
where no upstream block can.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from deploygen.audit.nginx_reader import ProxiedLocation, ProxiedServer
from deploygen.sitefile.acme import ACME_CHALLENGE, ACME_WEBROOT
from deploygen.sitefile.fields import servable_folder
from deploygen.sitefile.snippet import ALLOWED, REFUSED_CHARS

_PREFIX = re.compile(r"/[A-Za-z0-9._~@+%/-]*")


@dataclass
class Locations:
    """What the site file says of the server block's locations, and the snippet's."""

    app_paths: list[str] = field(default_factory=list)
    static: str | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    websockets: dict[str, dict] = field(default_factory=dict)
    snippet: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _plain(location: ProxiedLocation) -> str | None:
    """The location's path when it is a plain prefix (`location /media/`), else None."""
    args = location.directive.get("args", [])
    return args[0] if len(args) == 1 and _PREFIX.fullmatch(args[0]) else None


def _acme_challenge(location: ProxiedLocation) -> bool:
    """Whether the location is the prefix certbot's HTTP-01 challenge asks for (nginx reads
    `^~ /x` and `/x` as one prefix)."""
    return location.directive.get("args", []) in ([ACME_CHALLENGE], ["^~", ACME_CHALLENGE])


# The ACME location as templates/nginx/_acme.j2 renders it: deploygen's own, never carried.
_ACME_BLOCK = [("root", [ACME_WEBROOT]), ("default_type", ["text/plain"])]


def _deploygens_acme(location: ProxiedLocation) -> bool:
    return [(d["directive"], d["args"]) for d in location.directive.get("block", [])] == _ACME_BLOCK


def _servable_folder(folder: str) -> bool:
    try:
        servable_folder(folder)
    except ValueError:
        return False
    return True


def _named_target(location: ProxiedLocation) -> str | None:
    """`@name` when the location hands requests to a named location (`try_files $uri @name`)."""
    for d in location.directive.get("block", []):
        if d["directive"] == "try_files" and d["args"] and d["args"][-1].startswith("@"):
            return d["args"][-1]
    return None


# The server block's own directives a site file says in its own way: its names, listeners and
# certificates, the timeouts and sizes audit reads, the proxy headers deploygen renders, logs.
_SERVER_CARRIED = {"listen", "server_name", "ssl_certificate", "ssl_certificate_key", "client_max_body_size",
                   "client_header_timeout", "client_body_timeout", "keepalive_timeout", "send_timeout",
                   "proxy_connect_timeout", "proxy_read_timeout", "proxy_send_timeout", "proxy_buffering",
                   "proxy_http_version", "proxy_set_header", "proxy_redirect", "access_log", "error_log"}


def server_notes(server: ProxiedServer) -> list[str]:
    """One note per directive of the server block itself that the imported site does not carry
    (a server-wide `add_header`, `root`, `error_page`, `ssl_protocols`, ...)."""
    return [f"nginx: `{name} {' '.join(args)}` ({file}:{line}) is the server block's own: not carried (put it "
            "in the locations of the snippet that need it)"
            for name, args, file, line in server.directives if name not in _SERVER_CARRIED]


def locations(server: ProxiedServer, reaching: list[ProxiedLocation], upstream: str) -> Locations:
    """The server block's locations sorted into the site file's keys and the snippet. A location
    becomes a key only when the key says all it does (a proxy with no access rule, no URI part,
    no rewrite; a folder with the slashes nginx pairs); any other is carried whole."""
    out = Locations(notes=server_notes(server))
    to_app = {id(loc) for loc in reaching}
    named_to_app = {loc.path for loc in reaching if loc.path.startswith("@")}
    # Without tls the imported site's app server is its port-80 one, where deploygen renders the
    # ACME challenge's location itself (the importer keeps tls only with both of its files).
    port_80 = not (server.tls.get("certificate") and server.tls.get("certificate_key"))
    for location in sorted((*server.locations, *server.files, *server.others), key=lambda x: (x.file, x.line)):
        if port_80 and _acme_challenge(location):
            if not _deploygens_acme(location):
                out.notes.append(f"nginx: location {' '.join(location.directive.get('args', []))} left out: "
                                 f"deploygen's port-80 server answers the ACME challenge from {ACME_WEBROOT} "
                                 f"(certbot certonly --webroot -w {ACME_WEBROOT})")
            continue
        path = _plain(location)
        if id(location) in to_app:
            if location.path.startswith("@"):
                continue  # reached through `try_files` of a location that becomes the app's
            if path and _only_proxy(location) and location.websocket:
                read = location.settings.get("nginx.proxy_read_timeout")
                out.websockets[path] = {"proxy_read_timeout": str(read.value) if read and read.value else "60s"}
            elif path and _only_proxy(location):
                out.app_paths.append(path)
            else:
                _carry(out, _pointed(location, upstream, to_app=True), upstream)
        elif path and path.endswith("/") and location.folder and not location.proxy_pass \
                and _servable_folder(location.folder) and _only_files(location):
            folder = os.path.normpath(location.folder)
            if path == "/static/" and out.static is None:
                out.static = folder
            else:
                out.aliases[path] = folder
        elif path and _named_target(location) in named_to_app and _only_try_files(location):
            out.app_paths.append(path)
            out.notes.append(f"nginx: location {path} tried files first (try_files); deploygen's proxies to the app")
        else:
            _carry(out, _pointed(location, upstream, to_app=False) if location.proxy_pass else location.directive,
                   upstream)
    return out


# What a location that becomes `app_paths` may hold: the proxy deploygen renders says all of it.
_PROXY_ONLY = {"proxy_pass", "proxy_set_header", "proxy_http_version", "proxy_read_timeout", "proxy_send_timeout",
               "proxy_connect_timeout", "proxy_redirect", "proxy_buffering", "proxy_request_buffering"}


def _only_proxy(location: ProxiedLocation) -> bool:
    block = location.directive.get("block", [])
    uri = location.proxy_pass.partition("://")[2]
    # `http://app/v2/` replaces the location's prefix: deploygen's proxy_pass has no URI part.
    if uri.startswith("unix:"):
        # `unix:/x.sock` or `unix:/x.sock:/uri`: the URI part follows the colon after the path.
        no_uri = not uri[len("unix:"):].partition(":")[2]
    else:
        no_uri = "/" not in uri
    return no_uri and all(d["directive"] in _PROXY_ONLY for d in block)


def _only_try_files(location: ProxiedLocation) -> bool:
    return all(d["directive"] == "try_files" for d in location.directive.get("block", []))


def _only_files(location: ProxiedLocation) -> bool:
    """Whether the location only serves files, with the slashes an alias pairs (`/x/` with `/srv/x/`):
    `aliases` renders `alias FOLDER/;` and nothing else."""
    block = location.directive.get("block", [])
    if not all(d["directive"] in ("alias", "root") for d in block):
        return False
    alias = [d["args"][0] for d in block if d["directive"] == "alias" and d["args"]]
    return not alias or alias[-1].endswith("/")


def _carry(out: Locations, location: dict, upstream: str = "") -> None:
    """The location into the snippet, less what a snippet may not hold (sitefile.snippet), said."""
    kept, dropped = _allowed(location, _own_pool(upstream))
    if kept is None:
        out.notes.append(f"nginx: location {' '.join(location['args'])} left out: {dropped[0]}")
        return
    out.notes += [f"nginx: location {' '.join(location['args'])}: {why}" for why in dropped]
    out.snippet.append(kept)


def _own_pool(upstream: str) -> str:
    """The one FastCGI upstream a site's snippet may pass to: its own pool's (sitefile.snippet)."""
    return upstream.rsplit("_", 1)[0] + "_fpm" if upstream else ""


# FastCGI parameters that set PHP's ini for one request, over the pool's php_admin_value.
_INI_PARAMS = ("PHP_VALUE", "PHP_ADMIN_VALUE")


def _allowed(d: dict, own_pool: str = "") -> tuple[dict | None, list[str]]:
    """`d` without the directives a snippet refuses (and why each went), or None when `d` itself
    cannot be carried (a folder nginx may not serve, a location without a path, a pass to
    FastCGI that is not the site's own pool)."""
    name = d["directive"]
    if name not in ALLOWED:
        return None, [f"`{name}` is no directive a snippet holds: left out"]
    if name in ("fastcgi_pass", "uwsgi_pass") and d["args"] and d["args"][0] != own_pool:
        # Without its pass the location would serve the scripts' source: the whole of it goes.
        return None, [(f"`{name} {d['args'][0]}` passes to another pool than the site's own (a snippet passes "
                       "FastCGI only to it)")]
    if name in ("fastcgi_param", "uwsgi_param") and d["args"] and d["args"][0].upper() in _INI_PARAMS:
        return None, [f"`{name} {d['args'][0]}` sets PHP's ini over the pool's php_admin_value: left out"]
    if name == "access_log" and d["args"] != ["off"]:
        return None, ["`access_log` to a file: left out (the server's log, not the site's)"]
    if any(REFUSED_CHARS.search(word) for word in d["args"]):
        return None, [f"`{name}` has a quote or an escaping backslash in an argument: left out"]
    if name in ("alias", "root") and d["args"] and not _servable_folder(d["args"][0].rstrip("/") or "/"):
        why = "a system folder, a hidden one, or not an absolute path"
        return None, [f"`{name} {d['args'][0]}` is no folder a site may serve ({why})"]
    if name == "location" and not d["args"]:
        return None, ["a location without a path"]
    if "block" not in d:
        return d, []
    block, dropped = [], []
    for inner in d["block"]:
        kept, why = _allowed(inner, own_pool)
        dropped += why
        if kept is None and inner["directive"] in ("alias", "root", "location", "fastcgi_pass", "uwsgi_pass"):
            return None, why
        if kept is not None:
            block.append(kept)
    return {**d, "block": block}, dropped


def _pointed(location: ProxiedLocation, upstream: str, to_app: bool) -> dict:
    """The location with its proxy_pass pointed at what the snippet can name: the rendered
    upstream for the app, the first server of another upstream block, else as written."""
    servers = location.settings.get("nginx.upstream.server")
    block = []
    for d in location.directive.get("block", []):
        if d["directive"] == "proxy_pass" and d["args"]:
            scheme, _, rest = d["args"][0].partition("://")
            if rest.startswith("unix:"):
                # `unix:/x.sock` or `unix:/x.sock:/uri`: the socket path ends at the next colon.
                end = rest.find(":", len("unix:"))
                host, slash, uri = (rest, "", "") if end < 0 else (rest[:end], "/", rest[end + 1:].lstrip("/"))
            else:
                host, slash, uri = rest.partition("/")
            if to_app:
                host = upstream
            elif servers and servers.value:
                first = servers.value[0]
                # nginx ends a socket path with `:` only before a URI (`http://unix:/x.sock:/api/`).
                host = f"{first}:" if first.startswith("unix:") and slash else first
            d = {**d, "args": [f"{scheme}://{host}{slash}{uri}"]}
        block.append(d)
    return {**location.directive, "block": block}
