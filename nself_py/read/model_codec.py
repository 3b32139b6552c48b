"""Schema model objects as nested tuples of plain values, which `marshal` writes and reads.

Caches of models (`target_cache`, `live_cache`, the built blocks of `dbml.blocks`) are stored
with `marshal`, never pickle: loading a project's file then runs no code. Each object is a
tagged tuple of its field values, rebuilt by calling its class. A whole schema is kept in a file
of its own (`store_schema`): its key on the first line, so a file stored under another key is
refused without decoding it, then the marshal data.
"""

from __future__ import annotations

import contextlib
import marshal
from dataclasses import fields
from operator import attrgetter
from pathlib import Path
from typing import Any

from nself_py import model
from nself_py.files import write_atomically
from nself_py.read import collector

_CLASSES: tuple[type, ...] = (
    model.Name,
    model.Enum,
    model.Column,
    model.PrimaryKey,
    model.Unique,
    model.Check,
    model.Index,
    model.ForeignKey,
    model.Table,
    model.Records,
    model.Schema,
)
_TAG = {cls: tag for tag, cls in enumerate(_CLASSES)}
_VALUES = {cls: attrgetter(*(f.name for f in fields(cls))) for cls in _CLASSES}
"""Each class's field values as a tuple, in field order (every class has two fields or more)."""
_SCALARS = frozenset({str, int, float, bool, type(None)})
"""Types stored as they are (exact types: a RecordExpression, a str subclass, is not one)."""
_EXPRESSION = -1  # tag of a RecordExpression (a str subclass marshal would flatten)


def encode(value: object) -> Any:
    """Model objects as tagged tuples of plain values, which marshal writes (Any: typeshed's
    `_Marshallable` cannot name a recursive tuple of them). Dispatch is on the exact type: this
    runs once per column and constraint of the whole model after every edit."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    tag = _TAG.get(kind)
    if tag is not None:
        return (tag, _encode_items(_VALUES[kind](value)))
    if kind is model.RecordExpression:
        return (_EXPRESSION, str(value))
    if isinstance(value, tuple):
        return ("", _encode_items(value))
    return value


def _encode_items(items: tuple[object, ...]) -> tuple[Any, ...]:
    return tuple([item if type(item) in _SCALARS else encode(item) for item in items])


def decode(value: object) -> object:
    if type(value) is not tuple:
        return value
    tag, payload = value
    if tag == _EXPRESSION:
        return model.RecordExpression(payload)
    items = [decode(item) if type(item) is tuple else item for item in payload]
    return tuple(items) if tag == "" else _CLASSES[tag](*items)


@collector.paused()
def load_schema(path: Path, key: str) -> model.Schema | None:
    """The schema stored at `path` under `key`, or None (missing, other key, unreadable)."""
    try:
        with path.open("rb") as file:
            if file.readline() != key.encode() + b"\n":
                return None
            payload = marshal.loads(file.read())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    try:
        schema = decode(payload)
    except (IndexError, TypeError, ValueError):
        return None
    return schema if isinstance(schema, model.Schema) else None


@collector.paused()
def store_schema(path: Path, key: str, schema: model.Schema) -> None:
    """Write atomically; a cache that cannot be written is no error (the next run recomputes)."""
    with contextlib.suppress(OSError):
        write_atomically(path, key.encode() + b"\n" + marshal.dumps(encode(schema)))
