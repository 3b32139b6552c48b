"""Constraints: primary keys, uniques, checks and foreign keys, added, dropped, renamed."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import ClassVar

from nself_py.model import (
    Check,
    ForeignKey,
    Index,
    Name,
    PrimaryKey,
    Unique,
)
from nself_py.plan.operations.base import (
    BLOCKS_WRITES,
    INDEXES,
    MAY_FAIL,
    VALIDATE,
    Hazard,
    Key,
    LiveCount,
    Operation,
    PlainOperation,
    _constraint_columns,
    _relname,
    _table,
    _unique_key,
    all_not_null,
    counts_nothing,
    duplicate_groups,
    in_database_only,
    in_source_only,
    loses_nothing,
    no_roots,
    no_scan,
    same_online,
)
from nself_py.plan.operations.indexes import CreateIndex
from nself_py.sql.naming import expression_columns
from nself_py.sql.quote import quote_ident, quote_name


def _constraint_keys(table: Name, constraint: PrimaryKey | Unique | Check) -> set[Key]:
    keys = {_relname(table.schema, constraint.name or "")}
    if not isinstance(constraint, Check):
        keys.add(_unique_key(table, constraint.columns))
    return keys


def _constraint_needs(
    table: Name, constraint: PrimaryKey | Unique | Check, columns: Collection[str]
) -> set[Key]:
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

    noun: ClassVar[str] = "constraint"
    verb: ClassVar[str] = "added"
    data_loss = loses_nothing
    roots = no_roots

    def subject(self) -> str:
        return self.table.name

    def drift(self, source: str) -> str:
        return in_source_only(f"{_describe_constraint(self.constraint)} on {self.table}", source)

    def online_form(self) -> tuple[Operation, ...]:
        if isinstance(self.constraint, Check):
            return (replace(self, online=True),)
        if isinstance(self.constraint, Unique):
            keys = tuple(quote_ident(c) for c in self.constraint.columns)
            index = Index(keys, unique=True, name=self.constraint.name)
            return (
                CreateIndex(self.table, index, self.table_columns, concurrently=True),
                AttachUniqueIndex(self.table, self.constraint, self.table_columns),
            )
        return (self,)

    def online_part(self) -> str | None:
        return VALIDATE if self.online else None

    def live_counts(self, live: Collection[Name]) -> tuple[LiveCount, ...]:
        if self.table not in live:
            return ()
        name, constraint = self.table, self.constraint
        if isinstance(constraint, Check):
            condition = f"NOT ({constraint.expression})"
            return (LiveCount(name, condition, None, "{n} row(s) violate it"),)
        found = []
        if isinstance(constraint, PrimaryKey):
            nulls = " OR ".join(f"{quote_ident(c)} IS NULL" for c in constraint.columns)
            found.append(LiveCount(name, nulls, None, "{n} row(s) with NULL in the key"))
        keys = [quote_ident(c) for c in constraint.columns]
        query = duplicate_groups(name, keys, None, all_not_null(constraint.columns))
        found.append(LiveCount(name, None, query, "{n} duplicate group(s)"))
        return tuple(found)

    def scan_lock(self) -> str | None:
        if isinstance(self.constraint, Check) and not self.online:
            return "ACCESS EXCLUSIVE"
        return None

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
class DropConstraint(PlainOperation):
    table: Name
    constraint: PrimaryKey | Unique | Check
    table_columns: tuple[str, ...] = ()
    rank: ClassVar[int] = 5

    noun: ClassVar[str] = "constraint"
    verb: ClassVar[str] = "dropped"

    def subject(self) -> str:
        return self.table.name

    def drift(self, source: str) -> str:
        return in_database_only(f"{_describe_constraint(self.constraint)} on {self.table}", source)

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

    noun: ClassVar[str] = "constraint"
    verb: ClassVar[str] = "added"
    live_counts = counts_nothing
    scan_lock = no_scan
    data_loss = loses_nothing
    roots = no_roots
    online_form = same_online

    def subject(self) -> str:
        return self.table.name

    def drift(self, source: str) -> str:
        what = f"{_describe_constraint(self.constraint)} on {self.table} using its index"
        return in_source_only(what, source)

    def online_part(self) -> str | None:
        return INDEXES  # with the builds it attaches

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

    noun: ClassVar[str] = "foreign key"
    verb: ClassVar[str] = "added"
    data_loss = loses_nothing
    roots = no_roots

    def subject(self) -> str:
        return self.table.name

    def drift(self, source: str) -> str:
        fk = self.foreign_key
        return in_source_only(f"foreign key {fk.name} on {self.table} -> {fk.ref_table}", source)

    def online_form(self) -> tuple[Operation, ...]:
        return (self,) if self.new_table else (replace(self, online=True),)

    def online_part(self) -> str | None:
        return VALIDATE if self.online else None

    def live_counts(self, live: Collection[Name]) -> tuple[LiveCount, ...]:
        fk = self.foreign_key
        if self.new_table or self.table not in live or fk.ref_table not in live:
            return ()
        pairs = zip(fk.columns, fk.ref_columns, strict=True)
        match = " AND ".join(f"r.{quote_ident(b)} = c.{quote_ident(a)}" for a, b in pairs)
        present = " AND ".join(f"c.{quote_ident(c)} IS NOT NULL" for c in fk.columns)
        query = (
            f"SELECT count(*) FROM {quote_name(self.table)} AS c WHERE {present} AND NOT EXISTS "
            f"(SELECT 1 FROM {quote_name(fk.ref_table)} AS r WHERE {match})"
        )
        return (LiveCount(self.table, None, query, "{n} orphan row(s)"),)

    def scan_lock(self) -> str | None:
        return None if self.new_table or self.online else "SHARE ROW EXCLUSIVE"

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
class DropForeignKey(PlainOperation):
    table: Name
    foreign_key: ForeignKey
    new_table: bool = False
    """The table is dropped by the same plan (so down adds the key to an empty table)."""
    rank: ClassVar[int] = 1

    noun: ClassVar[str] = "foreign key"
    verb: ClassVar[str] = "dropped"

    def subject(self) -> str:
        return self.table.name

    def drift(self, source: str) -> str:
        return in_database_only(f"foreign key {self.foreign_key.name} on {self.table}", source)

    def reverse(self) -> AddForeignKey:
        return AddForeignKey(self.table, self.foreign_key, self.new_table)

    def describe(self) -> str:
        return f"drop foreign key {self.foreign_key.name} on {self.table}"

    def changes(self) -> set[Key]:
        return {_relname(self.table.schema, self.foreign_key.name or "")}

    def needs_old(self) -> set[Key]:
        return _fk_needs(self.table, self.foreign_key)


@dataclass(frozen=True)
class RenameConstraint(PlainOperation):
    """Rename a constraint (`ALTER TABLE … RENAME CONSTRAINT`) or an index (`ALTER INDEX`)."""

    table: Name
    old: str
    new: str
    is_index: bool = False
    rank: ClassVar[int] = 17

    noun: ClassVar[str] = "constraint"
    verb: ClassVar[str] = "renamed"

    def subject(self) -> str:
        return self.table.name

    def drift(self, source: str) -> str:
        return f"the database differs from {source}: {self.describe()}"

    def reverse(self) -> RenameConstraint:
        return RenameConstraint(self.table, self.new, self.old, self.is_index)

    def describe(self) -> str:
        kind = "index" if self.is_index else "constraint"
        return f"rename {kind} {self.old} on {self.table} to {self.new}"

    def changes(self) -> set[Key]:
        return {_relname(self.table.schema, n) for n in (self.old, self.new)}

    def needs_new(self) -> set[Key]:
        return {_table(self.table)}
