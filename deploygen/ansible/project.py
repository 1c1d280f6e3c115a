"""A fleet's Ansible project, in memory: every file of DIR, by its path in DIR."""

from __future__ import annotations

import hashlib
import json
import textwrap
from dataclasses import dataclass
from importlib import resources
from pathlib import PurePosixPath

from deploygen.ansible.host_data import STEPS, host_data
from deploygen.ansible.inventory import inventory
from deploygen.ansible.yaml_text import dump
from deploygen.errors import InputError, Problem
from deploygen.fleet.load import LoadedFleet
from deploygen.fleet.render import RenderedHost
from deploygen.render.site import GENERATOR

# The playbooks are the same for every fleet: they read what host_vars/HOST.yml lists.
PLAYBOOKS = ("site.yml", "rollback.yml", "handlers.yml", "vars.yml")
# What deploygen wrote in DIR, with each file's sha256 (output replaces only such a DIR).
MARKER = ".deploygen.json"


@dataclass(frozen=True)
class Project:
    files: dict[str, tuple[bytes, int]]  # path in DIR -> content, mode

    def marker(self) -> bytes:
        listed = {path: hashlib.sha256(content).hexdigest() for path, (content, _) in sorted(self.files.items())}
        return (json.dumps({"generator": GENERATOR, "files": listed}, indent=2, sort_keys=True) + "\n").encode()


def playbook(name: str) -> bytes:
    return resources.files("deploygen.ansible").joinpath("playbooks", name).read_bytes()


def build_project(fleet: LoadedFleet, contexts: list, hosts: list[RenderedHost]) -> Project:
    """The project for `fleet`: `contexts` as fleet_contexts gives them, `hosts` as render_hosts does."""
    source = PurePosixPath(fleet.file).name
    files: dict[str, tuple[bytes, int]] = {}
    written = f"# Written by {GENERATOR}: the same for every fleet.\n".encode()
    for name in PLAYBOOKS:
        files[name] = (written + playbook(name), 0o644)
    by_host: dict[str, list] = {}
    for context in contexts:
        by_host.setdefault(context.machine, []).append(context)
    problems = []
    for host in hosts:
        try:
            variables, host_files = host_data(host.name, host.sites, by_host[host.name])
        except ValueError as exc:
            location = next(h.location for h in fleet.hosts if h.name == host.name)
            problems.append(Problem(location, f"hosts.{host.name}", str(exc)))
            continue
        files[f"host_vars/{host.name}.yml"] = (dump(variables, _host_header(host.name, source)), 0o644)
        for f in host_files:
            files[f.src] = (f.content, int(f.mode, 8))
    if problems:
        raise InputError(problems)
    data, header = inventory(fleet, GENERATOR, source, release(files))
    files["inventory.yml"] = (dump(data, header), 0o644)
    return Project(dict(sorted(files.items())))


def release(files: dict[str, tuple[bytes, int]]) -> str:
    """A name for what the project deploys: the same files and modes, the same release."""
    digest = hashlib.sha256()
    for path, (content, mode) in sorted(files.items()):
        digest.update(f"{path}\0{mode:o}\0{hashlib.sha256(content).hexdigest()}\n".encode())
    return digest.hexdigest()[:16]


def _host_header(host: str, source: str) -> str:
    steps = "\n".join(textwrap.fill(f"#   {step:<8} {', '.join(handlers) or 'nothing'}", width=100,
                                     subsequent_indent="#" + " " * 12, break_on_hyphens=False)
                       for step, handlers in STEPS.items())
    return (f"# Written by {GENERATOR} from {source}: what site.yml installs on {host}.\n"
            "# Edit the fleet or its sites and run `deploygen ansible` again, not this file.\n"
            "# Paths are the server's, under deploygen_root; each file's bytes are in the project at `src`.\n"
            "# A file's `step` is the site.yml task that installs it, and so what it notifies:\n"
            f"{steps}\n")
