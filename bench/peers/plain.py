"""The plain peer: PyYAML (CSafeLoader) + pydantic + Jinja2, nothing else.

    python bench/peers/plain.py VARS_DIR TEMPLATES_DIR OUT_DIR

Renders deploygen's templates from the data export.py wrote, with the same
Jinja2 options, into OUT_DIR/NAME/root/...: no derivation, no rules, no
manifest, no atomic swap. What deploygen costs beyond this is its own work.
Files ending in .json are read with the json module instead: the same script
without YAML, to show what the templates and pydantic cost on their own.
"""

import json
import os
import sys
from pathlib import Path
from typing import Any

import jinja2
import yaml
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parent / "filter_plugins"))
import peer_filters  # noqa: E402


class File(BaseModel):
    template: str
    kind: str
    mode: str
    dest: str


class Vars(BaseModel, extra="allow"):
    site: dict[str, Any]
    generator: str
    source: str
    files: list[File]


def main() -> None:
    vars_dir, templates, out = sys.argv[1:4]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(nginx=peer_filters.nginx, systemd=peer_filters.systemd, py=peer_filters.py)
    for name in sorted(os.listdir(vars_dir)):
        with open(os.path.join(vars_dir, name), encoding="utf-8") as f:
            raw = json.load(f) if name.endswith(".json") else yaml.load(f, Loader=yaml.CSafeLoader)
        data = Vars.model_validate(raw)
        context = data.model_dump()
        for file in data.files:
            def header(mark, kind=file.kind, generator=data.generator, source=data.source):
                return (f"{mark} Written by {generator} from {source}: edit the site file and "
                        f"render again,\n{mark} not this file ({kind}).")

            text = env.get_template(file.template).render(context, header=header)
            path = os.path.join(out, data.site["name"], file.dest)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(path, int(file.mode, 8))


if __name__ == "__main__":
    main()
