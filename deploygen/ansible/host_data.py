"""One host's data for site.yml (host_vars/HOST.yml) and the files it copies (files/HOST/...).

Each rendered file becomes one entry: where its bytes are in the project (`src`), where they
go on the server (`dest`, under deploygen_root), its owner, group and mode, the site.yml task
that installs it (`step`) with the handlers that task notifies, and the command copy's
`validate:` runs on the candidate before it replaces the installed file.
"""

from __future__ import annotations

import hashlib
import posixpath
import shlex
from dataclasses import dataclass

from deploygen.ansible.postgres import database_entry
from deploygen.ansible.yaml_text import Template, Unsafe
from deploygen.render.install import InstallPlan

# A service other sites share (php-fpm's master) is checked, then reloaded, once per host: a
# pool file is the app's configuration, a drop-in a unit; both change what the master runs.
SHARED = ("Check the shared services' configuration", "Reload the shared services")
# The site.yml task that installs each kind of file, in site.yml's order, and its handlers.
STEPS = {
    "support": (),
    "nginx": ("Test the nginx configuration", "Reload nginx"),
    "units": ("Reload systemd", "Restart the changed sites", *SHARED),
    "app": ("Restart the changed sites", *SHARED),
}
_STEP_OF_KIND = {
    "check-script": "support",
    "postgres-sql": "support",
    "manifest": "support",
    "nginx-snippet": "nginx",
    "nginx-site": "nginx",
    "systemd-service": "units",
    "systemd-timer": "units",
    "systemd-socket": "units",
    "systemd-dropin": "units",
}
_VERIFIED_UNITS = ("systemd-service", "systemd-timer", "systemd-socket")
# Where each deploy that changes something records what it replaced (rollback.yml reads it).
RECORD_FOLDER = "/var/lib/deploygen"


@dataclass(frozen=True)
class ProjectFile:
    """One rendered file as the project holds it: files/HOST/<dest>."""

    src: str
    content: bytes
    mode: str


def step_of(kind: str) -> str:
    """The site.yml step of a file kind: the app's own configuration unless named above."""
    return _STEP_OF_KIND.get(kind, "app")


def _validate(kind: str, plan: InstallPlan):
    if kind == "nginx-site" and plan.nginx_check:
        # The wrapper runs nginx -t on the candidate inside a temporary main config.
        return Template.around("/bin/sh {{ deploygen_prefix }}", plan.nginx_check, " %s")
    if kind in _VERIFIED_UNITS:
        return Template("{{ deploygen_systemd_verify }}")
    return None


def host_data(host_name: str, sites: list, contexts: list) -> tuple[dict, list[ProjectFile]]:
    """host_vars of one host (its RenderedSites, and their contexts in the same order) and its files."""
    files: list[dict] = []
    project_files: list[ProjectFile] = []
    seen: dict[str, str] = {}
    entries, databases = [], []
    for site, context in zip(sites, contexts):
        plan: InstallPlan = site.plan
        rendered = [(f.kind, f.target, f.mode, f.content) for f in site.files]
        if site.manifest_target:
            rendered.append(("manifest", site.manifest_target, "0644", site.manifest))
        for kind, target, mode, content in rendered:
            if target in seen:
                raise ValueError(f"{host_name}: {target} is a file of both {seen[target]} and {site.name}")
            seen[target] = site.name
            src = f"files/{host_name}{target}"
            step = step_of(kind)
            entry = {
                "site": Unsafe(site.name),
                "kind": Unsafe(kind),
                "src": Unsafe(src),
                "dest": Unsafe(target),
                "owner": "root",
                "group": "root",
                "mode": Unsafe(mode),
                "sha256": hashlib.sha256(content).hexdigest(),
                "step": step,
                "notify": list(STEPS[step]),
                "validate": _validate(kind, plan),
            }
            files.append(entry)
            project_files.append(ProjectFile(src, content, mode))
        entries.append(_site_entry(plan))
        database = database_entry(context, plan)
        if database is not None:
            databases.append(database)
    order = list(STEPS)
    files.sort(key=lambda f: (order.index(f["step"]), f["dest"]))
    plans = [site.plan for site in sites]
    directories = _unique([posixpath.dirname(f["dest"]) for f in files]
                          + [posixpath.dirname(p.nginx_enabled) for p in plans] + ["/etc/deploygen", RECORD_FOLDER])
    webroots = _unique(p.acme_webroot for p in plans if p.acme_webroot)
    site_directories = _site_directories(plans, set(directories) | set(webroots))
    managed = ([f["dest"] for f in files] + [p.nginx_enabled for p in plans] + directories + webroots
               + [d["path"] for d in site_directories])
    data = {
        "deploygen_sites": entries,
        "deploygen_groups": _unique(p.group for p in plans if p.create_group),
        "deploygen_users": _users(plans),
        "deploygen_group_members": _members(plans),
        "deploygen_acme_webroots": webroots,
        "deploygen_directories": directories,
        "deploygen_site_directories": site_directories,
        "deploygen_files": files,
        "deploygen_databases": databases,
        "deploygen_probe": probe(managed),
    }
    return data, sorted(project_files, key=lambda f: f.src)


def probe(paths: list[str]) -> dict:
    """What site.yml's one `find` searches to see every managed path: the top folders they are
    in (/etc, /var: there on every server, so find never meets a missing one), deep enough to
    reach each, for their names only."""
    parts = [path.strip("/").split("/") for path in paths]
    return {
        "paths": _unique("/" + p[0] for p in parts),
        "depth": max(len(p) - 1 for p in parts),
        "names": _unique(p[-1] for p in parts),
    }


def _site_entry(plan: InstallPlan) -> dict:
    return {
        "name": Unsafe(plan.site),
        "services": [Unsafe(s) for s in plan.services],
        "timers": [Unsafe(t) for t in plan.timers],
        "nginx_site": Unsafe(plan.nginx_site),
        "nginx_enabled": Unsafe(plan.nginx_enabled),
        # Relative, so that the link works under any deploygen_root.
        "nginx_link": Unsafe(posixpath.relpath(plan.nginx_site, posixpath.dirname(plan.nginx_enabled))),
        "secrets_file": Unsafe(plan.secrets_file or ""),
        "secrets_check": Unsafe(plan.secrets_check or ""),
        "secret_keys": [Unsafe(k) for k in plan.secret_keys],
        # The check runs as the manual path's does, without a shell: its words, split once here.
        "reloads": [{"unit": Unsafe(unit), "check": [Unsafe(word) for word in shlex.split(check)]}
                    for check, unit in plan.reloads],
    }


def _site_directories(plans: list[InstallPlan], root_folders: set[str]) -> list[dict]:
    """The folders the sites' services need that no unit creates in time, each after its parent.

    A parent inside a site's own folder (/var/lib/NAME for /var/lib/NAME/sessions) comes first,
    root:root 0755 as systemd's StateDirectory= makes it: Ansible's file module would give a
    missing parent the child's owner and mode (the app's, 0700). A folder site.yml makes
    root:root 0755 before (`root_folders`), or a parent of one (/var/lib), needs no entry."""
    wanted: dict[str, tuple[str, str, str]] = {}
    sites: dict[str, str] = {}
    made = set(root_folders)
    for folder in root_folders:
        while folder.count("/") > 1:
            folder = posixpath.dirname(folder)
            made.add(folder)

    def want(path: str, attributes: tuple[str, str, str], site: str) -> None:
        if path in wanted and wanted[path] != attributes:
            raise ValueError(f"{path} is a folder of both {sites[path]} ({' '.join(wanted[path])}) "
                             f"and {site} ({' '.join(attributes)})")
        wanted.setdefault(path, attributes)
        sites.setdefault(path, site)

    for plan in plans:
        for path, mode, owner, group in plan.directories:
            want(path, (mode, owner, group), plan.site)
    for path in list(wanted):
        parent = posixpath.dirname(path)
        # A top folder (/run, /var) is on every server, and site.yml makes it under a root.
        if parent.count("/") > 1 and parent not in wanted and parent not in made:
            want(parent, ("0755", "root", "root"), sites[path])
    for path in sorted(root_folders & set(wanted)):
        if wanted[path] != ("0755", "root", "root"):
            raise ValueError(f"{path}: a folder of {sites[path]} ({' '.join(wanted[path])}) that deploygen "
                             "keeps root:root 0755")
    # A parent's path sorts before its children's.
    return [{"site": Unsafe(sites[path]), "path": Unsafe(path), "mode": Unsafe(mode), "owner": Unsafe(owner),
             "group": Unsafe(group)} for path, (mode, owner, group) in sorted(wanted.items())]


def _unique(values) -> list:
    return [Unsafe(v) for v in sorted(set(values))]


def _users(plans: list[InstallPlan]) -> list[dict]:
    """The apps' system users to create, each once: a user two sites share takes the first's group
    and home (rules keep the sites of one user consistent)."""
    users: dict[str, dict] = {}
    for plan in plans:
        if plan.create_user and plan.user not in users:
            users[plan.user] = {"name": Unsafe(plan.user), "group": Unsafe(plan.group), "home": Unsafe(plan.home)}
    return [users[name] for name in sorted(users)]


def _members(plans: list[InstallPlan]) -> list[dict]:
    """nginx's user, in each group whose app it reaches through a unix socket."""
    groups: dict[str, set[str]] = {}
    for plan in plans:
        if plan.join_group:
            groups.setdefault(plan.nginx_user, set()).add(plan.group)
    return [{"user": Unsafe(user), "groups": _unique(groups[user])} for user in sorted(groups)]
