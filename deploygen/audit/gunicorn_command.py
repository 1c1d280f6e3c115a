"""gunicorn's own command line, however a unit starts it, and the settings its flags set.

ExecStart= seldom names gunicorn alone: `/srv/x/venv/bin/gunicorn`, `python -m gunicorn`,
`pipenv run gunicorn`, `/usr/bin/env A=b gunicorn`, `ddtrace-run gunicorn`, a `bash -c
'cd /x && source venv/bin/activate && exec gunicorn ...'` or a wrapper script all end in
gunicorn's argv. `find_gunicorn` peels those launchers off the words systemd split and
returns that argv with where it was read; `parse_gunicorn_args` reads it as gunicorn's
argparse parser does, so that every flag that takes a value consumes it and the WSGI app is
the first positional word. The table of flags (`FLAGS`) is gunicorn's own (a test compares it
with the installed gunicorn's `KNOWN_SETTINGS`); gunicorn itself is never imported here.

gunicorn's precedence (its "Configuration Overview"), least to most authoritative:
environment variables, framework settings (Paste), the configuration file,
`GUNICORN_CMD_ARGS`, the command line. A config file named on the command line wins over
one named in `GUNICORN_CMD_ARGS`, and positional words in `GUNICORN_CMD_ARGS` are ignored.

Words may hold parts whose value audit cannot know (`%H`, `$PORT` set in an env file that was
not read, `$(nproc)`): such a part is kept between two NUL characters (`mark`), which no
argument of a real command can hold, and a setting read from it is unknown, with the reason.
"""

from __future__ import annotations

import os
import posixpath
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from deploygen.audit.found import ReadSetting
from deploygen.audit.gunicorn_reader import typed
from deploygen.errors import InputError, Location, shown

MARK = "\0"


def mark(piece: str) -> str:
    """`piece` (as written, e.g. `$PORT`) as a part whose value is unknown."""
    return f"{MARK}{piece.replace(MARK, '')}{MARK}"


def plain(text: str) -> str:
    """`text` as written: each unknown part shown as it was written."""
    return text.replace(MARK, "")


def unknown_parts(text: str) -> list[str]:
    return re.findall(f"{MARK}([^{MARK}]*){MARK}", text)


def why_unknown(text: str, reasons: Mapping[str, str]) -> str:
    """Why `text` is not known: the reason of each unknown part in it."""
    parts = list(dict.fromkeys(unknown_parts(text)))
    return "; ".join(reasons.get(p, f"{p} is not known from the server's files") for p in parts)


# gunicorn's command-line options: option string -> (setting, kind). `value` takes one word,
# `append` one word each time (a list), `flag` none, `optional` one when the next word is
# one of its values. `-h` and `-v` are argparse's own (help, version: gunicorn exits).
_OPTIONS: dict[tuple[str, ...], tuple[str, str]] = {
    ("-c", "--config"): ("config", "value"),
    ("-b", "--bind"): ("bind", "append"),
    ("--backlog",): ("backlog", "value"),
    ("-w", "--workers"): ("workers", "value"),
    ("-k", "--worker-class"): ("worker_class", "value"),
    ("--threads",): ("threads", "value"),
    ("--worker-connections",): ("worker_connections", "value"),
    ("--max-requests",): ("max_requests", "value"),
    ("--max-requests-jitter",): ("max_requests_jitter", "value"),
    ("-t", "--timeout"): ("timeout", "value"),
    ("--graceful-timeout",): ("graceful_timeout", "value"),
    ("--keep-alive",): ("keepalive", "value"),
    ("--limit-request-line",): ("limit_request_line", "value"),
    ("--limit-request-fields",): ("limit_request_fields", "value"),
    ("--limit-request-field_size",): ("limit_request_field_size", "value"),
    ("--reload",): ("reload", "flag"),
    ("--reload-engine",): ("reload_engine", "value"),
    ("--reload-extra-file",): ("reload_extra_files", "append"),
    ("--spew",): ("spew", "flag"),
    ("--check-config",): ("check_config", "flag"),
    ("--print-config",): ("print_config", "flag"),
    ("--preload",): ("preload_app", "flag"),
    ("--no-sendfile",): ("sendfile", "flag"),
    ("--reuse-port",): ("reuse_port", "flag"),
    ("--chdir",): ("chdir", "value"),
    ("-D", "--daemon"): ("daemon", "flag"),
    ("-e", "--env"): ("raw_env", "append"),
    ("-p", "--pid"): ("pidfile", "value"),
    ("--worker-tmp-dir",): ("worker_tmp_dir", "value"),
    ("-u", "--user"): ("user", "value"),
    ("-g", "--group"): ("group", "value"),
    ("-m", "--umask"): ("umask", "value"),
    ("--initgroups",): ("initgroups", "flag"),
    ("--forwarded-allow-ips",): ("forwarded_allow_ips", "value"),
    ("--access-logfile",): ("accesslog", "value"),
    ("--disable-redirect-access-to-syslog",): ("disable_redirect_access_to_syslog", "flag"),
    ("--access-logformat",): ("access_log_format", "value"),
    ("--error-logfile", "--log-file"): ("errorlog", "value"),
    ("--log-level",): ("loglevel", "value"),
    ("--capture-output",): ("capture_output", "flag"),
    ("--logger-class",): ("logger_class", "value"),
    ("--log-config",): ("logconfig", "value"),
    ("--log-config-json",): ("logconfig_json", "value"),
    ("--log-syslog-to",): ("syslog_addr", "value"),
    ("--log-syslog",): ("syslog", "flag"),
    ("--log-syslog-prefix",): ("syslog_prefix", "value"),
    ("--log-syslog-facility",): ("syslog_facility", "value"),
    ("-R", "--enable-stdio-inheritance"): ("enable_stdio_inheritance", "flag"),
    ("--statsd-host",): ("statsd_host", "value"),
    ("--dogstatsd-tags",): ("dogstatsd_tags", "value"),
    ("--statsd-prefix",): ("statsd_prefix", "value"),
    ("--enable-backlog-metric",): ("enable_backlog_metric", "flag"),
    ("-n", "--name"): ("proc_name", "value"),
    ("--pythonpath",): ("pythonpath", "value"),
    ("--paste", "--paster"): ("paste", "value"),
    # A flag before gunicorn 23, `--proxy-protocol [MODE]` since: a mode word after it is its value.
    ("--proxy-protocol",): ("proxy_protocol", "optional"),
    ("--proxy-allow-from",): ("proxy_allow_ips", "value"),
    ("--protocol",): ("protocol", "value"),
    ("--uwsgi-allow-from",): ("uwsgi_allow_ips", "value"),
    ("--keyfile",): ("keyfile", "value"),
    ("--certfile",): ("certfile", "value"),
    ("--ssl-version",): ("ssl_version", "value"),
    ("--cert-reqs",): ("cert_reqs", "value"),
    ("--ca-certs",): ("ca_certs", "value"),
    ("--suppress-ragged-eofs",): ("suppress_ragged_eofs", "flag"),
    ("--do-handshake-on-connect",): ("do_handshake_on_connect", "flag"),
    ("--ciphers",): ("ciphers", "value"),
    ("--http-protocols",): ("http_protocols", "value"),
    ("--http2-cleartext",): ("http2_cleartext", "value"),
    ("--http2-max-concurrent-streams",): ("http2_max_concurrent_streams", "value"),
    ("--http2-initial-window-size",): ("http2_initial_window_size", "value"),
    ("--http2-max-frame-size",): ("http2_max_frame_size", "value"),
    ("--http2-max-header-list-size",): ("http2_max_header_list_size", "value"),
    ("--paste-global",): ("raw_paste_global_conf", "append"),
    ("--permit-obsolete-folding",): ("permit_obsolete_folding", "flag"),
    ("--strip-header-spaces",): ("strip_header_spaces", "flag"),
    ("--permit-unconventional-http-method",): ("permit_unconventional_http_method", "flag"),
    ("--permit-unconventional-http-version",): ("permit_unconventional_http_version", "flag"),
    ("--casefold-http-method",): ("casefold_http_method", "flag"),
    ("--forwarder-headers",): ("forwarder_headers", "value"),
    ("--header-map",): ("header_map", "value"),
    ("--asgi-loop",): ("asgi_loop", "value"),
    ("--asgi-lifespan",): ("asgi_lifespan", "value"),
    ("--asgi-disconnect-grace-period",): ("asgi_disconnect_grace_period", "value"),
    ("--websocket-max-message-size",): ("websocket_max_message_size", "value"),
    ("--http-parser",): ("http_parser", "value"),
    ("--root-path",): ("root_path", "value"),
    ("--dirty-app",): ("dirty_apps", "append"),
    ("--dirty-workers",): ("dirty_workers", "value"),
    ("--dirty-timeout",): ("dirty_timeout", "value"),
    ("--dirty-threads",): ("dirty_threads", "value"),
    ("--dirty-graceful-timeout",): ("dirty_graceful_timeout", "value"),
    ("--control-socket",): ("control_socket", "value"),
    ("--control-socket-mode",): ("control_socket_mode", "value"),
    ("--no-control-socket",): ("control_socket_disable", "flag"),
    ("-h", "--help"): ("", "flag"),
    ("-v", "--version"): ("", "flag"),
}
FLAGS: dict[str, tuple[str, str]] = {opt: spec for opts, spec in _OPTIONS.items() for opt in opts}
_LONG = sorted(o for o in FLAGS if o.startswith("--"))
_PROXY_MODES = {"off", "false", "0", "none", "true", "auto", "1", "v1", "v2"}
# `store_const` flags: the value the flag stores (every other flag stores True).
_CONSTS = {"sendfile": False}

# The settings deploygen reads from a command line, and the key each is read as.
READ_KEYS = {
    "config": "gunicorn.config_file", "bind": "gunicorn.bind", "workers": "gunicorn.workers",
    "worker_class": "gunicorn.worker_class", "threads": "gunicorn.threads", "timeout": "gunicorn.timeout",
    "graceful_timeout": "gunicorn.graceful_timeout", "keepalive": "gunicorn.keepalive",
    "max_requests": "gunicorn.max_requests", "max_requests_jitter": "gunicorn.max_requests_jitter",
    "forwarded_allow_ips": "gunicorn.forwarded_allow_ips", "chdir": "gunicorn.chdir",
}
_NEGATIVE = re.compile(r"^-\d+$|^-\d*\.\d+$")


@dataclass
class GunicornArgs:
    """gunicorn's argv as its argparse parser reads it.

    `settings` holds each setting set, as the parser stores it (a word; a list for `append`
    options; True, or the stored constant, for flags), `flags` the option string that last set
    it (`--bind`, `-w`), `app` the first positional word. `opaque` lists unknown words that
    stood where an option could (`$GUNICORN_OPTS` from an env file not read): they may set
    any setting, so one set before them (or not at all) is unknown. `problems` is what gunicorn's
    parser refuses: gunicorn exits with them."""

    settings: dict[str, object] = field(default_factory=dict)
    flags: dict[str, str] = field(default_factory=dict)
    positions: dict[str, int] = field(default_factory=dict)
    first: dict[str, int] = field(default_factory=dict)
    app: str | None = None
    app_position: int = -1
    opaque: list[tuple[int, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _option_like(word: str) -> bool:
    """Whether argparse takes `word` for an option (else it is a value or a positional)."""
    if not word.startswith("-") or word == "-" or _NEGATIVE.match(word):
        return False
    return not (" " in word and _lookup(word)[0] is None)


def _lookup(word: str) -> tuple[str | None, str | None]:
    """(option string, explicit value) for an option word, as argparse's `_parse_optional`."""
    if word in FLAGS:
        return word, None
    if "=" in word:
        option, _, value = word.partition("=")
        if option in FLAGS:
            return option, value
    if word.startswith("--"):
        prefix = word.partition("=")[0]
        matches = [o for o in _LONG if o.startswith(prefix)]
        if len(matches) == 1:
            return matches[0], (word.partition("=")[2] if "=" in word else None)
        if len(matches) > 1:
            raise ValueError(f"ambiguous option {shown(plain(prefix))} (could be {', '.join(matches)})")
        return None, None
    if word[:2] in FLAGS:
        return word[:2], word[2:] or None
    return None, None


def parse_gunicorn_args(args: Sequence[str]) -> GunicornArgs:
    """gunicorn's argv (after the program) read as its argparse parser reads it."""
    parsed = GunicornArgs()
    chunks = 0  # runs of positional words: gunicorn takes the first, refuses a second
    in_chunk = False
    only_positional = False
    index = 0
    while index < len(args):
        word = args[index]
        index += 1
        if not only_positional and _whole_mark(word):
            parsed.opaque.append((index - 1, word))
            in_chunk = False
            continue
        if only_positional or not _option_like(word):
            if not in_chunk:
                chunks += 1
                in_chunk = True
                if chunks == 2:
                    parsed.problems.append(f"unrecognized arguments: {shown(plain(word))}")
            if parsed.app is None:
                parsed.app, parsed.app_position = word, index - 1
            continue
        in_chunk = False
        if word == "--":
            only_positional = True
            continue
        try:
            option, explicit = _lookup(word)
            if option is None:
                raise ValueError(f"unrecognized arguments: {shown(plain(word))}")
        except ValueError as exc:
            parsed.problems.append(str(exc))
            # Whether it takes a value is unknown: most do, so the next word is taken as its.
            if "=" not in word and index < len(args) and not _option_like(args[index]):
                index += 1
            continue
        index = _option(parsed, args, index, word, option, explicit)
    return parsed


def _option(parsed: GunicornArgs, args: Sequence[str], index: int, word: str, option: str,
            explicit: str | None) -> int:
    """One option (and its value, or the flags stacked after it: `-RD`); where argv goes on."""
    while True:
        setting, kind = FLAGS[option]
        if kind == "flag":
            _store(parsed, setting, _CONSTS.get(setting, True), option, index - 1)
            if explicit is None:
                return index
            if option.startswith("--"):
                parsed.problems.append(f"argument {option}: ignored explicit argument {shown(plain(explicit))}")
                return index
            option, explicit = f"-{explicit[0]}", explicit[1:] or None
            if option not in FLAGS:
                parsed.problems.append(f"argument {plain(word)}: ignored explicit argument {shown(plain(word[2:]))}")
                return index
            continue
        if explicit is not None:
            value = explicit
        elif kind == "optional":
            follows = index < len(args) and not _option_like(args[index])
            if follows and plain(args[index]).strip().lower() in _PROXY_MODES:
                value, index = args[index], index + 1
            else:
                value = "auto"
        elif index < len(args) and not _option_like(args[index]):
            value, index = args[index], index + 1
        else:
            parsed.problems.append(f"argument {option}: expected one argument")
            return index
        if kind == "append":
            previous = parsed.settings.get(setting)
            value = [*(previous if isinstance(previous, list) else []), value]
        _store(parsed, setting, value, option, index - 1)
        return index


def _whole_mark(word: str) -> bool:
    """A word that is one unknown part and nothing else (`$GUNICORN_OPTS`, split as systemd does)."""
    return word.startswith(MARK) and word.endswith(MARK) and word.count(MARK) == 2


def _store(parsed: GunicornArgs, setting: str, value: object, option: str, position: int) -> None:
    if not setting:
        return
    parsed.settings[setting] = value
    parsed.flags[setting] = option
    parsed.positions[setting] = position
    parsed.first.setdefault(setting, position)


def args_settings(parsed: GunicornArgs, where: Location, reasons: Mapping[str, str] | None = None,
                  source: str = "") -> dict[str, ReadSetting]:
    """The settings deploygen reads, from a parsed command line, each located at `where`:
    `gunicorn.config_file`, `gunicorn.bind` (the first `-b`, which deploygen reads) with
    `gunicorn.bind_all` (every one), `gunicorn.workers`, ..., and `gunicorn.wsgi_app` (the
    positional app). `source` (e.g. `GUNICORN_CMD_ARGS`) starts each reason."""
    reasons = reasons or {}
    lead = f"{source}: " if source else ""
    found: dict[str, ReadSetting] = {}
    for name, key in READ_KEYS.items():
        if name in parsed.settings:
            found[key] = _setting(key, name, parsed.settings[name], parsed.flags[name], where, reasons, lead)
    if "bind" in parsed.settings:
        binds = parsed.settings["bind"]
        found["gunicorn.bind_all"] = _known("gunicorn.bind_all", [plain(b) for b in binds], binds, where, reasons,
                                            f"{lead}{parsed.flags['bind']}: ")
    if parsed.app is not None:
        found["gunicorn.wsgi_app"] = _known("gunicorn.wsgi_app", plain(parsed.app), parsed.app, where, reasons,
                                            f"{lead}the WSGI app: ")
    if not parsed.opaque:
        return found
    # An unknown word that stood where an option could may set any setting: the ones set
    # before it (or not at all) are unknown; the first `-b` only when none came before it.
    first, last = parsed.opaque[0][0], parsed.opaque[-1][0]
    words = ", ".join(dict.fromkeys(plain(w) for _, w in parsed.opaque))
    why = why_unknown(" ".join(w for _, w in parsed.opaque), reasons)
    for name, key in READ_KEYS.items():
        if (parsed.first.get(name, first) >= first) if name == "bind" else parsed.positions.get(name, -1) < last:
            found[key] = ReadSetting(key, None, where, unknown=f"{lead}{words} may set it: {why}")
    found["gunicorn.bind_all"] = ReadSetting("gunicorn.bind_all", None, where, unknown=f"{lead}{words} may add "
                                             f"binds: {why}")
    if parsed.app is None:
        found["gunicorn.wsgi_app"] = ReadSetting("gunicorn.wsgi_app", None, where, unknown=f"{lead}{words} may "
                                                 f"name it: {why}")
    return found


def _known(key: str, value: object, raw: object, where: Location, reasons: Mapping[str, str],
           lead: str) -> ReadSetting:
    words = raw if isinstance(raw, list) else [raw]
    marked = [w for w in words if isinstance(w, str) and MARK in w]
    if marked:
        return ReadSetting(key, None, where, unknown=f"{lead}{why_unknown(' '.join(marked), reasons)}")
    return ReadSetting(key, value, where)


def _setting(key: str, name: str, value: object, flag: str, where: Location, reasons: Mapping[str, str],
             lead: str) -> ReadSetting:
    if name == "bind" and isinstance(value, list):
        value = value[0]
    if isinstance(value, str) and MARK in value:
        return ReadSetting(key, None, where, unknown=f"{lead}{flag}: {why_unknown(value, reasons)}")
    if name == "config" and isinstance(value, str):
        if value.startswith("python:"):
            return ReadSetting(key, None, where, unknown=f"{lead}{flag} {shown(value)}: a Python module on "
                               "gunicorn's import path, not a file audit reads")
        value = value.removeprefix("file:")
        return ReadSetting(key, value, where)
    try:
        return ReadSetting(key, typed(name, value), where)
    except (ValueError, TypeError) as exc:
        return ReadSetting(key, None, where, unknown=f"{lead}{flag}: {exc}")


def cmd_args_settings(text: str, where: Location, reasons: Mapping[str, str] | None = None) -> dict[str, ReadSetting]:
    """The settings `GUNICORN_CMD_ARGS=text` sets, split with shlex as gunicorn splits it.

    Its positional words are ignored (gunicorn reads the app from its own argv only), and so
    is `gunicorn.wsgi_app`. `gunicorn.cmd_args` holds the words, or why gunicorn could not
    split them (it then stops with a traceback)."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        return {"gunicorn.cmd_args": ReadSetting("gunicorn.cmd_args", None, where,
                                                 unknown=f"GUNICORN_CMD_ARGS: {exc} in {shown(plain(text))}: "
                                                 "gunicorn stops there")}
    parsed = parse_gunicorn_args(words)
    found = args_settings(parsed, where, reasons, "GUNICORN_CMD_ARGS")
    found.pop("gunicorn.wsgi_app", None)
    found["gunicorn.cmd_args"] = _known("gunicorn.cmd_args", [plain(w) for w in words], words, where, reasons or {},
                                        "GUNICORN_CMD_ARGS: ")
    return found


# -- how gunicorn is started ---------------------------------------------------------------


@dataclass(frozen=True)
class GunicornCommand:
    """gunicorn as a unit starts it.

    `program` is the gunicorn (or python) that runs, which tells its virtualenv; `args` is
    gunicorn's argv after it; `location` the line that runs it (ExecStart=, or a script's
    line); `how` the launchers peeled off, e.g. `direct`, `pipenv run`, `env > python -m`,
    `script /srv/x/start.sh`. `env` holds what the launchers set (`env A=b`, a script's
    `export`), over the unit's environment; `problems` what gunicorn's parser refuses."""

    program: str
    args: tuple[str, ...]
    location: Location
    how: str
    env: tuple[tuple[str, str], ...] = ()
    problems: tuple[str, ...] = ()
    marked: tuple[str, ...] = field(default=(), repr=False, compare=False)


# Debian's old python3-gunicorn installs gunicorn3, Fedora's gunicorn-3 (and gunicorn-3.N).
_GUNICORN = re.compile(r"gunicorn(-?3(\.[0-9]+)?)?")
_GUNICORN_MODULES = {"gunicorn", "gunicorn.app.wsgiapp"}
_PYTHON = re.compile(r"(python|pypy)[0-9.]*(-dbg)?")
_SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "ash", "busybox"}
_RESERVED = {"if", "then", "else", "elif", "do", "while", "until", "!", "{", "time"}
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
# Launchers that run the rest of the line: name -> (subcommand that must follow, options
# that take a value, label). `None`: no subcommand.
_WRAPPERS: dict[str, tuple[str | None, frozenset[str], str]] = {
    "pipenv": ("run", frozenset(), "pipenv run"),
    "poetry": ("run", frozenset({"-C", "--directory", "-P", "--project"}), "poetry run"),
    "pdm": ("run", frozenset({"-p", "--project"}), "pdm run"),
    "uv": ("run", frozenset({"--with", "--with-editable", "--with-requirements", "--python", "-p", "--directory",
                              "--project", "--package", "--env-file", "--extra", "--group", "--index",
                              "--default-index", "--index-url", "--extra-index-url", "--find-links", "-f",
                              "--only-group", "--no-group", "--config-file", "--cache-dir", "-w"}), "uv run"),
    "uvx": (None, frozenset({"--with", "--from", "--python", "-p"}), "uvx"),
    "newrelic-admin": ("run-program", frozenset(), "newrelic-admin run-program"),
    # `mise exec [TOOL@VERSION ...] -- COMMAND`: the tools before `--` (_TOOLS_UNTIL_DASHES).
    "mise": ("exec", frozenset({"-C", "--cd", "-E", "--env", "-j", "--jobs"}), "mise exec"),
    "rtx": ("exec", frozenset({"-C", "--cd", "-j", "--jobs"}), "rtx exec"),
    "ddtrace-run": (None, frozenset(), "ddtrace-run"),
    "opentelemetry-instrument": (None, frozenset({"*"}), "opentelemetry-instrument"),
    "nohup": (None, frozenset(), "nohup"),
    "setsid": (None, frozenset(), "setsid"),
    "nice": (None, frozenset({"-n", "--adjustment"}), "nice"),
    "authbind": (None, frozenset(), "authbind"),
    "stdbuf": (None, frozenset({"-i", "-o", "-e"}), "stdbuf"),
    "sudo": (None, frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"}), "sudo"),
    "runuser": (None, frozenset({"-u", "-g", "-G"}), "runuser"),
    "exec": (None, frozenset({"-a"}), "exec"),
}
# Launchers whose subcommand takes a list of tools, not a command, up to `--`.
_TOOLS_UNTIL_DASHES = {"mise", "rtx"}
# Where the system's own programs are: a program there is no wrapper script of the app.
_SYSTEM_DIRS = ("/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/", "/usr/lib/", "/usr/libexec/", "/lib/", "/lib64/",
                "/proc/", "/sys/", "/dev/")
_MAX_DEPTH = 6


@dataclass
class _Context:
    """What a launcher sees: the working directory, the virtualenv `activate` put first on
    PATH, the environment, and how to read a script (ROOT's, through Tree)."""

    cwd: str
    env: dict[str, str]
    read: Callable[[str], tuple[str, str] | None] | None
    reasons: dict[str, str]
    unset_is_unknown: bool = False
    venv_bin: str = ""
    depth: int = 0
    set_env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Found:
    program: str
    args: list[str]
    how: tuple[str, ...]
    location: Location | None = None
    env: tuple[tuple[str, str], ...] = ()


def find_gunicorn(words: Sequence[str], where: Location, read: Callable[[str], tuple[str, str] | None] | None = None,
                  cwd: str = "/", env: Mapping[str, str] | None = None, reasons: dict[str, str] | None = None,
                  unset_is_unknown: bool = False) -> GunicornCommand | None:
    """gunicorn's command inside a command's `words` (the program first, as systemd split and
    expanded them), or None when it does not start gunicorn.

    `read(path)` gives a script's text and the local path it was read from (None when it
    cannot be read); `cwd` is the unit's WorkingDirectory=; `env` its environment; unknown
    variables met in a shell string or script get their reason added to `reasons`
    (`unset_is_unknown`: the environment may lack what an env file not read sets)."""
    context = _Context(cwd or "/", dict(env or {}), read, reasons if reasons is not None else {}, unset_is_unknown)
    found = _launch(list(words), context, ())
    if found is None:
        return None
    parsed = parse_gunicorn_args(found.args)
    return GunicornCommand(plain(found.program), tuple(plain(a) for a in found.args), found.location or where,
                           " > ".join(found.how) or "direct", found.env, tuple(parsed.problems), tuple(found.args))


def _name(word: str) -> str:
    return posixpath.basename(plain(word))


def _resolve(program: str, context: _Context) -> str:
    """Where a program named in a shell line is: relative to `cd`, or in the activated virtualenv."""
    if "/" not in plain(program):
        return posixpath.join(context.venv_bin, program) if context.venv_bin else program
    return program if program.startswith("/") else posixpath.normpath(posixpath.join(context.cwd, program))


def _launch(words: list[str], context: _Context, how: tuple[str, ...]) -> _Found | None:
    """gunicorn in `words`, through as many launchers as there are (a few: a script that runs
    itself stops here)."""
    if not words or context.depth >= _MAX_DEPTH:
        return None
    context.depth += 1
    try:
        return _launch_one(words, context, how)
    finally:
        context.depth -= 1


def _launch_one(words: list[str], context: _Context, how: tuple[str, ...]) -> _Found | None:
    program, rest = words[0], words[1:]
    name = _name(program)
    if _GUNICORN.fullmatch(name):
        return _Found(_resolve(program, context), rest, how, env=tuple(context.set_env.items()))
    if _PYTHON.fullmatch(name):
        return _python(_resolve(program, context), rest, context, how)
    if name == "env":
        return _env(rest, context, how + ("env",))
    if name in _SHELLS:
        return _shell(program, rest, context, how)
    if name in _WRAPPERS:
        return _wrapper(name, rest, context, how)
    if MARK in program or context.read is None:
        return None
    path = _resolve(program, context)
    if path.startswith("/") and (name.endswith(".sh") or not path.startswith(_SYSTEM_DIRS)):
        return _script(path, rest, context, how, shebang=True)
    return None


def _python(program: str, rest: list[str], context: _Context, how: tuple[str, ...]) -> _Found | None:
    """`python [options] -m gunicorn ARGS` or `python [options] .../gunicorn ARGS`."""
    index = 0
    while index < len(rest):
        word = plain(rest[index])
        index += 1
        if word == "--":
            break
        if word.startswith("--"):
            index += word == "--check-hash-based-pycs"
            continue
        if not word.startswith("-") or word == "-":
            index -= 1
            break
        for at, letter in enumerate(word[1:], 2):  # a cluster of short options: `-um gunicorn`
            if letter == "c":
                return None
            if letter in "mWX":
                value = word[at:] or (plain(rest[index]) if index < len(rest) else "")
                index += not word[at:]
                if letter != "m":
                    break
                if value in _GUNICORN_MODULES:
                    return _Found(program, rest[index:], how + ("python -m",), env=tuple(context.set_env.items()))
                return None
    if index < len(rest) and _GUNICORN.fullmatch(_name(rest[index])):  # `python /srv/x/venv/bin/gunicorn ARGS`
        return _Found(program, rest[index + 1:], how + ("python script",), env=tuple(context.set_env.items()))
    return None


def _env(rest: list[str], context: _Context, how: tuple[str, ...]) -> _Found | None:
    """`env [-i] [-u NAME] [-C DIR] [-S STRING] [NAME=VALUE]... COMMAND`."""
    index = 0
    while index < len(rest):
        word = plain(rest[index])
        if word in ("-u", "--unset", "-C", "--chdir"):
            if word in ("-C", "--chdir") and index + 1 < len(rest):
                context.cwd = posixpath.join(context.cwd, plain(rest[index + 1]))
            index += 2
        elif word in ("-S", "--split-string") or word.startswith(("-S", "--split-string=")):
            text = word[2:] if word.startswith("-S") and len(word) > 2 else \
                word.partition("=")[2] if word.startswith("--split-string=") else \
                (plain(rest[index + 1]) if index + 1 < len(rest) else "")
            after = index + (1 if word not in ("-S", "--split-string") else 2)
            try:
                split = shlex.split(text)
            except ValueError:
                return None
            rest = [*rest[:index], *split, *rest[after:]]
        elif word == "--":
            index += 1
            break
        elif word.startswith("-") and len(word) > 1:
            index += 1
        elif _ASSIGNMENT.match(word):
            key, _, value = rest[index].partition("=")
            context.set_env[plain(key)] = value
            context.env[plain(key)] = value
            index += 1
        else:
            break
    while index < len(rest) and _ASSIGNMENT.match(plain(rest[index])):
        key, _, value = rest[index].partition("=")
        context.set_env[plain(key)] = value
        context.env[plain(key)] = value
        index += 1
    return _launch(rest[index:], context, how)


def _wrapper(name: str, rest: list[str], context: _Context, how: tuple[str, ...]) -> _Found | None:
    subcommand, with_value, label = _WRAPPERS[name]
    if name in _TOOLS_UNTIL_DASHES and "--" in (plain(w) for w in rest):
        dashes = [plain(w) for w in rest].index("--")
        if plain(rest[0]) != subcommand:
            return None
        return _launch(rest[dashes + 1:], context, how + (label,))
    index = 0
    while index < len(rest):
        word = plain(rest[index])
        if word == "--":
            index += 1
            break
        if word.startswith("-") and len(word) > 1:
            takes = "*" in with_value and "=" not in word or word in with_value
            index += 2 if takes else 1
            continue
        if subcommand is not None:
            if word != subcommand:
                return None
            subcommand = None
            index += 1
            continue
        break
    if subcommand is not None:
        return None
    return _launch(rest[index:], context, how if name == "exec" else how + (label,))


def _shell(program: str, rest: list[str], context: _Context, how: tuple[str, ...]) -> _Found | None:
    """`bash [options] -c 'STRING'` or `bash [options] SCRIPT [args]`."""
    name = _name(program)
    command_mode = False
    index = 0
    if name == "busybox":
        if not rest or _name(rest[0]) not in _SHELLS - {"busybox"}:
            return None
        name, index = _name(rest[0]), 1
    while index < len(rest):
        word = plain(rest[index])
        if word in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
            index += 2
            continue
        if word == "--":
            index += 1
            break
        if word[:1] in ("-", "+") and len(word) > 1:
            if not word.startswith("--") and "c" in word[1:]:
                command_mode = True
            index += 1
            continue
        break
    if index >= len(rest):
        return None
    if command_mode:
        return _shell_text(rest[index], None, context, how + (f"{name} -c",))
    script = rest[index] if rest[index].startswith("/") else posixpath.join(context.cwd, rest[index])
    return _script(posixpath.normpath(script), rest[index + 1:], context, how, shebang=False)


def _script(path: str, args: list[str], context: _Context, how: tuple[str, ...], shebang: bool) -> _Found | None:
    """A wrapper script: the line in it that runs gunicorn, read from the server's copy."""
    if context.read is None or MARK in path:
        return None
    read = context.read(path)
    if read is None:
        return None
    text, local = read
    if shebang:
        first = text.split("\n", 1)[0]
        interpreter = first[2:].split() if first.startswith("#!") else []
        if interpreter and _name(interpreter[0]) == "env" and len(interpreter) > 1:
            interpreter = interpreter[1:]
        if not interpreter or _name(interpreter[0]) not in _SHELLS:
            return None
    return _shell_text(text.replace(MARK, ""), local, context, how + (f"script {path}",))


def _shell_text(text: str, local: str | None, context: _Context, how: tuple[str, ...]) -> _Found | None:
    """The last command of a shell text that runs gunicorn, in order: assignments, `export`,
    `cd` and `source .../bin/activate` before it are taken into account."""
    found = None
    variables: dict[str, str] = {}
    for line, raw in _shell_commands(text):
        words = _expand(raw, variables, context)
        while words and plain(words[0]) in _RESERVED:
            words = words[1:]
        assigned: dict[str, str] = {}
        while words and _ASSIGNMENT.match(plain(words[0])):
            key, _, value = words[0].partition("=")
            assigned[plain(key)] = value
            words = words[1:]
        if not words:
            variables.update(assigned)
            continue
        command = plain(words[0])
        if command in ("export", "readonly", "declare", "typeset", "local"):
            for word in words[1:]:
                if _ASSIGNMENT.match(plain(word)):
                    key, _, value = word.partition("=")
                    variables[plain(key)] = value
                    context.set_env[plain(key)] = value
            continue
        if command == "cd":
            target = next((w for w in words[1:] if not plain(w).startswith("-")), None)
            if target is not None and MARK not in target:
                context.cwd = posixpath.normpath(posixpath.join(context.cwd, plain(target)))
            continue
        if command in ("source", ".") and len(words) > 1:
            activate = _resolve(words[1], context) if "/" in plain(words[1]) else words[1]
            if plain(activate).endswith("/bin/activate") and MARK not in activate:
                context.venv_bin = posixpath.dirname(plain(activate))
                variables["VIRTUAL_ENV"] = posixpath.dirname(context.venv_bin)
            continue
        saved = dict(context.set_env)
        context.set_env.update(assigned)
        result = _launch(words, context, how)
        context.set_env = saved
        if result is not None:
            found = result if result.location is not None or local is None else \
                _Found(result.program, result.args, result.how, Location(local, line, 1), result.env)
    return found


# -- a shell's words, enough to find one command -------------------------------------------

_Segment = tuple[str, str, bool]  # (kind: "text" | "var" | "sub", text or name, quoted)
# A run of characters with no meaning to the shell (a `#` inside a word is one of them).
_PLAIN = re.compile(r"[^\\'\"$`\s;&|()<>\0]+")
_REDIRECT = re.compile(r"<<-?|<>|>>|>&|<&|>\||<|>")
_HEREDOC = re.compile(r"[ \t]*(['\"]?)([^\s'\"<>;&|]+)\1")
_PARAMETER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-]")


def _shell_commands(text: str) -> list[tuple[int, list[list[_Segment]]]]:
    """The simple commands of a shell text, each with the line it starts on, as words of
    segments: text, `$NAME` / `${NAME}` (expanded later, in order) and `$(...)` / backquotes
    (never run: unknown). Operators end a command; redirections and their targets, comments
    and here-documents are dropped."""
    commands: list[tuple[int, list[list[_Segment]]]] = []
    words: list[list[_Segment]] = []
    word: list[_Segment] | None = None
    start = line = 1
    redirect = False
    heredocs: list[tuple[str, bool]] = []
    i, n = 0, len(text)

    def end_word() -> None:
        nonlocal word, redirect
        if word is not None:
            if redirect:
                redirect = False
            else:
                words.append(word)
        word = None

    def end_command() -> None:
        nonlocal words
        end_word()
        if words:
            commands.append((start, words))
        words = []

    def begin() -> list[_Segment]:
        nonlocal word, start
        if word is None:
            word = []
            if not words:
                start = line
        return word

    while i < n:
        c = text[i]
        if c == MARK:  # an unknown part systemd left: kept whole
            j = text.find(MARK, i + 1)
            j = n - 1 if j < 0 else j
            begin().append(("text", text[i:j + 1], True))
            i = j + 1
        elif c == "\\":
            if text.startswith("\\\n", i):
                i, line = i + 2, line + 1
                continue
            begin().append(("text", text[i + 1:i + 2], True))
            i += 2
        elif c == "'":
            j = text.find("'", i + 1)
            j = n if j < 0 else j
            begin().append(("text", text[i + 1:j], True))
            line += text.count("\n", i, j)
            i = j + 1
        elif c == '"':
            segment = begin()
            i += 1
            buffer: list[str] = []
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n and text[i + 1] in '$`"\\\n':
                    if text[i + 1] != "\n":
                        buffer.append(text[i + 1])
                    else:
                        line += 1
                    i += 2
                elif text[i] in "$`":
                    if buffer:
                        segment.append(("text", "".join(buffer), True))
                        buffer = []
                    i = _expansion(text, i, segment, True)
                else:
                    line += text[i] == "\n"
                    buffer.append(text[i])
                    i += 1
            if buffer:
                segment.append(("text", "".join(buffer), True))
            i += 1
        elif c in "$`":
            i = _expansion(text, i, begin(), False)
        elif c in " \t":
            end_word()
            i += 1
        elif c == "\n":
            end_command()
            line += 1
            i += 1
            for delimiter, strip in heredocs:
                while i < n:
                    end = text.find("\n", i)
                    end = n if end < 0 else end
                    body = text[i:end]
                    i, line = end + 1, line + 1
                    if (body.lstrip("\t") if strip else body) == delimiter:
                        break
            heredocs = []
        elif c == "#" and word is None:
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif c in ";&|()":
            if c == "&" and text.startswith("&>", i):
                end_word()
                redirect = True
                i += 3 if text.startswith("&>>", i) else 2
                continue
            end_command()
            i += 2 if text[i:i + 2] in ("&&", "||", ";;", "|&") else 1
        elif c in "<>":
            if word is not None and len(word) == 1 and word[0][0] == "text" and not word[0][2] \
                    and word[0][1].isdigit():
                word = None  # `2>`: the descriptor, not a word
            else:
                end_word()
            op = _REDIRECT.match(text, i).group(0)  # type: ignore[union-attr]
            i += len(op)
            if op.startswith("<<"):
                match = _HEREDOC.match(text, i)
                if match:
                    heredocs.append((match.group(2), op == "<<-"))
                    i = match.end()
                continue
            redirect = True
        else:
            run = _PLAIN.match(text, i)
            end = run.end() if run else i + 1
            begin().append(("text", text[i:end], False))
            i = end
    end_command()
    return commands


def _expansion(text: str, i: int, word: list[_Segment], quoted: bool) -> int:
    """One `$...` or backquote at `i`, added to `word`; where the text goes on."""
    n = len(text)
    if text[i] == "`":
        end = text.find("`", i + 1)
        end = n if end < 0 else end
        word.append(("sub", text[i:end + 1], quoted))
        return end + 1
    if text.startswith("$(", i):
        depth, j = 0, i + 1
        while j < n:
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            if depth == 0:
                break
            j += 1
        word.append(("sub", text[i:j + 1], quoted))
        return j + 1
    if text.startswith("${", i):
        end = text.find("}", i)
        end = n if end < 0 else end
        inner = text[i + 2:end]
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", inner):
            word.append(("var", inner, quoted))
        else:
            word.append(("sub", text[i:end + 1], quoted))
        return end + 1
    match = _PARAMETER.match(text, i + 1)
    if not match:
        word.append(("text", "$", quoted))
        return i + 1
    name = match.group(0)
    word.append(("var" if name[0].isalpha() or name[0] == "_" else "sub", name if name[0].isalpha() or name[0] == "_"
                 else "$" + name, quoted))
    return i + 1 + len(name)


def _expand(raw: list[list[_Segment]], variables: dict[str, str], context: _Context) -> list[str]:
    """A command's words after expansion: a known variable by its value (split on blanks
    when unquoted), an unknown one or a command substitution as an unknown part."""
    words: list[str] = []
    for segments in raw:
        fields: list[str] = []
        current = ""
        has = False
        for kind, value, quoted in segments:
            if kind == "text":
                current += value
                has = True
                continue
            if kind == "sub":
                current += mark(value)
                context.reasons.setdefault(value, f"{value} runs when the script runs, not when audit reads it")
                has = True
                continue
            known = variables.get(value, context.env.get(value))
            if known is None:
                if context.unset_is_unknown:
                    piece = f"${value}"
                    current += mark(piece)
                    context.reasons.setdefault(piece, f"{value} is not set in the unit's Environment= or the "
                                               "values given, and may be set where audit did not look")
                    has = True
                continue
            if quoted:
                current += known
                has = True
                continue
            parts = known.split()
            if not parts:
                continue
            if known[:1].isspace() and has:
                fields.append(current)
                current = ""
            current += parts[0]
            for part in parts[1:]:
                fields.append(current)
                current = part
            has = True
            if known[-1:].isspace():
                fields.append(current)
                current, has = "", False
        if has or any(q for _, _, q in segments):
            fields.append(current)
        words += fields
    return words


def tree_reader(tree, layer: str = "systemd") -> Callable[[str], tuple[str, str] | None]:
    """`read` for find_gunicorn: a server path read through `tree` (ROOT's), None when it is not
    a readable regular file."""
    cache: dict[str, tuple[str, str] | None] = {}

    def read(path: str) -> tuple[str, str] | None:
        if path not in cache:
            try:
                local = tree.local(path)
                cache[path] = (tree.read_text(local, layer), local) if os.path.isfile(local) else None
            except (InputError, OSError, ValueError):
                cache[path] = None
        return cache[path]

    return read
