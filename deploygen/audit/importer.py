"""`deploygen import`: a site file that reproduces what audit read.

Every layer value read from a file is written under its layer's name, so the
imported site renders the settings the server runs today; values that could
not be read, or that the site file cannot hold as they are, become comments
at the top, with what deploygen would render differently from the server.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile

import yaml

from deploygen.audit.assemble import AuditedApp
from deploygen.audit.import_locations import locations
from deploygen.audit.import_values import domains, site_bind, site_name, wsgi_target
from deploygen.derive.settings import Setting
from deploygen.errors import InputError, Location, Problem, printable, shown
from deploygen.sitefile.duration import Duration, Unbounded
from deploygen.sitefile.model import POSTGRES_SETTINGS
from deploygen.sitefile.snippet import bare, build

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


def site_dict(app: AuditedApp, snippet_name: str | None = None) -> tuple[dict, list[str], list[dict]]:
    """The site file's data, the comments to put above it, and the snippet's locations
    (import_locations; none: no snippet). `snippet_name` is the file the site names for them."""
    if app.kind == "php":
        from deploygen.audit.import_php import php_site_dict

        return php_site_dict(app, snippet_name)
    notes = [f"could not be read: {r.key} at {r.location} ({r.unknown})" for r in app.unknown]
    exec_start = _value(_read(app, "systemd.ExecStart")) or []
    command = _value(_read(app, "gunicorn.command"))
    program = getattr(command, "program", "") or (exec_start[0] if exec_start else "")
    root = _path(_value(_read(app, "gunicorn.chdir")) or _value(_read(app, "systemd.WorkingDirectory"))) or "/srv/app"
    server = app.nginx
    data = site_head(app, root, site_name, notes)
    name = data["name"]
    kind = app.kind
    venv = _venv(program, root)
    if venv is None:
        venv = f"{root}/venv"
        notes.append(f"app.venv: gunicorn is started through {shown(program or 'no program')}: {venv} is a placeholder")
    entry = _value(_read(app, "gunicorn.wsgi_app"))
    data["app"] = {"framework": kind, "wsgi": wsgi_target(entry, kind), "root": root, "venv": venv}
    user = _read(app, "systemd.User")
    if user is not None and isinstance(user.value, str):
        data["app"]["user"] = user.value  # root too: what runs today, which DG701 reports
    group = _value(_read(app, "systemd.Group"))
    if isinstance(group, str):
        data["app"]["group"] = group
    env_files = _value(_read(app, "systemd.EnvironmentFile")) or []
    secrets = [f for f in env_files if not f.startswith("/etc/deploygen/")]
    if secrets:
        data["app"]["secrets_file"] = _path(secrets[-1])
    bind, why = site_bind(app.bind or _value(_read(app, "gunicorn.bind")) or "", name)
    notes += [why] if why else []
    data["server"] = {"bind": bind}
    _server(app, data["server"], kind, notes)
    data["timeouts"] = _timeouts(app, notes)
    nginx = _nginx(app)
    if server is not None:
        placed = locations(server, app.reaching, f"{name}_gunicorn")
        notes += placed.notes
        if placed.static:
            data["app"]["static"] = placed.static
        if placed.app_paths != ["/"]:
            nginx["app_paths"] = placed.app_paths
        if placed.aliases:
            nginx["aliases"] = placed.aliases
        if placed.websockets:
            nginx["websockets"] = placed.websockets
        if placed.snippet:
            nginx["snippet"] = snippet_name or f"{name}.locations.conf"
        snippet = placed.snippet
    else:
        snippet = []
    if nginx:
        data["nginx"] = nginx
    if kind == "django":
        settings = (_value(_read(app, "systemd.Environment")) or {}).get("DJANGO_SETTINGS_MODULE")
        if settings:
            data["django"] = {"DJANGO_SETTINGS_MODULE": settings}
    if app.database:
        data["database"] = {"name": app.database[1], "role": app.database[0]}
        pool = _pool(app) if kind == "flask" else {}
        if pool:
            data["database"]["pool"] = pool
    if kind == "flask":
        session = _flask_session(app)
        if session:
            data["session"] = session
    return data, notes, snippet


def site_head(app, root: str, name_of, notes: list[str]) -> dict:
    """The site file's name, domains and tls, any kind's, from the app's nginx server block;
    `name_of(app name, server names, root)` is the kind's way to name the site (and why)."""
    server = app.nginx
    names = server.server_names if server else []
    name, why = (app.name, None) if app.named else name_of(app.name, names, root)
    notes += [why] if why else []
    data: dict = {"name": name}
    found, left_out = domains(names)
    notes += left_out
    if not found:
        notes.append("domains: no nginx server_name was read: example.invalid is a placeholder")
    data["domains"] = found or ["example.invalid"]
    if server and server.tls.get("certificate") and server.tls.get("certificate_key"):
        pair = {"certificate": server.tls["certificate"], "certificate_key": server.tls["certificate_key"]}
        unsafe = [key for key, path in pair.items() if _path(path) != path or not _safe(path)]
        if unsafe:
            notes.append(f"tls: the server's {unsafe[0]} {shown(pair[unsafe[0]])} is no path a site file holds "
                         "(a variable of a template?): imported without tls")
        else:
            data["tls"] = pair
    return data


def _path(path: object) -> str | None:
    """A server's path as a site file writes it: `/srv/x/` and `/srv//x` are `/srv/x`."""
    if not isinstance(path, str) or not path.startswith("/"):
        return None
    return os.path.normpath(path).replace("//", "/")


def _safe(path: str) -> bool:
    """Whether the site file takes `path` as it is (fields._safe_path)."""
    from deploygen.sitefile.fields import _safe_path

    try:
        _safe_path(path)
    except ValueError:
        return False
    return True


def _venv(program: str, root: str) -> str | None:
    """The virtualenv gunicorn runs from: VENV/bin/gunicorn, or VENV/bin/python* -m gunicorn."""
    folder, base = os.path.split(program)
    if os.path.basename(folder) == "bin" and (base == "gunicorn" or base.startswith("python")):
        venv = os.path.dirname(folder)
        return venv if venv not in ("/usr", "/usr/local", "") else None
    return None


def _server(app: AuditedApp, server: dict, kind: str, notes: list[str]) -> None:
    """gunicorn's process settings the server writes, as the kind's site file holds them."""
    for key in ("workers", "threads", "max_requests", "max_requests_jitter", "forwarded_allow_ips"):
        setting = _read(app, f"gunicorn.{key}")
        if setting is not None and setting.provenance.kind == "written":
            server[key] = _value(setting)
    worker = _read(app, "gunicorn.worker_class")
    if worker is not None and worker.provenance.kind == "written":
        if worker.value in ("sync", "gthread", "gevent", "eventlet") and kind != "asgi":
            server["worker_class"] = worker.value
        elif kind != "asgi":
            notes.append(f"server.worker_class: {shown(worker.value)} is no worker deploygen renders for {kind}: "
                         "left to its default")
    if kind == "asgi":
        server.pop("threads", None)
    if isinstance(server.get("forwarded_allow_ips"), list):
        server["forwarded_allow_ips"] = ",".join(server["forwarded_allow_ips"])


def _timeouts(app: AuditedApp, notes: list[str]) -> dict:
    """The budget (gunicorn's timeout) and every layer timeout the server writes."""
    request = _read(app, "gunicorn.timeout")
    timeouts: dict = {"request": _value(request)}
    if request is not None and isinstance(request.value, Unbounded):
        timeouts["request"] = "1d"
        notes.append("timeouts.request: gunicorn's timeout is 0 (no limit): imported as 1d, the longest a site "
                     "file budgets; deploygen renders a limit")
    for layer, names in _TIMEOUTS.items():
        section = {}
        for n in names:
            setting = _read(app, f"{layer}.{n}")
            if setting is None or setting.value is None or layer == "gunicorn" and n == "timeout":
                continue
            if isinstance(setting.value, Unbounded):
                notes.append(f"timeouts.{layer}.{n}: {setting.value} on the server: left to deploygen's derivation")
                continue
            section[n] = _value(setting)
        if section:
            timeouts[layer] = section
    kt = _read(app, "nginx.upstream.keepalive_timeout")
    if kt is not None and _read(app, "nginx.upstream.keepalive") and app.effective.value("nginx.upstream.keepalive"):
        timeouts.setdefault("nginx", {})["upstream"] = {"keepalive_timeout": _value(kt)}
    return timeouts


def _nginx(app: AuditedApp) -> dict:
    nginx: dict = {}
    if _read(app, "nginx.client_max_body_size") is not None:
        nginx["client_max_body_size"] = _value(_read(app, "nginx.client_max_body_size"))
    if _read(app, "nginx.proxy_buffering") is not None:
        nginx["proxy_buffering"] = _value(_read(app, "nginx.proxy_buffering"))
    if _read(app, "nginx.upstream.keepalive") is not None:
        nginx["upstream"] = {"keepalive": _value(_read(app, "nginx.upstream.keepalive"))}
    return nginx


def _pool(app: AuditedApp) -> dict:
    pool = {}
    for name, key in (("size", "pool_size"), ("max_overflow", "max_overflow"), ("timeout", "pool_timeout"),
                      ("recycle", "pool_recycle"), ("pre_ping", "pool_pre_ping")):
        if _read(app, f"sqlalchemy.{key}") is not None:
            pool[name] = _value(_read(app, f"sqlalchemy.{key}"))
    return pool


def _flask_session(app: AuditedApp) -> dict:
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
    return session


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
    from deploygen.kinds import SITE_FILE
    from deploygen.sitefile.load import LoadedSite
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
        timeout = setting.layer in _TIMEOUTS or setting.layer in ("php-fpm", "php") and \
            isinstance(setting.value, Duration)
        if timeout and setting.provenance.kind == "written" and setting.key in derived:
            other = derived[setting.key]
            if other.value != setting.value:
                out.append(f"{setting.key}: {setting.display} today, {other.display} derived "
                           f"({other.provenance.formula})")
    return out


def site_yaml(app: AuditedApp, findings: list[str], built: tuple[dict, list[str], list[dict]] | None = None) -> str:
    """The site file's text. Values go through YAML's emitter, which quotes what needs it; the
    comments above them are one line each whatever the values they repeat hold. `built` is
    `site_dict(app)` when the caller has it already."""
    data, notes, _ = built or site_dict(app)
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


def snippet_text(app: AuditedApp, snippet: list[dict]) -> str:
    """The snippet file: the locations import carries, as crossplane builds them."""
    head = f"# Imported by deploygen from {printable(app.nginx.file)}:{app.nginx.line}: the locations it does not model.\n"
    return head + build(snippet) + "\n"


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
    if app.kind == "php":
        from deploygen.audit.import_php import php_origin

        found = php_origin(app, key)
        if found is not None:
            return found
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
    return located(app, candidates)


def located(app: AuditedApp, settings: list[str]) -> Location | None:
    """Where the first of `settings` the app has was read (or could not be), else None."""
    for setting in settings:
        if setting in app.effective:
            return app.effective[setting].provenance.location
        for read in app.unknown:
            if read.key == setting:
                return read.location
    return None


def write_site(app: AuditedApp, findings: list[str], output: str) -> None:
    """Write the imported site file to `output` (and its snippet beside it), or nothing at all.

    The text is loaded back with deploygen's own loader before it replaces `output`: a value
    the site file refuses (a server_name holding a newline, a user named `root`) is refused
    here, located where it was read, instead of being written for `validate` to find. Both
    files are written in a folder beside `output`, loaded from there, then renamed into place,
    so a failure leaves no half file."""
    from deploygen.sitefile.load import load_site

    if os.path.isdir(output):
        raise InputError([Problem(Location(printable(output), 1, 1), "", "a folder, not a site file: nothing written")])
    stem = os.path.basename(output).rsplit(".", 1)[0]
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*", stem):
        # The snippet is named after the site file: a fallback name would be another site's.
        raise InputError([Problem(Location(printable(output), 1, 1), "", "name the site file with letters, digits "
                                  "and . _ - (not first . or -): its nginx snippet is named after it; nothing written")])
    snippet_name = f"{stem}.locations.conf"
    built = site_dict(app, snippet_name)
    data, _, snippet = built
    text = site_yaml(app, findings, built)
    folder = os.path.dirname(output) or "."
    staged_dir = tempfile.mkdtemp(dir=folder, prefix=".deploygen-import-")
    try:
        staged = os.path.join(staged_dir, os.path.basename(output))
        with open(staged, "w", encoding="utf-8") as f:
            f.write(text)
        if snippet:
            with open(os.path.join(staged_dir, data["nginx"]["snippet"]), "w", encoding="utf-8") as f:
                f.write(snippet_text(app, snippet))
        loaded, problems = load_site(staged)
        # Loaded back, the files must hold exactly the values read: no more keys, no other values,
        # the snippet's locations as carried.
        if loaded is None or loaded.document.data != data or snippet and bare(loaded.snippet) != bare(snippet):
            raise InputError([_refused(app, p, staged, output) for p in problems] or [
                Problem(Location(printable(output), 1, 1), "", "the imported site file does not load back as written; "
                        "nothing written")])
        mode = 0o666 & ~_umask()
        if snippet:
            name = data["nginx"]["snippet"]
            os.chmod(os.path.join(staged_dir, name), mode)
            os.replace(os.path.join(staged_dir, name), os.path.join(folder, name))
        os.chmod(staged, mode)
        os.replace(staged, output)
    finally:
        shutil.rmtree(staged_dir, ignore_errors=True)


def _refused(app: AuditedApp, problem: Problem, staged: str, output: str) -> Problem:
    """A problem of the staged file, told at the server file the value came from."""
    where = origin(app, problem.key) or Location(printable(output), 1, 1)
    # Told at the files' own paths, not the staging folder's, which is gone by then.
    message = problem.message.replace(staged, output).replace(os.path.dirname(staged), os.path.dirname(output) or ".")
    return Problem(where, problem.key, f"{message} (the site file refuses this value read here; nothing written)")


def _umask() -> int:
    mask = os.umask(0o22)
    os.umask(mask)
    return mask
