"""YAML text -> plain data plus the position of every key and item.

libyaml's composer (PyYAML's CSafeLoader) builds the node tree in C and gives
every node its line and column, so positions cost almost nothing. The tree is
then turned into dicts, lists and scalars here, which is also where YAML's
loopholes are closed: duplicate keys (PyYAML silently keeps the last), tags
other than the plain core types, non-string keys, aliases that recurse, and
aliases that multiply: nine nested lists of nine aliases each are 387 million
values from 300 bytes (the "billion laughs"), so values are counted as aliases
expand and the build stops at MAX_VALUES.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

from deploygen.errors import Location, Problem, shown
from deploygen.fs.regular_file import line_and_column

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - libyaml is part of every PyYAML wheel
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

Path = tuple[str | int, ...]

_STR_TAG = "tag:yaml.org,2002:str"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
# The constructors of the plain core types, called directly: SafeConstructor.construct_object
# would also remember every node it has seen, across every file loaded.
_SCALARS = {
    tag: yaml.constructor.SafeConstructor.yaml_constructors[tag]
    for tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool",
                "tag:yaml.org,2002:null")
}
_constructor = yaml.constructor.SafeConstructor()
_resolver = yaml.resolver.Resolver()
_INT_TAG = "tag:yaml.org,2002:int"
_DECIMAL = re.compile(r"[-+]?(0|[1-9][0-9]*)")


def _implicit_tag(node: yaml.ScalarNode) -> str:
    """The tag YAML gives the scalar's text by itself: quoted text is a string, plain text
    is resolved (`3` an int, `true` a bool). Any other tag was written explicitly."""
    if node.style:
        return _STR_TAG
    return _resolver.resolve(yaml.ScalarNode, node.value, (True, False))

# A site file that writes every key has about 150 values and is 5 levels deep. These bounds
# are a hundred times that and more, and keep a hostile file to well under a second and a
# few MB: past them the file is refused, not cut.
MAX_VALUES = 20_000
MAX_DEPTH = 32


def dotted(path: Path) -> str:
    """`('domains', 1)` -> `domains[1]`, `('timeouts', 'request')` -> `timeouts.request`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass
class Document:
    """A YAML mapping document with the location of every key and list item."""

    file: str
    data: dict
    # (line, column) of each path; a Location is made only for the few that are asked for.
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Path) -> Location:
        """The location of `path`, or of its nearest located ancestor."""
        path = tuple(path)
        while path and path not in self.positions:
            path = path[:-1]
        return Location(self.file, *self.positions.get(path, (1, 1)))


def load_document(text: str, file: str) -> tuple[Document | None, list[Problem]]:
    """Compose `text` and build plain data; return the document or the problems."""
    try:
        deep = _too_deep(text)
        if deep is not None:
            return None, [Problem(Location(file, *deep[0]), "", deep[1])]
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = exc.problem or exc.context or "invalid YAML"
        return None, [Problem(Location(file, line, col), "", f"YAML syntax error: {reason}")]
    except yaml.reader.ReaderError as exc:
        # libyaml refuses control characters (a NUL byte, ESC) before it has marks: locate it.
        code = ord(exc.character) if isinstance(exc.character, str) else exc.character
        return None, [Problem(Location(file, *line_and_column(text, exc.position)), "",
                              f"YAML error: the control character U+{code:04X} is not allowed in a YAML file")]
    except yaml.YAMLError as exc:
        return None, [Problem(Location(file, 1, 1), "", f"YAML error: {shown(str(exc), 200)}")]
    if root is None:
        return None, [Problem(Location(file, 1, 1), "", "empty file: expected a mapping with the site's keys")]
    if not isinstance(root, yaml.MappingNode) or root.tag != _MAP_TAG:
        return None, [
            Problem(_mark(file, root), "", "the document must be a mapping of keys (name:, domains:, ...)")
        ]
    # A tag is written with `!`: without one in the text, every tag is the implicit one.
    builder = _Builder(file, tagged="!" in text)
    data = builder.build(root, ())
    if builder.problems:
        return None, builder.problems
    doc = Document(file, data, builder.positions)
    doc.positions[()] = _position(root)
    return doc, []


# libyaml's composer recurses in C once per level: about 30,000 levels overflow an 8 MB stack
# and the process dies of SIGSEGV, no exception to catch. Nesting is bounded before it runs.
_SAFE_TO_COMPOSE = 1000
_STARTS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_ENDS = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _too_deep(text: str) -> tuple[tuple[int, int], str] | None:
    """Where and how `text` nests deeper than MAX_DEPTH (or holds more than MAX_VALUES
    scalars, which would take a second and 200 MB to compose), or None.

    Each flow level takes a `[` or `{`, and each block level at least one more column of
    indentation or a `- ` on the line, so a file whose brackets plus twice its longest line
    stay under _SAFE_TO_COMPOSE cannot overflow the composer (every real site file): it is
    composed at once, and the builder counts its depth. Only other files are walked event by
    event first (libyaml's parser is a loop, not a recursion), which costs 0.2 ms a site.
    """
    longest = max(map(len, text.splitlines()), default=0)
    if text.count("[") + text.count("{") + 2 * longest + 2 < _SAFE_TO_COMPOSE:
        return None
    depth = values = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, _STARTS):
            depth += 1
            if depth > MAX_DEPTH:
                return _event_position(event), f"YAML nested deeper than {MAX_DEPTH} levels"
        elif isinstance(event, _ENDS):
            depth -= 1
        elif isinstance(event, yaml.ScalarEvent):
            values += 1
            if values > MAX_VALUES:
                return _event_position(event), f"more than {MAX_VALUES} values: a site file has a few hundred"
    return None


def _event_position(event: yaml.Event) -> tuple[int, int]:
    return event.start_mark.line + 1, event.start_mark.column + 1


def _mark(file: str, node: yaml.Node) -> Location:
    return Location(file, *_position(node))


def _position(node: yaml.Node) -> tuple[int, int]:
    mark = node.start_mark
    return mark.line + 1, mark.column + 1


def _decimal(node: yaml.ScalarNode) -> str:
    """The number YAML 1.1 reads in `node` as a plain decimal, and for leading zeros the decimal
    the digits say too (`010`: 10 or 8): what to write instead."""
    if len(node.value) > 40:
        return "a plain decimal number"
    read = _SCALARS[_INT_TAG](_constructor, node)
    digits = node.value.replace("_", "")
    if re.fullmatch(r"[-+]?0[0-9]+", digits) and int(digits) != read:
        return f"{int(digits)} or {read}"
    return str(read)


class _Builder:
    def __init__(self, file: str, tagged: bool = True) -> None:
        self.file = file
        self.tagged = tagged
        self.positions: dict[Path, tuple[int, int]] = {}
        self.problems: list[Problem] = []
        self._open: set[int] = set()
        self._values = 0
        self._stopped = False

    def _problem(self, node: yaml.Node, path: Path, message: str) -> None:
        self.problems.append(Problem(_mark(self.file, node), dotted(path), message))

    def build(self, node: yaml.Node, path: Path) -> object:
        if self._stopped:
            return None
        self._values += 1
        if self._values > MAX_VALUES:
            self._stop(node, path, f"more than {MAX_VALUES} values (an alias counts each time it is "
                                   "used): a site file has a few hundred")
            return None
        if len(path) > MAX_DEPTH:
            self._stop(node, path, f"nested deeper than {MAX_DEPTH} levels")
            return None
        if id(node) in self._open:
            self._problem(node, path, "a YAML alias refers to its own parent")
            return None
        if isinstance(node, yaml.ScalarNode):
            tag = node.tag
            if self.tagged and tag != _implicit_tag(node):
                # Written with a tag (`!!int "3"`, `!!python/...`): the text would not say it.
                self._problem(node, path, f"YAML tag {shown(tag)} is not allowed: write a plain value")
                return None
            if tag == _STR_TAG:
                return node.value
            if tag not in _SCALARS:  # an implicit type beyond the plain ones: a timestamp, a merge key
                self._problem(node, path, f"YAML tag {shown(tag)} is not allowed: write a plain value")
                return None
            if tag == _INT_TAG and not _DECIMAL.fullmatch(node.value):
                self._problem(node, path, f"{shown(node.value)} is not a plain decimal number (YAML 1.1 reads "
                                          f"010 as 8, 0x10 as 16 and 1:30 as 90): write {_decimal(node)}")
                return None
            try:
                return _SCALARS[tag](_constructor, node)
            except ValueError:  # int() refuses more than 4,300 digits
                self._problem(node, path, f"the number {shown(node.value)} is too large")
                return None
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            return self._sequence(node, path)
        finally:
            self._open.discard(id(node))

    def _stop(self, node: yaml.Node, path: Path, message: str) -> None:
        """One problem for the whole file, then nothing more is built."""
        self._problem(node, path[:MAX_DEPTH], message)
        self._stopped = True

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict | None:
        if node.tag != _MAP_TAG:
            self._problem(node, path, f"YAML tag {shown(node.tag)} is not allowed: write a plain mapping")
            return None
        out: dict = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR_TAG:
                written = getattr(key_node, "value", "?")
                written = written if isinstance(written, str) else "a collection"
                self._problem(key_node, path, f"key {shown(written)} must be a plain string")
                continue
            key = key_node.value
            key_path = path + (key,)
            if key in out or key_path in self.positions:
                first_line = self.positions[key_path][0]
                self._problem(key_node, key_path, f"duplicate key (first written at line {first_line})")
                continue
            self.positions[key_path] = _position(key_node)
            out[key] = self.build(value_node, key_path)
        return out

    def _sequence(self, node: yaml.SequenceNode, path: Path) -> list | None:
        if node.tag != _SEQ_TAG:
            self._problem(node, path, f"YAML tag {shown(node.tag)} is not allowed: write a plain list")
            return None
        out = []
        for index, item in enumerate(node.value):
            item_path = path + (index,)
            self.positions[item_path] = _position(item)
            out.append(self.build(item, item_path))
        return out
