"""Write what deploygen's templates see for each site as plain YAML, for the peers.

    python bench/peers/export.py SITES_DIR VARS_DIR

The peers (plain script, Jinja CLI, ansible) render deploygen's own templates
from these files, so every tool renders the same templates with the same data.
Durations become `{ms: N}`, which the peers' filters (peer_filters.py) write
as deploygen does; `site` becomes nested mappings.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from pydantic import BaseModel

from deploygen.check import contexts
from deploygen.duration import Duration
from deploygen.fields import Bind
from deploygen.layout import targets
from deploygen.load import load_sites
from deploygen.render import GENERATOR, template_context


def plain(value: object) -> object:
    if isinstance(value, Duration):
        return {"ms": value.ms}
    if isinstance(value, Bind):
        return {"nginx_server": value.nginx_server}
    if isinstance(value, BaseModel):
        return {name: plain(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def main() -> None:
    sites, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    for ctx in contexts(load_sites([sites])):
        site = ctx.loaded.site
        site_targets = targets(site)
        data = plain(template_context(ctx.loaded, ctx.effective, site_targets))
        data["generator"] = GENERATOR
        data["source"] = Path(ctx.loaded.file).name
        data["files"] = [{"template": t.template, "kind": t.kind, "mode": t.mode, "dest": "root" + t.path}
                         for t in site_targets]
        (out / f"{site.name}.yaml").write_text(yaml.safe_dump(data, sort_keys=True))


if __name__ == "__main__":
    main()
