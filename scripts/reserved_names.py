#!/usr/bin/env python3
"""Write deploygen/sitefile/reserved_names.tsv: the names a Debian system already uses.

A site's name becomes `/etc/systemd/system/NAME.service`, `RuntimeDirectory=NAME`
(systemd chowns /run/NAME to the app and deletes it on every stop) and the
default `/var/lib/NAME/sessions`. A name a Debian system already uses there
hands another program's unit or directory to the app, so `Name` in
deploygen/sitefile/fields.py refuses every name in the file this script writes.

Run it on a Debian install that has the stack deploygen renders for (nginx,
postgresql, redis-server installed), from the repository's root:

    python3 scripts/reserved_names.py [--packages LIST] [-o deploygen/sitefile/reserved_names.tsv]

It reads, on this machine: the unit names of every systemd unit (and the
directories units claim with RuntimeDirectory=, StateDirectory=, ...), the
entries of /run, /var/lib, /var/log, /var/cache and /etc and those
systemd-tmpfiles creates at boot (a container has no booted /run), the users
and groups; and the package names of a Debian package list (default: the
image list under /work/.library/env/packages/, `apt<TAB>NAME<TAB>VERSION`
lines; `dpkg-query -W` of this machine is added too). A short list of the web
stack's services that may be installed later, and of services a booted Debian
has that a container lacks, completes it. Only names a site could take are
kept (`[a-z][a-z0-9_-]{0,31}`).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

SITE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")

UNIT_DIRS = ("/usr/lib/systemd/system", "/lib/systemd/system", "/etc/systemd/system")
UNIT_SUFFIXES = (".service", ".socket", ".target", ".timer", ".mount", ".automount", ".path",
                 ".slice", ".scope", ".swap", ".device")
# A unit's drop-in and dependency folders name the unit they belong to.
UNIT_FOLDER_SUFFIXES = (".d", ".wants", ".requires", ".upholds")

# Directory: the source label the data file and the error message use.
TREES = {"/run": "run", "/var/lib": "var-lib", "/var/log": "var-log", "/var/cache": "var-cache",
         "/etc": "etc"}
# systemd's unit settings that claim a directory under one of TREES.
UNIT_DIRECTORIES = {"RuntimeDirectory": "run", "StateDirectory": "var-lib", "LogsDirectory": "var-log",
                    "CacheDirectory": "var-cache", "ConfigurationDirectory": "etc"}
TMPFILES_DIRS = ("/usr/lib/tmpfiles.d", "/etc/tmpfiles.d")

DEFAULT_PACKAGES = "/work/.library/env/packages/installed-python-debian13.txt"

# The services a site's stack runs beside it, whether or not this machine has them yet
# (their units and directories are named after them), and deploygen's own names.
STACK = (
    "nginx", "apache2", "httpd", "lighttpd", "caddy", "haproxy", "varnish", "traefik",
    "postgresql", "postgres", "pgbouncer", "mysql", "mysqld", "mariadb", "mariadbd",
    "redis", "redis-server", "redis-sentinel", "valkey", "valkey-server", "memcached",
    "php-fpm", "php5-fpm", "php7-fpm", "php8-fpm", "gunicorn", "uwsgi", "uvicorn", "celery",
    "supervisor", "supervisord", "rabbitmq-server", "certbot", "letsencrypt", "docker",
    "containerd", "deploygen", "default",
)
# Services and runtime folders of a booted Debian that a container image does not have.
BOOTED = (
    "udev", "systemd-udevd", "ssh", "sshd", "cron", "anacron", "rsyslog", "networking",
    "network-manager", "networkmanager", "wpa_supplicant", "ifupdown", "ifup", "dhcpcd",
    "apparmor", "auditd", "chrony", "ntp", "ntpsec", "timesyncd", "polkit", "polkitd",
    "getty", "console-setup", "keyboard-setup", "kmod", "procps", "plymouth", "initramfs",
    "mount", "credentials", "shm", "motd", "sudo", "exim4", "postfix", "unattended-upgrades",
    "fail2ban", "ufw", "nftables", "iptables", "firewalld", "lvm2", "mdadm", "multipathd",
    "cloud-init", "qemu-guest-agent", "open-vm-tools", "snapd", "avahi-daemon", "cups",
    "bluetooth", "accounts-daemon", "lightdm", "gdm", "gdm3", "sddm", "packagekit",
    # Units and folders of packages a server commonly has that this image lacks, and systemd's
    # own /var/lib/machines, /var/lib/portables and /run/host.
    "logrotate", "resolvconf", "udisks2", "fwupd", "dracut", "irqbalance", "smartd", "smartmontools",
    "thermald", "acpid", "atd", "sysstat", "man-db", "apt-daily", "apt-daily-upgrade", "e2scrub",
    "fstrim", "machines", "portables", "host", "journal",
)


def unit_names(add) -> None:
    for folder in UNIT_DIRS:
        if not os.path.isdir(folder):
            continue
        for entry in sorted(os.listdir(folder)):
            name = entry
            for suffix in UNIT_FOLDER_SUFFIXES:
                if name.endswith(suffix):
                    name = name[: -len(suffix)]
                    break
            for suffix in UNIT_SUFFIXES:
                if name.endswith(suffix):
                    # A template (getty@.service) and its instances (user@0) count as the name
                    # before the @: NAME.service beside NAME@.service confuses every reader.
                    add(name[: -len(suffix)].split("@", 1)[0].rstrip("-"), "unit")
                    break
            path = Path(folder, entry)
            if path.is_file() and entry.endswith(UNIT_SUFFIXES):
                unit_directories(path, add)


def unit_directories(path: Path, add) -> None:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return
    for line in text.splitlines():
        key, _, value = line.strip().partition("=")
        if key in UNIT_DIRECTORIES:
            for word in value.split():
                add(word.split("/", 1)[0].split(":", 1)[0], UNIT_DIRECTORIES[key])


def tree_entries(add) -> None:
    for tree, label in TREES.items():
        if os.path.isdir(tree):
            for entry in os.listdir(tree):
                add(entry, label)


def tmpfiles_entries(add) -> None:
    """The first component under TREES of every path systemd-tmpfiles creates at boot."""
    for folder in TMPFILES_DIRS:
        if not os.path.isdir(folder):
            continue
        for entry in sorted(os.listdir(folder)):
            try:
                lines = Path(folder, entry).read_text(errors="replace").splitlines()
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                if len(fields) < 2 or fields[0].startswith("#"):
                    continue
                path = fields[1]
                for tree, label in TREES.items():
                    if path.startswith(tree + "/"):
                        add(path[len(tree) + 1:].split("/", 1)[0], label)


def accounts(add) -> None:
    for file, label in (("/etc/passwd", "user"), ("/etc/group", "group")):
        try:
            lines = Path(file).read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line and not line.startswith("#"):
                add(line.split(":", 1)[0], label)


def packages(list_file: str, add) -> None:
    """`apt<TAB>NAME<TAB>VERSION` lines of an image's package list, and this machine's dpkg."""
    if list_file:
        for line in Path(list_file).read_text().splitlines():
            fields = line.split("\t")
            if len(fields) >= 2 and fields[0] == "apt":
                add(fields[1].split(":", 1)[0], "package")
    try:
        listed = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\n"], capture_output=True,
                                text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return
    for name in listed.split():
        add(name, "package")


def collect(list_file: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)

    def add(name: str, source: str) -> None:
        if SITE_NAME.fullmatch(name):
            found[name].add(source)

    unit_names(add)
    tree_entries(add)
    tmpfiles_entries(add)
    accounts(add)
    packages(list_file, add)
    for name in STACK:
        add(name, "stack")
    for name in BOOTED:
        add(name, "booted")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--packages", default=DEFAULT_PACKAGES,
                        help="a package list of `apt<TAB>NAME<TAB>VERSION` lines ('' for none)")
    parser.add_argument("-o", "--output", default=str(Path(__file__).resolve().parent.parent
                                                      / "deploygen" / "sitefile" / "reserved_names.tsv"))
    args = parser.parse_args()
    found = collect(args.packages)
    debian = Path("/etc/debian_version").read_text().strip() if os.path.exists("/etc/debian_version") else "?"
    lines = [
        "# Names a Debian system uses: a site may not take them (deploygen/sitefile/reserved_names.py).",
        f"# Written by scripts/reserved_names.py on Debian {debian}; {len(found)} names.",
        "# NAME<TAB>where Debian uses it (comma-separated sources)",
    ]
    lines += [f"{name}\t{','.join(sorted(sources))}" for name, sources in sorted(found.items())]
    Path(args.output).write_text("\n".join(lines) + "\n")
    counts: dict[str, int] = defaultdict(int)
    for sources in found.values():
        for source in sources:
            counts[source] += 1
    print(f"{args.output}: {len(found)} names; " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
