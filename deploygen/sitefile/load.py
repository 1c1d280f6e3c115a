"""Site files -> located, validated models, or every problem found in them."""

from __future__ import annotations

import errno
import os
import re
import sys
from dataclasses import dataclass
from pathlib import PurePath

from pydantic import BaseModel, ValidationError

from deploygen.errors import InputError, Location, Problem, printable, shown
from deploygen.fs.regular_file import SIZE_LIMIT, line_and_column, read_regular_file
from deploygen.sitefile.acme import ACME_CHALLENGE, ACME_WEBROOT
from deploygen.sitefile.model import SiteBase
from deploygen.sitefile.yamlsource import Document, dotted, load_document

# The name that reads a site from standard input, as for ruff and most Unix tools.
STDIN = "-"


@dataclass(frozen=True)
class LoadedSite:
    """A validated site and where each of its values was written."""

    file: str
    site: SiteBase
    document: Document
    # `nginx.snippet`'s locations, parsed (sitefile.snippet), when the site has one.
    snippet: list | None = None

    @property
    def kind(self) -> str:
        return self.site.app.framework

    def locate(self, *path: str | int) -> Location:
        return self.document.locate(path)

    def written(self, *path: str | int) -> bool:
        """True when the site file itself writes the key at `path`: the model says so
        (`model_fields_set`); positions only locate what was written."""
        node: object = self.site
        for part in path:
            if isinstance(node, BaseModel):
                if part not in node.model_fields_set:
                    return False
                node = getattr(node, part)
            elif isinstance(node, list) and isinstance(part, int):
                if part >= len(node):
                    return False
                node = node[part]
            else:
                return False
        return True


def expand(arguments: list[str]) -> list[str]:
    """Files named, and every `*.yaml`/`*.yml` in directories named and the folders below them
    (`sites/web1/shop.yaml`), sorted by path; hidden folders (`.git`, `.deploygen`) are not entered.

    A file named twice (`sites/` and `sites/dokon.yaml`) is loaded once.
    """
    files: list[str] = []
    for argument in arguments:
        if os.path.isdir(argument):
            files.extend(_site_files(str(PurePath(argument))))  # `./sites/` is shown as `sites`
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


# How deep folders of sites may nest: far beyond `sites/web1/shop.yaml`, and a walk that
# stays bounded on a tree someone made deep on purpose.
MAX_DEPTH = 32


def _site_files(top: str) -> list[str]:
    """The site files in `top` and below, a folder's own files before its subfolders'.

    Links to folders are not followed: one pointing at `..` would never end."""
    found = []
    pending = [(top, 0)]
    while pending:
        folder, depth = pending.pop()
        with os.scandir(folder) as entries:
            listed = sorted(entries, key=lambda e: e.name)
        found.extend(os.path.join(folder, e.name) for e in listed
                     if os.path.splitext(e.name)[1] in (".yaml", ".yml") and _may_be_a_file(e))
        below = [os.path.join(folder, e.name) for e in listed
                 if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)]
        if below and depth == MAX_DEPTH:
            raise InputError([Problem(Location(printable(below[0]), 1, 1), "",
                                      f"folders of sites nest more than {MAX_DEPTH} deep here")])
        # Depth first, in name order: the stack takes them reversed.
        pending.extend((sub, depth + 1) for sub in reversed(below))
    return found


def _may_be_a_file(entry: os.DirEntry) -> bool:
    """Anything named *.yaml but a folder: a FIFO or a device there is reported by load_site
    (never read), and so is a link that cannot be followed (a loop)."""
    try:
        return not entry.is_dir()
    except OSError:
        return True


def load_sites(arguments: list[str], stdin_name: str = STDIN) -> list[LoadedSite]:
    """Load every site named (`-`: standard input, called `stdin_name` in messages and in the
    rendered files); raise InputError listing every problem in every file."""
    files = expand(arguments)
    if not files:
        raise InputError(
            [Problem(Location(a, 1, 1), "", "no *.yaml or *.yml site files here") for a in arguments]
        )
    loaded: list[LoadedSite] = []
    problems: list[Problem] = []
    for file in files:
        site, found = load_site(file, stdin_name) if file == STDIN else load_site(file)
        problems.extend(found)
        if site is not None:
            loaded.append(site)
    if problems:
        raise InputError(problems)
    return loaded


def load_site(file: str, stdin_name: str | None = None) -> tuple[LoadedSite | None, list[Problem]]:
    """Load one site file, or standard input when `stdin_name` is given (what to call it)."""
    refused = _unsafe_file_name(file if stdin_name is None else stdin_name)
    if refused:
        return None, [refused]
    try:
        data = read_regular_file(file) if stdin_name is None else _read_stdin()
        if stdin_name is not None:
            file = stdin_name
        text = data.decode("utf-8")
    except OSError as exc:
        return None, [Problem(Location(file, 1, 1), "", f"cannot read the site file: {exc.strerror or exc}")]
    except UnicodeDecodeError as exc:
        return None, [Problem(Location(file, *line_and_column(data, exc.start)), "",
                              f"byte 0x{data[exc.start]:02x} is not UTF-8 text: save the site file as UTF-8")]
    document, problems = load_document(text, file)
    if document is None:
        return None, problems
    if isinstance(document.data, dict) and "hosts" in document.data and "app" not in document.data:
        return None, [Problem(document.locate(("hosts",)), "hosts", "this is a fleet file, not a site file: "
                              "a fleet file is named alone (deploygen validate FLEET), and kept out of the folders "
                              "it names")]
    model, refused = _site_model(document)
    if refused is not None:
        return None, [refused]
    try:
        site = model.model_validate(document.data)
    except ValidationError as exc:
        return None, [_problem(document, error, model) for error in exc.errors()]
    if getattr(site.app, "static", None) and "/static/" in rendered_locations(site)[1:]:
        return None, [Problem(document.locate(("nginx",)), "nginx", "location /static/ is app.static's and "
                              "in nginx's keys too: nginx refuses a duplicate location")]
    acme = _acme_key(site)
    if acme is not None:
        return None, [Problem(document.locate(("nginx", acme)), f"nginx.{acme}",
                              f"location {ACME_CHALLENGE} is deploygen's own on a site without tls (certbot "
                              f"--webroot answers there, from {ACME_WEBROOT}): nginx refuses a duplicate location")]
    snippet = None
    if site.nginx.snippet is not None:
        snippet, problems = _snippet(file, site, document)
        if problems:
            return None, problems
    return LoadedSite(file, site, document, snippet), []


def _read_stdin() -> bytes:
    """Standard input, bounded as a site file is: a pipe has no size to check first."""
    data = sys.stdin.buffer.read(SIZE_LIMIT + 1)
    if len(data) > SIZE_LIMIT:
        raise OSError(errno.EFBIG, f"more than the {SIZE_LIMIT} bytes allowed")
    return data


def _snippet(file: str, site: SiteBase, document: Document) -> tuple[list | None, list[Problem]]:
    """The site's snippet, refused when one of its locations is one the server block renders."""
    from deploygen.sitefile.fields import servable_folder
    from deploygen.sitefile.snippet import load_snippet

    where = document.locate(("nginx", "snippet"))
    return load_snippet(file, site.nginx.snippet, where, frozenset(rendered_locations(site)), servable_folder,
                        site_name=site.name)


def rendered_locations(site: SiteBase) -> list[str]:
    """The locations deploygen's server block holds: the app's, /static/, aliases, websockets,
    and, without tls (the app's server is the port-80 one), the ACME challenge's."""
    nginx = site.nginx
    paths = ["/static/"] if getattr(site.app, "static", None) else []
    paths += list(nginx.app_paths if nginx.app_paths is not None else ["/"])
    paths += list(nginx.aliases or {}) + list(nginx.websockets or {})
    return paths if site.tls is not None else [*paths, ACME_CHALLENGE]


def _acme_key(site: SiteBase) -> str | None:
    """The `nginx` key that writes the ACME challenge's location into the port-80 server, where
    deploygen renders its own (with tls, the site's keys go to the 443 server: no clash)."""
    if site.tls is not None:
        return None
    nginx = site.nginx
    for key, paths in (("app_paths", nginx.app_paths or []), ("aliases", nginx.aliases or {}),
                       ("websockets", nginx.websockets or {})):
        if ACME_CHALLENGE in paths:
            return key
    return None


def _site_model(document: Document) -> tuple[type[SiteBase], Problem | None]:
    """The kind's site model, chosen by `app.framework` (the union's discriminator).

    A site file without a framework is read as Flask's, the first kind, so that its
    other problems are reported with the missing key."""
    from deploygen.kinds import KINDS

    names = list(KINDS)
    expected = ", ".join(repr(n) for n in names[:-1]) + f" or {names[-1]!r}"
    data = document.data if isinstance(document.data, dict) else {}
    app = data.get("app")
    if "app" in data and not isinstance(app, dict):
        # No kind to read the rest with: another kind's keys would be reported as wrong.
        return KINDS["flask"].site_model, Problem(document.locate(("app",)), "app",
                                                  f"Input should be a mapping whose framework is {expected} "
                                                  f"(got {shown(app)})")
    if app is None or "framework" not in app:
        return KINDS["flask"].site_model, None
    framework = app["framework"]
    if isinstance(framework, str) and framework in KINDS:
        return KINDS[framework].site_model, None
    hint = _did_you_mean(framework, names) if isinstance(framework, str) else ""
    return KINDS["flask"].site_model, Problem(document.locate(("app", "framework")), "app.framework",
                                              f"Input should be {expected} (got {shown(framework)}){hint}")


# What a site file's name may hold. The name is written into every rendered file's header
# comment and provenance notes, and a comment is not as inert as it looks: a line break
# ends it (a line of Python in gunicorn.conf.py, SQL or a psql `\\!` command in
# postgres.sql, `User=` in the unit), a backslash continues a systemd line, and on the
# first two lines of Python `coding=utf-7` re-decodes the whole file, `+AAo-` becoming a
# newline. Letters, digits, space and `. _ @ + -` can do none of that anywhere.
_NAME_CHARS = re.compile(r"[A-Za-z0-9 ._@+-]+")


def _unsafe_file_name(file: str, what: str = "site file") -> Problem | None:
    """Why the path of a site (or fleet) file cannot be used, or None.

    The folder part reaches messages only: it must be printable, so that no problem line
    can be split or hidden. The name itself reaches the rendered files: see _NAME_CHARS.
    """
    name = os.path.basename(file)
    bad = sorted({c for c in file if not c.isprintable()} | set(_NAME_CHARS.sub("", name)))
    if not bad:
        return None
    listed = " ".join(repr(c) for c in bad[:10])
    return Problem(Location(printable(file), 1, 1), "",
                   f"the {what}'s path holds {listed}: its name is written into every rendered file, "
                   "so it may use only letters, digits, space and . _ @ + - (and its folder only printable "
                   "characters); rename it")


def _problem(document: Document, error: dict, model: type[BaseModel]) -> Problem:
    loc = tuple(part for part in error["loc"] if isinstance(part, (str, int)))
    kind = error["type"]
    if kind == "extra_forbidden":
        return Problem(document.locate(loc), dotted(loc), _unknown_key(loc, model))
    if kind == "missing":
        return Problem(document.locate(loc[:-1]), dotted(loc), "required key is missing")
    message = error["msg"]
    if kind in ("value", "duration"):
        message = message.removeprefix("Value error, ")
    elif "input" in error and not isinstance(error["input"], (dict, list)):
        message = f"{message} (got {shown(error['input'])})"
        if kind == "literal_error" and isinstance(error["input"], str):
            message += _did_you_mean(error["input"], re.findall(r"'([^']*)'", error.get("ctx", {}).get("expected", "")))
    return Problem(document.locate(loc), dotted(loc), message)


def _did_you_mean(written: str, choices: list[str]) -> str:
    """`: did you mean 'Lax'?` for `lax`: the choice that differs only in case, else the closest
    (as for keys); empty when none is close."""
    import difflib

    same = [c for c in choices if c.casefold() == written.strip().casefold()]
    close = same or difflib.get_close_matches(written, choices, n=1)
    return f": did you mean {close[0]!r}?" if close else ""


def _unknown_key(loc: tuple, model: type[BaseModel]) -> str:
    """Name the unknown key and, like ruff, the key the user probably meant."""
    import difflib

    known = _known_keys(loc[:-1], model)
    message = f"unknown key {shown(loc[-1])}"
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    if close:
        message += f": did you mean {close[0]!r}?"
    elif known:
        message += f" (known here: {', '.join(sorted(known))})"
    return message


def _known_keys(parent: tuple, site_model: type[BaseModel]) -> list[str]:
    model: type[BaseModel] | None = site_model
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
