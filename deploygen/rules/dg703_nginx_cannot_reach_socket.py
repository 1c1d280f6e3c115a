from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, replace

from deploygen.derive.settings import Effective
from deploygen.errors import printable
from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext

# Folders every Debian and RHEL system has, that anyone may enter: 0755 (/tmp and /var/tmp 1777).
_OPEN_FOLDERS = frozenset({"/run", "/var", "/tmp", "/var/tmp", "/var/lib", "/var/www", "/usr", "/usr/local", "/opt",
                           "/srv", "/home"})
# What connect() needs: search (x) on every folder on the path, write (w) on the socket itself.
_SEARCH, _WRITE = 0o1, 0o2
# How long a name read from a server may be in a message.
_NAME_LIMIT = 64
# A POSIX user or group name as useradd and groupadd make them and systemd's strict check takes
# them (a letter or _, then letters, digits, _, - or ., at most 32): the accounts the rule
# reads go into the commands it suggests, and a server's file may hold anything.
_ACCOUNT = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
# The accounts the rule reads, each with the setting it comes from.
_ACCOUNT_KEYS = ("nginx.user", "systemd.User", "systemd.Group", "systemd.SocketUser", "systemd.SocketGroup")


@dataclass(frozen=True)
class _Gate:
    """One thing on the way to the socket: a folder or the socket itself, its mode and owners."""

    what: str  # `/run/shop`, `the socket`
    mode: int
    owner: str
    group: str
    key: str  # the setting its mode comes from (`systemd.RuntimeDirectoryMode`, `gunicorn.umask`)
    group_key: str  # the setting its group comes from (`systemd.Group`, `systemd.SocketGroup`)
    need: int


class NginxCannotReachSocket(Rule):
    """nginx's workers may not connect to gunicorn's unix socket: every request is a 502.

    ## What it checks
    When gunicorn binds a unix socket, nginx's workers (nginx.conf's `user`:
    `nginx.user`, with the groups they run with, `nginx.user.groups`: the
    directive's group and every `/etc/group` line naming the user) may enter
    every folder on the socket's path and write to the socket. The socket's
    folder is what the unit's `RuntimeDirectory=` creates (owned by `User=` and
    `Group=`, mode `RuntimeDirectoryMode=`, 0755 unless set); the socket is
    gunicorn's (mode 0777 less gunicorn's own `umask`, 0 unless set: gunicorn
    sets it around bind(), so the unit's `UMask=` does not reach the socket),
    or, with a socket unit, systemd's (`SocketUser=`, `SocketGroup=`,
    `SocketMode=`; the folders above it `DirectoryMode=`). Found by `audit
    --root`, which reads the server's `/etc/group` (and `/etc/passwd`, for a
    unit without `Group=`). A site file fires it only when its group is one
    the first install does not let nginx into: deploygen adds nginx's user
    to a group it creates for the app, never to root's or www-data's.

    ## Why it is bad
    connect() on a unix socket needs search permission on each folder of its
    path and write permission on the socket. A folder of mode 0750 owned by
    `shop:shop` lets in `shop` and the members of group `shop` only: nginx's
    workers, running as `www-data`, get EACCES and answer every request with
    502, logging "connect() to unix:/run/shop/gunicorn.sock failed (13:
    Permission denied) while connecting to upstream". Nothing fails until the
    first visitor: gunicorn starts, `nginx -t` passes, the unit is green.

    ## Example
    ```ini
    # /etc/systemd/system/shop.service (nginx.conf: user www-data;)
    User=shop
    Group=shop
    RuntimeDirectory=shop
    RuntimeDirectoryMode=0750
    ExecStart=/srv/shop/venv/bin/gunicorn --bind unix:/run/shop/gunicorn.sock app:app
    ```
    with `/etc/group` saying `shop:x:999:` (www-data is not in it).

    ## Fix
    Put nginx's user in the app's group, `usermod -aG shop www-data`, then
    `systemctl reload nginx`: nginx's master starts new workers on a reload,
    and each calls initgroups() as it starts (ngx_worker_process_init), so they
    run with the new group; the old ones finish their requests and exit.
    Keep the folder closed to everyone else: opening it (0755, and a socket
    mode others may write) lets any local user talk to the app.
    """

    code = "DG703"
    name = "nginx-cannot-reach-socket"
    severity = "error"
    summary = "nginx's workers may not enter the unix socket's folder or write to the socket (every request a 502)"
    keys = ("gunicorn.bind",)
    # What the rule reads depends on the bind: nothing more for a TCP bind; for a unix socket what
    # `needs` asks for (the runner skips a source without it, and says which).
    optional = ("nginx.user", "nginx.user.groups", "systemd.User", "systemd.Group", "systemd.RuntimeDirectory",
                "systemd.RuntimeDirectoryMode", "gunicorn.umask", "systemd.SocketUser", "systemd.SocketGroup",
                "systemd.SocketMode", "systemd.DirectoryMode")

    @classmethod
    def needs(cls, site: SiteContext) -> str | None:
        reason = super().needs(site)
        if reason is not None:
            return reason
        path = _socket_path(site.effective)
        if path is None:
            return None  # a TCP or abstract socket: no file to permit
        missing = [k for k in ("nginx.user", "nginx.user.groups", "systemd.User", "systemd.Group")
                   if k not in site.effective]
        if missing:
            named = [f"{k} ({_FROM[k]})" for k in missing]
            return f"needs {', '.join(named)}, which {site.name} does not have"
        for key in ("systemd.User", "systemd.Group"):
            if str(site.effective.value(key)).isdigit():
                return f"{key} is a number ({site.effective.value(key)}): audit compares accounts by name"
        for key in _ACCOUNT_KEYS:
            value = site.effective.value(key) if key in site.effective else None
            if value is not None and not _ACCOUNT.fullmatch(str(value)):
                return (f"{key}={_name(value)} is no POSIX user or group name (useradd and systemd's strict check "
                        "refuse it): audit suggests no command with it")
        gates = _gates(site.effective, path)
        return gates if isinstance(gates, str) else None

    def check(self, site: SiteContext) -> Iterator[Finding]:
        eff = site.effective
        path = _socket_path(eff)
        if path is None:
            return
        gates = _gates(eff, path)
        if isinstance(gates, str):
            return
        user = str(eff.value("nginx.user"))
        groups = list(eff.value("nginx.user.groups") or [])
        if user == "root":
            return  # root's workers pass every permission check
        for gate in gates:
            if _allowed(gate, user, groups):
                continue
            yield self._finding(site, gate, path, user, groups)
            return

    def _finding(self, site: SiteContext, gate: _Gate, path: str, user: str, groups: list[str]) -> Finding:
        eff = site.effective
        who, group = _name(user), _name(gate.group)
        # The same names as words of the commands the fix suggests (needs() let through POSIX
        # names only; quoted all the same).
        who_word, group_word = shlex.quote(user), shlex.quote(gate.group)
        access = "enter" if gate.need == _SEARCH else "write to"
        native = gate.key.split(".", 1)[1]
        mode = f"{native}={eff.value(gate.key)}" + (f": mode {gate.mode:04o}" if gate.key == "gunicorn.umask" else "")
        where = f"{_name(gate.what)} ({mode}, {_name(gate.owner)}:{group})"
        outside = user != gate.owner and gate.group not in groups
        if outside and gate.group != "root":
            at_key, relation = gate.group_key, "not in"
            why = f"{who} is neither {_name(gate.owner)} nor in group {group}"
            # The group must be let in too when its bits bar it as well (a umask of 0o077).
            barred = (gate.mode >> 3) & gate.need != gate.need
            also = f", let the group {access} it ({_LET[gate.key]})" if barred else ""
            fix = (f"usermod -aG {group_word} {who_word}{also}, then systemctl reload nginx (its new workers take "
                   "the group: each calls initgroups() as it starts)")
        elif outside:
            # Root's group: joining it would give nginx far more than the socket.
            at_key, relation = gate.key, "denied by"
            why = f"{who} is neither {_name(gate.owner)} nor in group {group}"
            fix = _OPEN_ROOTS[gate.key].format(who=who_word)
        else:
            at_key, relation = gate.key, "denied by"
            role = "its owner" if user == gate.owner else f"group {group}"
            why = (f"{who} is {'its owner' if user == gate.owner else f'in group {group}'}, and mode "
                   f"{gate.mode:04o} does not let {role} {access} it")
            fix = f"let {role} {access} it ({_LET[gate.key]})"
        runs = eff["nginx.user"].provenance
        # A user no `user` line names says which default applies, and why (nginx.conf's or a fleet's).
        told = f" ({_name_long(runs.how.removeprefix(f'{user}: '))})" \
            if runs.kind == "default" and runs.how.startswith(f"{user}: ") else ""
        message = (f"nginx's workers run as {who}{told} and may not {access} {where}: {why}; every request is a 502 "
                   f"(connect() to unix:{_name(path)} failed (13: Permission denied)); fix: {fix}")
        at = eff[at_key]
        found = self.finding(site, eff["nginx.user"], relation, at, message, location=at.provenance.location)
        settings = {**found.settings, **{k: eff[k].display for k in (gate.key, gate.group_key, "nginx.user.groups")}}
        return replace(found, settings=settings)


# Where each account key comes from on a server, for the reason a skip gives.
_FROM = {
    "nginx.user": "nginx.conf's `user`, of a server block that reaches the app",
    "nginx.user.groups": "the groups nginx's user is in: the server's /etc/group, which audit reads with --root",
    "systemd.User": "the unit's User=",
    "systemd.Group": "the unit's Group=, else its user's primary group in the server's /etc/passwd",
}
# The fix when what bars nginx is root's (a unit without User=, a socket unit's defaults).
_OPEN_ROOTS = {
    "systemd.RuntimeDirectoryMode": "run the unit as a user and Group= of its own (DG701) and usermod -aG that "
                                    "group {who}",
    "gunicorn.umask": "run the unit as a user and Group= of its own (DG701) and usermod -aG that group {who}",
    "systemd.SocketMode": "SocketGroup= the app's group with SocketMode=0660, and usermod -aG that group {who}",
    "systemd.DirectoryMode": "DirectoryMode=0755 in the socket unit (systemd's default): only the socket needs closing",
}
# What lets nginx's class in, for each setting that closes it out.
_LET = {
    "systemd.RuntimeDirectoryMode": "RuntimeDirectoryMode=0750, as deploygen renders it",
    "gunicorn.umask": "gunicorn's umask = 0o007, as deploygen renders it",
    "systemd.SocketMode": "SocketMode=0660",
    "systemd.DirectoryMode": "DirectoryMode=0755",
}


def _name(value: object) -> str:
    """A name or path read from a server, as a message may hold it: one line, not too long."""
    text = printable(str(value))
    return text if len(text) <= _NAME_LIMIT else text[:_NAME_LIMIT] + "..."


def _name_long(value: object) -> str:
    """A sentence a reader wrote about a server's value: one line, cut at 300 characters."""
    text = printable(str(value))
    return text if len(text) <= 300 else text[:300] + "..."


def _socket_path(eff: Effective) -> str | None:
    """The socket's path on the file system, None for a TCP bind or an abstract socket (`@x`)."""
    bind = eff.value("gunicorn.bind")
    if not isinstance(bind, str) or not bind.startswith("unix:"):
        return None
    path = bind.removeprefix("unix:")
    if path.startswith(("@", "\0")) or not path:
        return None
    return path


def _mode(eff: Effective, key: str) -> int | None:
    value = eff.value(key) if key in eff else None
    try:
        return int(str(value), 8) if value is not None else None
    except ValueError:
        return None


def _gates(eff: Effective, path: str) -> list[_Gate] | str:
    """The folders on the socket's path that are not everyone's, then the socket, or why they are
    not known from the files."""
    if not path.startswith("/"):
        return (f"needs the socket's folder: unix:{_name(path)} is relative (to gunicorn's working directory), "
                "a folder whose mode the unit does not set")
    path = posixpath.normpath(path)
    if path.startswith("/var/run/"):
        path = "/run/" + path.removeprefix("/var/run/")  # a link to /run on every systemd system
    user, group = str(eff.value("systemd.User")), str(eff.value("systemd.Group"))
    runtime = eff.value("systemd.RuntimeDirectory") if "systemd.RuntimeDirectory" in eff else []
    created = {posixpath.normpath(f"/run/{d}") for d in runtime or []}
    # Folders systemd creates on the way to each RuntimeDirectory= (mkdir_parents: 0755, root's).
    parents = {p for c in created for p in _folders(c)}
    socket_unit = "systemd.SocketMode" in eff
    gates = []
    for folder in _folders(path):
        if folder in created:
            mode = _mode(eff, "systemd.RuntimeDirectoryMode")
            if mode is None:
                return f"needs systemd.RuntimeDirectoryMode, the mode of {_name(folder)}"
            gates.append(_Gate(folder, mode, user, group, "systemd.RuntimeDirectoryMode", "systemd.Group", _SEARCH))
        elif folder in _OPEN_FOLDERS or folder in parents:
            continue
        elif socket_unit and folder.startswith("/run/") and _mode(eff, "systemd.DirectoryMode") is not None:
            # /run is empty at boot: the socket unit creates what is missing above its socket.
            gates.append(_Gate(folder, _mode(eff, "systemd.DirectoryMode"), "root", "root", "systemd.DirectoryMode",
                               "systemd.SocketGroup", _SEARCH))
        else:
            return (f"needs the mode of {_name(folder)}, on the socket's path: no RuntimeDirectory= of the unit "
                    "creates it, and a copy of a server's files does not say who may enter it")
    if socket_unit:
        mode = _mode(eff, "systemd.SocketMode")
        if mode is None or "systemd.SocketUser" not in eff or "systemd.SocketGroup" not in eff:
            return "needs systemd.SocketMode, systemd.SocketUser and systemd.SocketGroup of the socket unit"
        gates.append(_Gate("the socket", mode, str(eff.value("systemd.SocketUser")),
                           str(eff.value("systemd.SocketGroup")), "systemd.SocketMode", "systemd.SocketGroup", _WRITE))
    else:
        umask = _mode(eff, "gunicorn.umask")
        if umask is None:
            return "needs gunicorn.umask, the mask gunicorn creates its socket with"
        gates.append(_Gate("the socket", 0o777 & ~umask, user, group, "gunicorn.umask", "systemd.Group", _WRITE))
    return gates


def _folders(path: str) -> list[str]:
    """The folders above `path`, outermost first, `/` left out: `/run/x/s.sock` -> /run, /run/x."""
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _allowed(gate: _Gate, user: str, groups: list[str]) -> bool:
    """Whether nginx's workers pass the gate: the owner's bits for its owner, else the group's for
    a member, else the others' (the kernel's order: the first class that matches decides)."""
    if user == gate.owner:
        bits = gate.mode >> 6
    elif gate.group in groups:
        bits = gate.mode >> 3
    else:
        bits = gate.mode
    return bits & gate.need == gate.need
