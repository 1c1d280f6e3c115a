"""Existing files -> effective settings with real provenance, for the same rules.

What a reader found becomes a `written` setting located in the real file;
what the layer defaults becomes a `default` setting located where it would
go. Rules that read only effective settings then run unchanged; the rules
about a site file's own keys (session modes, secrets file, collisions between
site files) have nothing to read here and are left out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from deploygen.audit.env_reader import read_flask_env
from deploygen.audit.found import ReadSetting
from deploygen.audit.gunicorn_reader import gunicorn_defaults, read_gunicorn
from deploygen.audit.nginx_reader import ProxiedServer, read_nginx, read_server_block
from deploygen.audit.sql_reader import read_sql, sql_scope
from deploygen.audit.unit_reader import read_unit
from deploygen.duration import Duration
from deploygen.settings import Effective, Provenance, Setting

# gunicorn's own name for the worker class that runs sync workers with threads.
_THREADED = "gthread"


@dataclass
class AuditedApp:
    """One app found on a server: its name and effective settings."""

    name: str
    effective: Effective
    unknown: list[ReadSetting]
    nginx: ProxiedServer | None = None
    database: tuple[str, str] | None = None


def _setting(read: ReadSetting) -> Setting:
    kind = "default" if read.default else "written"
    how = "the layer's default" if read.default else read.key
    return Setting(read.key, read.value, Provenance(kind, how, read.location))


def assemble(name: str, gunicorn: dict[str, ReadSetting], nginx: ProxiedServer | None = None,
             unit: dict[str, ReadSetting] | None = None, sql: dict[str, ReadSetting] | None = None,
             flask: dict[str, ReadSetting] | None = None, role: str | None = None,
             database: str | None = None) -> AuditedApp:
    reads: dict[str, ReadSetting] = {}
    for source in (nginx.settings if nginx else {}, gunicorn, unit or {}, sql or {}):
        for key, read in source.items():
            if read.default and key in reads and not reads[key].default:
                continue  # a flag on ExecStart beats the config file's silence
            reads[key] = read
    for key, read in (flask or {}).items():
        if key.startswith("flask.SQLALCHEMY_ENGINE_OPTIONS."):
            name_ = key.rsplit(".", 1)[1]
            reads[f"sqlalchemy.{name_}"] = ReadSetting(f"sqlalchemy.{name_}", read.value, read.location)
        else:
            reads[key] = read
    if nginx is not None and "nginx.upstream.keepalive" not in reads:
        # proxy_pass straight to an address: nginx keeps no idle connections to it.
        where = reads["nginx.proxy_read_timeout"].location
        reads["nginx.upstream.keepalive"] = ReadSetting("nginx.upstream.keepalive", 0, where, default=True)
    lifetime = reads.get("flask.PERMANENT_SESSION_LIFETIME")
    if lifetime and isinstance(lifetime.value, int):
        reads[lifetime.key] = replace(lifetime, value=Duration.seconds_(lifetime.value))
    threads = reads.get("gunicorn.threads")
    worker = reads.get("gunicorn.worker_class")
    if worker and worker.value == "sync" and threads and isinstance(threads.value, int) and threads.value > 1:
        reads["gunicorn.worker_class"] = ReadSetting("gunicorn.worker_class", _THREADED, threads.location)
    if "nginx.proxy_buffering" in reads:
        b = reads["nginx.proxy_buffering"]
        reads["nginx.proxy_buffering"] = ReadSetting(b.key, b.value != "off", b.location, b.default)
    for key in ("sqlalchemy.pool_recycle", "sqlalchemy.pool_timeout"):
        if key in reads and isinstance(reads[key].value, (int, float)) and reads[key].value >= 0:
            reads[key] = ReadSetting(key, Duration(int(reads[key].value * 1000)), reads[key].location)
    unknown = [r for r in reads.values() if r.unknown]
    # None stays: it is a layer's "unset" (no statement_timeout, no Connection header), which rules read.
    settings = {k: _setting(r) for k, r in sorted(reads.items()) if not r.unknown}
    scope = (role, database) if sql is not None and role and database else None
    return AuditedApp(name, Effective(settings), unknown, nginx, scope)


def audit_files(nginx: str | None, gunicorn: str | None, unit: str | None, sql: str | None,
                flask_env: str | None, role: str | None = None, database: str | None = None) -> list[AuditedApp]:
    """An app from the files named on the command line."""
    unit_read = read_unit(unit) if unit else {}
    config = gunicorn
    if config is None and "gunicorn.config_file" in unit_read:
        workdir = unit_read.get("systemd.WorkingDirectory")
        config = os.path.join(workdir.value if workdir else "", unit_read["gunicorn.config_file"].value)
    gunicorn_read = read_gunicorn(config) if config else gunicorn_defaults(unit or "gunicorn")
    servers = (read_server_block(nginx) if nginx and not _is_main(nginx) else read_nginx(nginx)) if nginx else []
    server = _proxying(servers, _bind(unit_read, gunicorn_read))
    sql_read = read_sql(sql, role or "", database or "") if sql else None
    env_read = read_flask_env(flask_env) if flask_env else None
    name = Path(unit).stem if unit else (server.server_names[0] if server and server.server_names else "app")
    return [assemble(name, gunicorn_read, server, unit_read, sql_read, env_read, role, database)]


def _is_main(path: str) -> bool:
    """A main nginx.conf (with `http {}`), as opposed to a lone site file."""
    text = Path(path).read_text()
    return any(line.strip().startswith("http") and "{" in line for line in text.splitlines())


def _bind(unit: dict[str, ReadSetting], gunicorn: dict[str, ReadSetting]) -> str:
    """gunicorn's bind: a flag on ExecStart beats the config file."""
    return str((unit.get("gunicorn.bind") or gunicorn["gunicorn.bind"]).value)


def _proxying(servers: list[ProxiedServer], bind: str) -> ProxiedServer | None:
    """The server block whose proxy_pass (or its upstream) reaches gunicorn's bind."""
    target = bind.removeprefix("unix:")
    for server in servers:
        upstream = server.settings.get("nginx.upstream.server")
        candidates = [server.upstream, *(upstream.value if upstream else [])]
        if any(target in c for c in candidates):
            return server
    return servers[0] if len(servers) == 1 else None


@dataclass(frozen=True)
class _Source:
    """What rules ask of a site's source when there is no site file: its name."""

    file: str
    site: object


def check_audited(apps: list[AuditedApp]) -> list:
    """Findings of the rules that read only effective settings; a rule whose layer is absent is skipped."""
    from types import SimpleNamespace

    from deploygen.rules import RULES
    from deploygen.rules.base import SiteContext

    findings = []
    for app in apps:
        ctx = SiteContext(_Source(app.name, SimpleNamespace(name=app.name)), app.effective)
        for rule in RULES:
            if rule.reads_site_file:
                continue
            try:
                findings.extend(rule().check(ctx))
            except KeyError:
                continue
    return sorted(findings)


def audit_root(root: str, role: str | None = None, database: str | None = None) -> list[AuditedApp]:
    """Every gunicorn unit under ROOT/etc/systemd/system, linked to its config, env files and nginx block."""
    base = Path(root)
    nginx_main = base / "etc/nginx/nginx.conf"
    servers: list[ProxiedServer] = []
    if nginx_main.exists():
        servers = read_nginx(str(nginx_main))
    else:
        for folder in ("sites-enabled", "sites-available"):
            for path in sorted((base / "etc/nginx" / folder).glob("*")):
                if path.is_file():
                    servers += read_server_block(str(path))
            if servers:
                break
    apps = []
    for unit_path in sorted((base / "etc/systemd/system").glob("*.service")):
        unit = read_unit(str(unit_path))
        words = unit.get("systemd.ExecStart")
        if not words or not any("gunicorn" in w for w in words.value[:3]):
            continue
        workdir = unit.get("systemd.WorkingDirectory")
        config = None
        if "gunicorn.config_file" in unit:
            named = unit["gunicorn.config_file"].value
            where = named if named.startswith("/") else f"{workdir.value if workdir else '/'}/{named}"
            config = base / where.lstrip("/")
        gunicorn = read_gunicorn(str(config)) if config and config.exists() else gunicorn_defaults(
            str(unit_path))
        env_files = [base / f.lstrip("/") for f in (unit.get("systemd.EnvironmentFile").value
                                                    if "systemd.EnvironmentFile" in unit else [])]
        flask: dict[str, ReadSetting] = {}
        for env in env_files:
            if env.exists():
                flask.update(read_flask_env(str(env)))
        sql_file = base / "etc/deploygen" / unit_path.stem / "postgres.sql"
        sql = None
        if sql_file.exists():
            scope = sql_scope(str(sql_file))
            role, database = scope if scope else (role, database)
            sql = read_sql(str(sql_file), role or "", database or "")
        apps.append(assemble(unit_path.stem, gunicorn, _proxying(servers, _bind(unit, gunicorn)), unit, sql, flask,
                             role, database))
    return apps
