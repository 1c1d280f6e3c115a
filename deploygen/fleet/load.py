"""A fleet file -> its hosts, each with its loaded sites, or every problem found."""

from __future__ import annotations

import os
from dataclasses import dataclass

from pydantic import ValidationError

from deploygen.errors import InputError, Location, Problem, printable
from deploygen.fleet.model import Fleet, PostgresFacts
from deploygen.fs.regular_file import read_regular_file
from deploygen.sitefile.load import LoadedSite, _problem, _unsafe_file_name, expand, load_site
from deploygen.sitefile.yamlsource import Document, load_document


@dataclass(frozen=True)
class FleetHost:
    """One host as rules, render and the Ansible project see it."""

    name: str
    address: str
    nginx_user: str
    postgres: PostgresFacts | None
    vars: dict
    sites: tuple[LoadedSite, ...]
    location: Location


@dataclass(frozen=True)
class LoadedFleet:
    file: str
    hosts: tuple[FleetHost, ...]
    postgres_servers: dict[str, PostgresFacts]
    document: Document

    def locate(self, *path: str | int) -> Location:
        return self.document.locate(path)


def is_fleet(path: str) -> bool:
    """Whether `path` is a fleet file: a mapping whose keys are a fleet's (`hosts:`), not a site's."""
    if not os.path.isfile(path) or os.path.splitext(path)[1] not in (".yaml", ".yml"):
        return False
    try:
        text = read_regular_file(path).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return False  # load_site says why, as for any site file
    document, _ = load_document(text, path)
    return (document is not None and isinstance(document.data, dict) and "hosts" in document.data
            and "app" not in document.data)


def load_fleet(file: str) -> LoadedFleet:
    """Load a fleet file and every site it names; raise InputError listing every problem."""
    # Its name heads every file of the Ansible project, in a YAML comment a line break would end.
    refused = _unsafe_file_name(file, "fleet file")
    if refused is not None:
        raise InputError([refused])
    try:
        text = read_regular_file(file).decode("utf-8")
    except OSError as exc:
        raise InputError([Problem(Location(printable(file), 1, 1), "", f"cannot read the fleet file: "
                                  f"{exc.strerror or exc}")]) from None
    except UnicodeDecodeError:
        raise InputError([Problem(Location(printable(file), 1, 1), "", "the fleet file is not UTF-8 text")]) from None
    document, problems = load_document(text, file)
    if document is None:
        raise InputError(problems)
    try:
        fleet = Fleet.model_validate(document.data)
    except ValidationError as exc:
        raise InputError([_fleet_problem(document, error) for error in exc.errors()]) from None
    base = os.path.dirname(file)
    inside = os.path.realpath(base or ".")
    loaded: dict[str, LoadedSite] = {}
    hosts = []
    for name, host in fleet.hosts.items():
        sites: list[LoadedSite] = []
        key = f"hosts.{name}.sites"
        for index, entry in enumerate(host.sites):
            where = document.locate(("hosts", name, "sites", index))
            path = os.path.normpath(os.path.join(base, entry))
            outside = _outside(entry, path, inside)
            if outside:
                problems.append(Problem(where, key, f"{printable(entry)}: {outside}"))
                continue
            if not os.path.lexists(path):
                problems.append(Problem(where, key, f"{printable(entry)}: no such file or folder"))
                continue
            try:
                files = expand([path])
            except InputError as exc:
                problems.extend(exc.problems)
                continue
            for site_file in files:
                if os.path.abspath(site_file) == os.path.abspath(file):
                    continue  # a folder holding the fleet file itself
                if _outside(entry, site_file, inside):
                    problems.append(Problem(where, key, f"{printable(site_file)}: a link that leads outside the "
                                            "fleet file's folder"))
                    continue
                if site_file not in loaded:
                    site, found = load_site(site_file)
                    problems.extend(found)
                    if site is None:
                        continue
                    loaded[site_file] = site
                if all(s is not loaded[site_file] for s in sites):
                    sites.append(loaded[site_file])
        if not sites and not any(p.key == key for p in problems):
            problems.append(Problem(document.locate(("hosts", name, "sites")), key,
                                    "names no site file: every host runs at least one site"))
        hosts.append(FleetHost(name, host.address, host.nginx_user, host.postgres, dict(host.vars),
                               tuple(sites), document.locate(("hosts", name))))
    if problems:
        raise InputError(problems)
    return LoadedFleet(file, tuple(hosts), dict(fleet.postgres_servers), document)


def _outside(entry: str, path: str, inside: str) -> str | None:
    """Why a site path of the fleet file is refused, or None: a fleet names the sites kept beside
    it, and a fleet file someone else wrote must not make deploygen (as root) read, and quote in
    its messages, /etc/shadow or a whole file system."""
    if os.path.isabs(entry):
        return "write it relative to the fleet file's folder"
    real = os.path.realpath(path)
    if real != inside and not real.startswith(inside.rstrip("/") + "/"):
        return "leads outside the fleet file's folder"
    return None


def _fleet_problem(document: Document, error: dict) -> Problem:
    """A problem as the site loader words it; a bad mapping key (a host's name) is the mapping's,
    located at the key."""
    loc = error["loc"]
    if len(loc) >= 2 and loc[-1] == "[key]":
        problem = _problem(document, {**error, "loc": loc[:-1]}, Fleet)
        return Problem(problem.location, ".".join(str(part) for part in loc[:-2]), problem.message)
    return _problem(document, error, Fleet)
