"""Write what deploygen's templates see for each site as plain YAML, for the peers.

    python bench/peers/export.py SITES_DIR VARS_DIR [--json]

The peers (plain script, Jinja CLI, ansible) render deploygen's own templates
from these files, so every tool renders the same templates with the same data.
Durations become `{ms: N}`, which the peers' filters (peer_filters.py) write
as deploygen does. Of the site model, only what the templates read is kept
(found by rendering them once with a recording stand-in), as a hand-written
vars file would: the whole model is four times the size of the site file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml
from pydantic import BaseModel

from deploygen.rules.runner import contexts
from deploygen.sitefile.duration import Duration
from deploygen.sitefile.fields import Bind
from deploygen.render.layout import targets
from deploygen.sitefile.load import load_sites
from deploygen.render.site import GENERATOR, template_context
from deploygen.render.templating import environment


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


class Recorder:
    """Stands in for a model while templates render; notes each attribute path they read."""

    def __init__(self, value: BaseModel, path: tuple[str, ...], seen: dict) -> None:
        self._value, self._path, self._seen = value, path, seen

    def __getattr__(self, name: str) -> object:
        value = getattr(self._value, name)
        path = (*self._path, name)
        self._seen[path] = value
        return Recorder(value, path, self._seen) if isinstance(value, BaseModel) else value

    def __bool__(self) -> bool:
        return bool(self._value)


def read_by_templates(context: dict, site_targets) -> dict:
    """`site` pruned to what the templates read: nested mappings of the paths seen."""
    seen: dict[tuple[str, ...], object] = {}
    recording = {**context, "site": Recorder(context["site"], (), seen)}
    for target in site_targets:
        environment().get_template(target.template).render(recording, header=lambda mark: "")
    pruned: dict = {}
    for path, value in sorted(seen.items()):
        below = pruned
        for part in path[:-1]:
            below = below[part]
        has_children = any(p[:len(path)] == path and len(p) > len(path) for p in seen)
        below[path[-1]] = {} if has_children else (True if isinstance(value, BaseModel) else plain(value))
    return pruned


def main() -> None:
    sites, out, as_json = sys.argv[1], Path(sys.argv[2]), "--json" in sys.argv[3:]
    out.mkdir(parents=True, exist_ok=True)
    for ctx in contexts(load_sites([sites])):
        site = ctx.loaded.site
        site_targets = targets(site)
        context = template_context(ctx.loaded, ctx.effective, site_targets)
        data = plain({**context, "site": read_by_templates(context, site_targets)})
        data["generator"] = GENERATOR
        data["source"] = Path(ctx.loaded.file).name
        data["files"] = [{"template": t.template, "kind": t.kind, "mode": t.mode, "dest": "root" + t.path}
                         for t in site_targets]
        if as_json:
            (out / f"{site.name}.json").write_text(json.dumps(data, sort_keys=True))
        else:
            (out / f"{site.name}.yaml").write_text(yaml.safe_dump(data, sort_keys=True))


if __name__ == "__main__":
    main()
