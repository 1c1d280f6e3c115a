"""Effective settings -> the files of one site and its manifest, in memory."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import PurePosixPath

from deploygen import __version__
from deploygen.derive import derive
from deploygen.sitefile.snippet import built
from deploygen.render.install import InstallPlan, install_context, install_plan, post_install
from deploygen.render.layout import (
    Target,
    cleanup_command,
    has_cleanup,
    installed_manifest,
    runtime_directories,
    targets,
)
from deploygen.render.sql_quote import quote_ident
from deploygen.sitefile.load import LoadedSite
from deploygen.derive.catalogue import LAYERS
from deploygen.kinds import kind_of
from deploygen.sitefile.model import POSTGRES_SETTINGS, POSTGRES_SINCE
from deploygen.derive.settings import Effective, Value
from deploygen.render.templating import environment

GENERATOR = f"deploygen {__version__}"



@dataclass(frozen=True)
class RenderedFile:
    kind: str
    target: str
    mode: str
    content: bytes
    # The file's role in its site (layout.Target.role): kinds repeat (two postgres-sql files,
    # the bootstrap and the timeouts), roles do not.
    role: str = ""

    @property
    def relative(self) -> str:
        """Path inside the site's output folder: `root/etc/...`."""
        return "root" + self.target


@dataclass(frozen=True)
class RenderedSite:
    name: str
    files: list[RenderedFile]
    manifest: bytes
    manifest_target: str = ""
    plan: InstallPlan | None = None

    def parts(self) -> list[tuple[str, RenderedSite]]:
        """(folder in the output, site) of what this writes: itself, in OUT/NAME."""
        return [(self.name, self)]


def render_site(loaded: LoadedSite, effective: Effective | None = None, *, nginx_user: str = "www-data",
                postgres_version: int | None = None) -> RenderedSite:
    """Render every file of one site and its manifest; a fleet host's facts (the user nginx runs
    as, its PostgreSQL's major version) change the first install and the SQL."""
    site = loaded.site
    source = PurePosixPath(loaded.file).name
    site_targets = targets(site)
    context = template_context(loaded, effective or derive(loaded), site_targets, postgres_version, nginx_user)
    plan = context["install"]
    env = environment()
    files = []
    for target in site_targets:
        def header(mark: str, _target=target) -> str:
            return (f"{mark} Written by {GENERATOR} from {source}: edit the site file and render again,\n"
                    f"{mark} not this file ({_target.kind}).")

        text = env.get_template(target.template).render(context, header=header)
        files.append(RenderedFile(target.kind, target.path, target.mode, text.encode(), target.role))

    manifest = {
        "site": site.name,
        "generator": GENERATOR,
        "source": source,
        "files": [
            {"path": f.relative, "target": f.target, "kind": f.kind, "mode": f.mode,
             "sha256": hashlib.sha256(f.content).hexdigest()}
            for f in files
        ],
        "post_install": post_install(plan),
    }
    data = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    return RenderedSite(site.name, files, data, installed_manifest(site), plan)


def template_context(loaded: LoadedSite, eff: Effective, site_targets: list[Target],
                     postgres_version: int | None = None, nginx_user: str = "www-data") -> dict:
    """What every template of one site sees: the site, each layer's values and why they are so,
    and its first install (`install`, the plan; the scripts' quoted values)."""
    site = loaded.site
    kind = kind_of(site)
    values, notes = eff.by_layer(PurePosixPath(loaded.file).name)
    paths = {t.role: t.path for t in site_targets}
    context = {
        "site": site,
        "paths": paths,
        "why": {layer: notes.get(layer, {}) for layer in LAYERS},
        "upstream": f"{site.name}_gunicorn",
        "runtime_directories": runtime_directories(site),
        "control_socket": f"/run/{site.name}/gunicorn.ctl",
        "environment": kind.environment(site, eff),
        "environment_files": kind.environment_files(site, paths),
        **{layer: values.get(layer, {}) for layer in LAYERS},
        # php-fpm's values under a name a template can spell.
        "fpm": values.get("php-fpm", {}),
    }
    if site.database is not None:
        context.update(_sql_context(site.database.role, site.database.name, values["postgres"], notes["postgres"],
                                    postgres_version))
    context.update(kind.context(loaded, eff, paths, values, notes))
    if has_cleanup(site):
        context["cleanup_command"] = cleanup_command(site)
        context["cleanup_every"] = values.get("deploygen", {}).get("cleanup_every")
    if loaded.snippet is not None:
        context["snippet"] = built(loaded.snippet)
    context["app_paths"] = site.nginx.app_paths if site.nginx.app_paths is not None else ["/"]
    context["install"] = install_plan(site, paths, nginx_user)
    context.update(install_context(context["install"]))
    return context


def _sql_context(role: str, database: str, values: dict[str, Value], notes: dict[str, str],
                 version: int | None) -> dict:
    statements, resets, unknown = [], [], []
    # A setting the site turns off is reset, so that the file stays the whole truth.
    for name in POSTGRES_SETTINGS:
        if version is not None and version < POSTGRES_SINCE.get(name, 0):
            # Even a RESET of a setting the server does not know stops `psql -f` (DG204
            # refuses a site that writes one).
            unknown.append((name, POSTGRES_SINCE[name]))
        elif values[name] is None:
            resets.append(name)
        else:
            statements.append((name, values[name].postgres(), notes[name]))
    return {"role": quote_ident(role), "database": quote_ident(database),
            "statements": statements, "resets": resets, "unknown_settings": unknown, "postgres_version": version}


def postgres_statements(context) -> dict | None:
    """The timeout settings of one (host, site) context's postgres.sql, as `_sql_context` gives
    them to the template: `role` and `database` quoted, `statements` (name, PostgreSQL literal,
    note) to SET, `resets` (names) to RESET; None for a site without a database."""
    site = context.loaded.site
    if site.database is None:
        return None
    values, notes = context.effective.by_layer(PurePosixPath(context.loaded.file).name)
    facts = context.postgres_facts
    return _sql_context(site.database.role, site.database.name, values["postgres"], notes["postgres"],
                        facts.version if facts is not None else None)
