"""systemd units: the stop timeout, and gunicorn's settings from ExecStart's flags.

A unit is read line by line (systemd allows repeated keys, which INI readers
reject), keeping each line's number. `TimeoutStopSec` absent means systemd's
default of 90 s (`DefaultTimeoutStopSec=`).
"""

from __future__ import annotations

import shlex

from deploygen.audit.found import ReadSetting
from deploygen.audit.gunicorn_reader import typed
from deploygen.duration import Duration
from deploygen.errors import Location

STOP_DEFAULT = Duration.seconds_(90)
# gunicorn's command-line flags for the settings deploygen reads.
_FLAGS = {
    "-c": "config", "--config": "config", "-b": "bind", "--bind": "bind", "-w": "workers",
    "--workers": "workers", "-k": "worker_class", "--worker-class": "worker_class", "--threads": "threads",
    "-t": "timeout", "--timeout": "timeout", "--graceful-timeout": "graceful_timeout",
    "--keep-alive": "keepalive", "--max-requests": "max_requests",
}


def systemd_time(text: str) -> Duration:
    """systemd's time span: `45`, `45s`, `1min 30s`, `500ms`, `infinity` is refused."""
    import re

    units = {"us": 0.001, "ms": 1, "s": 1000, "sec": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000,
             "hr": 3_600_000, "d": 86_400_000}
    text = text.strip()
    if re.fullmatch(r"\d+", text):
        return Duration.seconds_(int(text))
    total = 0.0
    for number, unit in re.findall(r"(\d+)\s*([a-z]+)", text):
        if unit not in units:
            raise ValueError(f"{text!r}: unknown unit {unit!r}")
        total += int(number) * units[unit]
    return Duration(int(total))


def read_unit(path: str) -> dict[str, ReadSetting]:
    """`systemd.TimeoutStopSec`, the unit's user, files and gunicorn flags, each with its line."""
    found: dict[str, ReadSetting] = {}
    section = ""
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, _, value = line.partition("=")
            key, value = key.strip(), value.strip()
            where = Location(path, number, 1)
            if section != "Service":
                continue
            if key in ("TimeoutStopSec", "RestartSec"):
                found[f"systemd.{key}"] = ReadSetting(f"systemd.{key}", systemd_time(value), where)
            elif key in ("User", "Group", "WorkingDirectory"):
                found[f"systemd.{key}"] = ReadSetting(f"systemd.{key}", value, where)
            elif key == "EnvironmentFile":
                files = found.get("systemd.EnvironmentFile")
                listed = [*(files.value if files else []), value.lstrip("-")]
                found["systemd.EnvironmentFile"] = ReadSetting("systemd.EnvironmentFile", listed, where)
            elif key == "ExecStart":
                found.update(_exec_start(value, where))
    if "systemd.TimeoutStopSec" not in found:
        found["systemd.TimeoutStopSec"] = ReadSetting("systemd.TimeoutStopSec", STOP_DEFAULT,
                                                      Location(path, 1, 1), default=True)
    return dict(sorted(found.items()))


def _exec_start(command: str, where: Location) -> dict[str, ReadSetting]:
    words = shlex.split(command.lstrip("@-:+!"))
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
        found[key] = ReadSetting(key, typed(name, value), where)
    return found
