"""YAML that Ansible reads without running anything a fleet's author wrote.

Ansible templates every string it reads from inventory and variable files. A string deploygen
takes from a site or fleet file (a path, a role name, an address) is written as `Unsafe`,
with Ansible's `!unsafe` tag, so that Ansible never templates it; the few strings deploygen
means as templates are `Template`, and must hold no Jinja mark outside deploygen's own
expressions. Every file is written by PyYAML's safe dumper, which quotes and escapes, so a
value cannot leave its place either.
"""

from __future__ import annotations

import yaml

JINJA_MARKS = ("{{", "{%", "{#")


class Unsafe(str):
    """A string Ansible must take as it is: written `!unsafe`."""


class Template(str):
    """A string deploygen writes as a template (its own expression around checked values)."""

    @classmethod
    def around(cls, before: str, value: str, after: str = "") -> Template:
        """`before + value + after`, where `value` is user-derived and must hold no Jinja mark."""
        refuse_marks(value)
        return cls(before + value + after)


def refuse_marks(value: str) -> str:
    if any(mark in value for mark in JINJA_MARKS) or "\n" in value:
        raise ValueError(f"{value[:60]!r} holds a template mark or a line break")
    return value


class _Dumper(yaml.SafeDumper):
    pass


_STR = "tag:yaml.org,2002:str"


def _unsafe(dumper: yaml.SafeDumper, value: Unsafe) -> yaml.Node:
    if dumper.resolve(yaml.ScalarNode, str(value), (True, False)) != _STR:
        # Ansible reads `!unsafe '0644'` as the number 420 and `!unsafe 'yes'` as true: a string
        # that reads as something else stays a quoted string. It cannot hold a template mark.
        return _checked_str(dumper, str(value))
    # A query of many lines reads best as a block; PyYAML quotes it when a block cannot hold it.
    return dumper.represent_scalar("!unsafe", str(value), style="|" if "\n" in value else None)


def _template(dumper: yaml.SafeDumper, value: Template) -> yaml.Node:
    return dumper.represent_str(str(value))


def _checked_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # A plain string is deploygen's own (a key, a constant): never a template by accident.
    if any(mark in value for mark in JINJA_MARKS):
        raise ValueError(f"{value[:60]!r}: a plain string with a template mark")
    return dumper.represent_str(value)


_Dumper.add_representer(Unsafe, _unsafe)
_Dumper.add_representer(Template, _template)
_Dumper.add_representer(str, _checked_str)


def dump(data, header: str = "") -> bytes:
    """`data` as YAML (keys in the order given), after `header` (comment lines)."""
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True,
                     width=100)
    return (header + text).encode()
