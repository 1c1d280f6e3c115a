"""`deploygen import`: a site file that reproduces what audit read.

Every layer value read from a file is written under its layer's name, so the
imported site renders the settings the server runs today; values that could
not be read, or that the site file cannot hold as they are, become comments
at the top, with what deploygen would render differently from the server.
"""

from __future__ import annotations

import os
import tempfile

import yaml

from deploygen.audit.assemble import AuditedApp
from deploygen.sitefile.duration import Duration
from deploygen.errors import InputError, Location, Problem, printable
from deploygen.sitefile.model import POSTGRES_SETTINGS
from deploygen.derive.settings import Setting

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
    from deploygen.sitefile.load import LoadedSite
    from deploygen.kinds import SITE_FILE
    from deploygen.sitefile.yamlsource import Document

    def effective(d: dict):
        site = SITE_FILE.validate_python(d)
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
                           f"({other.provenance.formula})")
    return out


def site_yaml(app: AuditedApp, findings: list[str], built: tuple[dict, list[str]] | None = None) -> str:
    """The site file's text. Values go through YAML's emitter, which quotes what needs it; the
    comments above them are one line each whatever the values they repeat hold. `built` is
    `site_dict(app)` when the caller has it already."""
    data, notes = built or site_dict(app)
    head = [f"Imported by deploygen from the configuration of {app.name}; every value is what runs today."]
    head += notes
    if findings:
        head.append("what the rules find in it today:")
        head += [f"  {f}" for f in findings]
    differences = derived_differences(data)
    if differences:
        head.append("deploygen would render differently if these timeouts were left to it:")
        head += [f"  {d}" for d in differences]
    return "".join(f"# {printable(line)}\n" for line in head) + yaml.safe_dump(
        data, sort_keys=False, default_flow_style=False)


# Where each part of the site file comes from: the setting audit read it from, for a message
# that points at the server's file when the site file refuses a value.
_ORIGINS = (
    ("name", "systemd.ExecStart"), ("app.user", "systemd.User"), ("app.group", "systemd.Group"),
    ("app.root", "systemd.WorkingDirectory"), ("app.venv", "systemd.ExecStart"), ("app.wsgi", "gunicorn.wsgi_app"),
    ("app.secrets_file", "systemd.EnvironmentFile"), ("timeouts.request", "gunicorn.timeout"),
    ("timeouts.nginx.upstream", "nginx.upstream.keepalive_timeout"), ("nginx.upstream", "nginx.upstream.keepalive"),
    ("session.lifetime", "flask.PERMANENT_SESSION_LIFETIME"),
    ("session.refresh_each_request", "flask.SESSION_REFRESH_EACH_REQUEST"),
    ("database", "postgres.statement_timeout"), ("database.pool", "sqlalchemy.pool_size"),
)


def origin(app: AuditedApp, key: str) -> Location | None:
    """Where the value at site key `key` (`server.bind`, `domains[0]`) was read, when audit knows."""
    parts = key.replace("[", ".[").split(".")
    if parts[0] in ("domains", "tls") or key.startswith("app.static"):
        return Location(app.nginx.file, app.nginx.line, 1) if app.nginx else None
    if parts[0] == "timeouts" and len(parts) == 3:
        candidates = [f"{parts[1]}.{parts[2]}"]
    elif parts[0] == "server" and len(parts) > 1:
        candidates = [f"gunicorn.{parts[1]}"]
    elif parts[0] == "nginx" and len(parts) > 1:
        candidates = [f"nginx.{parts[1]}"]
    elif key.startswith("session.cookie.") and len(parts) > 2:
        candidates = [f"flask.SESSION_COOKIE_{parts[2].upper()}"]
    else:
        candidates = []
    candidates += [setting for prefix, setting in sorted(_ORIGINS, key=lambda o: -len(o[0]))
                   if key == prefix or key.startswith((prefix + ".", prefix + "["))]
    for setting in candidates:
        if setting in app.effective:
            return app.effective[setting].provenance.location
        for read in app.unknown:
            if read.key == setting:
                return read.location
    return None


def write_site(app: AuditedApp, findings: list[str], output: str) -> None:
    """Write the imported site file to `output`, or nothing at all.

    The text is loaded back with deploygen's own loader before it replaces `output`: a value
    the site file refuses (a server_name holding a newline, a user named `root`) is refused
    here, located where it was read, instead of being written for `validate` to find. The
    file is written beside `output` and renamed over it, so a failure leaves no half file.
    """
    from deploygen.sitefile.load import load_site

    built = site_dict(app)
    text = site_yaml(app, findings, built)
    folder = os.path.dirname(output) or "."
    fd, staged = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(output)}.", suffix=".yaml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        loaded, problems = load_site(staged)
        # Loaded back, the file must hold exactly the values read: no more keys, no other values.
        if loaded is None or loaded.document.data != built[0]:
            raise InputError([_refused(app, p, staged, output) for p in problems] or [
                Problem(Location(printable(output), 1, 1), "", "the imported site file does not load back as written; "
                        "nothing written")])
        os.chmod(staged, 0o666 & ~_umask())
        os.replace(staged, output)
    except BaseException:
        os.unlink(staged)
        raise


def _refused(app: AuditedApp, problem: Problem, staged: str, output: str) -> Problem:
    """A problem of the staged file, told at the server file the value came from."""
    where = origin(app, problem.key) or Location(printable(output), 1, 1)
    message = problem.message.replace(staged, output)
    return Problem(where, problem.key, f"{message} (the site file refuses this value read here; nothing written)")


def _umask() -> int:
    mask = os.umask(0o22)
    os.umask(mask)
    return mask
