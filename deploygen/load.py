"""Site files -> located, validated models, or every problem found in them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import PurePath

from pydantic import BaseModel, ValidationError

from deploygen.errors import InputError, Location, Problem, printable, shown
from deploygen.model import Site
from deploygen.regular_file import read_regular_text
from deploygen.yamlsource import Document, dotted, load_document


@dataclass(frozen=True)
class LoadedSite:
    """A validated site and where each of its values was written."""

    file: str
    site: Site
    document: Document

    def locate(self, *path: str | int) -> Location:
        return self.document.locate(path)

    def written(self, *path: str) -> bool:
        """True when the site file itself writes the key at `path`."""
        return tuple(path) in self.document.positions


def expand(arguments: list[str]) -> list[str]:
    """Files named, and every `*.yaml`/`*.yml` in directories named, sorted per directory.

    A file named twice (`sites/` and `sites/dokon.yaml`) is loaded once.
    """
    files: list[str] = []
    for argument in arguments:
        if os.path.isdir(argument):
            folder = str(PurePath(argument))  # `./sites/` is shown as `sites`, as pathlib writes it
            with os.scandir(argument) as entries:
                names = sorted(e.name for e in entries
                               if os.path.splitext(e.name)[1] in (".yaml", ".yml") and _may_be_a_file(e))
            files.extend(os.path.join(folder, name) for name in names)
        else:
            files.append(argument)
    seen: set[object] = set()
    unique = []
    for file in files:
        try:
            info = os.stat(file)
            identity: object = (info.st_dev, info.st_ino)
        except OSError:
            identity = os.path.abspath(file)  # load_site says why it cannot be read, once
        if identity not in seen:
            seen.add(identity)
            unique.append(file)
    return unique


def _may_be_a_file(entry: os.DirEntry) -> bool:
    """A file, or a link that cannot be followed (a loop): load_site then says why."""
    try:
        return entry.is_file()
    except OSError:
        return True


def load_sites(arguments: list[str]) -> list[LoadedSite]:
    """Load every site named; raise InputError listing every problem in every file."""
    files = expand(arguments)
    if not files:
        raise InputError(
            [Problem(Location(a, 1, 1), "", "no *.yaml or *.yml site files here") for a in arguments]
        )
    loaded: list[LoadedSite] = []
    problems: list[Problem] = []
    for file in files:
        site, found = load_site(file)
        problems.extend(found)
        if site is not None:
            loaded.append(site)
    if problems:
        raise InputError(problems)
    return loaded


def load_site(file: str) -> tuple[LoadedSite | None, list[Problem]]:
    """Load one site file."""
    refused = _unsafe_file_name(file)
    if refused:
        return None, [refused]
    try:
        text = read_regular_text(file)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return None, [Problem(Location(file, 1, 1), "", f"cannot read the site file: {reason}")]
    document, problems = load_document(text, file)
    if document is None:
        return None, problems
    try:
        site = Site.model_validate(document.data)
    except ValidationError as exc:
        return None, [_problem(document, error) for error in exc.errors()]
    return LoadedSite(file, site, document), []


def _unsafe_file_name(file: str) -> Problem | None:
    """A site file's name is written into every file rendered from it (the header comment and
    each provenance note): a line break there would start a line of Python in gunicorn.conf.py,
    of SQL or a psql `\\!` command in postgres.sql, a `User=` in the unit. Refuse every
    character that is not printable (control characters, U+2028 and the other line and
    paragraph separators, bidi controls), anywhere in the path, since it also reaches every
    message; and a backslash in the name, which continues a systemd line and starts psql's
    meta-commands.
    """
    name = os.path.basename(file)
    bad = sorted({c for c in file if not c.isprintable()} | ({"\\"} & set(name)))
    if not bad:
        return None
    listed = " ".join(repr(c) for c in bad)
    return Problem(Location(printable(file), 1, 1), "",
                   f"the site file's path holds {listed}: it is written into every rendered file, "
                   "so only printable characters (and no backslash in the name) are accepted; rename it")


def _problem(document: Document, error: dict) -> Problem:
    loc = tuple(part for part in error["loc"] if isinstance(part, (str, int)))
    kind = error["type"]
    if kind == "extra_forbidden":
        return Problem(document.locate(loc), dotted(loc), _unknown_key(loc))
    if kind == "missing":
        return Problem(document.locate(loc[:-1]), dotted(loc), "required key is missing")
    message = error["msg"]
    if kind in ("value", "duration"):
        message = message[len("Value error, "):] if message.startswith("Value error, ") else message
    elif "input" in error and not isinstance(error["input"], (dict, list)):
        message = f"{message} (got {shown(error['input'])})"
    return Problem(document.locate(loc), dotted(loc), message)


def _unknown_key(loc: tuple) -> str:
    """Name the unknown key and, like ruff, the key the user probably meant."""
    import difflib

    known = _known_keys(loc[:-1])
    message = f"unknown key {shown(loc[-1])}"
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    if close:
        message += f": did you mean {close[0]!r}?"
    elif known:
        message += f" (known here: {', '.join(sorted(known))})"
    return message


def _known_keys(parent: tuple) -> list[str]:
    model: type[BaseModel] | None = Site
    for part in parent:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        model = _model_of(field.annotation)
    return list(model.model_fields) if model else []


def _model_of(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found:
            return found
    return None
