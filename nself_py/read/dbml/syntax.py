"""The syntax tree the parser builds: what was written, with positions for error messages.

Every `offset` here is the index of a token (`Tokens.offset_of` turns it into a character
offset), so parsing never has to read where tokens are unless something is wrong.

Names are kept as written (quoted names unquoted); nothing here is resolved or checked beyond
the grammar. `build` turns it into the schema model.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Value:
    """A setting or record value.

    kind: "string", "number", "expr", "color", "word" (bare words: `set null`, `true`, `hash`),
    "path" (dotted names: `status.active`), "ref" (a relation: `op` and `endpoint`)."""

    kind: str
    text: str
    offset: int
    parts: tuple[str, ...] = ()
    op: str = ""
    endpoint: Endpoint | None = None


@dataclass(slots=True)
class Setting:
    name: str
    """Lower-cased words joined by one space: `not null`, `primary key`, `delete`."""
    value: Value | None
    offset: int


@dataclass(slots=True)
class Endpoint:
    """`[schema.]table.column` or `[schema.]table.(c1, c2)`; a bare `column` has no path."""

    path: tuple[str, ...]
    columns: tuple[str, ...]
    offset: int
    column_offsets: tuple[int, ...]


@dataclass(slots=True)
class ColumnDef:
    name: str
    offset: int
    type_text: str
    """The type as written, spacing normalised (`varchar(255)`, `decimal(10, 2)`, `int[]`)."""
    type_path: tuple[str, ...]
    """The type's name parts without arguments or array marks, to look enums up."""
    type_offset: int
    type_is_array: bool
    settings: list[Setting]


@dataclass(slots=True)
class Injection:
    name: str
    offset: int


@dataclass(slots=True)
class IndexDef:
    keys: list[tuple[bool, str, int]]
    """(is_expression, column name or expression text, offset) per key."""
    settings: list[Setting]
    offset: int


@dataclass(slots=True)
class CheckDef:
    expression: str
    settings: list[Setting]
    offset: int


@dataclass(slots=True)
class RecordsDef:
    table: tuple[str, ...]
    """The table's name parts; empty for records nested in a table."""
    columns: list[tuple[str, int]]
    rows: list[list[Value]]
    offset: int


@dataclass(slots=True)
class TableDef:
    partial: bool
    path: tuple[str, ...]
    offset: int
    alias: str | None = None
    settings: list[Setting] = field(default_factory=list)
    items: list[ColumnDef | Injection] = field(default_factory=list)
    indexes: list[IndexDef] = field(default_factory=list)
    checks: list[CheckDef] = field(default_factory=list)
    notes: list[Value] = field(default_factory=list)
    records: list[RecordsDef] = field(default_factory=list)
    groups: list[GroupDef] = field(default_factory=list)


@dataclass(slots=True)
class EnumDef:
    path: tuple[str, ...]
    offset: int
    values: list[tuple[str, int]] = field(default_factory=list)
    notes: list[Value] = field(default_factory=list)


@dataclass(slots=True)
class RefDef:
    name: str | None
    left: Endpoint
    op: str
    right: Endpoint
    settings: list[Setting]
    offset: int


@dataclass(slots=True)
class GroupDef:
    """A TableGroup: only checked (its tables exist and belong to no other group)."""

    path: tuple[str, ...]
    offset: int
    settings: list[Setting] = field(default_factory=list)
    tables: list[tuple[tuple[str, ...], int]] = field(default_factory=list)
    notes: list[Value] = field(default_factory=list)


@dataclass(slots=True)
class Document:
    tables: list[TableDef] = field(default_factory=list)
    enums: list[EnumDef] = field(default_factory=list)
    refs: list[RefDef] = field(default_factory=list)
    records: list[RecordsDef] = field(default_factory=list)
    groups: list[GroupDef] = field(default_factory=list)
