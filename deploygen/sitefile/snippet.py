"""A site's nginx snippet: locations deploygen does not model, kept beside the site file.

`nginx.snippet: shop.locations.conf` names a file next to the site file; render writes it
to /etc/deploygen/NAME/nginx-locations.conf and the server block includes it. It is read
here, at load, like the site file itself (a regular file under the size cap, UTF-8), and
parsed with crossplane: only `location` blocks at its top (an include of it sits inside
`server {}`, and a stray `}` is a parse error there as in nginx), no `include` of other
files (the snippet would not carry them), no control characters. What render writes is
crossplane's build of what was parsed, so no text of the file reaches nginx unparsed.
"""

from __future__ import annotations

import os
import tempfile

import crossplane

from deploygen.errors import Location, Problem, printable
from deploygen.fs.regular_file import read_regular_file

_REFUSED = {"include": "it would not be carried with the snippet: put its directives here",
            "load_module": "modules load in nginx.conf, not in a server block"}


def load_snippet(site_file: str, name: str, key: Location) -> tuple[list | None, list[Problem]]:
    """The snippet's parsed locations (crossplane's form), or the problems that refuse it,
    each located in the snippet (or at `key`, the site file's `nginx.snippet`, when unreadable)."""
    path = os.path.join(os.path.dirname(site_file), name)
    try:
        data = read_regular_file(path)
        text = data.decode("utf-8")
    except OSError as exc:
        return None, [Problem(key, "nginx.snippet", f"{printable(path)}: could not be read: {exc.strerror or exc}")]
    except UnicodeDecodeError:
        return None, [Problem(key, "nginx.snippet", f"{printable(path)}: not UTF-8 text")]
    with tempfile.TemporaryDirectory(prefix="deploygen-snippet-") as folder:
        copy = os.path.join(folder, "snippet.conf")
        with open(copy, "w", encoding="utf-8") as f:
            f.write(text)
        payload = crossplane.parse(copy, single=True, check_ctx=False, check_args=False, comments=False)
    errors = payload["config"][0]["errors"]
    if errors:
        message = errors[0]["error"].split(" in ")[0]
        return None, [Problem(Location(printable(path), errors[0].get("line") or 1, 1), "nginx.snippet", message)]
    parsed = payload["config"][0]["parsed"]
    problems = []
    for d in parsed:
        if d["directive"] != "location" or "block" not in d:
            problems.append(Problem(Location(printable(path), d["line"], 1), "nginx.snippet",
                                    f"`{printable(d['directive'])}`: a snippet holds `location` blocks only"))
    for d in _walk(parsed):
        if d["directive"] in _REFUSED:
            problems.append(Problem(Location(printable(path), d["line"], 1), "nginx.snippet",
                                    f"`{d['directive']}`: {_REFUSED[d['directive']]}"))
        elif any(not word.isprintable() for word in (d["directive"], *d["args"])):
            problems.append(Problem(Location(printable(path), d["line"], 1), "nginx.snippet",
                                    "a control character in a directive: nginx would read it otherwise"))
    return (None, problems) if problems else (parsed, [])


def _walk(block: list):
    for d in block:
        yield d
        yield from _walk(d.get("block", []))


def location_paths(parsed: list) -> list[str]:
    """The snippet's locations as written (`/`, `= /favicon.ico`, `~ ^/api/`)."""
    return [" ".join(d["args"]) for d in parsed if d["directive"] == "location"]


def built(parsed: list) -> str:
    """The snippet as render writes it: crossplane's build of what was parsed."""
    return crossplane.build(parsed, indent=4) + "\n"
