"""Indexes: built and dropped (CONCURRENTLY in online plans)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import ClassVar

from nself_py.model import (
    Index,
    Name,
)
from nself_py.plan.operations.base import (
    BLOCKS_WRITES,
    DROP_INDEXES,
    INDEXES,
    MAY_FAIL,
    Hazard,
    Key,
    LiveCount,
    Operation,
    _constraint_columns,
    _relname,
    _table,
    _unique_key,
    counts_nothing,
    duplicate_groups,
    in_database_only,
    in_source_only,
    loses_nothing,
    no_roots,
    no_scan,
)
from nself_py.sql.naming import expression_columns


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

    noun: ClassVar[str] = "index"
    verb: ClassVar[str] = "added"
    scan_lock = no_scan
    data_loss = loses_nothing
    roots = no_roots

    def subject(self) -> str:
        return self.table.name

    def drift(self, source: str) -> str:
        return in_source_only(f"index {self.index.name} on {self.table}", source)

    def online_form(self) -> tuple[Operation, ...]:
        return (replace(self, concurrently=True),)

    def online_part(self) -> str | None:
        return INDEXES if self.concurrently else None

    def live_counts(self, live: Collection[Name]) -> tuple[LiveCount, ...]:
        if not self.index.unique or self.table not in live:
            return ()
        keys = list(self.index.keys)
        not_null = " AND ".join(f"({k}) IS NOT NULL" for k in keys)
        query = duplicate_groups(self.table, keys, self.index.where, not_null)
        return (LiveCount(self.table, None, query, "{n} duplicate group(s)"),)

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

    noun: ClassVar[str] = "index"
    verb: ClassVar[str] = "dropped"
    live_counts = counts_nothing
    scan_lock = no_scan
    data_loss = loses_nothing
    roots = no_roots

    def subject(self) -> str:
        return self.table.name

    def drift(self, source: str) -> str:
        return in_database_only(f"index {self.index.name} on {self.table}", source)

    def online_form(self) -> tuple[Operation, ...]:
        return (replace(self, concurrently=True),)

    def online_part(self) -> str | None:
        return DROP_INDEXES if self.concurrently else None

    def reverse(self) -> CreateIndex:
        return CreateIndex(self.table, self.index, self.table_columns, self.concurrently)

    def describe(self) -> str:
        return f"drop index {self.index.name} on {self.table}"

    def changes(self) -> set[Key]:
        return _index_keys(self.table, self.index)

    def needs_old(self) -> set[Key]:
        return _index_needs(self.table, self.index, self.table_columns)
