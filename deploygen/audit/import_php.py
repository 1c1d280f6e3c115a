"""`import` of a PHP-FPM pool: the php site file that reproduces what the pool runs today.

The budget is the pool's request_terminate_timeout (FPM's wall clock, which everything
else is derived around); every other limit is written under its layer's name, as read
(php-fpm's and PHP's defaults included: what runs is what the file says). Sessions: an
idle timeout (gc_maxlifetime with a cookie that ends with the browser), a lifetime (the
cookie ends with it), or both spelled out. The server block's `location /` and the
locations that pass to the pool are what deploygen's own PHP locations render; every other
location is sorted as for gunicorn's apps (import_locations), into `app.static`,
`nginx.aliases` or the snippet. What the site file cannot hold becomes a note.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace

from deploygen.audit.import_locations import locations
from deploygen.audit.import_values import site_bind, site_name
from deploygen.derive.settings import Setting
from deploygen.errors import shown
from deploygen.sitefile.duration import Duration, Unbounded
from deploygen.sitefile.model import POSTGRES_SETTINGS

_NGINX = ("fastcgi_connect_timeout", "fastcgi_read_timeout", "fastcgi_send_timeout", "send_timeout",
          "client_header_timeout", "client_body_timeout", "keepalive_timeout")
_SIZE = re.compile(r"[0-9]{1,6}[KMG]?")
# The folders a document root conventionally sits in under the app's own (Laravel's public/).
_DOCROOTS = ("public", "web", "htdocs", "html", "www", "public_html")
_FRONT = re.compile(r"/?([A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*\.php)(\$is_args\$args|\?\$query_string|\?\$args)?")


def _get(app, key: str) -> Setting | None:
    if key not in app.effective:
        return None
    return app.effective[key]


def _value(setting: Setting | None):
    if setting is None:
        return None
    return str(setting.value) if isinstance(setting.value, Duration) else setting.value


def _path(path: object) -> str | None:
    if not isinstance(path, str) or not path.startswith("/"):
        return None
    return os.path.normpath(path).replace("//", "/")


def _positive(setting: Setting | None) -> bool:
    return setting is not None and isinstance(setting.value, Duration) and not isinstance(setting.value, Unbounded) \
        and setting.value.ms > 0


def php_site_dict(app, snippet_name: str | None = None) -> tuple[dict, list[str], list[dict]]:
    """The site file's data, the notes above it and the snippet's locations, for a pool."""
    from deploygen.audit.importer import site_head

    notes = [f"could not be read: {r.key} at {r.location} ({r.unknown})" for r in app.unknown]
    facts = app.pool
    server = app.nginx
    docroot = _path(_value(_get(app, "nginx.root")))
    root = _path(getattr(facts, "chdir", None))
    if root is None and docroot is not None:
        parent, leaf = os.path.split(docroot)
        root = parent if leaf in _DOCROOTS and parent != "/" else docroot
        notes.append(f"app.root: the pool has no chdir: {root}, from nginx's root {docroot}")
    if root is None:
        root = "/srv/app"
        notes.append("app.root: no chdir and no nginx root was read: /srv/app is a placeholder")
    if docroot is None or not (docroot == root or docroot.startswith(root.rstrip("/") + "/")):
        if docroot is not None:
            notes.append(f"app.docroot: nginx serves {docroot}, outside the pool's chdir {root}: imported as {root}")
        else:
            notes.append(f"app.docroot: no nginx location passes to this pool: {root} (its chdir) is a placeholder")
        docroot = root
    data = site_head(app, root, _site_name, notes)
    name = data["name"]
    data["app"] = _app(app, root, docroot, notes)
    bind, why = _bind(app.bind or "", name)
    notes += [why] if why else []
    data["server"] = {"bind": bind, **_pool(app, notes)}
    data["timeouts"] = _timeouts(app, notes)
    nginx: dict = {}
    size = _value(_get(app, "nginx.client_max_body_size"))
    if size is not None:
        nginx["client_max_body_size"] = size
    snippet: list[dict] = []
    if server is not None:
        placed = locations(_without_modelled(app, server, notes), [], f"{name}_fpm")
        notes += placed.notes
        if placed.static:
            data["app"]["static"] = placed.static
        if placed.aliases:
            nginx["aliases"] = placed.aliases
        if placed.snippet:
            nginx["snippet"] = snippet_name or f"{name}.locations.conf"
            snippet = placed.snippet
    if nginx:
        data["nginx"] = nginx
    database = _database(app, notes)
    if database:
        data["database"] = database
    session, ini = _sessions(app, name, notes)
    if session:
        data["session"] = session
    if ini:
        data["php"] = ini
    _prune(data, notes)
    return data, notes, snippet


def _site_name(pool: str, server_names: list[str], root: str) -> tuple[str, str | None]:
    """The site's name from the pool's, unless the pool's is one php-fpm or Debian's packages own
    (`www`, Debian's own pool; `global`; `php`): then from server_name or the folder."""
    from deploygen.kinds.php.model import PHP_OWN_NAMES

    if pool.lower() not in PHP_OWN_NAMES:
        name, why = site_name(pool, server_names, root)
        if name not in PHP_OWN_NAMES:
            return name, why
    name, why = site_name("", server_names, root)
    if name in PHP_OWN_NAMES:
        name, why = "app", "name: app (no pool, server_name or folder gave a site name: rename it)"
    return name, f"{why} (the pool's name {shown(pool)} is PHP's own)" if why else why


def _prune(data: dict, notes: list[str]) -> None:
    """Leave out, said, every key the php site file has no place for (its model decides)."""
    from deploygen.kinds.php.model import PhpSite

    def known(model) -> set[str]:
        return {f.alias or name for name, f in model.model_fields.items()}

    def model_of(model, key):
        field = model.model_fields.get(key) or next((f for f in model.model_fields.values() if f.alias == key), None)
        annotation = getattr(field, "annotation", None)
        for candidate in (annotation, *getattr(annotation, "__args__", ())):
            if isinstance(candidate, type) and hasattr(candidate, "model_fields"):
                return candidate
        return None

    def walk(section: dict, model, path: str) -> None:
        for key in list(section):
            if key not in known(model):
                notes.append(f"{path}{key}: {shown(section.pop(key))} on the server: no key of a php site file "
                             "holds it: left out")
                continue
            inner = model_of(model, key)
            if isinstance(section[key], dict) and inner is not None and key not in ("aliases", "websockets"):
                walk(section[key], inner, f"{path}{key}.")

    walk(data, PhpSite, "")


def _bind(listen: str, name: str) -> tuple[str, str | None]:
    """The pool's listen as the site file holds it: a socket in the site's own /run/NAME/ (php-fpm's
    unit creates that folder for it), else that socket, and why (a PHP site listens on no port)."""
    socket = f"unix:/run/{name}/php-fpm.sock"
    bind, _ = site_bind(listen, name)
    if not bind.startswith("unix:"):
        return socket, (f"server.bind: the pool listens on {shown(listen)}, a TCP port, where any local user may "
                        f"send it PHP_VALUE: imported as {socket} (the rendered nginx follows it)")
    folder = bind[len("unix:/run/"):].rsplit("/", 1)[0] if bind.startswith("unix:/run/") else None
    if bind != listen or folder is None or not (folder == name or folder.startswith(name + "/")):
        return socket, (f"server.bind: the pool listens on {shown(listen.removeprefix('unix:'))}, no socket in "
                        f"the site's own /run/{name}/: imported as {socket} (the rendered nginx follows it)")
    return bind, None


def _app(app, root: str, docroot: str, notes: list[str]) -> dict:
    facts = app.pool
    out: dict = {"framework": "php", "root": root, "docroot": docroot}
    front = _front_controller(app)
    if front and front != "index.php":
        out["front_controller"] = front
    version = getattr(facts, "version", None)
    if version and version != "8.2":
        out["php_version"] = version
    user = _value(_get(app, "php-fpm.user"))
    nginx_user = _value(_get(app, "nginx.user"))
    if user in ("root", "www-data", nginx_user):
        notes.append(f"app.user: the pool runs as {user}, "
                     + ("which php-fpm refuses unless started with -R" if user == "root" else
                        "nginx's user, who owns every pool's socket")
                     + ": left out (deploygen's default: the site's own user)")
    elif isinstance(user, str):
        out["user"] = user
    group = _value(_get(app, "php-fpm.group"))
    if isinstance(group, str) and group != "root" and "user" in out:
        out["group"] = group
    secrets = _secrets_file(app)
    if secrets:
        out["secrets_file"] = secrets
    return out


def _secrets_file(app) -> str | None:
    """The site's secrets: a file its pool includes from outside php's own folders (deploygen
    renders `include = SECRETS` at the pool's end), else an EnvironmentFile= php-fpm's unit
    loads for it."""
    for value in reversed(getattr(app.pool, "includes", [])):
        path = _path(value.text)
        if path and not path.startswith(("/etc/php/", "/etc/php-fpm")) and "*" not in path:
            return path
    env_files = _value(_get(app, "systemd.EnvironmentFile")) or []
    return (_path(env_files[-1]) or env_files[-1]) if env_files else None


def _front_controller(app) -> str | None:
    """The script `location /` falls back to (`try_files $uri $uri/ /index.php?$query_string`),
    else nginx's index when it is a script."""
    server = app.nginx
    for location in (*server.others, *server.files) if server else ():
        if location.directive.get("args") == ["/"]:
            for d in location.directive.get("block", []):
                if d["directive"] == "try_files" and d["args"]:
                    match = _FRONT.fullmatch(d["args"][-1])
                    if match:
                        return match.group(1)
    index = _value(_get(app, "nginx.index"))
    return index if isinstance(index, str) and index.endswith(".php") and _FRONT.fullmatch(index) else None


def _pool(app, notes: list[str]) -> dict:
    """The pool's process manager as the site file's `server:` holds it."""
    out: dict = {}
    pm = _value(_get(app, "php-fpm.pm"))
    if pm in ("static", "dynamic", "ondemand"):
        out["pm"] = pm
    for key in ("max_children", "start_servers", "min_spare_servers", "max_spare_servers", "max_requests"):
        setting = _get(app, f"php-fpm.pm.{key}")
        if setting is None or not isinstance(setting.value, int):
            continue
        if key == "start_servers" and setting.provenance.kind != "written":
            continue  # php-fpm's own formula, which deploygen derives alike
        if pm != "dynamic" and key in ("start_servers", "min_spare_servers", "max_spare_servers"):
            continue
        low = 0 if key == "max_requests" else 1
        if low <= setting.value <= (10_000_000 if key == "max_requests" else 10_000):
            out[key] = setting.value
        else:
            notes.append(f"server.{key}: {setting.value} on the server is no count a site file holds: left to "
                         "deploygen's derivation")
    idle = _get(app, "php-fpm.pm.process_idle_timeout")
    if pm == "ondemand" and _positive(idle):
        out["process_idle_timeout"] = str(idle.value)
    return out


def _timeouts(app, notes: list[str]) -> dict:
    terminate = _get(app, "php-fpm.request_terminate_timeout")
    timeouts: dict = {}
    fpm: dict = {}
    if _positive(terminate):
        timeouts["request"] = str(terminate.value)
    else:
        timeouts["request"] = "1d"
        if terminate is not None:
            fpm["request_terminate_timeout"] = "0s"  # what runs: no limit, which DG803 reports
        said = "0 (no limit)" if terminate is not None else "not read"
        notes.append(f"timeouts.request: php-fpm's request_terminate_timeout is {said}: the budget is imported as "
                     "1d, the longest a site file holds")
    sections = {
        "nginx": [(n, _get(app, f"nginx.{n}")) for n in _NGINX],
        "php-fpm": [(n, _get(app, f"php-fpm.{n}")) for n in ("request_slowlog_timeout", "process_control_timeout")],
        "postgres": [(n, _get(app, f"postgres.{n}")) for n in POSTGRES_SETTINGS],
        "systemd": [("TimeoutStopSec", _get(app, "systemd.TimeoutStopSec"))],
    }
    for layer, pairs in sections.items():
        section = fpm if layer == "php-fpm" else {}
        for n, setting in pairs:
            if setting is None or setting.value is None:
                continue
            if isinstance(setting.value, Unbounded):
                notes.append(f"timeouts.{layer}.{n}: {setting.value} on the server: left to deploygen's derivation")
            elif setting.value.ms == 0:
                if layer == "php-fpm":
                    section[n] = "0s"  # php-fpm's off, which the site file holds as it is
            else:
                section[n] = str(setting.value)
        if section:
            timeouts[layer] = section
    execution = _get(app, "php.max_execution_time")
    if execution is not None and isinstance(execution.value, Duration):
        timeouts["php"] = {"max_execution_time": str(execution.value) if execution.value.ms else "0s"}
    return timeouts


def _without_modelled(app, server, notes: list[str]):
    """The server block less what deploygen's PHP locations render: `location /` when it only
    tries files, and every location that passes to this pool."""
    from deploygen.audit.endpoint import from_bind

    bind = from_bind(app.bind) if app.bind else None
    to_pool = {(loc.file, loc.line) for loc in app.reaching}
    to_pool |= {(loc.file, loc.line) for loc in server.fastcgi
                if bind is not None and any(t.reaches(bind) for t in loc.targets)}

    def modelled(location) -> bool:
        if (location.file, location.line) in to_pool:
            extra = [d["directive"] for d in location.directive.get("block", [])
                     if d["directive"] not in _FASTCGI_MODELLED]
            if extra:
                notes.append(f"nginx: location {' '.join(location.directive.get('args', []))} passes to the pool "
                             f"with {', '.join(sorted(set(extra)))}: deploygen's own PHP location replaces it")
            return True
        if location.directive.get("args") == _HIDDEN and \
                [(d["directive"], d["args"]) for d in location.directive.get("block", [])] == [("deny", ["all"])]:
            return True  # templates/nginx/_fastcgi.j2 renders this one itself
        if location.directive.get("args") == ["/"] and not location.proxy_pass:
            block = location.directive.get("block", [])
            if any(d["directive"] != "try_files" for d in block):
                notes.append("nginx: location / does more than try files: deploygen's own (try_files to the front "
                             "controller) replaces it")
            return True
        return False

    # The server block's own root and index are app.docroot and the front controller; its
    # fastcgi_* timeouts reach the pool's location, whose timeouts the site file carries.
    carried = {"root", "index", "fastcgi_read_timeout", "fastcgi_send_timeout", "fastcgi_connect_timeout"}
    return replace(server, directives=[d for d in server.directives if d[0] not in carried],
                   locations=[x for x in server.locations if not modelled(x)],
                   files=[x for x in server.files if not modelled(x)],
                   others=[x for x in server.others if not modelled(x)])


# The location deploygen's PHP server block denies the docroot's hidden files with.
_HIDDEN = ["~", "/\\.(?!well-known/)"]
# What deploygen's PHP location says itself (templates/nginx/_fastcgi.j2), or nginx's FastCGI
# parameters every PHP location includes.
_FASTCGI_MODELLED = {"fastcgi_pass", "fastcgi_param", "fastcgi_index", "fastcgi_split_path_info", "try_files",
                     "fastcgi_read_timeout", "fastcgi_send_timeout", "fastcgi_connect_timeout", "set", "include",
                     "fastcgi_buffers", "fastcgi_buffer_size"}


def _database(app, notes: list[str]) -> dict:
    from deploygen.audit.fpm_pool import dsn_parts

    dsn = _value(_get(app, "php.DATABASE_DSN"))
    parts = dsn_parts(dsn) if isinstance(dsn, str) else {}
    facts = app.pool
    user = getattr(facts, "env", {}).get("DATABASE_USER")
    role = app.database[0] if app.database else (user.text if user is not None else None)
    name = app.database[1] if app.database else parts.get("dbname")
    if not name or not role:
        if dsn:
            notes.append("database: the DSN names no database or no role (env[DATABASE_USER]) audit could read: left out")
        return {}
    out: dict = {"name": name, "role": role}
    host = parts.get("host")
    if host and host not in ("localhost", "127.0.0.1", "::1"):
        out["host"] = host
    port = parts.get("port")
    if port and port.isdigit() and port != "5432":
        out["port"] = int(port)
    return out


def _sessions(app, name: str, notes: list[str]) -> tuple[dict, dict]:
    session: dict = {}
    ini: dict = {}
    handler = _value(_get(app, "php.session.save_handler"))
    path = _value(_get(app, "php.session.save_path"))
    if handler == "redis":
        session["store"] = "redis"
        match = re.fullmatch(r"(tcp://[^?]+|unix://[^?]+)(\?(.*))?", path or "")
        if match:
            redis: dict = {"address": match.group(1)}
            database = re.search(r"(?:^|&)database=([0-9]{1,2})(?:&|$)", match.group(3) or "")
            if database:
                redis["database"] = int(database.group(1))
            session["redis"] = redis
            if "prefix=" in (match.group(3) or "") and f"prefix={name}_sess:" not in (match.group(3) or ""):
                notes.append(f"session.redis: the server's key prefix differs: deploygen writes {name}_sess:")
        else:
            notes.append(f"session.redis: save_path {shown(path)} is no phpredis address audit reads: left to "
                         "its default")
    elif handler not in (None, "files"):
        notes.append(f"session.store: save_handler {shown(handler)} is no store deploygen renders: imported as files")
    if handler in (None, "files") and isinstance(path, str):
        from deploygen.audit.fpm_pool import save_folder

        folder = save_folder(path)
        if re.fullmatch(rf"/var/lib/{re.escape(name)}(/[A-Za-z0-9._@+-]+)*", folder) and folder == path:
            if folder != f"/var/lib/{name}/sessions":
                session["directory"] = folder
        else:
            notes.append(f"session.directory: the server keeps sessions in {shown(path)}, no folder of the site's "
                         f"own: imported as /var/lib/{name}/sessions, which its own cleanup timer sweeps")
    lifetime, cookie = _get(app, "php.session.gc_maxlifetime"), _get(app, "php.session.cookie_lifetime")
    if _positive(lifetime):
        if cookie is not None and isinstance(cookie.value, Duration) and cookie.value.ms \
                and cookie.value == lifetime.value:
            session["lifetime"] = str(lifetime.value)
        else:
            session["idle_timeout"] = str(lifetime.value)
            if cookie is not None and isinstance(cookie.value, Duration) and cookie.value.ms:
                ini["session.cookie_lifetime"] = str(cookie.value)
    cookies: dict = {}
    for key in ("name", "domain", "secure", "httponly", "samesite"):
        setting = _get(app, f"php.session.{'name' if key == 'name' else 'cookie_' + key}")
        if setting is None or setting.value is None:
            continue
        value = setting.value
        if key == "name" and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", str(value)):
            notes.append(f"session.cookie.name: {shown(value)} is no cookie name a site file holds: left out")
            continue
        if key == "samesite" and value not in ("Lax", "Strict", "None"):
            notes.append(f"session.cookie.samesite: {shown(value)} is not Lax, Strict or None: left out")
            continue
        cookies[key] = value
    if cookies:
        session["cookie"] = cookies
    for key in ("session.gc_probability", "session.gc_divisor", "session.use_strict_mode"):
        setting = _get(app, f"php.{key}")
        if setting is not None and setting.value is not None:
            if key == "session.gc_divisor" and not 1 <= setting.value <= 1_000_000 or \
                    key == "session.gc_probability" and not 0 <= setting.value <= 1_000_000:
                notes.append(f"php.{key}: {setting.value} is out of the range a site file holds: left out")
                continue
            ini[key] = setting.value
    for key in ("memory_limit", "upload_max_filesize", "post_max_size"):
        setting = _get(app, f"php.{key}")
        if setting is None or setting.value is None or setting.provenance.kind != "written":
            continue  # PHP's built-in size: deploygen leaves it to php.ini too
        if _SIZE.fullmatch(str(setting.value)):
            ini[key] = str(setting.value)
        else:
            notes.append(f"php.{key}: {shown(setting.value)} on the server (-1 is no limit) is no size a site file "
                         "holds: left out")
    return session, ini


# Where each part of a PHP site file comes from: the setting audit read it from.
_PHP_ORIGINS = (
    ("name", "php-fpm.pool"), ("server.bind", "php-fpm.listen"), ("server.slowlog", "php-fpm.slowlog"),
    ("server.pm", "php-fpm.pm"), ("app.user", "php-fpm.user"), ("app.group", "php-fpm.group"),
    ("app.root", "php-fpm.pool"), ("app.docroot", "nginx.root"), ("app.front_controller", "nginx.index"),
    ("app.secrets_file", "systemd.EnvironmentFile"), ("timeouts.request", "php-fpm.request_terminate_timeout"),
    ("app.user", "php-fpm.user"), ("app.group", "php-fpm.group"),
    ("session.idle_timeout", "php.session.gc_maxlifetime"), ("session.lifetime", "php.session.gc_maxlifetime"),
    ("session.directory", "php.session.save_path"), ("session.redis", "php.session.save_path"),
    ("session.cookie.name", "php.session.name"), ("database", "php.DATABASE_DSN"),
)


def php_origin(app, key: str):
    """Where the value at site key `key` of an imported PHP site was read, when audit knows."""
    parts = key.split(".")
    facts = app.pool
    if key == "app.root" and getattr(facts, "chdir_at", None) is not None:
        return facts.chdir_at
    candidates = [setting for prefix, setting in sorted(_PHP_ORIGINS, key=lambda o: -len(o[0]))
                  if key == prefix or key.startswith((prefix + ".", prefix + "["))]
    if parts[0] == "timeouts" and len(parts) == 3:
        candidates.insert(0, f"{parts[1]}.{parts[2]}")
    elif parts[0] == "server" and len(parts) == 2:
        candidates.insert(0, f"php-fpm.pm.{parts[1]}")
    elif parts[0] == "php" and len(parts) >= 2:
        candidates.insert(0, "php." + ".".join(parts[1:]))
    elif key.startswith("session.cookie.") and len(parts) == 3:
        candidates.insert(0, f"php.session.cookie_{parts[2]}")
    from deploygen.audit.importer import located

    return located(app, candidates)
