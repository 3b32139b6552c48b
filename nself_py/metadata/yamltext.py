"""Surgical edits of YAML text, so everything nself-py does not change stays byte for byte.

ruamel.yaml (round-trip mode) parses a file and tells where each key, value and list item
starts; edits are then splices of the original text: a scalar replaced where it stands, a block
of lines inserted before a sibling or removed up to the next one. Nothing is re-serialised, so
comments, quoting, `~`, flow collections and indentation the user chose survive exactly.
New blocks are written in the style `hasura metadata export` writes (mapping indent 2, list
items indented 2 under their key).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import MutableMapping, MutableSequence
from dataclasses import dataclass, field
from io import StringIO
from typing import Any, Protocol, cast

import yaml as pyyaml
from ruamel.yaml import YAML

from nself_py.errors import ConfigError

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/]*$")
_PLAIN_END = re.compile(r"(?:[^,\[\]{}\n#:]|:(?![\s,\[\]{}]))*")
_RESERVED = frozenset(("true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"))


def load(text: str, path: str) -> Any:
    yaml = YAML(typ="rt")
    try:
        return yaml.load(StringIO(text))
    except Exception as e:  # ruamel raises many types; all mean the file is not YAML we read
        raise ConfigError(f"{path}: not valid YAML: {e}") from e


class _NoPositions:
    """What a fast-loaded node answers for positions: nothing real, so a planned edit of its
    file is only a marker that the file must be read again with ruamel (see `TextDoc.fast`)."""

    def key(self, key: Any) -> tuple[int, int]:
        return (0, 0)

    value = key

    def item(self, index: int) -> tuple[int, int]:
        return (0, 0)


_NO_POSITIONS = _NoPositions()


class _BlockStyle:
    def flow_style(self) -> bool:
        return False


_BLOCK_STYLE = _BlockStyle()


YamlMap = MutableMapping[Any, Any]
"""A parsed mapping: ruamel's CommentedMap (round-trip, with positions) or a `FastMap`."""
YamlSeq = MutableSequence[Any]
"""A parsed list: ruamel's CommentedSeq or a `FastSeq`."""


class _Positions(Protocol):
    def key(self, key: Any, /) -> Any: ...

    def value(self, key: Any, /) -> Any: ...

    def item(self, index: int, /) -> Any: ...


class _Style(Protocol):
    def flow_style(self) -> Any: ...


class _Parsed(Protocol):
    """What every parsed node answers, ruamel's and the fast ones alike."""

    @property
    def lc(self) -> _Positions: ...

    @property
    def fa(self) -> _Style: ...


def key_at(node: YamlMap, key: Any) -> tuple[int, int]:
    """(line, column) where a mapping's `key` starts; (0, 0) in a fast-read file."""
    line, col = cast(_Parsed, node).lc.key(key)
    return int(line), int(col)


def value_at(node: YamlMap, key: Any) -> tuple[int, int]:
    line, col = cast(_Parsed, node).lc.value(key)
    return int(line), int(col)


def item_at(seq: YamlSeq, index: int) -> tuple[int, int]:
    line, col = cast(_Parsed, seq).lc.item(index)
    return int(line), int(col)


class FastMap(dict[Any, Any]):
    """A mapping from PyYAML's C loader: a plain dict (cheap to build) answering `lc`/`fa`
    like ruamel's, so readers need not care which parser read it."""

    lc = _NO_POSITIONS
    fa = _BLOCK_STYLE


class FastSeq(list[Any]):
    lc = _NO_POSITIONS
    fa = _BLOCK_STYLE


_INT_PATTERN = r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+"
_FLOAT_PATTERN = (
    r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)


class _FastLoader(pyyaml.CSafeLoader):
    """PyYAML's C parser with YAML 1.2 core scalars (as ruamel reads them: `yes`, `on`, `010`
    stay strings and ints) and any tag kept as its text (`!include x` → "!include x")."""

    yaml_implicit_resolvers = {}  # noqa: RUF012  (PyYAML's own class attribute, replaced)


for _tag, _regexp, _first in (
    ("tag:yaml.org,2002:merge", r"^<<$", "<"),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:int", f"^(?:{_INT_PATTERN})$", "-+0123456789"),
    ("tag:yaml.org,2002:float", f"^(?:{_FLOAT_PATTERN})$", "-+.0123456789"),
):
    _FastLoader.add_implicit_resolver(_tag, re.compile(_regexp), list(_first))


def _fast_int(loader: _FastLoader, node: Any) -> int:
    v = str(node.value).replace("_", "")
    if v.startswith("0o"):
        return int(v[2:], 8)
    return int(v, 16) if v.startswith("0x") else int(v)


def _fast_map(loader: _FastLoader, node: Any) -> Any:
    data = FastMap()
    yield data
    own = [k.value for k, _ in node.value if isinstance(k, pyyaml.ScalarNode) and k.value != "<<"]
    if len(own) != len(set(own)):
        dup = next(k for k in own if own.count(k) > 1)
        raise pyyaml.constructor.ConstructorError(
            None, None, f"found duplicate key {dup!r}", node.start_mark
        )
    data.update(loader.construct_mapping(node))


def _fast_seq(loader: _FastLoader, node: Any) -> Any:
    data = FastSeq()
    yield data
    data.extend(loader.construct_sequence(node))


def _fast_tagged(loader: _FastLoader, suffix: str, node: Any) -> Any:
    if isinstance(node, pyyaml.ScalarNode):
        return f"{node.tag} {node.value}"
    if isinstance(node, pyyaml.SequenceNode):
        return FastSeq(loader.construct_sequence(node, deep=True))
    return FastMap(loader.construct_mapping(node, deep=True))


_FastLoader.add_constructor("tag:yaml.org,2002:int", _fast_int)
_FastLoader.add_constructor("tag:yaml.org,2002:map", _fast_map)
_FastLoader.add_constructor("tag:yaml.org,2002:seq", _fast_seq)
_FastLoader.add_multi_constructor("!", _fast_tagged)


class _Unusual(Exception):
    """A node `_convert` leaves to PyYAML's constructor: merge keys, duplicate or unhashable
    keys, explicit core tags, recursive aliases."""


_STR, _SEQ, _MAP = "tag:yaml.org,2002:str", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"
_PLAIN_TAG = ""
"""What `_Composer` tags a plain scalar with: `_plain` resolves it while converting."""
_CONSTANTS: dict[str, Any] = {
    **dict.fromkeys(("~", "null", "Null", "NULL", ""), None),
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
}
_NUMBER_START = frozenset("-+.0123456789")
_INT = re.compile(_INT_PATTERN)
_FLOAT = re.compile(_FLOAT_PATTERN)


class _Composer(pyyaml.CSafeLoader):
    """PyYAML's C parser and composer, with the per-node resolver calls made trivial: plain
    scalars are resolved by `_plain` (the YAML 1.2 core rules `_FastLoader` declares)."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is pyyaml.ScalarNode:
            return _PLAIN_TAG if implicit[0] else _STR
        return _SEQ if kind is pyyaml.SequenceNode else _MAP

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass


def _plain(value: str) -> Any:
    if value in _CONSTANTS:
        return _CONSTANTS[value]
    if value[0] not in _NUMBER_START:
        if value == "<<":
            raise _Unusual
        return value
    if _INT.fullmatch(value):
        if value.startswith("0o"):
            return int(value[2:], 8)
        return int(value, 16) if value.startswith("0x") else int(value)
    if _FLOAT.fullmatch(value) is None:
        return value
    if value.lower().endswith("inf"):
        return float("-inf" if value.startswith("-") else "inf")
    return float("nan") if value.lower().endswith("nan") else float(value)


def _convert(node: Any) -> Any:
    tag = node.tag
    if type(node) is pyyaml.ScalarNode:
        if tag == _PLAIN_TAG:
            return _plain(node.value)
        if tag == _STR:
            return node.value
        if tag.startswith("!"):
            return f"{tag} {node.value}"
        raise _Unusual
    if tag not in (_SEQ, _MAP) and not tag.startswith("!"):
        raise _Unusual
    if type(node) is pyyaml.SequenceNode:
        return FastSeq([_convert(item) for item in node.value])
    data = FastMap()
    for k, v in node.value:
        key = _convert(k)
        if not isinstance(key, str | int | float | bool | None) or key in data:
            raise _Unusual
        data[key] = _convert(v)
    return data


def fast_load(text: str) -> Any:
    """Parse with PyYAML's C loader (30× faster than ruamel round-trip), nodes converted
    directly (3× faster than PyYAML's constructor); raises YAMLError."""
    composer = _Composer(text)
    try:
        node = composer.get_single_node()
    finally:
        composer.dispose()
    try:
        return None if node is None else _convert(node)
    except (_Unusual, RecursionError):
        return pyyaml.load(text, Loader=_FastLoader)


def scalar(value: str) -> str:
    """A string as Go's YAML encoder writes it: plain when it can be, double-quoted otherwise."""
    if _PLAIN.match(value) and value.lower() not in _RESERVED:
        return value
    return json.dumps(value, ensure_ascii=False)


def emit(value: Any, indent: int) -> list[str]:
    """Block-style lines for plain data (dicts, lists, strings, None), `indent` spaces deep."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, dict | list) and v:
                lines.append(f"{pad}{scalar(k)}:")
                lines += emit(v, indent + 2)
            else:
                lines.append(f"{pad}{scalar(k)}: {_inline(v)}")
        return lines
    assert isinstance(value, list)
    for item in value:
        sub = emit(item, indent + 2) if isinstance(item, dict | list) and item else None
        if sub:
            lines.append(f"{pad}- {sub[0][indent + 2 :]}")
            lines += sub[1:]
        else:
            lines.append(f"{pad}- {_inline(item)}")
    return lines


def _inline(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, dict):
        return "{}"
    if isinstance(v, list):
        return "[]"
    if isinstance(v, Quoted):
        return json.dumps(v.text, ensure_ascii=False)
    return scalar(str(v))


@dataclass(frozen=True)
class Quoted:
    """A string always written double-quoted (`- "!include public_users.yaml"`)."""

    text: str


@dataclass
class TextDoc:
    """One YAML file's text and parsed data, with pending splices of the original text."""

    path: str
    text: str
    fast: bool = False
    """Parsed by PyYAML (no positions): cheap to read; an edit only marks that the file must
    be parsed again with ruamel (`plan_metadata` does, and plans again)."""
    data: Any = None
    _edits: list[tuple[int, int, int, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.data is None and self.fast:
            try:
                self.data = fast_load(self.text)
            except pyyaml.YAMLError:  # let ruamel judge (and word the error) as it always has
                self.fast = False
        if self.data is None:
            self.data = load(self.text, self.path)

    @functools.cached_property
    def lines(self) -> list[str]:
        """The text's lines: only a file that is edited needs them, so they are made then."""
        return self.text.split("\n")

    @functools.cached_property
    def _line_starts(self) -> list[int]:
        return [0, *(m.end() for m in re.finditer("\n", self.text))]

    @property
    def changed(self) -> bool:
        return bool(self._edits)

    def offset(self, line: int, col: int = 0) -> int:
        if line >= len(self._line_starts):
            return len(self.text)
        return self._line_starts[line] + col

    def splice(self, start: int, end: int, text: str) -> None:
        self._edits.append((start, end, len(self._edits), text))

    def render(self) -> str:
        edits = self._edits

        def inside(e: tuple[int, int, int, str], o: tuple[int, int, int, str]) -> bool:
            if e is o or o[1] == o[0] or not (o[0] <= e[0] and e[1] <= o[1]):
                return False
            return not (e[0] == e[1] and e[0] in (o[0], o[1]))

        kept = [e for e in edits if not any(inside(e, o) for o in edits)]
        text = self.text
        for start, end, _, new in sorted(kept, key=lambda e: (e[0], e[1], e[2]), reverse=True):
            text = text[:start] + new + text[end:]
        return text

    # -- scalars -----------------------------------------------------------------------------

    def scalar_end(self, start: int) -> int:
        t = self.text
        if start < len(t) and t[start] in "'\"":
            q, i = t[start], start + 1
            while i < len(t):
                if q == "'" and t[i] == "'" and t[i + 1 : i + 2] == "'":
                    i += 2
                    continue
                if q == '"' and t[i] == "\\":
                    i += 2
                    continue
                if t[i] == q:
                    return i + 1
                i += 1
            return len(t)
        m = _PLAIN_END.match(t, start)
        assert m is not None
        return start + len(m.group(0).rstrip())

    def replace_value(self, node: Any, key: Any, new: str) -> None:
        line, col = value_at(node, key)
        start = self.offset(line, col)
        self.splice(start, self.scalar_end(start), self._requote(start, new))

    def replace_key(self, node: Any, key: Any, new: str) -> None:
        line, col = key_at(node, key)
        start = self.offset(line, col)
        self.splice(start, self.scalar_end(start), self._requote(start, new))

    def replace_item(self, node: Any, index: int, new: str) -> None:
        line, col = item_at(node, index)
        start = self.offset(line, col)
        self.splice(start, self.scalar_end(start), self._requote(start, new))

    def _requote(self, start: int, new: str) -> str:
        """Keep the quoting the user wrote when it can hold the new text."""
        q = self.text[start : start + 1]
        if q == "'":
            return "'" + new.replace("'", "''") + "'"
        if q == '"':
            return json.dumps(new, ensure_ascii=False)
        return scalar(new)

    # -- blocks ------------------------------------------------------------------------------

    def indent_of(self, line: int) -> int:
        text = self.lines[line] if line < len(self.lines) else ""
        return len(text) - len(text.lstrip(" "))

    def dash_col(self, seq: YamlSeq, index: int) -> int:
        line, col = item_at(seq, index)
        text = self.lines[line]
        dash = text.rfind("-", 0, col)
        return dash if dash >= 0 else col

    def block_end(self, first_line: int, owner_indent: int) -> int:
        """The line after the last non-blank line of the block that starts at `first_line` and
        holds every following line indented deeper than `owner_indent`."""
        end = first_line + 1
        for n in range(first_line + 1, len(self.lines)):
            raw = self.lines[n]
            if not raw.strip():
                continue
            if self.indent_of(n) <= owner_indent:
                break
            end = n + 1
        return end

    def block_start(self, line: int, owner_indent: int) -> int:
        """`line`, moved up over the comment lines right above it at `owner_indent` or deeper
        (they describe what follows)."""
        while line > 0:
            prev = self.lines[line - 1]
            if prev.strip().startswith("#") and self.indent_of(line - 1) >= owner_indent:
                line -= 1
            else:
                break
        return line

    def insert_lines(self, line: int, lines: list[str]) -> None:
        at = self.offset(line)
        body = "\n".join(lines) + "\n"
        if at >= len(self.text) and self.text and not self.text.endswith("\n"):
            body = "\n" + body
        self.splice(at, at, body)

    def delete_lines(self, first: int, end: int) -> None:
        self.splice(self.offset(first), self.offset(end), "")

    def is_flow(self, node: YamlMap | YamlSeq) -> bool:
        return bool(cast(_Parsed, node).fa.flow_style())
