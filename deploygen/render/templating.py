"""The one Jinja environment every template is rendered through."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from deploygen.sitefile.duration import Duration

# deploygen/render/templating.py: the package is two folders up, the repository three.
_PACKAGE = Path(__file__).resolve().parent.parent


def templates_dir() -> Path:
    """Templates inside the installed package, else the repository's `templates/`."""
    packaged = _PACKAGE / "templates"
    return packaged if packaged.is_dir() else _PACKAGE.parent / "templates"


def _seconds(value: Duration) -> str:
    """Seconds as a Python number, for settings that take fractions (psycopg_pool's timeouts)."""
    return str(value.seconds) if value.is_whole_seconds else repr(value.ms / 1000)


def _py(value: object) -> str:
    """A Python literal for gunicorn.conf.py; durations become whole seconds."""
    if isinstance(value, Duration):
        return str(value.seconds)
    if isinstance(value, list):
        return "[" + ", ".join(_py(v) for v in value) + "]"
    return json.dumps(value) if isinstance(value, str) else repr(value)


def _fpm(value: Duration) -> str:
    """A PHP-FPM time: whole seconds with their suffix (FPM reads `1.5s` as 1 s, `100ms` as 100 s)."""
    return f"{value.ceil_seconds().seconds}s"


class _Environment(jinja2.Environment):
    def getattr(self, obj: Any, attribute: str) -> Any:
        # Templates read layer values as `nginx.proxy_read_timeout` from plain dicts. Jinja tries
        # the attribute first and reaches the key through an AttributeError: a raised exception
        # per value, a fifth of the time spent in templates. Keys first for dicts, as `[]` does.
        if type(obj) is dict and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


@cache
def environment() -> jinja2.Environment:
    env = _Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        auto_reload=False,  # templates do not change while a command runs: no stat per file rendered
    )
    env.filters["nginx"] = Duration.nginx
    env.filters["systemd"] = Duration.systemd
    env.filters["py"] = _py
    env.filters["seconds"] = _seconds
    env.filters["fpm"] = _fpm
    return env


def compile_all() -> None:
    """Compile every template now, before workers are forked: they share the result."""
    env = environment()
    for name in env.list_templates(extensions=["j2"]):
        env.get_template(name)
