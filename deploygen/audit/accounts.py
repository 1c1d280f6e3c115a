"""A server's accounts: who is in which group, read from ROOT/etc/group and ROOT/etc/passwd.

Only with `--root`: this machine's accounts are not the server's. Each file is read as every
file of ROOT is (`Tree`: resolved inside ROOT, a regular file of at most 1 MiB, UTF-8), and
only its `files` entries are known: a `+`/`-` line (NIS compat) or accounts that nsswitch takes
from LDAP or SSSD are not in it. A file that cannot be read is a reason, never a guess: the
settings that need it are left out, and the rules that read them are skipped.

What nginx's workers run with is what nginx gives them (ngx_worker_process_init): setgid() to
the `user` directive's group, then initgroups(user, that group), which adds every /etc/group
line naming the user. The user's primary group in /etc/passwd is not among them unless it is
the directive's group. systemd runs a unit without `Group=` with its user's primary group.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from deploygen.audit.found import ReadSetting
from deploygen.audit.source import TooManyFiles, Tree, why
from deploygen.errors import InputError, Location


@dataclass
class Accounts:
    """The parsed files, or why each could not be read ("" when it was)."""

    group_file: str = ""  # the local path read, for locations
    passwd_file: str = ""
    groups: list[tuple[str, str, list[str], int]] = field(default_factory=list)  # name, gid, members, line
    users: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # name and "#uid" -> (name, gid, line)
    group_missing: str = ""
    passwd_missing: str = ""

    def group_name(self, gid: str) -> str | None:
        return next((name for name, number, _, _ in self.groups if number == gid), None)


def _read(tree: Tree, path: str) -> tuple[str, str, str]:
    """(local path, text, why not) of one account file of ROOT."""
    try:
        local = tree.local(path)
    except OSError as exc:  # a symlink loop
        return path, "", why(exc)
    try:
        return local, tree.read_text(local, "accounts"), ""
    except TooManyFiles:
        raise  # audit stops there, as for any file past the cap
    except InputError as exc:
        return local, "", exc.problems[0].message.removeprefix("could not be read: ")


def read_accounts(tree: Tree) -> Accounts:
    """ROOT's /etc/group and /etc/passwd, each parsed line by line (malformed lines skipped, as
    glibc's files backend skips them)."""
    accounts = Accounts()
    accounts.group_file, text, accounts.group_missing = _read(tree, "/etc/group")
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split(":")
        if len(fields) != 4 or not fields[0] or line.startswith(("+", "-", "#")) or not fields[2].isdigit():
            continue
        members = [m.strip() for m in fields[3].split(",") if m.strip()]
        accounts.groups.append((fields[0], fields[2], members, number))
    accounts.passwd_file, text, accounts.passwd_missing = _read(tree, "/etc/passwd")
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split(":")
        if len(fields) != 7 or not fields[0] or line.startswith(("+", "-", "#")) or not fields[2].isdigit() \
                or not fields[3].isdigit():
            continue
        accounts.users.setdefault(fields[0], (fields[0], fields[3], number))
        accounts.users.setdefault(f"#{fields[2]}", (fields[0], fields[3], number))
    return accounts


def worker_groups(accounts: Accounts, user: str, group: str) -> ReadSetting | None:
    """`nginx.user.groups`: the groups nginx's workers run with, as initgroups() gives them, or
    None when ROOT's /etc/group could not be read."""
    if accounts.group_missing:
        return None
    names = [group, *(name for name, _, members, _ in accounts.groups if user in members and name != group)]
    return ReadSetting("nginx.user.groups", list(dict.fromkeys(names)), Location(accounts.group_file, 1, 1),
                       how=f"{group} (nginx's `user` directive), then every line of /etc/group naming {user}")


def primary_group(accounts: Accounts, user: str, at: Location) -> ReadSetting | None:
    """`systemd.Group` of a unit without Group=: its User='s primary group (root's for root), located
    where Group= would go; None when /etc/passwd cannot say."""
    if user in ("root", "0"):
        return ReadSetting("systemd.Group", "root", at, default=True, how="root: User= is root, no Group=")
    if accounts.passwd_missing:
        return None
    entry = accounts.users.get(f"#{user}" if user.isdigit() else user)
    if entry is None:
        return None
    name = accounts.group_name(entry[1]) if not accounts.group_missing else None
    if name is None:
        return None
    return ReadSetting("systemd.Group", name, at, default=True,
                       how=f"{name}: no Group=, so systemd runs it with {entry[0]}'s primary group (/etc/passwd)")
