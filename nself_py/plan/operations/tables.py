"""Tables: created (with keys, checks, indexes), dropped, renamed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from nself_py.model import (
    Name,
    Table,
)
from nself_py.plan.operations.base import (
    DELETES_DATA,
    NOT_RESTORED,
    DataLoss,
    Hazard,
    Key,
    Operation,
    PlainOperation,
    Roots,
    _column,
    _relname,
    _schema,
    _table,
    _type_keys,
    _unique_key,
    counts_nothing,
    in_database_only,
    in_source_only,
    in_transaction,
    no_scan,
    same_online,
)
from nself_py.sql.quote import quote_name


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
class CreateTable(PlainOperation):
    """A table with its keys, checks, indexes and comments; foreign keys are separate ops."""

    table: Table
    restores: bool = field(default=False, compare=False)
    """The reverse of a DropTable (down.sql): says what it cannot bring back."""
    rank: ClassVar[int] = 20

    noun: ClassVar[str] = "table"
    verb: ClassVar[str] = "added"

    def subject(self) -> str:
        return self.table.name.name

    def drift(self, source: str) -> str:
        return in_source_only(f"table {self.table.name}", source)

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

    noun: ClassVar[str] = "table"
    verb: ClassVar[str] = "dropped"
    online_form = same_online
    online_part = in_transaction
    live_counts = counts_nothing
    scan_lock = no_scan

    def subject(self) -> str:
        return self.table.name.name

    def drift(self, source: str) -> str:
        return in_database_only(f"table {self.table.name}", source)

    def data_loss(self) -> DataLoss | None:
        return DataLoss(self.table.name, "DROP_TABLE")

    def roots(self) -> Roots:
        return Roots(tables=(self.table.name,))

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
class RenameTable(PlainOperation):
    old: Name
    new: Name
    rank: ClassVar[int] = 15

    noun: ClassVar[str] = "table"
    verb: ClassVar[str] = "renamed"

    def subject(self) -> str:
        return self.new.name

    def drift(self, source: str) -> str:
        return f"the database differs from {source}: {self.describe()}"

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
