"""gunicorn's own command line: the table of its flags, its argv read as its argparse parser
reads it, and the settings its flags set.

`parse_gunicorn_args` reads gunicorn's argv (after the program) as gunicorn's argparse parser
does, so that every flag that takes a value consumes it and the WSGI app is the first
positional word. The table of flags (`FLAGS`) is gunicorn's own (a test compares it with the
installed gunicorn's `KNOWN_SETTINGS`); gunicorn itself is never imported here.

gunicorn's precedence (its "Configuration Overview"), least to most authoritative:
environment variables, framework settings (Paste), the configuration file,
`GUNICORN_CMD_ARGS`, the command line. A config file named on the command line wins over
one named in `GUNICORN_CMD_ARGS`, and positional words in `GUNICORN_CMD_ARGS` are ignored.

Words may hold parts whose value audit cannot know (`%H`, `$PORT` set in an env file that was
not read, `$(nproc)`): such a part is kept between two NUL characters (`mark`), which no
argument of a real command can hold, and a setting read from it is unknown, with the reason.

This lives apart from gunicorn_command.py, which finds this argv in however a unit starts
gunicorn (launchers, shells, wrapper scripts): what the argv sets does not depend on how it
was reached.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from deploygen.audit.found import ReadSetting
from deploygen.audit.gunicorn_reader import typed
from deploygen.errors import Location, shown

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
    "forwarded_allow_ips": "gunicorn.forwarded_allow_ips", "chdir": "gunicorn.chdir", "umask": "gunicorn.umask",
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
