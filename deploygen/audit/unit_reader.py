"""systemd units: the stop timeout, and gunicorn's settings from ExecStart's flags.

A unit is read line by line (systemd allows repeated keys, which INI readers
reject), keeping each line's number, then its drop-ins (`NAME.service.d/*.conf`)
over it. `TimeoutStopSec` absent means systemd's default of 90 s
(`DefaultTimeoutStopSec=`).
"""

from __future__ import annotations

import glob
import os
import re
import shlex
from collections.abc import Iterator

from deploygen.audit.found import ReadSetting, bounded_ms, bounded_seconds
from deploygen.audit.gunicorn_reader import typed
from deploygen.audit.source import Tree, unreadable, why
from deploygen.sitefile.duration import Duration
from deploygen.errors import Location, shown

STOP_DEFAULT = Duration.seconds_(90)
# gunicorn's command-line flags for the settings deploygen reads.
_FLAGS = {
    "-c": "config", "--config": "config", "-b": "bind", "--bind": "bind", "-w": "workers",
    "--workers": "workers", "-k": "worker_class", "--worker-class": "worker_class", "--threads": "threads",
    "-t": "timeout", "--timeout": "timeout", "--graceful-timeout": "graceful_timeout",
    "--keep-alive": "keepalive", "--max-requests": "max_requests",
}


_UNITS = {"us": 0.001, "ms": 1, "s": 1000, "sec": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000,
          "hr": 3_600_000, "d": 86_400_000}


def systemd_time(text: str) -> Duration:
    """systemd's time span: `45`, `45s`, `1min 30s`, `500ms`; `infinity` is refused (no timeout at all)."""
    text = text.strip()
    if re.fullmatch(r"[0-9]{1,15}", text):
        return bounded_seconds(int(text), text)
    parts = re.findall(r"([0-9]{1,15})\s*([a-z]+)\s*", text)
    if not parts or "".join(re.findall(r"[0-9]{1,15}\s*[a-z]+\s*", text)) != text:
        raise ValueError(f"{shown(text)} is not a systemd time span deploygen compares (e.g. 90s, 1min 30s)")
    total = 0.0
    for number, unit in parts:
        if unit not in _UNITS:
            raise ValueError(f"{shown(text)}: unknown unit {shown(unit)}")
        total += int(number) * _UNITS[unit]
    return Duration(bounded_ms(total, text))


def unit_lines(text: str) -> Iterator[tuple[int, str]]:
    """(number of its first line, line) of each logical line: systemd joins a line ending in a
    backslash with the next (comment lines in between are dropped), and at the end of the file
    the backslash is simply removed."""
    joined, first = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if joined and line[:1] in ("#", ";"):
            continue
        if not joined:
            first = number
        if line.endswith("\\"):
            joined += line[:-1] + " "
            continue
        yield first, joined + line
        joined = ""
    if joined:
        yield first, joined.rstrip()


# Where systemd looks for NAME.service.d/*.conf, the folder that wins a name first.
DROPIN_FOLDERS = ("/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
                  "/usr/lib/systemd/system", "/lib/systemd/system")
# What ExecStart= sets: an empty `ExecStart=` takes all of it back.
_FROM_EXEC = ("systemd.ExecStart", "gunicorn.")


def unit_dropins(tree: Tree, name: str, folders: tuple[str, ...] = DROPIN_FOLDERS) -> list[str]:
    """The drop-ins of unit NAME (local paths), in the order systemd applies them: sorted by file
    name across `folders`, a name in an earlier folder hiding it in the later ones, and one that is
    a link to /dev/null hiding it and read as nothing."""
    chosen: dict[str, str] = {}
    for folder in folders:
        for path in tree.glob(f"{glob.escape(folder)}/{glob.escape(name)}.d/*.conf"):
            chosen.setdefault(os.path.basename(path), path)
    dropins = []
    for _, path in sorted(chosen.items()):
        try:
            if tree.is_dev_null(path):
                continue
            dropins.append(tree.local(path))
        except OSError as exc:  # a symlink loop
            raise unreadable(path, "systemd", why(exc)) from None
    return dropins


def read_unit(path: str, tree: Tree | None = None, dropins: list[str] | tuple[str, ...] = ()) -> dict[str, ReadSetting]:
    """`systemd.TimeoutStopSec`, the unit's user, files and gunicorn flags, each with its line:
    the unit's, then each drop-in's over them, as systemd reads them one after the other."""
    tree = tree or Tree()
    found: dict[str, ReadSetting] = {}
    commands: list[Location] = []
    kind = "simple"
    for file in (path, *dropins):
        section = ""  # each file starts outside any section, where systemd ignores assignments
        for number, line in unit_lines(tree.read_text(file, "systemd")):
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, _, value = line.partition("=")
            key, value = key.strip(), value.strip()
            if section != "Service":
                continue
            where = Location(file, number, 1)
            if key == "Type":
                kind = value or "simple"
            elif key == "ExecStart":
                for old in [k for k in found if k.startswith(_FROM_EXEC)]:
                    del found[old]
                commands = [*commands, where] if value else []
                if not value:
                    continue
            elif key == "EnvironmentFile" and not value:
                found.pop("systemd.EnvironmentFile", None)  # systemd's reset of the list, not a file named ""
                continue
            found.update(_service_line(key, value, where, found))
    if len(commands) > 1 and kind != "oneshot":
        # systemd refuses to load the unit: no command of it runs, so none is audited.
        raise unreadable(commands[1].file, "systemd.ExecStart",
                         "a second ExecStart= (systemd refuses it unless Type=oneshot; "
                         "an empty `ExecStart=` before it replaces the first)", commands[1].line)
    if "systemd.TimeoutStopSec" not in found:
        found["systemd.TimeoutStopSec"] = ReadSetting("systemd.TimeoutStopSec", STOP_DEFAULT,
                                                      Location(path, 1, 1), default=True)
    return dict(sorted(found.items()))


def _service_line(key: str, value: str, where: Location, found: dict[str, ReadSetting]) -> dict[str, ReadSetting]:
    """What one `[Service]` line sets; a value that is no time span is reported at its line."""
    if key in ("TimeoutStopSec", "RestartSec", "TimeoutSec"):
        # TimeoutSec= sets the stop timeout too; a TimeoutStopSec= read after it wins, as in systemd.
        name = "systemd.TimeoutStopSec" if key == "TimeoutSec" else f"systemd.{key}"
        try:
            return {name: ReadSetting(name, systemd_time(value), where)}
        except ValueError as exc:
            return {name: ReadSetting(name, None, where, unknown=f"{key}: {exc}" if key == "TimeoutSec" else str(exc))}
    if key in ("User", "Group", "WorkingDirectory"):
        return {f"systemd.{key}": ReadSetting(f"systemd.{key}", value, where)}
    if key == "EnvironmentFile":
        files = found.get("systemd.EnvironmentFile")
        # `-` marks a file that may be missing; audit reads what is there either way.
        listed = [*(files.value if files else []), value.removeprefix("-")]
        return {"systemd.EnvironmentFile": ReadSetting("systemd.EnvironmentFile", listed, where)}
    if key == "ExecStart":
        return _exec_start(value, where)
    return {}


def _exec_start(command: str, where: Location) -> dict[str, ReadSetting]:
    try:
        words = shlex.split(command.lstrip("@-:+!"))
    except ValueError as exc:  # an unclosed quote: systemd refuses the line, and so the unit
        raise unreadable(where.file, "systemd.ExecStart", f"{exc} in {shown(command)}", where.line) from None
    found = {"systemd.ExecStart": ReadSetting("systemd.ExecStart", words, where)}
    index = 1
    while index < len(words):
        word = words[index]
        flag, _, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        name = _FLAGS.get(flag)
        if name is None:
            index += 1
            continue
        value = inline or (words[index + 1] if index + 1 < len(words) else "")
        index += 1 if inline else 2
        key = "gunicorn.config_file" if name == "config" else f"gunicorn.{name}"
        try:
            found[key] = ReadSetting(key, typed(name, value), where)
        except (ValueError, TypeError) as exc:
            found[key] = ReadSetting(key, None, where, unknown=f"{flag}: {exc}")
    return found
