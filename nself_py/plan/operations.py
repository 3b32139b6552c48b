"""Schema changes as frozen data: one class per kind, each knowing its reverse and its risks.

A migration's down.sql is the reverse of its up.sql, op by op, so nothing is written twice. Each
operation also declares what it changes and which objects it needs in their old or new state;
`order` turns that into a dependency graph and sorts it with graphlib (no fixed phases).
"""

from __future__ import annotations

import graphlib
import heapq
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar

from nself_py.errors import NselfError
from nself_py.model import (
    IDENTITY_ALWAYS,
    IDENTITY_BY_DEFAULT,
    SERIAL,
    Check,
    Column,
    Enum,
    ForeignKey,
    Index,
    Name,
    PrimaryKey,
    Table,
    Unique,
)
from nself_py.sql.naming import expression_columns, make_object_name
from nself_py.sql.quote import quote_ident, quote_literal, quote_name

DELETES_DATA = "DELETES_DATA"
REWRITES_TABLE = "REWRITES_TABLE"
BLOCKS_WRITES = "BLOCKS_WRITES"
MAY_FAIL = "MAY_FAIL"
NOT_RESTORED = "NOT_RESTORED"
"""A down step that re-creates what up dropped, empty: the data (and, for a table, what
depended on it outside the model) does not come back; only a backup has it."""

Key = tuple[object, ...]


@dataclass(frozen=True)
class Hazard:
    """A risk the user must see before the statement runs (shown as `-- HAZARD:` in SQL)."""

    kind: str
    message: str
    blocking: int | None = None
    """Rows of the live data that make the statement fail (measured by `db run`), if any."""


class Operation:
    """Base of every operation. Subclasses are frozen dataclasses holding only data.

    Ordering contract: `changes` are the objects this operation creates, drops or alters;
    `needs_old` must still be as they were (so it runs before whatever changes them);
    `needs_new` must already be as they will be (so it runs after whatever changes them).
    """

    rank: ClassVar[int] = 50
    """Tie-break between independent operations, so plans read in a familiar order."""

    def reverse(self) -> Operation | tuple[Operation, ...]:
        raise NotImplementedError

    @property
    def hazards(self) -> tuple[Hazard, ...]:
        return ()

    def describe(self) -> str:
        raise NotImplementedError

    def changes(self) -> set[Key]:
        return set()

    def needs_old(self) -> set[Key]:
        return set()

    def needs_new(self) -> set[Key]:
        return set()

    @classmethod
    def template(cls) -> str:
        """The Jinja2 template that renders this kind: `AddColumn` → `add_column.sql.j2`."""
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()
        return f"{snake}.sql.j2"


# --- keys naming the things operations depend on ------------------------------------------


def _schema(name: str) -> Key:
    return ("schema", name)


def _enum(name: Name) -> Key:
    return ("enum", name)


def _table(name: Name) -> Key:
    return ("table", name)


def _column(table: Name, column: str, aspect: str = "") -> Key:
    return ("column", table, column, aspect)


def _relname(schema: str, name: str) -> Key:
    """Names that share one namespace: relations, indexes and constraints of a schema."""
    return ("name", schema, name)


def _unique_key(table: Name, columns: tuple[str, ...]) -> Key:
    """A primary key, unique constraint or unique index that a foreign key can reference."""
    return ("unique", table, frozenset(columns))


def type_enum(type_text: str) -> Name | None:
    """The schema-qualified type a column type names (`public.mood`, `public."Mood"[]`), if any."""
    text = type_text.removesuffix("[]")
    match = re.fullmatch(r'("(?:[^"]|"")*"|[^".()\s]+)\.("(?:[^"]|"")*"|[^".()\s]+)', text)
    if match is None:
        return None
    schema, name = (p[1:-1].replace('""', '"') if p.startswith('"') else p for p in match.groups())
    return Name(schema, name)


def _type_keys(*types: str) -> set[Key]:
    return {_enum(n) for n in map(type_enum, types) if n is not None}


def _constraint_columns(
    table: Name, columns: tuple[str, ...], aspects: tuple[str, ...] = ("", "type")
) -> set[Key]:
    return {_column(table, c, a) for c in columns for a in aspects}


# --- schemas ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateSchema(Operation):
    schema: str
    rank: ClassVar[int] = 10

    def reverse(self) -> DropSchema:
        return DropSchema(self.schema)

    def describe(self) -> str:
        return f"create schema {self.schema}"

    def changes(self) -> set[Key]:
        return {_schema(self.schema)}


@dataclass(frozen=True)
class DropSchema(Operation):
    schema: str
    rank: ClassVar[int] = 99

    def reverse(self) -> CreateSchema:
        return CreateSchema(self.schema)

    @property
    def hazards(self) -> tuple[Hazard, ...]:
        return (Hazard(MAY_FAIL, f"fails if schema {self.schema} still holds other objects"),)

    def describe(self) -> str:
        return f"drop schema {self.schema}"

    def changes(self) -> set[Key]:
        return {_schema(self.schema)}


# --- enums -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateEnum(Operation):
    enum: Enum
    rank: ClassVar[int] = 12

    def reverse(self) -> DropEnum:
        return DropEnum(self.enum)

    def describe(self) -> str:
        return f"create enum {self.enum.name}"

    def changes(self) -> set[Key]:
        return {_enum(self.enum.name)}

    def needs_new(self) -> set[Key]:
        return {_schema(self.enum.name.schema)}


@dataclass(frozen=True)
class DropEnum(Operation):
    enum: Enum
    rank: ClassVar[int] = 98

    def reverse(self) -> CreateEnum:
        return CreateEnum(self.enum)

    def describe(self) -> str:
        return f"drop enum {self.enum.name}"

    def changes(self) -> set[Key]:
        return {_enum(self.enum.name)}

    def needs_old(self) -> set[Key]:
        return {_schema(self.enum.name.schema)}


@dataclass(frozen=True)
class EnumColumn:
    """A column that keeps using an enum while the enum is rebuilt."""

    table: Name
    column: str
    type: str
    old_default: str | None
    new_default: str | None

    @property
    def array(self) -> str:
        return "[]" if self.type.endswith("[]") else ""

    def reverse(self) -> EnumColumn:
        return replace(self, old_default=self.new_default, new_default=self.old_default)


@dataclass(frozen=True)
class AddEnumValue(Operation):
    """`ALTER TYPE … ADD VALUE` in place; its reverse rebuilds the type without the value."""

    enum: Name
    value: str
    before: str | None
    after: str | None
    old_values: tuple[str, ...]
    columns: tuple[EnumColumn, ...] = ()
    comment: str | None = None
    rank: ClassVar[int] = 13

    @property
    def new_values(self) -> tuple[str, ...]:
        values = list(self.old_values)
        if self.after is not None:
            values.insert(values.index(self.after) + 1, self.value)
        elif self.before is not None:
            values.insert(values.index(self.before), self.value)
        else:
            values.append(self.value)
        return tuple(values)

    def reverse(self) -> RecreateEnum:
        return RecreateEnum(
            self.enum,
            self.new_values,
            self.old_values,
            tuple(c.reverse() for c in self.columns),
            self.comment,
            self.comment,
        )

    def describe(self) -> str:
        return f"add value {quote_literal(self.value)} to enum {self.enum}"

    def changes(self) -> set[Key]:
        return {_enum(self.enum), ("enum value", self.enum, self.value)}

    def needs_new(self) -> set[Key]:
        anchor = self.before if self.before is not None else self.after
        return {("enum value", self.enum, anchor)} if anchor is not None else set()


@dataclass(frozen=True)
class RecreateEnum(Operation):
    """Remove or reorder enum values: build `<name>__new`, move every column, swap names."""

    enum: Name
    old_values: tuple[str, ...]
    new_values: tuple[str, ...]
    columns: tuple[EnumColumn, ...] = ()
    old_comment: str | None = None
    new_comment: str | None = None
    rank: ClassVar[int] = 14

    @property
    def temp_name(self) -> Name:
        return Name(self.enum.schema, make_object_name(self.enum.name, None, "_new"))

    def reverse(self) -> RecreateEnum:
        return RecreateEnum(
            self.enum,
            self.new_values,
            self.old_values,
            tuple(c.reverse() for c in self.columns),
            self.new_comment,
            self.old_comment,
        )

    @property
    def hazards(self) -> tuple[Hazard, ...]:
        hazards = []
        removed = [quote_literal(v) for v in self.old_values if v not in self.new_values]
        if removed and self.columns:
            message = f"removes {', '.join(removed)} from enum {self.enum}; rows holding them fail"
            hazards.append(Hazard(DELETES_DATA, message))
        if self.columns:
            columns = ", ".join(f"{c.table}.{c.column}" for c in self.columns)
            hazards.append(
                Hazard(REWRITES_TABLE, f"rebuilding enum {self.enum} rewrites {columns}")
            )
        return tuple(hazards)

    def describe(self) -> str:
        return f"rebuild enum {self.enum} with values {', '.join(self.new_values)}"

    def changes(self) -> set[Key]:
        keys = {_enum(self.enum)} | {("enum value", self.enum, v) for v in self.old_values}
        for c in self.columns:
            keys |= {_column(c.table, c.column, "type"), _column(c.table, c.column, "default")}
        return keys

    def needs_old(self) -> set[Key]:
        return {_column(c.table, c.column) for c in self.columns}


# --- tables ----------------------------------------------------------------------------------


def _table_names(table: Table) -> set[Key]:
    items = (table.primary_key, *table.uniques, *table.checks, *table.indexes)
    names = {item.name for item in items if item is not None and item.name}
    return {_relname(table.name.schema, n) for n in (table.name.name, *names)}


def _table_provides(table: Table) -> set[Key]:
    keys = {_table(table.name)} | _table_names(table)
    for column in table.columns:
        keys |= {_column(table.name, column.name, a) for a in ("", "type", "default")}
    for unique in (table.primary_key, *table.uniques):
        if unique is not None:
            keys.add(_unique_key(table.name, unique.columns))
    keys |= {_unique_key(table.name, i.keys) for i in table.indexes if i.unique and not i.where}
    return keys


def _table_needs(table: Table) -> set[Key]:
    return {_schema(table.name.schema)} | _type_keys(*(c.type for c in table.columns))


@dataclass(frozen=True)
class CreateTable(Operation):
    """A table with its keys, checks, indexes and comments; foreign keys are separate ops."""

    table: Table
    restores: bool = field(default=False, compare=False)
    """The reverse of a DropTable (down.sql): says what it cannot bring back."""
    rank: ClassVar[int] = 20

    def reverse(self) -> DropTable:
        return DropTable(self.table)

    @property
    def hazards(self) -> tuple[Hazard, ...]:
        if not self.restores:
            return ()
        message = (
            f"re-creates table {quote_name(self.table.name)} empty: its rows, and the triggers, "
            "views and policies that depended on it, do not come back (restore a backup)"
        )
        return (Hazard(NOT_RESTORED, message),)

    def describe(self) -> str:
        return f"add table {quote_name(self.table.name)}"

    def changes(self) -> set[Key]:
        return _table_provides(self.table)

    def needs_new(self) -> set[Key]:
        # a name freed by a drop in the same plan is taken only after that drop
        return _table_needs(self.table) | _table_names(self.table)


@dataclass(frozen=True)
class DropTable(Operation):
    table: Table
    rank: ClassVar[int] = 90

    def reverse(self) -> CreateTable:
        return CreateTable(self.table, restores=True)

    @property
    def hazards(self) -> tuple[Hazard, ...]:
        return (Hazard(DELETES_DATA, f"drops table {self.table.name} and all its rows"),)

    def describe(self) -> str:
        return f"drop table {quote_name(self.table.name)}"

    def changes(self) -> set[Key]:
        return _table_provides(self.table)

    def needs_old(self) -> set[Key]:
        return _table_needs(self.table)


@dataclass(frozen=True)
class RenameTable(Operation):
    old: Name
    new: Name
    rank: ClassVar[int] = 15

    def reverse(self) -> RenameTable:
        return RenameTable(self.new, self.old)

    def describe(self) -> str:
        return f"rename table {self.old} to {self.new}"

    def changes(self) -> set[Key]:
        return {
            _table(self.old),
            _table(self.new),
            _relname(self.old.schema, self.old.name),
            _relname(self.new.schema, self.new.name),
        }

    def needs_new(self) -> set[Key]:
        return {_schema(self.new.schema)}


# --- columns ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddColumn(Operation):
    table: Name
    column: Column
    restores: bool = field(default=False, compare=False)
    """The reverse of a DropColumn (down.sql): says the values do not come back."""
    rank: ClassVar[int] = 30

    def reverse(self) -> DropColumn:
        return DropColumn(self.table, self.column)

    @property
    def hazards(self) -> tuple[Hazard, ...]:
        c = self.column
        found = []
        if self.restores:
            message = (
                f"re-adds column {self.table}.{c.name}: the values up.sql dropped do not come "
                "back (restore a backup)"
            )
            found.append(Hazard(NOT_RESTORED, message))
        if not c.nullable and c.default is None and c.identity is None:
            found.append(
                Hazard(MAY_FAIL, f"NOT NULL without a default fails if {self.table} has rows")
            )
        return tuple(found)

    def describe(self) -> str:
        return f"add column {self.table}.{self.column.name}"

    def changes(self) -> set[Key]:
        return {_column(self.table, self.column.name, a) for a in ("", "type", "default")}

    def needs_new(self) -> set[Key]:
        return {_table(self.table)} | _type_keys(self.column.type)


@dataclass(frozen=True)
class DropColumn(Operation):
    table: Name
    column: Column
    rank: ClassVar[int] = 80

    def reverse(self) -> AddColumn:
        return AddColumn(self.table, self.column, restores=True)

    @property
    def hazards(self) -> tuple[Hazard, ...]:
        return (Hazard(DELETES_DATA, f"drops column {self.table}.{self.column.name} and its data"),)

    def describe(self) -> str:
        return f"drop column {self.table}.{self.column.name}"

    def changes(self) -> set[Key]:
        return {_column(self.table, self.column.name, a) for a in ("", "type", "default")}

    def needs_old(self) -> set[Key]:
        return {_table(self.table)} | _type_keys(self.column.type)


@dataclass(frozen=True)
class RenameColumn(Operation):
    table: Name
    old: str
    new: str
    rank: ClassVar[int] = 16

    def reverse(self) -> RenameColumn:
        return RenameColumn(self.table, self.new, self.old)

    def describe(self) -> str:
        return f"rename column {self.table}.{self.old} to {self.new}"

    def changes(self) -> set[Key]:
        return {_column(self.table, n, "") for n in (self.old, self.new)}

    def needs_new(self) -> set[Key]:
        return {_table(self.table)}


_INTEGERS = {"smallint": 1, "integer": 2, "bigint": 3}
_INTEGER_WIDTH = {"smallint": 6, "integer": 11, "bigint": 20}
"""Characters of the longest value (`-2147483648`), so integer -> varchar(n) can be lossless."""
_VARCHAR = re.compile(r"character varying(?:\((\d+)\))?")
_NUMERIC = re.compile(r"numeric(?:\((\d+)(?:,(\d+))?\))?")


def _type_change(old: str, new: str) -> tuple[bool, bool]:
    """(rewrites the table, may lose or reject data) for a column type change."""
    old_vc, new_vc = _VARCHAR.fullmatch(old), _VARCHAR.fullmatch(new)
    if (old_vc or old == "text") and (new == "text" or (new_vc and new_vc.group(1) is None)):
        return False, False
    if old_vc and new_vc:
        old_len, new_len = old_vc.group(1), new_vc.group(1)
        return False, old_len is None or int(new_len) < int(old_len)
    if old in _INTEGERS and new in _INTEGERS:
        return True, _INTEGERS[new] < _INTEGERS[old]
    old_num, new_num = _NUMERIC.fullmatch(old), _NUMERIC.fullmatch(new)
    if old_num and new_num:
        if new_num.group(1) is None:
            return False, False
        if old_num.group(1) is None:
            return True, True
        p1, s1 = int(old_num.group(1)), int(old_num.group(2) or 0)
        p2, s2 = int(new_num.group(1)), int(new_num.group(2) or 0)
        return s1 != s2, s2 < s1 or p2 - s2 < p1 - s1
    if old in _INTEGERS and new_num:
        return True, new_num.group(1) is not None
    if old in _INTEGERS and new_vc and new_vc.group(1) is not None:
        return True, int(new_vc.group(1)) < _INTEGER_WIDTH[old]
    if new == "text" or (new_vc and new_vc.group(1) is None):
        return True, False
    return True, True


_FLOATS = {"real", "double precision"}
_TIMES = re.compile(r"(timestamp|time)(?:\((\d+)\))? (with|without) time zone")


def _rounds(old: str, new: str) -> bool:
    """Whether casting `old` to `new` changes a value that does not fit instead of raising:
    numeric scale, floats and numerics to integers, time precision, timestamps to dates."""
    old_num, new_num = _NUMERIC.fullmatch(old), _NUMERIC.fullmatch(new)
    if (old_num or old in _FLOATS) and new_num and new_num.group(1) is not None:
        if old_num and old_num.group(1) is not None:
            return int(new_num.group(2) or 0) < int(old_num.group(2) or 0)
        return True
    if (old_num or old in _FLOATS) and new in _INTEGERS:
        return True
    if old == "double precision" and new == "real":
        return True
    old_time, new_time = _TIMES.fullmatch(old), _TIMES.fullmatch(new)
    if old_time and old_time.group(1) == "timestamp" and new == "date":
        return True
    if old_time and new_time and old_time.group(1) == new_time.group(1):
        return int(new_time.group(2) or 6) < int(old_time.group(2) or 6)
    return False


# Integers and timestamps have no cast between them: integers are read as epoch milliseconds
# (as pg-schema-diff does), and written back the same way, so down undoes up.
_TIMESTAMP, _TIMESTAMPTZ = "timestamp without time zone", "timestamp with time zone"
_TO_TIMESTAMP = {
    _TIMESTAMP: "to_timestamp({column} / 1000.0) AT TIME ZONE 'UTC'",
    _TIMESTAMPTZ: "to_timestamp({column} / 1000.0)",
}
_FROM_TIMESTAMP = "round(extract(epoch FROM {column}) * 1000)::{type}"
_EPOCH_CONVERSIONS = {(i, t): sql for i in _INTEGERS for t, sql in _TO_TIMESTAMP.items()} | {
    (t, i): _FROM_TIMESTAMP for i in _INTEGERS for t in _TO_TIMESTAMP
}


@dataclass(frozen=True)
class AlterColumnType(Operation):
    """`ALTER COLUMN … TYPE … USING`, with the default dropped and set around it."""

    table: Name
    column: str
    old_type: str
    new_type: str
    old_default: str | None = None
    new_default: str | None = None
    via_text: bool = False
    """Cast through text (needed to and from enums, which have no direct casts)."""
    rank: ClassVar[int] = 40

    def reverse(self) -> AlterColumnType:
        return AlterColumnType(
            self.table,
            self.column,
            self.new_type,
            self.old_type,
            self.new_default,
            self.old_default,
            self.via_text,
        )

    @property
    def using(self) -> str:
        """The USING expression, "" for none. Never a cast that cuts or rounds silently: to
        varchar(n) the value is left to the assignment cast (PostgreSQL raises "value too
        long"); where even that would round, a checked cast raises on the first changed
        value, naming it."""
        column = quote_ident(self.column)
        epoch = _EPOCH_CONVERSIONS.get((self.old_type, self.new_type))
        if epoch is not None:
            return epoch.format(column=column, type=self.new_type)
        bounded = _VARCHAR.fullmatch(self.new_type)
        if bounded and bounded.group(1) is not None:
            return f"{column}::text" if self.via_text else ""
        array = "[]" if self.new_type.endswith("[]") else ""
        cast = f"::text{array}" if self.via_text else ""
        converted = f"{column}{cast}::{self.new_type}"
        if self.via_text or not _rounds(self.old_type, self.new_type):
            return converted
        where = quote_literal(f"{self.table}.{self.column} would change: ")
        return (
            f"CASE WHEN {converted}::{self.old_type} IS DISTINCT FROM {column} "
            f"THEN ({where} || {column}::text)::{self.new_type} ELSE {converted} END"
        )

    @property
    def hazards(self) -> tuple[Hazard, ...]:
        rewrites, loses = _type_change(self.old_type, self.new_type)
        label = _VARCHAR.fullmatch(self.new_type)
        if self.via_text and (self.new_type == "text" or (label and int(label[1] or 63) >= 63)):
            loses = False  # enum labels are at most 63 bytes
        if (self.old_type, self.new_type) in _EPOCH_CONVERSIONS:
            loses = False  # epoch milliseconds and timestamps hold the same instants
        where = f"{self.table}.{self.column}"
        hazards = []
        if (self.old_type, self.new_type) in _EPOCH_CONVERSIONS:
            message = f"{where} is converted reading integers as epoch milliseconds"
            hazards.append(Hazard(MAY_FAIL, message))
        if loses:
            hazards.append(
                Hazard(
                    DELETES_DATA,
                    f"{where} {self.old_type} -> {self.new_type} may truncate or reject values",
                )
            )
        if rewrites:
            hazards.append(Hazard(REWRITES_TABLE, f"changing the type of {where} rewrites it"))
        return tuple(hazards)

    def describe(self) -> str:
        return f"change type of {self.table}.{self.column} to {self.new_type}"

    def changes(self) -> set[Key]:
        return {_column(self.table, self.column, a) for a in ("type", "default")}

    def needs_old(self) -> set[Key]:
        return _type_keys(self.old_type)

    def needs_new(self) -> set[Key]:
        return {_column(self.table, self.column)} | _type_keys(self.new_type)


@dataclass(frozen=True)
class AlterColumnNullability(Operation):
    table: Name
    column: str
    nullable: bool
    online: bool = False
    """SET NOT NULL through a validated NOT VALID check: no scan under ACCESS EXCLUSIVE."""
    rank: ClassVar[int] = 42

    def reverse(self) -> AlterColumnNullability:
        return AlterColumnNullability(self.table, self.column, not self.nullable)

    @property
    def check_name(self) -> str:
        """The temporary check an online SET NOT NULL validates, then drops."""
        return make_object_name(self.table.name, self.column, "not_null_check")

    @property
    def hazards(self) -> tuple[Hazard, ...]:
        if self.nullable:
            return ()
        where = f"{self.table}.{self.column}"
        if self.online:
            return (Hazard(MAY_FAIL, f"SET NOT NULL fails if {where} holds NULLs"),)
        return (Hazard(MAY_FAIL, f"SET NOT NULL fails if {where} holds NULLs; scans the table"),)

    def describe(self) -> str:
        state = "nullable" if self.nullable else "NOT NULL"
        return f"make {self.table}.{self.column} {state}"

    def changes(self) -> set[Key]:
        return {_column(self.table, self.column, "nullable")}

    def needs_new(self) -> set[Key]:
        keys = {_column(self.table, self.column)}
        if self.nullable:  # an identity column cannot drop NOT NULL
            keys.add(_column(self.table, self.column, "identity"))
        return keys


@dataclass(frozen=True)
class AlterColumnDefault(Operation):
    table: Name
    column: str
    old: str | None
    new: str | None
    rank: ClassVar[int] = 43

    def reverse(self) -> AlterColumnDefault:
        return AlterColumnDefault(self.table, self.column, self.new, self.old)

    def describe(self) -> str:
        where = f"{self.table}.{self.column}"
        return f"drop default of {where}" if self.new is None else f"set default of {where}"

    def changes(self) -> set[Key]:
        return {_column(self.table, self.column, "default")}

    def needs_new(self) -> set[Key]:
        keys = {_column(self.table, self.column), _column(self.table, self.column, "type")}
        if self.new is not None:  # a column cannot have both a default and an identity
            keys.add(_column(self.table, self.column, "identity"))
        return keys


SERIAL_TYPES = {"smallint": "smallserial", "integer": "serial", "bigint": "bigserial"}
"""How CREATE TABLE spells a serial column of each integer type."""


def serial_sequence(table: Name, column: str) -> Name:
    """The name PostgreSQL gives a serial column's sequence."""
    return Name(table.schema, make_object_name(table.name, column, "seq"))


def nextval_default(sequence: Name) -> str:
    """A `nextval` default as `pg_get_expr` prints it with search_path = pg_catalog."""
    return f"nextval({quote_literal(quote_name(sequence))}::regclass)"


@dataclass(frozen=True)
class AlterColumnIdentity(Operation):
    """Switch between no auto-increment, identity (by default / always) and serial."""

    table: Name
    column: str
    type: str
    """The column's type while it is serial (the sequence's type)."""
    old: str | None
    new: str | None
    adopt: bool = False
    """Serial <-> a plain `nextval` default on the same sequence: only its ownership changes."""
    rank: ClassVar[int] = 44

    def reverse(self) -> AlterColumnIdentity:
        return AlterColumnIdentity(
            self.table, self.column, self.type, self.new, self.old, self.adopt
        )

    @property
    def sequence(self) -> Name:
        return serial_sequence(self.table, self.column)

    @property
    def both_identity(self) -> bool:
        identities = (IDENTITY_BY_DEFAULT, IDENTITY_ALWAYS)
        return self.old in identities and self.new in identities

    @property
    def hazards(self) -> tuple[Hazard, ...]:
        if self.old != SERIAL or self.adopt:
            return ()  # an identity's sequence goes with it, but no rows do
        where = f"{self.table}.{self.column}"
        return (Hazard(DELETES_DATA, f"drops the sequence of {where} and its position"),)

    def describe(self) -> str:
        kind = {None: "no auto-increment", SERIAL: "serial"}.get(self.new, f"identity {self.new}")
        return f"make {self.table}.{self.column} {kind}"

    def changes(self) -> set[Key]:
        return {_column(self.table, self.column, "identity")}

    def needs_old(self) -> set[Key]:
        # removed before a type change, so the sequence and the column never disagree
        return {_column(self.table, self.column, "type")} if self.new is None else set()

    def needs_new(self) -> set[Key]:
        keys = {_column(self.table, self.column)}
        if self.new is not None:
            keys |= {_column(self.table, self.column, a) for a in ("type", "default", "nullable")}
        return keys


# --- constraints and indexes -----------------------------------------------------------------


def _constraint_keys(table: Name, constraint: PrimaryKey | Unique | Check) -> set[Key]:
    keys = {_relname(table.schema, constraint.name or "")}
    if not isinstance(constraint, Check):
        keys.add(_unique_key(table, constraint.columns))
    return keys


def _constraint_needs(table: Name, constraint: PrimaryKey | Unique | Check, columns) -> set[Key]:
    if isinstance(constraint, Check):
        cols = tuple(expression_columns(constraint.expression, columns))
        return {_table(table)} | _constraint_columns(table, cols)
    # a primary key column cannot drop NOT NULL: the key goes first and comes back last
    aspects = ("", "type", "nullable") if isinstance(constraint, PrimaryKey) else ("", "type")
    return {_table(table)} | _constraint_columns(table, constraint.columns, aspects)


def _describe_constraint(constraint: PrimaryKey | Unique | Check) -> str:
    kind = {PrimaryKey: "primary key", Unique: "unique constraint", Check: "check"}
    return f"{kind[type(constraint)]} {constraint.name}"


@dataclass(frozen=True)
class AddConstraint(Operation):
    """A primary key, unique or check constraint (always named)."""

    table: Name
    constraint: PrimaryKey | Unique | Check
    table_columns: tuple[str, ...] = ()
    """The table's column names, to see which columns a check mentions."""
    online: bool = False
    """A check added NOT VALID, then validated (SHARE UPDATE EXCLUSIVE while it scans)."""
    rank: ClassVar[int] = 60

    def reverse(self) -> DropConstraint:
        return DropConstraint(self.table, self.constraint, self.table_columns)

    @property
    def hazards(self) -> tuple[Hazard, ...]:
        what = _describe_constraint(self.constraint)
        hazards = [Hazard(MAY_FAIL, f"{what} fails if existing rows violate it")]
        if not isinstance(self.constraint, Check):
            hazards.append(Hazard(BLOCKS_WRITES, f"{what} builds an index, blocking writes"))
        return tuple(hazards)

    def describe(self) -> str:
        return f"add {_describe_constraint(self.constraint)} on {self.table}"

    def changes(self) -> set[Key]:
        return _constraint_keys(self.table, self.constraint)

    def needs_new(self) -> set[Key]:
        needs = _constraint_needs(self.table, self.constraint, self.table_columns)
        return needs | {_relname(self.table.schema, self.constraint.name or "")}


@dataclass(frozen=True)
class DropConstraint(Operation):
    table: Name
    constraint: PrimaryKey | Unique | Check
    table_columns: tuple[str, ...] = ()
    rank: ClassVar[int] = 5

    def reverse(self) -> AddConstraint:
        return AddConstraint(self.table, self.constraint, self.table_columns)

    def describe(self) -> str:
        return f"drop {_describe_constraint(self.constraint)} on {self.table}"

    def changes(self) -> set[Key]:
        return _constraint_keys(self.table, self.constraint)

    def needs_old(self) -> set[Key]:
        return _constraint_needs(self.table, self.constraint, self.table_columns)


@dataclass(frozen=True)
class AttachUniqueIndex(Operation):
    """A unique constraint made from the unique index of the same name built just before it
    (`db run --online`): the index already holds the proof, so this only updates the catalog."""

    table: Name
    constraint: Unique
    table_columns: tuple[str, ...] = ()
    rank: ClassVar[int] = 61

    def reverse(self) -> DropConstraint:
        return DropConstraint(self.table, self.constraint, self.table_columns)

    def describe(self) -> str:
        return f"add {_describe_constraint(self.constraint)} on {self.table} using its index"

    def changes(self) -> set[Key]:
        return {_unique_key(self.table, self.constraint.columns)}

    def needs_new(self) -> set[Key]:
        needs = _constraint_needs(self.table, self.constraint, self.table_columns)
        return needs | {_relname(self.table.schema, self.constraint.name or "")}


def _fk_needs(table: Name, fk: ForeignKey) -> set[Key]:
    return (
        {_table(table), _table(fk.ref_table), _unique_key(fk.ref_table, fk.ref_columns)}
        | _constraint_columns(table, fk.columns)
        | _constraint_columns(fk.ref_table, fk.ref_columns)
    )


@dataclass(frozen=True)
class AddForeignKey(Operation):
    table: Name
    foreign_key: ForeignKey
    new_table: bool = False
    """The table is created (or, in down, re-created) by the same plan, so it has no rows."""
    online: bool = False
    """Added NOT VALID, then validated: writes continue while existing rows are checked."""
    rank: ClassVar[int] = 70

    def reverse(self) -> DropForeignKey:
        return DropForeignKey(self.table, self.foreign_key, self.new_table)

    @property
    def hazards(self) -> tuple[Hazard, ...]:
        if self.new_table:
            return ()
        return (
            Hazard(
                MAY_FAIL, f"foreign key {self.foreign_key.name} fails if existing rows break it"
            ),
        )

    def describe(self) -> str:
        fk = self.foreign_key
        return f"add foreign key {fk.name} on {self.table} -> {fk.ref_table}"

    def changes(self) -> set[Key]:
        return {_relname(self.table.schema, self.foreign_key.name or "")}

    def needs_new(self) -> set[Key]:
        return _fk_needs(self.table, self.foreign_key) | self.changes()


@dataclass(frozen=True)
class DropForeignKey(Operation):
    table: Name
    foreign_key: ForeignKey
    new_table: bool = False
    """The table is dropped by the same plan (so down adds the key to an empty table)."""
    rank: ClassVar[int] = 1

    def reverse(self) -> AddForeignKey:
        return AddForeignKey(self.table, self.foreign_key, self.new_table)

    def describe(self) -> str:
        return f"drop foreign key {self.foreign_key.name} on {self.table}"

    def changes(self) -> set[Key]:
        return {_relname(self.table.schema, self.foreign_key.name or "")}

    def needs_old(self) -> set[Key]:
        return _fk_needs(self.table, self.foreign_key)


@dataclass(frozen=True)
class RenameConstraint(Operation):
    """Rename a constraint (`ALTER TABLE … RENAME CONSTRAINT`) or an index (`ALTER INDEX`)."""

    table: Name
    old: str
    new: str
    is_index: bool = False
    rank: ClassVar[int] = 17

    def reverse(self) -> RenameConstraint:
        return RenameConstraint(self.table, self.new, self.old, self.is_index)

    def describe(self) -> str:
        kind = "index" if self.is_index else "constraint"
        return f"rename {kind} {self.old} on {self.table} to {self.new}"

    def changes(self) -> set[Key]:
        return {_relname(self.table.schema, n) for n in (self.old, self.new)}

    def needs_new(self) -> set[Key]:
        return {_table(self.table)}


def _index_keys(table: Name, index: Index) -> set[Key]:
    keys = {_relname(table.schema, index.name or "")}
    if index.unique and not index.where:
        keys.add(_unique_key(table, index.keys))
    return keys


def _index_needs(table: Name, index: Index, columns: tuple[str, ...]) -> set[Key]:
    text = " ".join((*index.keys, index.where or ""))
    return {_table(table)} | _constraint_columns(table, tuple(expression_columns(text, columns)))


@dataclass(frozen=True)
class CreateIndex(Operation):
    table: Name
    index: Index
    table_columns: tuple[str, ...] = ()
    concurrently: bool = False
    """CREATE INDEX CONCURRENTLY: writes continue, but it cannot run inside a transaction."""
    rank: ClassVar[int] = 62

    def reverse(self) -> DropIndex:
        return DropIndex(self.table, self.index, self.table_columns, self.concurrently)

    @property
    def hazards(self) -> tuple[Hazard, ...]:
        if self.concurrently:
            message = f"a failed concurrent build leaves index {self.index.name} invalid; drop it"
            hazards = [Hazard(MAY_FAIL, message)]
        else:
            message = f"CREATE INDEX {self.index.name} blocks writes to {self.table}"
            hazards = [Hazard(BLOCKS_WRITES, message)]
        if self.index.unique:
            hazards.insert(
                0, Hazard(MAY_FAIL, f"unique index {self.index.name} fails on duplicates")
            )
        return tuple(hazards)

    def describe(self) -> str:
        return f"add index {self.index.name} on {self.table}"

    def changes(self) -> set[Key]:
        return _index_keys(self.table, self.index)

    def needs_new(self) -> set[Key]:
        return _index_needs(self.table, self.index, self.table_columns) | {
            _relname(self.table.schema, self.index.name or "")
        }


@dataclass(frozen=True)
class DropIndex(Operation):
    table: Name
    index: Index
    table_columns: tuple[str, ...] = ()
    concurrently: bool = False
    rank: ClassVar[int] = 6

    def reverse(self) -> CreateIndex:
        return CreateIndex(self.table, self.index, self.table_columns, self.concurrently)

    def describe(self) -> str:
        return f"drop index {self.index.name} on {self.table}"

    def changes(self) -> set[Key]:
        return _index_keys(self.table, self.index)

    def needs_old(self) -> set[Key]:
        return _index_needs(self.table, self.index, self.table_columns)


# --- comments --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommentOn(Operation):
    """`COMMENT ON TABLE|COLUMN|INDEX|TYPE … IS …`; a None comment is `IS NULL`."""

    kind: str
    target: Name
    column: str | None
    old: str | None
    new: str | None
    rank: ClassVar[int] = 75

    def reverse(self) -> CommentOn:
        return CommentOn(self.kind, self.target, self.column, self.new, self.old)

    @property
    def object_sql(self) -> str:
        if self.kind == "column":
            return f"COLUMN {quote_name(self.target)}.{quote_ident(self.column or '')}"
        return f"{self.kind.upper()} {quote_name(self.target)}"

    def describe(self) -> str:
        where = f"{self.target}.{self.column}" if self.column else str(self.target)
        verb = "drop" if self.new is None else "set"
        return f"{verb} comment on {self.kind} {where}"

    def changes(self) -> set[Key]:
        return {("comment", self.kind, self.target, self.column)}

    def needs_new(self) -> set[Key]:
        if self.kind == "index":
            return {_relname(self.target.schema, self.target.name)}
        if self.kind == "type":
            return {_enum(self.target)}
        if self.kind == "column":
            return {_column(self.target, self.column or "")}
        return {_table(self.target)}


# --- ordering --------------------------------------------------------------------------------


class OrderingError(NselfError):
    """The changes depend on each other in a cycle; split them over two migrations."""


def order(
    ops: Sequence[Operation], rank: Callable[[Operation], int] | None = None
) -> list[Operation]:
    """Topologically sort operations by their declared dependencies; ties by (rank, position).

    `rank` overrides the classes' ranks (online plans pull index work to the edges)."""
    rank_of = rank or (lambda op: op.rank)
    changers: dict[Key, list[int]] = defaultdict(list)
    for i, op in enumerate(ops):
        for key in op.changes():
            changers[key].append(i)
    graph: dict[int, set[int]] = {i: set() for i in range(len(ops))}
    for i, op in enumerate(ops):
        for key in op.needs_new():
            graph[i].update(j for j in changers.get(key, ()) if j != i)
        for key in op.needs_old():
            for j in changers.get(key, ()):
                if j != i:
                    graph[j].add(i)
    sorter = graphlib.TopologicalSorter(graph)
    try:
        sorter.prepare()
    except graphlib.CycleError as error:
        cycle = " -> ".join(ops[i].describe() for i in error.args[1])
        raise OrderingError(
            f"cannot order these changes, they depend on each other: {cycle}"
        ) from None
    heap: list[tuple[int, int]] = []
    result: list[Operation] = []
    while sorter.is_active():
        for i in sorter.get_ready():
            heapq.heappush(heap, (rank_of(ops[i]), i))
        _, i = heapq.heappop(heap)
        result.append(ops[i])
        sorter.done(i)
    return result


def reverse_plan(ops: Sequence[Operation]) -> list[Operation]:
    """The plan that undoes `ops`: each operation reversed, last first.

    Undoing in reverse order is always valid: every reversed operation meets the database in
    the state its forward twin left it (re-sorting could not tell creation from removal)."""
    undone: list[Operation] = []
    for op in reversed(ops):
        reverse = op.reverse()
        undone.extend(reverse if isinstance(reverse, tuple) else (reverse,))
    return undone


# --- views that read what a plan changes -----------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """Privileges one role (None: PUBLIC) holds on a view, as `aclexplode` lists them."""

    grantee: str | None
    privileges: tuple[str, ...]
    grantable: bool = False
    column: str | None = None
    """A column privilege (`GRANT SELECT (name) …`) rather than one on the whole view."""


@dataclass(frozen=True)
class View:
    """A view or materialized view as the live catalog defines it, kept so a plan can drop it
    before changing what it reads and re-create it exactly afterwards (DBML cannot describe it).
    """

    name: Name
    materialized: bool
    definition: str
    """`pg_get_viewdef(oid, true)` read with search_path = pg_catalog, without the `;`."""
    owner: str
    set_owner: bool
    """The owner is not the role that planned the migration, so `ALTER … OWNER TO` is needed."""
    options: tuple[tuple[str, str], ...] = ()
    """reloptions: `security_barrier`, `check_option`, `security_invoker`, storage parameters."""
    comment: str | None = None
    column_comments: tuple[tuple[str, str], ...] = ()
    column_defaults: tuple[tuple[str, str], ...] = ()
    grants: tuple[Grant, ...] | None = None
    """None: the default privileges (`relacl` is NULL)."""
    column_grants: tuple[Grant, ...] = ()
    indexes: tuple[tuple[str, str, str | None], ...] = ()
    """A materialized view's indexes: (name, `pg_get_indexdef`, comment)."""
    populated: bool = True
    reads: tuple[tuple[Name, str], ...] = ()
    """Columns of tables and views its query reads."""
    views: tuple[Name, ...] = ()
    """Views and materialized views its query reads."""
    enums: tuple[Name, ...] = ()
    """Enums its query or its columns use."""

    @property
    def kind(self) -> str:
        return "materialized view" if self.materialized else "view"

    def keys(self) -> set[Key]:
        """What must stay as it was while the view exists: it is dropped before these change
        and re-created after."""
        keys = {_column(t, c, "type") for t, c in self.reads} | {_enum(e) for e in self.enums}
        return keys | {("view", v) for v in self.views}


@dataclass(frozen=True)
class DropView(Operation):
    """Drop a view before a change PostgreSQL refuses while it exists; `CreateView` restores it."""

    view: View
    rank: ClassVar[int] = 39
    """Just before the column changes (rank 40): the view is gone as briefly as possible."""

    def reverse(self) -> CreateView:
        return CreateView(self.view)

    def describe(self) -> str:
        return f"drop {self.view.kind} {self.view.name} (re-created after the change)"

    def changes(self) -> set[Key]:
        return {("view", self.view.name)}

    def needs_old(self) -> set[Key]:
        return self.view.keys()


@dataclass(frozen=True)
class CreateView(Operation):
    """Re-create a view exactly as it was: definition, options, owner, comments, grants."""

    view: View
    rank: ClassVar[int] = 41

    def reverse(self) -> DropView:
        return DropView(self.view)

    @property
    def hazards(self) -> tuple[Hazard, ...]:
        name = self.view.name
        hazards = [
            Hazard(
                MAY_FAIL,
                f"{self.view.kind} {name} is re-created from its saved definition; "
                "fails if that no longer fits the changed column types",
            )
        ]
        if self.view.materialized and self.view.populated:
            message = f"materialized view {name} is re-created WITH DATA: its query runs again"
            hazards.append(Hazard(REWRITES_TABLE, message))
        return tuple(hazards)

    def describe(self) -> str:
        return f"re-create {self.view.kind} {self.view.name}"

    def changes(self) -> set[Key]:
        return {("view", self.view.name)}

    def needs_new(self) -> set[Key]:
        return self.view.keys() | {("view", self.view.name)}
