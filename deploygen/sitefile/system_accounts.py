"""User and group names the server's own packages own, which a site may not run as.

The first install creates the app's user and group when they are missing and, for a unix
socket, adds nginx's user to the app's group. On an account the system already has, that
would hand it over: `group: docker` makes `usermod -aG docker www-data` (root-equivalent for
every www-data process), `user: postgres` runs the app as the database's superuser. The names
are data (system_accounts.tsv, which says where they come from); `root` loads, for DG701 to
report, and `www-data` is Debian's account for web apps, the default.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

# Beside this module in the installed package, like reserved_names.tsv.
DATA = Path(__file__).with_name("system_accounts.tsv")

# The system's accounts a site may name: root (DG701 reports it) and Debian's web account.
ALLOWED = frozenset({"root", "www-data"})


@cache
def system_accounts() -> dict[str, tuple[str, str]]:
    """Every refused name: (the package that ships it, what the account may do)."""
    out = {}
    for line in DATA.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, package, power = line.split("\t")
            out[name] = (package, power)
    return out


def is_system_account(name: str) -> bool:
    """Whether the OS or a package ships `name` (root and www-data included)."""
    return name in ALLOWED or name.startswith("systemd-") or name in system_accounts()


def why_system_account(name: str, what: str) -> str | None:
    """Why `name` may not be the app's `what` ("user" or "group"), or None when it may."""
    if name in ALLOWED:
        return None
    if name.startswith("systemd-"):
        package, power = "systemd", "is one of systemd's own accounts (systemd-*, DynamicUser= names included)"
    elif name in system_accounts():
        package, power = system_accounts()[name]
    else:
        return None
    harm = ("The app would run as it" if what == "user" else
            "The app would run in that group, and nginx's user would join it for a unix socket")
    return (f"{name!r} is an account the system ships ({package}); it {power}. {harm}: give the app a "
            f"{what} of its own (e.g. shop, which the first install creates) or www-data")
