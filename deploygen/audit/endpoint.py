"""Where a connection goes: gunicorn's bind, nginx's proxy_pass and upstream servers, a
socket unit's ListenStream=, each reduced to one form so that audit can tell whether nginx
reaches the app.

`localhost:8000`, `127.0.0.1:8000` and `[::1]:8000` are one loopback endpoint; a bind on
`0.0.0.0:8000` (or `[::]:8000`, or a bare port) accepts them all; `http://unix:/run/x.sock:/api/`
is the socket `/run/x.sock`.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

LOOPBACK = "loopback"
ANY = "*"
_LOOPBACK = {"localhost", "127.0.0.1", "::1", "ip6-localhost", "localhost.localdomain"}
_ANY = {"", "0.0.0.0", "::", "*"}
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, order=True)
class Endpoint:
    """A unix socket (`path`) or a TCP host and port (host `loopback`, `*` or as written)."""

    path: str = ""
    host: str = ""
    port: int = 0

    def reaches(self, bind: Endpoint) -> bool:
        """Whether a client connecting here reaches a server bound at `bind`."""
        if self.path or bind.path:
            return self.path == bind.path
        if self.port != bind.port:
            return False
        return bind.host == ANY or self.host == bind.host

    def __str__(self) -> str:
        if self.path:
            return f"unix:{self.path}"
        host = {LOOPBACK: "127.0.0.1", ANY: "0.0.0.0"}.get(self.host, self.host)
        return f"{host}:{self.port}"


def _host(text: str) -> str:
    host = text.strip("[]").lower()
    if host in _LOOPBACK or re.fullmatch(r"127(\.[0-9]{1,3}){3}", host):
        return LOOPBACK
    return ANY if host in _ANY else host


def _socket(path: str) -> Endpoint | None:
    return Endpoint(path=posixpath.normpath(path)) if path.startswith("/") else None


def _host_port(text: str, default_port: int | None) -> Endpoint | None:
    """`host:port`, `[v6]:port`, `host` (default port), `port`; None when it is none of these."""
    match = re.fullmatch(r"(\[[0-9a-fA-F:.]*\]|[A-Za-z0-9._-]*|\$[A-Za-z0-9_{}]+)(?::([0-9]{1,5}))?", text)
    if not match:
        return None
    host, port = match.group(1), match.group(2)
    if port is None:
        if host.isdigit():
            return Endpoint(host=ANY, port=int(host))
        if default_port is None:
            return None
        port = str(default_port)
    if "$" in host:
        return None  # a variable: resolved per request, not knowable from the file
    return Endpoint(host=_host(host), port=int(port))


def from_bind(bind: str) -> Endpoint | None:
    """gunicorn's `bind`: `unix:/run/x.sock`, `127.0.0.1:8000`, `:8000`, `[::]:8000`, `fd://3` (None)."""
    bind = bind.strip()
    if bind.startswith("unix:"):
        return _socket(bind[len("unix:"):])
    if bind.startswith("fd://"):
        return None
    # gunicorn's own default port when only a host is given.
    return _host_port(bind, 8000)


def from_listen_stream(value: str) -> Endpoint | None:
    """A socket unit's `ListenStream=`: a path, a port, or an address with a port."""
    value = value.strip()
    if value.startswith("/"):
        return _socket(value)
    return _host_port(value, None)


def from_proxy_pass(url: str) -> Endpoint | None:
    """nginx's `proxy_pass` target without an upstream name: `http://unix:/x.sock:/uri`, `http://h:p/uri`."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    if rest.startswith("unix:"):
        return _socket(rest[len("unix:"):].split(":", 1)[0])
    return _host_port(re.split(r"[/?]", rest, maxsplit=1)[0], _DEFAULT_PORTS.get(scheme.lower(), 80))


def from_upstream_server(address: str) -> Endpoint | None:
    """An `upstream {}` block's `server` address: `unix:/x.sock`, `h:p`, `h` (port 80)."""
    if address.startswith("unix:"):
        return _socket(address[len("unix:"):])
    return _host_port(address, 80)


def upstream_name(url: str) -> str:
    """The host part of a proxy_pass URL, which names an upstream block when one has that name."""
    rest = url.partition("://")[2]
    return re.split(r"[/?]", rest, maxsplit=1)[0]
