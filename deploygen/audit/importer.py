"""`deploygen import`: a site file that reproduces what audit read.

Every layer value read from a file is written under its layer's name, so the
imported site renders the settings the server runs today; values that could
not be read, or that the site file cannot hold as they are, become comments
at the top, with what deploygen would render differently from the server.
"""

from __future__ import annotations

import os

import yaml

from deploygen.audit.assemble import AuditedApp
from deploygen.duration import Duration
from deploygen.model import POSTGRES_SETTINGS
from deploygen.settings import Setting

_TIMEOUTS = {
    "nginx": ("proxy_connect_timeout", "proxy_read_timeout", "proxy_send_timeout", "send_timeout",
              "client_header_timeout", "client_body_timeout", "keepalive_timeout"),
    "gunicorn": ("timeout", "graceful_timeout", "keepalive"),
    "postgres": POSTGRES_SETTINGS,
    "systemd": ("TimeoutStopSec", "RestartSec"),
}


def _read(app: AuditedApp, key: str) -> Setting | None:
    return app.effective[key] if key in app.effective else None


def _value(setting: Setting | None):
    if setting is None:
        return None
    return str(setting.value) if isinstance(setting.value, Duration) else setting.value


def site_dict(app: AuditedApp) -> tuple[dict, list[str]]:
    """The site file's data and the comments to put above it."""
    notes = [f"could not be read: {r.key} at {r.location} ({r.unknown})" for r in app.unknown]
    eff = app.effective
    exec_start = _value(_read(app, "systemd.ExecStart")) or []
    program = exec_start[0] if exec_start else ""
    positional = [w for w in exec_start[1:] if ":" in w and not w.startswith("-") and "=" not in w]
    wsgi = _value(_read(app, "gunicorn.wsgi_app")) or (positional[-1] if positional else "app:app")
    root = _value(_read(app, "systemd.WorkingDirectory")) or _value(_read(app, "gunicorn.chdir")) or "/srv/app"
    venv = os.path.dirname(os.path.dirname(program)) if program.endswith("/bin/gunicorn") else f"{root}/venv"
    server = app.nginx
    domains = [d for d in (server.server_names if server else []) if d not in ("_", "")] or ["example.invalid"]
    if not server or not server.server_names:
        notes.append("no nginx server_name was read: domains is a placeholder")
    env_files = _value(_read(app, "systemd.EnvironmentFile")) or []
    secrets = [f for f in env_files if not f.startswith("/etc/deploygen/")]
    data: dict = {"name": app.name, "domains": domains}
    if server and server.tls.get("certificate") and server.tls.get("certificate_key"):
        data["tls"] = {"certificate": server.tls["certificate"], "certificate_key": server.tls["certificate_key"]}
    data["app"] = {"framework": "flask", "wsgi": wsgi, "root": root, "venv": venv}
    for key in ("User", "Group"):
        if _read(app, f"systemd.{key}") is not None:
            data["app"][key.lower()] = _value(_read(app, f"systemd.{key}"))
    if server and server.static:
        data["app"]["static"] = server.static
    if secrets:
        data["app"]["secrets_file"] = secrets[-1]
    data["server"] = {"bind": _value(_read(app, "gunicorn.bind"))}
    for key in ("workers", "worker_class", "threads", "max_requests", "max_requests_jitter", "forwarded_allow_ips"):
        setting = _read(app, f"gunicorn.{key}")
        if setting is not None and setting.provenance.kind == "written":
            data["server"][key] = _value(setting)
    timeouts: dict = {"request": _value(_read(app, "gunicorn.timeout"))}
    for layer, names in _TIMEOUTS.items():
        section = {n: _value(_read(app, f"{layer}.{n}")) for n in names
                   if _read(app, f"{layer}.{n}") is not None and _read(app, f"{layer}.{n}").value is not None}
        if section:
            timeouts[layer] = section
    kt = _read(app, "nginx.upstream.keepalive_timeout")
    if kt is not None and _read(app, "nginx.upstream.keepalive") and eff.value("nginx.upstream.keepalive"):
        timeouts.setdefault("nginx", {})["upstream"] = {"keepalive_timeout": _value(kt)}
    data["timeouts"] = timeouts
    nginx: dict = {}
    if _read(app, "nginx.client_max_body_size") is not None:
        nginx["client_max_body_size"] = _value(_read(app, "nginx.client_max_body_size"))
    if _read(app, "nginx.proxy_buffering") is not None:
        nginx["proxy_buffering"] = _value(_read(app, "nginx.proxy_buffering"))
    if _read(app, "nginx.upstream.keepalive") is not None:
        nginx["upstream"] = {"keepalive": _value(_read(app, "nginx.upstream.keepalive"))}
    if nginx:
        data["nginx"] = nginx
    if app.database:
        pool = {}
        for name, key in (("size", "pool_size"), ("max_overflow", "max_overflow"), ("timeout", "pool_timeout"),
                          ("recycle", "pool_recycle"), ("pre_ping", "pool_pre_ping")):
            if _read(app, f"sqlalchemy.{key}") is not None:
                pool[name] = _value(_read(app, f"sqlalchemy.{key}"))
        data["database"] = {"name": app.database[1], "role": app.database[0], **({"pool": pool} if pool else {})}
    session: dict = {}
    if _read(app, "flask.PERMANENT_SESSION_LIFETIME") is not None:
        session["lifetime"] = _value(_read(app, "flask.PERMANENT_SESSION_LIFETIME"))
    if _read(app, "flask.SESSION_REFRESH_EACH_REQUEST") is not None:
        session["refresh_each_request"] = _value(_read(app, "flask.SESSION_REFRESH_EACH_REQUEST"))
    cookie = {name.lower(): _value(_read(app, f"flask.SESSION_COOKIE_{name}"))
              for name in ("NAME", "DOMAIN", "SECURE", "HTTPONLY", "SAMESITE")
              if _read(app, f"flask.SESSION_COOKIE_{name}") is not None}
    if cookie:
        session["cookie"] = cookie
    if session:
        data["session"] = session
    return data, notes


def _written_paths(data: dict, prefix: tuple = ()) -> dict:
    """Every key path of `data`, so that derive sees them as written (positions do not matter here)."""
    paths: dict = {}
    for key, value in data.items():
        path = (*prefix, key)
        paths[path] = (1, 1)
        if isinstance(value, dict):
            paths.update(_written_paths(value, path))
    return paths


def derived_differences(data: dict) -> list[str]:
    """Timeouts written today that deploygen would derive otherwise from the same budget."""
    from deploygen.derive import derive
    from deploygen.load import LoadedSite
    from deploygen.model import Site
    from deploygen.yamlsource import Document

    def effective(d: dict):
        site = Site.model_validate(d)
        return derive(LoadedSite("imported", site, Document("imported", d, _written_paths(d))))

    budget_only = {**data, "timeouts": {"request": data["timeouts"]["request"]}}
    try:
        today, derived = effective(data), effective(budget_only)
    except ValueError as exc:
        return [f"(not comparable: {str(exc).splitlines()[0]})"]
    out = []
    for setting in today:
        if setting.layer in _TIMEOUTS and setting.provenance.kind == "written" and setting.key in derived:
            other = derived[setting.key]
            if other.value != setting.value:
                out.append(f"{setting.key}: {setting.display} today, {other.display} derived "
                           f"({other.provenance.how.split(': ', 1)[0]})")
    return out


def site_yaml(app: AuditedApp, findings: list[str]) -> str:
    data, notes = site_dict(app)
    head = [f"# Imported by deploygen from the configuration of {app.name}; every value is what runs today."]
    head += [f"# {n}" for n in notes]
    if findings:
        head.append("# what the rules find in it today:")
        head += [f"#   {f}" for f in findings]
    differences = derived_differences(data)
    if differences:
        head.append("# deploygen would render differently if these timeouts were left to it:")
        head += [f"#   {d}" for d in differences]
    return "\n".join(head) + "\n" + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
