"""Site names a Debian system already uses, and why each is refused.

A site's name is its unit (`/etc/systemd/system/NAME.service`), its
`RuntimeDirectory=NAME` (systemd hands /run/NAME to the app's user and deletes
it on every stop) and its default `/var/lib/NAME`. A name Debian uses hands
that unit or folder to the app: `user` deletes /run/user on stop, `udev`
shadows the system's udev.service. The names come from a real install
(reserved_names.tsv, written by scripts/reserved_names.py), not a hand list.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

# Beside this module in the installed package (hatchling ships every file under deploygen/).
# Not importlib.resources: importing it costs ~30 ms, a tenth of a validate run.
DATA = Path(__file__).with_name("reserved_names.tsv")

# The sources scripts/reserved_names.py labels each name with, as the message says them.
_SOURCES = {
    "unit": "a systemd unit",
    "run": "a folder in /run",
    "var-lib": "a folder in /var/lib",
    "var-log": "a folder in /var/log",
    "var-cache": "a folder in /var/cache",
    "etc": "an entry of /etc",
    "user": "a user",
    "group": "a group",
    "package": "a Debian package",
    "stack": "a service of the web stack",
    "booted": "a service or /run folder of a booted Debian",
}


@cache
def reserved() -> dict[str, tuple[str, ...]]:
    """Every reserved name and its sources, read once per process from the shipped data."""
    text = DATA.read_text(encoding="utf-8")
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, sources = line.partition("\t")
            out[name] = tuple(sources.split(","))
    return out


def why_reserved(name: str) -> str | None:
    """Why `name` cannot name a site, or None when it can."""
    if name.startswith("systemd-"):
        return (f"{name!r} is in systemd's own namespace (systemd-*): its unit would shadow or "
                "be mistaken for one of systemd's; choose another name")
    sources = reserved().get(name)
    if sources is None:
        return None
    said = ", ".join([_SOURCES[s] for s in _SOURCES if s in sources] + [s for s in sources if s not in _SOURCES])
    harms = []
    if "unit" in sources:
        harms.append(f"its unit {name}.service would shadow the system's")
    if "run" in sources:
        harms.append(f"RuntimeDirectory={name} would hand /run/{name} to the app and delete it on every stop")
    if "var-lib" in sources:
        harms.append(f"its session folder would be made inside the system's /var/lib/{name}")
    if not harms and ("stack" in sources or "booted" in sources):
        harms.append(f"its unit {name}.service would shadow that service's and RuntimeDirectory={name} would "
                     f"take over its /run/{name} (chowned to the app, deleted on every stop)")
    if not harms:
        harms.append(f"its unit, /run/{name} and /var/lib/{name} would collide with what Debian installs "
                     "under that name")
    return f"{name!r} is a name Debian uses ({said}): {'; '.join(harms)}; choose another name"
