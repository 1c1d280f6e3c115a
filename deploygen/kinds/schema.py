"""The JSON Schema of the site file: every kind's keys, and which kind a file must match.

pydantic writes the discriminated union as a bare `oneOf`. Editors complete keys
from an object's `properties`, so the document is an object that lists every
key any kind allows (each key's schema the union of the kinds'), and keeps the
`oneOf` that holds a file to exactly one kind.
"""

from __future__ import annotations

from deploygen.kinds import KINDS, SITE_FILE


def site_schema() -> dict:
    union = SITE_FILE.json_schema(ref_template="#/$defs/{model}")
    defs = union.get("$defs", {})
    members = [defs[kind.site_model.__name__] for kind in KINDS.values()]
    properties: dict[str, dict] = {}
    for member in members:
        for key, schema in member["properties"].items():
            seen = properties.setdefault(key, {"anyOf": []})["anyOf"]
            if schema not in seen:
                seen.append(schema)
    properties = {key: (s["anyOf"][0] if len(s["anyOf"]) == 1 else s) for key, s in properties.items()}
    required = sorted(set.intersection(*(set(m.get("required", [])) for m in members)))
    return {
        "$defs": defs,
        "title": "Site",
        "description": "One site: the single source of truth for every layer. app.framework picks the kind "
                       "(" + ", ".join(KINDS) + "), which decides the keys of app, session and its own section.",
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
        "oneOf": union["oneOf"],
    }
