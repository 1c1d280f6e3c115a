"""`import`: a server's names and addresses as a site file can hold them, and why they changed.

A server runs values a site file refuses, for reasons that are the server's problems, not the
import's: a unit named `gunicorn` (a name Debian's own package takes), a socket in /run itself
(only root can create it there), `localhost:8000` (nginx resolves it to two peers), `User=root`.
Each becomes the nearest value the site file holds, and a note says what and why, so that the
imported site validates and renders, and the reader sees what rendering it will change.
"""

from __future__ import annotations

import os
import re

from deploygen.audit.endpoint import LOOPBACK, from_bind
from deploygen.errors import shown
from deploygen.sitefile.reserved_names import why_reserved

# Unit names that say how the app runs, not which app it is.
_GENERIC = {"gunicorn", "app", "web", "webapp", "api", "server", "wsgi", "asgi", "django", "flask", "uvicorn",
            "application", "site", "backend", "service"}
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_HOST = re.compile(r"(\*\.)?(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*")


def _as_name(text: str) -> str:
    """`text` folded to the site name's alphabet: lower case, other characters as `-`."""
    name = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")
    name = re.sub(r"^[^a-z]+", "", name)[:32].rstrip("-_")
    return name


def site_name(unit: str, server_names: list[str], workdir: str | None) -> tuple[str, str | None]:
    """The site's name and, when it is not the unit's, where it came from."""
    candidates = [(unit, None)]
    candidates += [(name.split(".")[0] if not name.startswith("www.") else name.split(".")[1],
                    f"nginx's server_name {shown(name)}") for name in server_names if _HOST.fullmatch(name)]
    if workdir:
        candidates.append((os.path.basename(workdir.rstrip("/")), f"the unit's WorkingDirectory {shown(workdir)}"))
    for raw, source in candidates:
        name = _as_name(raw)
        if _NAME.fullmatch(name) and name not in _GENERIC and not why_reserved(name):
            if source is None and name == raw:
                return name, None
            return name, f"name: {name}, from {source or f'the unit {shown(raw)}'}" + (
                f" (the unit {shown(unit)} is {'generic' if _as_name(unit) in _GENERIC else 'not a site name'})"
                if source else "")
    return "app", "name: app (no unit, server_name or folder gave a site name: rename it)"


def site_bind(bind: str, name: str) -> tuple[str, str | None]:
    """The bind the site file holds: the server's when it can, else the nearest, and why."""
    target = from_bind(bind) if bind else None
    socket = f"unix:/run/{name}/gunicorn.sock"
    if target is None:
        return socket, f"server.bind: the server's {shown(bind or 'none')} is no address deploygen renders: {socket}"
    if target.path:
        if re.fullmatch(r"/run/[^/]+(/[^/]+)*/[^/]+", target.path) and len(target.path.encode()) <= 107:
            return f"unix:{target.path}", None
        where = ("directly in /run, which only root may create (gunicorn runs as the app's user)"
                 if target.path.startswith("/run/") else
                 "in /tmp, which systemd's PrivateTmp= hides from nginx" if target.path.startswith(("/tmp/", "/var/tmp/"))
                 else "outside /run, where no RuntimeDirectory= creates and cleans it")
        return socket, (f"server.bind: the server binds {shown(bind)}, {where}: imported as {socket} "
                        "(the rendered nginx follows it)")
    host = {LOOPBACK: "127.0.0.1", "*": "0.0.0.0"}.get(target.host, target.host)
    if not re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]+", host):
        return f"127.0.0.1:{target.port}", (f"server.bind: the server binds {shown(bind)}, a host name: imported as "
                                            f"127.0.0.1:{target.port}")
    written = f"[{host}]:{target.port}" if ":" in host else f"{host}:{target.port}"
    if written != bind:
        return written, f"server.bind: {shown(bind)} written as {written}"
    return written, None


def domains(server_names: list[str]) -> tuple[list[str], list[str]]:
    """The server block's names a site file holds (`.x` as `*.x`), and a note per one left out."""
    kept, notes = [], []
    for raw in server_names:
        name = raw.lower()
        if name.startswith(".") and _HOST.fullmatch(name[1:]):
            name = "*" + name
        if raw in ("_", "") or raw.startswith("~") or not _HOST.fullmatch(name) or re.fullmatch(r"[0-9.]+", name):
            notes.append(f"domains: nginx's server_name {shown(raw)} left out (no host name a site file holds)")
        elif name not in kept:
            kept.append(name)
    return kept, notes


def wsgi_target(entry: str | None, kind: str) -> str:
    """gunicorn's positional app as `module:callable`: a module alone means gunicorn's default
    callable, `application`."""
    if not entry:
        return "app:app" if kind != "django" else "project.wsgi:application"
    return entry if ":" in entry else f"{entry}:application"
