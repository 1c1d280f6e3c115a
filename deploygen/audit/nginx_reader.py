"""nginx: the server blocks that proxy to an app, with their effective timeouts.

crossplane parses each file on its own (`single=True`); includes are expanded
here, so that each path an include names is resolved in the server's tree
(`Tree`), read as a regular file under the size cap, and an include cycle is
a located error rather than a recursion. A directive absent from a location is
inherited from its server, then from `http {}`, then nginx's own default
applies, which is what runs in production.
"""

from __future__ import annotations

import glob
import os
import re
import tempfile
from dataclasses import dataclass, field, replace

import crossplane

from deploygen.audit.endpoint import (
    Endpoint,
    from_proxy_pass,
    from_upstream_server,
    upstream_name,
)
from deploygen.audit.found import ReadSetting, bounded_ms, bounded_seconds
from deploygen.audit.source import TooManyFiles, Tree, unreadable, why
from deploygen.errors import InputError, Location, printable, shown
from deploygen.sitefile.duration import Duration

# nginx's defaults for what deploygen reads (ngx_http_proxy_module, ngx_http_core_module).
DEFAULTS = {
    "proxy_http_version": "1.0",
    "proxy_connect_timeout": "60s", "proxy_read_timeout": "60s", "proxy_send_timeout": "60s",
    "send_timeout": "60s", "client_header_timeout": "60s", "client_body_timeout": "60s",
    "keepalive_timeout": "75s", "client_max_body_size": "1m", "proxy_buffering": "on",
}
_TIMES = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
# Debian's nginx.conf includes two levels deep (nginx.conf -> sites-enabled/x -> snippets/y);
# a chain past 16 is a loop through differently named links, or built to exhaust the reader.
MAX_INCLUDE_DEPTH = 16
# What a location that passes requests to FastCGI (PHP-FPM) reads, nginx's defaults
# (ngx_http_fastcgi_module), beside the client side every location has.
FASTCGI_DEFAULTS = {"fastcgi_connect_timeout": "60s", "fastcgi_read_timeout": "60s", "fastcgi_send_timeout": "60s"}
_CLIENT_SIDE = ("send_timeout", "client_header_timeout", "client_body_timeout", "keepalive_timeout",
                "client_max_body_size")
# nginx's compiled-in `root html` (under its prefix) and `index index.html`.
FILES_DEFAULTS = {"root": "html", "index": "index.html"}
# Every directive a level passes on to the levels inside it, that audit reads somewhere.
_INHERITED = frozenset(DEFAULTS) | frozenset(FASTCGI_DEFAULTS) | frozenset(FILES_DEFAULTS)
# Directives walked once includes are expanded. A server with a thousand sites of 100 lines
# each walks 100,000, about 50 MB parsed; one file included from every block of another, level
# after level, would grow without bound (as an alias bomb does in YAML): the count is capped.
MAX_DIRECTIVES = 200_000
# Blocks nested in http {} that are walked (http, its includes); real configurations nest 3.
MAX_NESTING = 64
# What Debian's nginx-common ships in /etc/nginx, for a copy of a server that lacks it (the
# package's files, not the site's): proxy_params sets the headers rules read; the others set
# nothing audit reads (MIME types, FastCGI/uwsgi/SCGI parameters, charset maps).
DEBIAN_SHIPPED = {
    "proxy_params": "proxy_set_header Host $http_host;\nproxy_set_header X-Real-IP $remote_addr;\n"
                    "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
                    "proxy_set_header X-Forwarded-Proto $scheme;\n",
    **dict.fromkeys(("mime.types", "fastcgi_params", "fastcgi.conf", "uwsgi_params", "scgi_params",
                     "snippets/fastcgi-php.conf", "koi-utf", "koi-win", "win-utf"), ""),
}
# Where crossplane's messages name the temporary copy it parsed: ` in /tmp/x/3.conf:12`.
_IN_COPY = re.compile(r" in \S+?(:\d+)?$")


def nginx_time(text: str) -> Duration:
    """nginx's time syntax: `60`, `60s`, `1m30s`, `500ms` (`M` and `y` not for these directives)."""
    text = text.strip()
    if re.fullmatch(r"[0-9]{1,15}", text):
        return bounded_seconds(int(text), text)
    total, pos = 0, 0
    for match in re.finditer(r"([0-9]{1,15})(ms|s|m|h|d|w)", text):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _TIMES[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"{shown(text)} is not an nginx time (e.g. 60s, 1m30s, 500ms)")
    return Duration(bounded_ms(total, text))


@dataclass
class ProxiedLocation:
    """One `location` of a server block that proxies (`proxy_pass`), with its effective settings."""

    path: str  # as written: `/`, `/api/`, `@proxy_to_app`, `~ ^/ws/`
    file: str
    line: int
    proxy_pass: str
    settings: dict[str, ReadSetting] = field(default_factory=dict)
    # The addresses it reaches: proxy_pass's own, or each server of the upstream it names.
    targets: list[Endpoint] = field(default_factory=list)
    websocket: bool = False  # it passes `Upgrade` on
    fastcgi: bool = False  # `fastcgi_pass` (its address in `proxy_pass`), not an HTTP proxy
    folder: str = ""  # what `alias` (or `root` + the path) serves, for a location of files
    # The location as crossplane reads it, its includes expanded: what import carries.
    directive: dict = field(default_factory=dict, repr=False)


@dataclass
class ProxiedServer:
    """One `server {}` with at least one location that proxies; `settings` are its first
    proxying location's (`location /` when it proxies) until audit picks the app's."""

    file: str
    line: int
    server_names: list[str]
    upstream: str
    settings: dict[str, ReadSetting] = field(default_factory=dict)
    tls: dict[str, str] = field(default_factory=dict)  # certificate, certificate_key
    locations: list[ProxiedLocation] = field(default_factory=list)
    # `listen ... ssl` (or `ssl on`): browsers reach it over HTTPS.
    tls_listener: bool = False
    # Locations that serve files (`alias`/`root`, no proxy).
    files: list[ProxiedLocation] = field(default_factory=list)
    # Locations that neither proxy nor serve files (`return`, fastcgi_pass, ...): kept for import.
    others: list[ProxiedLocation] = field(default_factory=list)
    # Locations that pass requests to FastCGI (nested ones too), each with its effective fastcgi_*
    # timeouts, root and index: what a PHP-FPM pool is linked by. They stay in `files` or `others`
    # too, where an app behind `proxy_pass` sees them.
    fastcgi: list[ProxiedLocation] = field(default_factory=list)
    # The block's own directives other than its locations, includes expanded: (name, args, file,
    # line); import says which of them a site file does not carry.
    directives: list[tuple[str, list[str], str, int]] = field(default_factory=list)
    # Who nginx's workers run as (`nginx.user`: nginx.conf's `user`, or the default that applies)
    # and the group the directive gives them (its second word, else the user's name).
    user: ReadSetting | None = None
    user_group: str = ""

    def to(self, location: ProxiedLocation) -> ProxiedServer:
        """This server block as seen from one of its locations (`settings` and `upstream` its)."""
        return replace(self, upstream=location.proxy_pass, settings=location.settings)


def _arg(d: dict, file: str, what: str) -> str:
    """The first argument of directive `d`, which nginx -t requires too."""
    if not d["args"]:
        raise unreadable(file, f"nginx.{d['directive']}", f"`{d['directive']}` without {what}", d["line"])
    return d["args"][0]


class _Configuration:
    """The files of one nginx configuration, each parsed once, walked from its main file."""

    def __init__(self, tree: Tree, prefix: str, copies: str) -> None:
        self.tree = tree
        self.prefix = prefix  # where relative includes start: nginx's conf folder
        self.copies = copies
        self.parsed: dict[str, list] = {}
        self.walked = 0
        self.found: list[ProxiedServer] = []
        self.upstreams: dict[str, dict] = {}
        self.user: tuple[list[str], str, int] | None = None  # main's `user`: (words, file, line)

    def parse(self, local: str, at: Location | None = None) -> list:
        """crossplane's statements of one file; unreadable at the include `at` that names it."""
        if local in self.parsed:
            return self.parsed[local]
        try:
            data = self.tree.read_bytes(local, "nginx")
        except TooManyFiles:
            raise
        except InputError as exc:
            if at is None:
                raise
            reason = exc.problems[0].message.removeprefix("could not be read: ")
            raise unreadable(at.file, "nginx.include", f"{printable(local)}: {reason}", at.line) from None
        copy = os.path.join(self.copies, f"{len(self.parsed)}.conf")
        with open(copy, "wb") as f:
            f.write(data)
        payload = crossplane.parse(copy, check_ctx=False, check_args=False, comments=False, single=True)
        errors = payload["config"][0]["errors"]
        if errors:
            error = errors[0]
            message = _IN_COPY.sub("", error["error"])
            if "recursion" in message:
                message = "blocks nested too deeply to read"
            raise unreadable(local, "nginx", message, error.get("line") or 1)
        self.parsed[local] = payload["config"][0]["parsed"]
        return self.parsed[local]

    def included(self, d: dict, file: str) -> list[str]:
        """The files an `include` names, where they are in the tree, sorted as nginx reads a glob."""
        pattern = _arg(d, file, "a file name")
        if self.tree.root is None:
            path = pattern if os.path.isabs(pattern) else os.path.join(self.prefix, pattern)
        else:
            path = pattern if pattern.startswith("/") else f"{self.prefix}/{pattern}"
        found = []
        for server_path in self.tree.glob(path) if glob.has_magic(path) else [path]:
            try:
                found.append(self.tree.local(server_path))
            except OSError as exc:  # a symlink loop
                raise unreadable(file, "nginx.include", f"{printable(server_path)}: {why(exc)}",
                                 d["line"]) from None
        return found

    def inline(self, block: list, file: str, chain: tuple[str, ...]) -> list[tuple[dict, str]]:
        """The statements of one level with its includes in their place, each with its file."""
        items: list[tuple[dict, str]] = []
        for d in block:
            if d["directive"] != "include":
                items.append((d, file))
            else:
                at = Location(file, d["line"], 1)
                for local in self.included(d, file):
                    if not os.path.lexists(local):
                        items += self.absent(d, local, at)
                        continue
                    deeper = self._deeper(chain, local, at)
                    items += self.inline(self.parse(local, at), local, deeper)
            if len(items) + self.walked > MAX_DIRECTIVES:
                raise unreadable(file, "nginx", f"more than {MAX_DIRECTIVES} directives once includes are "
                                 "expanded", d["line"])
        self.walked += len(items)
        return items

    def absent(self, d: dict, local: str, at: Location) -> list[tuple[dict, str]]:
        """An include whose file is not there. nginx -t would refuse it; a copy of a server
        often lacks what a package ships, so audit goes on and says what it took instead:
        Debian's own text for the files nginx-common ships, nothing for any other."""
        name = d["args"][0]
        shipped = DEBIAN_SHIPPED.get(name.removeprefix("/etc/nginx/"))
        where = f"{printable(at.file)}:{at.line}: include {printable(name)}"
        if shipped is None:
            self.tree.not_read("nginx", f"{where}: not there ({printable(local)}): what it sets is unknown")
            return []
        self.tree.not_read("nginx", f"{where}: not there, read as Debian's nginx-common ships it")
        # One directive a line, no blocks: split as nginx would (none of these has quotes).
        return [({"directive": words[0], "args": words[1:], "line": at.line}, at.file)
                for words in (line.rstrip(";").split() for line in shipped.splitlines())]

    @staticmethod
    def _deeper(chain: tuple[str, ...], local: str, at: Location) -> tuple[str, ...]:
        if local in chain:
            loop = " -> ".join(printable(f) for f in (*chain[chain.index(local):], local))
            raise unreadable(at.file, "nginx.include", f"includes itself ({loop})", at.line)
        if len(chain) >= MAX_INCLUDE_DEPTH:
            raise unreadable(at.file, "nginx.include", f"includes nested more than {MAX_INCLUDE_DEPTH} deep",
                             at.line)
        return (*chain, local)

    def walk(self, block: list, file: str, inherited: dict, context: str, chain: tuple[str, ...],
             depth: int = 0) -> None:
        if depth > MAX_NESTING:
            raise unreadable(file, "nginx", f"http blocks nested more than {MAX_NESTING} deep",
                             block[0]["line"] if block else 1)
        items = self.inline(block, file, chain)
        here = {**inherited, **_set_here(items), "__headers__": _headers(items) or inherited.get("__headers__", {})}
        for d, at in items:
            name = d["directive"]
            if name == "http":
                self.walk(d.get("block", []), at, here, "http", chain, depth + 1)
            elif name == "upstream":
                self.upstreams[_arg(d, at, "a name")] = {"file": at, "line": d["line"],
                                                         "block": self.inline(d.get("block", []), at, chain)}
            elif name == "server" and context == "http":
                self.server(d, at, here, chain)
            elif name == "user" and context == "main":
                _arg(d, at, "a user name")
                self.user = (list(d["args"]), at, d["line"])

    def server(self, d: dict, file: str, inherited: dict, chain: tuple[str, ...]) -> None:
        block = self.inline(d.get("block", []), file, chain)
        here = {**inherited, **_set_here(block)}
        headers = _headers(block) or inherited.get("__headers__", {})
        names = [a for x, _ in block if x["directive"] == "server_name" for a in x["args"]]
        server = ProxiedServer(file, d["line"], names, "")
        server.tls_listener = any(x["directive"] == "listen" and "ssl" in x["args"][1:]
                                  or x["directive"] == "ssl" and x["args"][:1] == ["on"] for x, _ in block)
        _tls(server, block)
        server.directives = [(x["directive"], list(x["args"]), f, x["line"]) for x, f in block
                             if x["directive"] != "location"]
        self.locations(server, block, here, headers, chain)
        if not server.locations and not server.fastcgi:
            return
        # `location /` first when it proxies: the app's front door, whose settings most requests get.
        server.locations.sort(key=lambda loc: loc.path != "/")
        first = (server.locations or server.fastcgi)[0]
        server.upstream, server.settings = first.proxy_pass, first.settings
        self.found.append(server)

    def locations(self, server: ProxiedServer, block: list, here: dict, headers: dict,
                  chain: tuple[str, ...], depth: int = 0) -> None:
        """Every location of `block` (nested ones too, which inherit from theirs) that proxies."""
        for loc, loc_file in ((x, f) for x, f in block if x["directive"] == "location"):
            if depth > MAX_NESTING:
                raise unreadable(loc_file, "nginx", f"locations nested more than {MAX_NESTING} deep", loc["line"])
            inner_block = self.inline(loc.get("block", []), loc_file, chain)
            inner = {**here, **_set_here(inner_block)}
            inner_headers = _headers(inner_block) or headers
            path = " ".join(loc["args"])
            proxies = [_arg(x, f, "an address") for x, f in inner_block if x["directive"] == "proxy_pass"]
            where_default = Location(loc_file, loc["line"], 1)
            expanded = {"directive": "location", "args": loc["args"], "line": loc["line"],
                        "block": self.expanded(inner_block, chain)}
            if proxies:
                found = ProxiedLocation(path, loc_file, loc["line"], proxies[-1], directive=expanded)
                for key, default in DEFAULTS.items():
                    value, location = inner.get(key, (default, where_default))
                    found.settings[f"nginx.{key}"] = _read(f"nginx.{key}", value, location, key not in inner)
                for header in ("Connection", "X-Forwarded-Proto"):
                    value, location = inner_headers.get(header.lower(), (None, where_default))
                    found.settings[f"nginx.proxy_set_header.{header}"] = ReadSetting(
                        f"nginx.proxy_set_header.{header}", value, location, value is None)
                found.websocket = "upgrade" in inner_headers
                server.locations.append(found)
            elif depth == 0 and any(x["directive"] in ("alias", "root") and x["args"] for x, _ in inner_block):
                server.files.append(ProxiedLocation(path, loc_file, loc["line"], "", folder=_folder(loc, inner_block),
                                                    directive=expanded))
            elif depth == 0:
                server.others.append(ProxiedLocation(path, loc_file, loc["line"], "", directive=expanded))
            fastcgi = [_arg(x, f, "an address") for x, f in inner_block if x["directive"] == "fastcgi_pass"]
            if fastcgi and not proxies:
                server.fastcgi.append(_fastcgi_location(path, loc_file, loc["line"], fastcgi[-1], inner,
                                                        where_default, expanded))
            self.locations(server, inner_block, inner, inner_headers, chain, depth + 1)

    def expanded(self, block: list[tuple[dict, str]], chain: tuple[str, ...]) -> list[dict]:
        """A block's directives with every include in place, nested blocks too (crossplane's form)."""
        out = []
        for d, file in block:
            if "block" in d:
                d = {**d, "block": self.expanded(self.inline(d["block"], file, chain), chain)}
            out.append(d)
        return out


def _fastcgi_location(path: str, file: str, line: int, address: str, inner: dict, where_default: Location,
                      expanded: dict) -> ProxiedLocation:
    """A location that passes requests to FastCGI: its fastcgi_* timeouts, the client side,
    and the root and index it serves scripts from, each inherited or nginx's default."""
    found = ProxiedLocation(path, file, line, address, directive=expanded, fastcgi=True)
    for key, default in (*FASTCGI_DEFAULTS.items(), *((k, DEFAULTS[k]) for k in _CLIENT_SIDE),
                         *FILES_DEFAULTS.items()):
        value, location = inner.get(key, (default, where_default))
        found.settings[f"nginx.{key}"] = _read(f"nginx.{key}", value, location, key not in inner)
    return found


def _folder(loc: dict, block: list[tuple[dict, str]]) -> str:
    """The folder a location of files serves its path from: `alias X`, or `root X` + the path."""
    alias = [x["args"][0] for x, _ in block if x["directive"] == "alias" and x["args"]]
    if alias:
        return alias[-1].rstrip("/") or "/"
    root = [x["args"][0] for x, _ in block if x["directive"] == "root" and x["args"]][-1]
    path = loc["args"][-1] if loc["args"] else "/"
    return (root.rstrip("/") + "/" + path.strip("/")).rstrip("/") or "/"


def _read(key: str, value: str, location: Location, default: bool) -> ReadSetting:
    """One directive's setting; a time nginx would refuse is reported, not raised."""
    if not key.endswith("timeout"):
        return ReadSetting(key, value, location, default)
    try:
        return ReadSetting(key, nginx_time(value), location, default)
    except ValueError as exc:
        return ReadSetting(key, None, location, default, unknown=str(exc))


def _tls(server: ProxiedServer, block: list) -> None:
    for x, _ in block:
        if x["directive"] in ("ssl_certificate", "ssl_certificate_key") and x["args"]:
            server.tls[x["directive"].replace("ssl_", "")] = x["args"][0]


def read_nginx(path: str, tree: Tree | None = None) -> list[ProxiedServer]:
    """Every server block in the configuration at `path` (a server path under a root) whose
    `location /` proxies to an app."""
    return _servers(tree or Tree(), path, main=True)


def read_server_block(path: str, tree: Tree | None = None) -> list[ProxiedServer]:
    """A lone site file (`sites-available/NAME`): included from an `http {}`, as nginx.conf does."""
    return _servers(tree or Tree(), path, main=False)


def read_nginx_file(path: str, tree: Tree | None = None) -> list[ProxiedServer]:
    """nginx.conf or a lone site file, whichever `path` is: a main file has `http {}` or `events {}`."""
    return _servers(tree or Tree(), path, main=None)


def _prefix(path: str, main: bool, rooted: bool) -> str:
    """nginx's conf folder, where relative includes start: a site file's is above sites-available/,
    and on a server's tree (`rooted`) nginx's own /etc/nginx, wherever the file is."""
    folder = os.path.dirname(path)
    if rooted and (not main or path.startswith("/etc/nginx/")):
        return "/etc/nginx"
    if not main and os.path.basename(folder) in ("sites-available", "sites-enabled", "conf.d"):
        folder = os.path.dirname(folder)
    return folder or "."


def _servers(tree: Tree, path: str, main: bool | None) -> list[ProxiedServer]:
    try:
        local = tree.local(path)
    except OSError as exc:  # a symlink loop
        raise unreadable(path, "nginx", why(exc)) from None
    with tempfile.TemporaryDirectory(prefix="deploygen-nginx-") as copies:
        config = _Configuration(tree, "", copies)
        top = config.parse(local)
        if main is None:
            main = any(d["directive"] in ("http", "events") for d in top)
        config.prefix = _prefix(path, main, tree.root is not None)
        config.walk(top, local, {}, "main" if main else "http", (local,))
    user, group = _worker_user(config.user, local, main)
    for server in config.found:
        server.user, server.user_group = user, group
        for location in server.locations:
            _upstream_settings(location, config.upstreams)
        for location in server.fastcgi:
            _fastcgi_targets(location, config.upstreams)
    return config.found


# What runs nginx's workers when nothing says otherwise. nginx's own default is its build's
# `--user=` (ngx_core_module_init_conf: getpwnam(NGX_USER)), `nobody` unless the build names
# another: Debian's package names none (`nginx -V`), so a Debian nginx.conf without `user` runs
# its workers as nobody:nogroup; nginx.org's and RHEL's packages build `--user=nginx`, and their
# nginx.conf say `user nginx;` too. Debian's own nginx.conf says `user www-data;`.
COMPILED_IN_USER = ("nobody", "nogroup")
DEBIAN_USER = "www-data"


def _worker_user(found: tuple[list[str], str, int] | None, local: str,
                 main: bool) -> tuple[ReadSetting, str]:
    """`nginx.user` and the workers' group: the main context's `user USER [GROUP]` (GROUP defaults
    to USER's name, as ngx_set_user takes it); without one, nginx's compiled-in user when a whole
    nginx.conf was read, Debian's www-data when only site files were (their nginx.conf unread)."""
    key = "nginx.user"
    if found is not None:
        words, file, line = found
        return ReadSetting(key, words[0], Location(file, line, 1)), words[1] if len(words) > 1 else words[0]
    at = Location(local, 1, 1)
    if main:
        user, group = COMPILED_IN_USER
        return ReadSetting(key, user, at, default=True, how=(
            f"{user}: nginx.conf sets no `user`, so nginx's workers run as its build's --user=, nobody:nogroup "
            "for Debian's package and a source build (nginx.org's and RHEL's packages build --user=nginx: "
            "`nginx -V` says which)")), group
    return ReadSetting(key, DEBIAN_USER, at, default=True, how=(
        f"{DEBIAN_USER}: no nginx.conf read; Debian's says `user {DEBIAN_USER};` (RHEL's `user nginx;`)")), DEBIAN_USER


def _set_here(items: list[tuple[dict, str]]) -> dict:
    """The directives read here that one level sets: `{name: (argument, location)}`, the last one kept.
    `index` is its first script ending in .php (the front controller), else its first name."""
    return {x["directive"]: (_index(x["args"]) if x["directive"] == "index" else x["args"][0],
                             Location(file, x["line"], 1))
            for x, file in items if x["directive"] in _INHERITED and x["args"]}


def _index(names: list[str]) -> str:
    return next((n for n in names if n.endswith(".php")), names[0])


def _headers(items: list[tuple[dict, str]]) -> dict:
    """`proxy_set_header`s of one level; nginx inherits them only into levels that set none."""
    return {x["args"][0].lower(): (x["args"][1] if len(x["args"]) > 1 else "", Location(file, x["line"], 1))
            for x, file in items if x["directive"] == "proxy_set_header" and x["args"]}


def _fastcgi_targets(location: ProxiedLocation, upstreams: dict[str, dict]) -> None:
    """Where a fastcgi_pass goes: the servers of the upstream block it names, else its address."""
    upstream = upstreams.get(location.proxy_pass)
    if upstream is None:
        target = from_upstream_server(location.proxy_pass)
        location.targets = [target] if target else []
        return
    servers = [x["args"][0] for x, _ in upstream["block"] if x["directive"] == "server" and x["args"]]
    location.targets = [t for t in map(from_upstream_server, servers) if t is not None]
    location.settings["nginx.upstream.server"] = ReadSetting("nginx.upstream.server", servers,
                                                             Location(upstream["file"], upstream["line"], 1))


def _upstream_settings(location: ProxiedLocation, upstreams: dict[str, dict]) -> None:
    """Where the location's proxy_pass goes, and `keepalive`/`keepalive_timeout` of the
    upstream block it names (none: nginx keeps no idle connection to a bare address)."""
    upstream = upstreams.get(upstream_name(location.proxy_pass))
    if upstream is None:
        target = from_proxy_pass(location.proxy_pass)
        location.targets = [target] if target else []
        return
    here = Location(upstream["file"], upstream["line"], 1)
    servers = [x["args"][0] for x, _ in upstream["block"] if x["directive"] == "server" and x["args"]]
    location.targets = [t for t in map(from_upstream_server, servers) if t is not None]
    values = {x["directive"]: (x["args"][0], Location(file, x["line"], 1))
              for x, file in upstream["block"] if x["directive"] in ("keepalive", "keepalive_timeout") and x["args"]}
    count, at = values.get("keepalive", ("0", here))
    key = "nginx.upstream.keepalive"
    settings = location.settings
    if re.fullmatch(r"[0-9]{1,9}", count):
        settings[key] = ReadSetting(key, int(count), at, "keepalive" not in values)
    else:
        settings[key] = ReadSetting(key, None, at, unknown=f"{shown(count)} is not a count of connections")
    kt, at = values.get("keepalive_timeout", ("60s", here))
    settings["nginx.upstream.keepalive_timeout"] = _read(
        "nginx.upstream.keepalive_timeout", kt, at, "keepalive_timeout" not in values)
    settings["nginx.upstream.server"] = ReadSetting("nginx.upstream.server", servers, here)
