"""nginx: the server blocks that proxy to an app, with their effective timeouts.

crossplane parses the whole configuration with its includes. A directive
absent from a location is inherited from its server, then from `http {}`,
then nginx's own default applies, which is what runs in production.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

import crossplane

from deploygen.audit.found import ReadSetting
from deploygen.duration import Duration
from deploygen.errors import Location

# nginx's defaults for what deploygen reads (ngx_http_proxy_module, ngx_http_core_module).
DEFAULTS = {
    "proxy_http_version": "1.0",
    "proxy_connect_timeout": "60s", "proxy_read_timeout": "60s", "proxy_send_timeout": "60s",
    "send_timeout": "60s", "client_header_timeout": "60s", "client_body_timeout": "60s",
    "keepalive_timeout": "75s", "client_max_body_size": "1m", "proxy_buffering": "on",
}
_TIMES = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}


def nginx_time(text: str) -> Duration:
    """nginx's time syntax: `60`, `60s`, `1m30s`, `500ms` (`M` and `y` not for these directives)."""
    import re

    text = text.strip()
    if text.isdigit():
        return Duration.seconds_(int(text))
    total, pos = 0, 0
    for match in re.finditer(r"(\d+)(ms|s|m|h|d|w)", text):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _TIMES[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"{text!r} is not an nginx time")
    return Duration(total)


@dataclass
class ProxiedServer:
    """One `server {}` that proxies `/` to an app."""

    file: str
    line: int
    server_names: list[str]
    upstream: str
    settings: dict[str, ReadSetting] = field(default_factory=dict)
    tls: dict[str, str] = field(default_factory=dict)  # certificate, certificate_key
    static: str | None = None


def read_nginx(path: str) -> list[ProxiedServer]:
    """Every server block in the configuration at `path` whose `location /` proxies to an app."""
    payload = crossplane.parse(path, check_ctx=False, check_args=False, comments=False, single=False)
    errors = [e for c in payload["config"] for e in c["errors"]]
    if errors:
        e = errors[0]
        raise ValueError(f"{e['file']}:{e.get('line') or 1}: {e['error']}")
    configs = {c["file"]: c["parsed"] for c in payload["config"]}
    top = configs[payload["config"][0]["file"]]
    found: list[ProxiedServer] = []
    upstreams: dict[str, dict] = {}

    def walk(block: list, file: str, inherited: dict, context: str) -> None:
        here = {**inherited, **_set_here(block, file),
                "__headers__": _headers(block, file) or inherited.get("__headers__", {})}
        for d in block:
            name = d["directive"]
            if name == "include":
                for inc in d.get("includes", []):
                    inc_file = payload["config"][inc]["file"]
                    walk(payload["config"][inc]["parsed"], inc_file, here, context)
            elif name == "http":
                walk(d["block"], file, here, "http")
            elif name == "upstream":
                upstreams[d["args"][0]] = {"file": file, "block": d["block"], "line": d["line"]}
            elif name == "server" and context == "http":
                _server(d, file, here)

    def _server(d: dict, file: str, inherited: dict) -> None:
        block = d["block"]
        here = {**inherited, **_set_here(block, file)}
        names = [a for x in block if x["directive"] == "server_name" for a in x["args"]]
        for loc in (x for x in block if x["directive"] == "location" and x["args"] == ["/"]):
            inner = {**here, **_set_here(loc["block"], file)}
            headers = _headers(loc["block"], file) or _headers(block, file) or inherited.get("__headers__", {})
            proxies = [x["args"][0] for x in loc["block"] if x["directive"] == "proxy_pass"]
            if not proxies:
                continue
            proxy = proxies[-1]
            server = ProxiedServer(file, d["line"], names, proxy)
            for x in block:
                if x["directive"] in ("ssl_certificate", "ssl_certificate_key") and x["args"]:
                    server.tls[x["directive"].replace("ssl_", "")] = x["args"][0]
                if x["directive"] == "location" and x["args"] == ["/static/"]:
                    alias = [y["args"][0] for y in x["block"] if y["directive"] == "alias" and y["args"]]
                    server.static = alias[0].rstrip("/") if alias else None
            where_default = Location(file, loc["line"], 1)
            for key, default in DEFAULTS.items():
                value, location = inner.get(key, (default, where_default))
                is_default = key not in inner
                parsed = nginx_time(value) if key.endswith("timeout") else value
                server.settings[f"nginx.{key}"] = ReadSetting(f"nginx.{key}", parsed, location, is_default)
            for name in ("Connection", "X-Forwarded-Proto"):
                value, location = headers.get(name.lower(), (None, where_default))
                server.settings[f"nginx.proxy_set_header.{name}"] = ReadSetting(
                    f"nginx.proxy_set_header.{name}", value, location, value is None)
            found.append(server)

    walk(top, payload["config"][0]["file"], {}, "main")
    for server in found:
        _upstream_settings(server, upstreams)
    return found


def _set_here(block: list, file: str) -> dict:
    """The directives read here that one level sets: `{name: (argument, location)}`, the last one kept."""
    return {x["directive"]: (x["args"][0], Location(file, x["line"], 1))
            for x in block if x["directive"] in DEFAULTS and x["args"]}


def _headers(block: list, file: str) -> dict:
    """`proxy_set_header`s of one level; nginx inherits them only into levels that set none."""
    return {x["args"][0].lower(): (x["args"][1] if len(x["args"]) > 1 else "", Location(file, x["line"], 1))
            for x in block if x["directive"] == "proxy_set_header" and x["args"]}


def _upstream_settings(server: ProxiedServer, upstreams: dict[str, dict]) -> None:
    """`keepalive` and `keepalive_timeout` of the upstream block `proxy_pass` names."""
    target = server.upstream.split("://", 1)[-1].rstrip("/")
    upstream = upstreams.get(target)
    if upstream is None:
        return
    here = Location(upstream["file"], upstream["line"], 1)
    values = {x["directive"]: (x["args"][0], Location(upstream["file"], x["line"], 1))
              for x in upstream["block"] if x["directive"] in ("keepalive", "keepalive_timeout")}
    count, at = values.get("keepalive", ("0", here))
    server.settings["nginx.upstream.keepalive"] = ReadSetting("nginx.upstream.keepalive", int(count), at,
                                                              "keepalive" not in values)
    kt, at = values.get("keepalive_timeout", ("60s", here))
    server.settings["nginx.upstream.keepalive_timeout"] = ReadSetting(
        "nginx.upstream.keepalive_timeout", nginx_time(kt), at, "keepalive_timeout" not in values)
    server.settings["nginx.upstream.server"] = ReadSetting(
        "nginx.upstream.server", [x["args"][0] for x in upstream["block"] if x["directive"] == "server"], here)


def read_server_block(path: str) -> list[ProxiedServer]:
    """A lone site file (`sites-available/NAME`): included from an `http {}`, as nginx.conf does."""
    import tempfile

    absolute = os.path.abspath(path)
    with tempfile.TemporaryDirectory() as tmp:
        main = os.path.join(tmp, "nginx.conf")
        with open(main, "w") as f:
            f.write(f"http {{ include {absolute}; }}\n")
        servers = read_nginx(main)
    for server in servers:
        server.file = path if server.file == absolute else server.file
        for key, read in server.settings.items():
            if read.location.file == absolute:
                server.settings[key] = replace(read, location=read.location._replace(file=path))
    return servers
