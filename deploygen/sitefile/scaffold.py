"""New site files (`deploygen init`): one per kind, commented, its placeholders marked.

The text comes from `templates/init/KIND.yaml.j2`. Every value the user gives reaches it as a
double-quoted YAML scalar with everything outside printable ASCII escaped, so no value can end
its line or its string; the name is checked first, with the site model's own type, because it
also names the file and the placeholder paths. The text is then loaded with deploygen's own
loader in the folder it is written to, and linked into place only if it loads: a value the site
file refuses is refused here, located, and nothing is written.
"""

from __future__ import annotations

import keyword
import os
import shutil
import tempfile
from collections.abc import Sequence

from pydantic import TypeAdapter, ValidationError

from deploygen.errors import (
    DeploygenError,
    InputError,
    Location,
    Problem,
    printable,
    shown,
)
from deploygen.sitefile.fields import HostName, Name, PgDatabase, PgRole

# The editors' schema line, as README's "The site file" writes it: the schema saved beside the file.
SCHEMA_LINE = "# yaml-language-server: $schema=./site.schema.json"


class Refused(DeploygenError):
    """A new site file that cannot be written as asked (exit 2); nothing was written."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(printable(message))


def default_output(name: str) -> str:
    return os.path.join("sites", f"{name}.yaml")


def check_name(name: str) -> None:
    """Refuse a NAME the site model refuses (its pattern and the reserved names)."""
    try:
        TypeAdapter(Name).validate_python(name, strict=True)
    except ValidationError as exc:
        raise Refused(f"deploygen: name: {exc.errors()[0]['msg']} (NAME; nothing written)") from None


def check_kind(kind: str) -> None:
    from deploygen.kinds import KINDS

    if kind not in KINDS:
        raise Refused(f"deploygen: --framework {shown(kind)} is not a kind of app: name one of {', '.join(KINDS)}")


def yaml_quoted(value: str) -> str:
    """`value` as a YAML double-quoted scalar that holds only printable ASCII: a quote, a
    backslash, a line break, `#` or `{` stay inside the string, whatever the value holds."""
    out = ['"']
    for c in value:
        code = ord(c)
        if c in '"\\':
            out.append("\\" + c)
        elif 0x20 <= code < 0x7F:
            out.append(c)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _valid(adapter_type: object, value: str) -> bool:
    try:
        TypeAdapter(adapter_type).validate_python(value, strict=True)
    except ValidationError:
        return False
    return True


def _postgres_name(name: str, adapter_type: object) -> str:
    """The site's name as its database or role, or `app_NAME` where PostgreSQL keeps the name
    (a site named `none`, `public` or `pg_stats` is valid; such a role or database is not)."""
    return name if _valid(adapter_type, name) else f"app_{name}"


def _python_package(name: str) -> str:
    """A Python package named after the site, for Django's placeholder `PACKAGE.wsgi`: `-` is
    not in a module name, a keyword (`class`) cannot be imported, and `deploygen_settings` is
    deploygen's own module."""
    from deploygen.kinds.django.model import MODULE

    package = name.replace("-", "_")
    return f"{package}_project" if keyword.iskeyword(package) or package == MODULE else package


def site_text(name: str, kind: str, domains: Sequence[str] = (), bind: str | None = None) -> str:
    """The new site file's text; `name` and `kind` checked, `domains` and `bind` not yet (the loader does)."""
    from jinja2 import TemplateNotFound

    from deploygen.render.templating import environment

    check_name(name)
    check_kind(kind)
    for option, value in [("--domain", d) for d in domains] + [("--bind", bind)] * (bind is not None):
        if any("\ud800" <= c <= "\udfff" for c in value):
            # Bytes of the command line that are not UTF-8 (Python keeps them as lone surrogates):
            # no YAML file can hold them.
            raise Refused(f"deploygen: {option} {shown(value)} is not UTF-8 text (nothing written)")
    # A host name of the site's name: `_` is no host name's, nor a label's last `-`.
    placeholder_domain = name.replace("_", "-").rstrip("-") + ".example.org"
    socket = "php-fpm.sock" if kind == "php" else "gunicorn.sock"
    first = domains[0] if domains else placeholder_domain
    context = {
        "name": name,
        "kind": kind,
        "domains": [yaml_quoted(d) for d in domains] or [yaml_quoted(placeholder_domain)],
        "domains_given": bool(domains),
        # Only a checked host name reaches a comment; a wildcard's certificate is the domain's.
        "certificate_folder": first.removeprefix("*.") if _valid(HostName, first) else placeholder_domain,
        "bind": yaml_quoted(bind if bind is not None else f"unix:/run/{name}/{socket}"),
        "database": _postgres_name(name, PgDatabase),
        "role": _postgres_name(name, PgRole),
        "package": _python_package(name),
    }
    try:
        template = environment().get_template(f"init/{kind}.yaml.j2")
    except TemplateNotFound:
        raise Refused(f"deploygen: init has no template for kind {kind!r} (templates/init/{kind}.yaml.j2)") from None
    return template.render(context)


# Where a value the loader refuses came from, said after its message.
_GIVEN = {"name": "NAME", "domains": "--domain", "server.bind": "--bind"}


def _from(key: str) -> str:
    if not key:  # the file itself: its path, or its text as a whole
        return "nothing written"
    for prefix, option in _GIVEN.items():
        if key == prefix or key.startswith((prefix + ".", prefix + "[")):
            return f"from {option}; nothing written"
    return "a placeholder deploygen init wrote; nothing written"


def write_new_site(output: str, text: str) -> None:
    """Write `text` to `output`, which must not exist, or nothing at all.

    The text is written in a new folder beside `output` under its own name, loaded from
    there with the site loader (which also checks the file's name), then hard-linked to
    `output`: the link fails if a file appeared there meanwhile, so nothing is ever replaced.
    Folders made for `output` are removed again when nothing was written.
    """
    from deploygen.sitefile.load import load_site

    if os.path.lexists(output):
        raise Refused(f"{output}: already exists; deploygen init never replaces a file (nothing written)")
    if os.path.splitext(output)[1] not in (".yaml", ".yml"):
        raise Refused(f"{output}: name the site file *.yaml or *.yml, as a folder of sites is read (nothing written)")
    folder = os.path.dirname(output) or "."
    made = _make_folders(folder)
    written = False
    try:
        staged_dir = tempfile.mkdtemp(dir=folder, prefix=".deploygen-init-")
        try:
            staged = os.path.join(staged_dir, os.path.basename(output))
            with open(staged, "x", encoding="utf-8") as f:
                f.write(text)
            loaded, problems = load_site(staged)
            if loaded is None:
                raise InputError([_told_at(p, staged, output) for p in problems])
            try:
                os.link(staged, output)
            except FileExistsError:
                raise Refused(f"{output}: already exists; deploygen init never replaces a file "
                              "(nothing written)") from None
            written = True
        finally:
            shutil.rmtree(staged_dir, ignore_errors=True)
    finally:
        if not written:
            for path in reversed(made):
                try:
                    os.rmdir(path)
                except OSError:
                    break


def _make_folders(folder: str) -> list[str]:
    """Make `folder` and its missing parents; return those made, outermost first."""
    missing = []
    path = os.path.abspath(folder)
    while not os.path.lexists(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    os.makedirs(folder, exist_ok=True)
    return list(reversed(missing))


def _told_at(problem: Problem, staged: str, output: str) -> Problem:
    """A problem of the staged file, told at `output` (the staging folder is gone by then)."""
    where = Location(output, problem.location.line, problem.location.column)
    message = problem.message.replace(staged, output)
    return Problem(where, problem.key, f"{message} ({_from(problem.key)})")


def scaffold(name: str, kind: str, domains: Sequence[str] = (), bind: str | None = None,
             output: str | None = None) -> str:
    """Write a new site file for `name`; return its path. Raises Refused or InputError (exit 2), OSError."""
    text = site_text(name, kind, domains, bind)
    path = output if output is not None else default_output(name)
    write_new_site(path, text)
    return path
