"""Columns: added, dropped, renamed, and altered (type, nullability, default, identity)."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import ClassVar

from nself_py.model import (
    IDENTITY_ALWAYS,
    IDENTITY_BY_DEFAULT,
    SERIAL,
    Column,
    Name,
)
from nself_py.plan.operations.base import (
    DELETES_DATA,
    DROP,
    MAY_FAIL,
    NOT_RESTORED,
    RETYPE,
    REWRITES_TABLE,
    VALIDATE,
    DataLoss,
    Hazard,
    Key,
    LiveCount,
    Operation,
    PlainOperation,
    Roots,
    _column,
    _table,
    _type_keys,
    counts_nothing,
    in_database_only,
    in_source_only,
    in_transaction,
    loses_nothing,
    no_roots,
    no_scan,
    same_online,
)
from nself_py.sql.naming import make_object_name
from nself_py.sql.quote import quote_ident, quote_literal, quote_name


@dataclass(frozen=True)
class AddColumn(Operation):
    table: Name
    column: Column
    restores: bool = field(default=False, compare=False)
    """The reverse of a DropColumn (down.sql): says the values do not come back."""
    rank: ClassVar[int] = 30

    noun: ClassVar[str] = "column"
    verb: ClassVar[str] = "added"
    online_form = same_online
    online_part = in_transaction
    scan_lock = no_scan
    data_loss = loses_nothing
    roots = no_roots

    def subject(self) -> str:
        return self.table.name

    def drift(self, source: str) -> str:
        return in_source_only(f"column {self.table}.{self.column.name}", source)

    def live_counts(self, live: Collection[Name]) -> tuple[LiveCount, ...]:
        if self.table not in live or MAY_FAIL not in {h.kind for h in self.hazards}:
            return ()
        return (LiveCount(self.table, "true", None, "the table has {n} row(s)"),)

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

    noun: ClassVar[str] = "column"
    verb: ClassVar[str] = "dropped"
    online_form = same_online
    online_part = in_transaction
    live_counts = counts_nothing
    scan_lock = no_scan

    def subject(self) -> str:
        return self.table.name

    def drift(self, source: str) -> str:
        return in_database_only(f"column {self.table}.{self.column.name}", source)

    def data_loss(self) -> DataLoss | None:
        return DataLoss(self.table, "DROP_COLUMN", self.column.name)

    def roots(self) -> Roots:
        return Roots(columns=((DROP, self.table, self.column.name),))

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
class RenameColumn(PlainOperation):
    table: Name
    old: str
    new: str
    rank: ClassVar[int] = 16

    noun: ClassVar[str] = "column"
    verb: ClassVar[str] = "renamed"

    def subject(self) -> str:
        return self.table.name

    def drift(self, source: str) -> str:
        return f"the database differs from {source}: {self.describe()}"

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

    noun: ClassVar[str] = "column"
    verb: ClassVar[str] = "altered"
    online_form = same_online
    online_part = in_transaction
    live_counts = counts_nothing

    def subject(self) -> str:
        return self.table.name

    def drift(self, source: str) -> str:
        return (
            f"column {self.table}.{self.column} is {self.old_type} in the database but "
            f"{self.new_type} in {source}"
        )

    def scan_lock(self) -> str | None:
        kinds = {h.kind for h in self.hazards}
        if DELETES_DATA in kinds and REWRITES_TABLE not in kinds:
            return "ACCESS EXCLUSIVE"  # no rewrite, but every value is checked
        return None

    def data_loss(self) -> DataLoss | None:
        if DELETES_DATA not in {h.kind for h in self.hazards}:
            return None
        return DataLoss(self.table, "ALTER_TYPE", self.column, self.new_type, self.using)

    def roots(self) -> Roots:
        return Roots(columns=((RETYPE, self.table, self.column),))

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

    noun: ClassVar[str] = "column"
    verb: ClassVar[str] = "altered"
    data_loss = loses_nothing
    roots = no_roots

    def subject(self) -> str:
        return self.table.name

    def drift(self, source: str) -> str:
        spelled = {True: "nullable", False: "NOT NULL"}
        return (
            f"column {self.table}.{self.column} is {spelled[not self.nullable]} in the database "
            f"but {spelled[self.nullable]} in {source}"
        )

    def online_form(self) -> tuple[Operation, ...]:
        return (self,) if self.nullable else (replace(self, online=True),)

    def online_part(self) -> str | None:
        return VALIDATE if self.online else None

    def live_counts(self, live: Collection[Name]) -> tuple[LiveCount, ...]:
        if self.nullable or self.table not in live:
            return ()
        condition = f"{quote_ident(self.column)} IS NULL"
        return (LiveCount(self.table, condition, None, "{n} row(s) violate it"),)

    def scan_lock(self) -> str | None:
        return None if self.nullable or self.online else "ACCESS EXCLUSIVE"

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
class AlterColumnDefault(PlainOperation):
    table: Name
    column: str
    old: str | None
    new: str | None
    rank: ClassVar[int] = 43

    noun: ClassVar[str] = "column"
    verb: ClassVar[str] = "altered"

    def subject(self) -> str:
        return self.table.name

    def drift(self, source: str) -> str:
        return (
            f"column {self.table}.{self.column} has default {self.old or 'none'} in the database "
            f"but {self.new or 'none'} in {source}"
        )

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
class AlterColumnIdentity(PlainOperation):
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

    noun: ClassVar[str] = "column"
    verb: ClassVar[str] = "altered"

    def subject(self) -> str:
        return self.table.name

    def drift(self, source: str) -> str:
        return f"the database differs from {source}: {self.describe()}"

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
