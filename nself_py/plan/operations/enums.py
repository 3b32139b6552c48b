"""Enums: created, dropped, extended in place, or rebuilt with other values."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import ClassVar

from nself_py.model import (
    Enum,
    Name,
)
from nself_py.plan.operations.base import (
    DELETES_DATA,
    DROP,
    RETYPE,
    REWRITES_TABLE,
    Hazard,
    Key,
    LiveCount,
    Operation,
    PlainOperation,
    Roots,
    _column,
    _enum,
    _schema,
    counts_nothing,
    in_database_only,
    in_source_only,
    in_transaction,
    loses_nothing,
    no_scan,
    same_online,
)
from nself_py.sql.naming import make_object_name
from nself_py.sql.quote import quote_ident, quote_literal


@dataclass(frozen=True)
class CreateEnum(PlainOperation):
    enum: Enum
    rank: ClassVar[int] = 12

    noun: ClassVar[str] = "enum"
    verb: ClassVar[str] = "added"

    def subject(self) -> str:
        return self.enum.name.name

    def drift(self, source: str) -> str:
        return in_source_only(f"enum {self.enum.name}", source)

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

    noun: ClassVar[str] = "enum"
    verb: ClassVar[str] = "dropped"
    online_form = same_online
    online_part = in_transaction
    live_counts = counts_nothing
    scan_lock = no_scan
    data_loss = loses_nothing

    def subject(self) -> str:
        return self.enum.name.name

    def drift(self, source: str) -> str:
        return in_database_only(f"enum {self.enum.name}", source)

    def roots(self) -> Roots:
        return Roots(types=((DROP, self.enum.name),))

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

    noun: ClassVar[str] = "enum"
    verb: ClassVar[str] = "altered"
    online_form = same_online
    online_part = in_transaction
    live_counts = counts_nothing
    scan_lock = no_scan
    data_loss = loses_nothing

    def subject(self) -> str:
        return self.enum.name

    def drift(self, source: str) -> str:
        return (
            f"enum {self.enum} has values ({', '.join(self.old_values)}) in the database but "
            f"({', '.join((*self.old_values, self.value))}) in {source}"
        )

    def roots(self) -> Roots:
        # AddEnumValue's down.sql rebuilds the enum: a view on its columns blocks that too
        columns = tuple((RETYPE, c.table, c.column) for c in self.columns)
        return Roots(columns=columns, types=((RETYPE, self.enum),))

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

    noun: ClassVar[str] = "enum"
    verb: ClassVar[str] = "altered"
    online_form = same_online
    online_part = in_transaction
    scan_lock = no_scan
    data_loss = loses_nothing

    def subject(self) -> str:
        return self.enum.name

    def drift(self, source: str) -> str:
        return (
            f"enum {self.enum} has values ({', '.join(self.old_values)}) in the database but "
            f"({', '.join(self.new_values)}) in {source}"
        )

    def roots(self) -> Roots:
        # AddEnumValue's down.sql rebuilds the enum: a view on its columns blocks that too
        columns = tuple((RETYPE, c.table, c.column) for c in self.columns)
        return Roots(columns=columns, types=((RETYPE, self.enum),))

    def live_counts(self, live: Collection[Name]) -> tuple[LiveCount, ...]:
        """Rows of each live column still holding a value the rebuilt enum drops."""
        removed = [v for v in self.old_values if v not in self.new_values]
        if not removed:
            return ()
        values = ", ".join(quote_literal(v) for v in removed)
        found = []
        for c in self.columns:
            if c.table not in live:
                continue
            column = quote_ident(c.column)
            condition = (
                f"{column}::text[] && ARRAY[{values}]"
                if c.array
                else f"{column}::text IN ({values})"
            )
            words = f"{{n}} row(s) of {c.table}.{c.column} hold {values}"
            found.append(LiveCount(c.table, condition, None, words, DELETES_DATA))
        return tuple(found)

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
