"""A site's nginx snippet: locations deploygen does not model, kept beside the site file.

`nginx.snippet: shop.locations.conf` names a file next to the site file; render writes it
to /etc/deploygen/NAME/nginx-locations.conf and the server block includes it. nginx reads
that file as root when it tests and loads its configuration, so the snippet is held to what
a location serves, and nothing else:

- read like the site file (a regular file under the size cap, UTF-8), never through a link:
  a link could hand root's files to a render that anyone may read;
- parsed with crossplane: `location` blocks only at its top (a stray `}` is a parse error,
  as in nginx), each with a path, none twice, none that deploygen renders itself;
- only the directives of `ALLOWED`: what routes, proxies, serves files and controls access.
  Not `*_temp_path` (nginx chowns the folder to its worker user at `nginx -t`), logs (files
  created as root anywhere), certificates and keys (root's files loaded), `include`, modules,
  embedded code (`*_by_lua*`, `perl`, `js_*`);
- `alias` and `root` to a folder `app.static` would take (never /etc, /root, /var/lib, ...);
- no argument holding a quote, a control character or a backslash that nginx would read as
  an escape (a regex's `\\.` stays): deploygen writes every argument itself (`build`), bare or in
  double quotes, and parses what it wrote back to the same directives before it is used, so no
  value can close its quotes and become syntax.
"""

from __future__ import annotations

import os
import re
import tempfile

import crossplane

from deploygen.errors import Location, Problem, printable, shown
from deploygen.fs.regular_file import read_regular_file

# What a snippet's locations may hold: nginx's own names, grouped by what they do.
ALLOWED = frozenset({
    "location", "if", "limit_except",
    "proxy_pass", "proxy_set_header", "proxy_http_version", "proxy_read_timeout", "proxy_send_timeout",
    "proxy_connect_timeout", "proxy_buffering", "proxy_request_buffering", "proxy_redirect", "proxy_hide_header",
    "proxy_pass_header", "proxy_intercept_errors", "proxy_next_upstream", "proxy_cache_bypass", "proxy_no_cache",
    "fastcgi_pass", "fastcgi_param", "fastcgi_index", "fastcgi_read_timeout", "fastcgi_split_path_info",
    "uwsgi_pass", "uwsgi_param", "uwsgi_read_timeout",
    "return", "rewrite", "try_files", "error_page", "internal", "break", "set",
    "alias", "root", "index", "autoindex", "expires", "add_header", "default_type", "charset", "etag",
    "sendfile", "tcp_nopush", "gzip", "gzip_static", "gzip_types", "log_not_found", "access_log",
    "client_max_body_size", "client_body_timeout", "send_timeout", "keepalive_timeout",
    "allow", "deny", "auth_basic", "auth_basic_user_file", "satisfy", "limit_rate",
})
# `access_log` may only turn logging off: a path would be a file nginx creates as root.
_ONLY_OFF = {"access_log"}
# Plain words nginx reads as one argument; anything else is written in double quotes.
_BARE = re.compile(r"[A-Za-z0-9_./:@$~%+=,*^?!&|()\[\]<>\\-]+")
# A quote, a control character, or a backslash nginx would take as an escape (before a quote,
# a backslash, t, n or r, or ending the word); any other backslash nginx keeps as written, as
# regexes need it (`~ \.php$`).
REFUSED_CHARS = re.compile(r"[\"'\x00-\x1f\x7f]|\\(?=[\"'\\tnr]|$)")
# What a prefix location's path is to nginx, modifier aside (`^~ /x` and `/x` are one).
_PREFIX = re.compile(r"(?:\^~\s+)?(\S+)")


def load_snippet(site_file: str, name: str, key: Location, rendered: set[str] | frozenset[str] = frozenset(),
                 servable=None, site_name: str = "") -> tuple[list | None, list[Problem]]:
    """The snippet's parsed locations (crossplane's form), or the problems that refuse it,
    each located in the snippet (or at `key`, the site file's `nginx.snippet`, when unreadable).
    `rendered`: the locations deploygen's server block holds; `servable`: the check `alias`
    and `root` folders pass (fields._servable), raising ValueError."""
    path = os.path.join(os.path.dirname(site_file), name)
    try:
        data = read_regular_file(path, follow=False)
        text = data.decode("utf-8")
    except OSError as exc:
        return None, [Problem(key, "nginx.snippet", f"{printable(path)}: could not be read: {exc.strerror or exc}")]
    except UnicodeDecodeError:
        return None, [Problem(key, "nginx.snippet", f"{printable(path)}: not UTF-8 text")]
    parsed, problem = _parse(text, path)
    if parsed is None:
        return None, [problem]
    problems = list(_checked(parsed, printable(path), rendered, servable, site_name))
    if not problems and bare(_parse(build(parsed), path)[0]) != bare(parsed):
        problems.append(Problem(Location(printable(path), 1, 1), "nginx.snippet",
                                "it does not read back as written: nothing of it is used"))
    return (None, problems) if problems else (parsed, [])


def _parse(text: str, path: str) -> tuple[list | None, Problem | None]:
    with tempfile.TemporaryDirectory(prefix="deploygen-snippet-") as folder:
        copy = os.path.join(folder, "snippet.conf")
        with open(copy, "w", encoding="utf-8") as f:
            f.write(text)
        try:
            payload = crossplane.parse(copy, single=True, check_ctx=False, check_args=False, comments=False)
        except RecursionError:
            return None, Problem(Location(printable(path), 1, 1), "nginx.snippet", "blocks nested too deeply to read")
    errors = payload["config"][0]["errors"]
    if errors:
        message = errors[0]["error"].split(" in ")[0]
        return None, Problem(Location(printable(path), errors[0].get("line") or 1, 1), "nginx.snippet",
                             shown(message, 200)[1:-1])
    return _shape(payload["config"][0]["parsed"]), None


def _shape(block: list) -> list:
    """Directives as nginx sees them: name, arguments, block; line numbers kept for messages."""
    return [{"directive": d["directive"], "args": list(d["args"]), "line": d.get("line", 1),
             **({"block": _shape(d["block"])} if "block" in d else {})} for d in block]


def bare(block: list | None) -> list | None:
    """The directives without their line numbers: what must read back the same."""
    if block is None:
        return None
    return [(d["directive"], d["args"], bare(d["block"]) if "block" in d else None) for d in block]


def _checked(parsed: list, path: str, rendered, servable, site_name: str = ""):
    """Every problem of the snippet's directives (see the module's docstring)."""
    seen: dict[str, int] = {}
    taken = {_key(p) for p in rendered}
    for d in parsed:
        at = Location(path, d["line"], 1)
        if d["directive"] != "location" or "block" not in d:
            yield Problem(at, "nginx.snippet", f"`{shown(d['directive'], 60)[1:-1]}`: a snippet holds `location` "
                          "blocks only")
            continue
        where = _key(" ".join(d["args"]))
        if where in taken:
            yield Problem(at, "nginx.snippet", f"location {shown(' '.join(d['args']), 60)[1:-1]} is in the snippet "
                          "and rendered by deploygen too: nginx refuses a duplicate location")
        elif where in seen:
            yield Problem(at, "nginx.snippet", f"location {shown(' '.join(d['args']), 60)[1:-1]} is here twice "
                          f"(line {seen[where]}): nginx refuses a duplicate location")
        seen.setdefault(where, d["line"])
    for d in _walk(parsed):
        yield from _directive(d, path, servable, site_name)


# FastCGI and uwsgi parameters that set PHP's ini (php_admin_value's too) for the one request:
# whoever may send them runs code as the pool's user.
_INI_PARAMS = frozenset({"PHP_VALUE", "PHP_ADMIN_VALUE"})


def _directive(d: dict, path: str, servable, site_name: str = ""):
    at = Location(path, d["line"], 1)
    name = d["directive"]
    if name not in ALLOWED:
        yield Problem(at, "nginx.snippet", f"`{shown(name, 60)[1:-1]}` is no directive a snippet may hold: it "
                      "routes, proxies, serves files or controls access, and nothing else (nginx reads it as root)")
        return
    if name == "location" and not d["args"]:
        yield Problem(at, "nginx.snippet", "`location` without a path")
    if name in ("fastcgi_pass", "uwsgi_pass") and d["args"] and d["args"][0] != f"{site_name}_fpm":
        # nginx's workers may reach every site's socket: a pass to another's would run its code
        # with whatever SCRIPT_FILENAME the snippet sets.
        yield Problem(at, "nginx.snippet", f"`{name}` to {shown(d['args'][0], 60)}: a snippet passes FastCGI only to "
                      f"the site's own pool ({site_name}_fpm), never to a socket or another site's upstream")
    if name in ("fastcgi_param", "uwsgi_param") and d["args"] and d["args"][0].upper() in _INI_PARAMS:
        yield Problem(at, "nginx.snippet", f"`{name} {d['args'][0]}` sets PHP's ini for the request, "
                      "php_admin_value's too: it would override what the pool enforces")
    if name in _ONLY_OFF and d["args"] != ["off"]:
        yield Problem(at, "nginx.snippet", f"`{name}` other than `off`: nginx would create the file as root")
    for word in d["args"]:
        if REFUSED_CHARS.search(word):
            yield Problem(at, "nginx.snippet", f"{shown(word, 60)}: a quote, a control character or an escaping "
                          "backslash in an argument (deploygen writes the quotes itself)")
            return
    if name in ("alias", "root") and d["args"] and servable is not None:
        folder = d["args"][0].rstrip("/") or "/"
        try:
            servable(folder)
        except ValueError as exc:
            yield Problem(at, "nginx.snippet", f"`{name}` {exc}")


def _key(path: str) -> str:
    """A location as nginx tells them apart: `^~ /x` is the prefix `/x`; others as written."""
    words = path.split()
    if len(words) == 2 and words[0] == "^~":
        return words[1]
    return " ".join(words)


def _walk(block: list):
    for d in block:
        yield d
        yield from _walk(d.get("block", []))


def location_paths(parsed: list) -> list[str]:
    """The snippet's locations as written (`/`, `= /favicon.ico`, `~ ^/api/`)."""
    return [" ".join(d["args"]) for d in parsed if d["directive"] == "location"]


def _word(arg: str) -> str:
    """One argument as nginx reads it back: bare when it is a plain word, else in double quotes
    (an argument holding a quote or an escaping backslash was refused: none needs escaping)."""
    if _BARE.fullmatch(arg) and not arg.startswith("#"):
        return arg
    return f'"{arg}"'


def build(parsed: list, depth: int = 0) -> str:
    """The snippet as render writes it, every argument written by deploygen."""
    lines = []
    pad = "    " * depth
    for d in parsed:
        if d["directive"] == "if":  # crossplane keeps the condition without its parentheses
            head = "if (" + " ".join(map(_word, d["args"])) + ")"
        else:
            head = " ".join([d["directive"], *map(_word, d["args"])])
        if "block" in d:
            lines.append(f"{pad}{head} {{")
            inner = build(d["block"], depth + 1)
            if inner:
                lines.append(inner)
            lines.append(f"{pad}}}")
        else:
            lines.append(f"{pad}{head};")
    return "\n".join(lines)


def built(parsed: list) -> str:
    return build(parsed) + "\n"
