"""Compare two schema models and produce the ordered operations that turn one into the other.

One comparator per object kind; each only yields operations, `operations.order` sorts them.
Constraints and indexes match by definition, never by generated name; unnamed target objects
get the name PostgreSQL would give them (see `naming`), or keep the live object's name.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from operator import attrgetter
from typing import TypeVar

from nself_py.model import (
    SERIAL,
    Check,
    Column,
    Enum,
    ForeignKey,
    Index,
    Name,
    PrimaryKey,
    Records,
    Schema,
    Table,
    Unique,
)
from nself_py.plan.operations import (
    AddColumn,
    AddConstraint,
    AddEnumValue,
    AddForeignKey,
    AlterColumnDefault,
    AlterColumnIdentity,
    AlterColumnNullability,
    AlterColumnType,
    CommentOn,
    CreateEnum,
    CreateIndex,
    CreateSchema,
    CreateTable,
    DropColumn,
    DropConstraint,
    DropEnum,
    DropForeignKey,
    DropIndex,
    DropSchema,
    DropTable,
    EnumColumn,
    Operation,
    RecreateEnum,
    RenameColumn,
    RenameConstraint,
    RenameTable,
    nextval_default,
    order,
    serial_sequence,
    type_enum,
)
from nself_py.read import collector
from nself_py.sql.naming import (
    choose_name,
    expression_columns,
    index_column_names,
    name_addition,
    rename_identifier,
)
from nself_py.sql.quote import quote_ident, quote_literal, quote_name

T = TypeVar("T", PrimaryKey, Unique, Check, Index, ForeignKey)
C = TypeVar("C", PrimaryKey, Unique, Check)
_Named = PrimaryKey | Unique | Check | Index | ForeignKey
"""What a table holds under a constraint or index name."""


@collector.paused()
def diff(
    current: Schema,
    target: Schema,
    *,
    managed_schemas: Collection[str] | None = None,
    table_renames: Mapping[Name, Name] | None = None,
    column_renames: Mapping[tuple[Name, str], str] | None = None,
) -> list[Operation]:
    """The ordered operations that turn `current` into `target` ([] when nothing differs).

    Only schemas in `managed_schemas` (default: the target's) are touched. `table_renames` maps
    a live table name to its target name, `column_renames` maps (target table, live column) to
    the target column name; without them a rename is a drop and an add.
    """
    managed = frozenset(target.schemas if managed_schemas is None else managed_schemas)
    ops: list[Operation] = []
    current_tables = {t.name: t for t in current.tables if t.name.schema in managed}
    for old, new in (table_renames or {}).items():
        if old in current_tables and new not in current_tables:
            ops.append(RenameTable(old, new))
            current_tables = _rename_table(current_tables, old, new)
    for (table, old_column), new_column in (column_renames or {}).items():
        if table in current_tables and current_tables[table].column(old_column) is not None:
            ops.append(RenameColumn(table, old_column, new_column))
            current_tables = _rename_column(current_tables, table, old_column, new_column)
    target_tables = {t.name: t for t in target.tables if t.name.schema in managed}
    used = _used_names(current, target)
    for name in current_tables.keys() - target_tables.keys():  # dropped: their names are free
        used[name.schema] -= _names(current_tables[name]) | {name.name}
    target_tables = {
        name: _name_table(table, current_tables.get(name), used[name.schema])
        for name, table in sorted(target_tables.items())
    }
    current_enums = {e.name: e for e in current.enums if e.name.schema in managed}
    target_enums = {e.name: e for e in target.enums if e.name.schema in managed}
    enum_types = {quote_name(n) for n in (*current_enums, *target_enums)}

    ops += _diff_schemas(current, target, managed)
    enum_ops, rebuilt = _diff_enums(
        current_enums, target_enums, current_tables, target_tables, target.records
    )
    ops += enum_ops
    context = _Context(
        enum_types=frozenset(enum_types),
        rebuilt_enums=frozenset(quote_name(op.enum) for op in ops if isinstance(op, RecreateEnum)),
        rebuilt_columns=frozenset(rebuilt),
        broken_keys=frozenset(
            key
            for name in current_tables.keys() & target_tables.keys()
            if current_tables[name] is not target_tables[name]  # unchanged: drops nothing
            for key in _dropped_unique_keys(current_tables[name], target_tables[name])
        ),
    )
    ops += _diff_tables(current_tables, target_tables, context)
    return order(ops)


# --- renames ---------------------------------------------------------------------------------


def _rename_table(tables: dict[Name, Table], old: Name, new: Name) -> dict[Name, Table]:
    """The live tables as they will be after the rename (foreign keys follow the table)."""
    renamed = {}
    for name, table in tables.items():
        fks = tuple(
            replace(fk, ref_table=new) if fk.ref_table == old else fk for fk in table.foreign_keys
        )
        table = replace(table, foreign_keys=fks)
        renamed[new if name == old else name] = replace(table, name=new) if name == old else table
    return renamed


def _rename_column(
    tables: dict[Name, Table], target: Name, old: str, new: str
) -> dict[Name, Table]:
    def cols(columns: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(new if c == old else c for c in columns)

    def text(expression: str) -> str:
        return rename_identifier(expression, old, new, quote_ident)

    renamed = {}
    for name, table in tables.items():
        fks = tuple(
            replace(fk, ref_columns=cols(fk.ref_columns)) if fk.ref_table == target else fk
            for fk in table.foreign_keys
        )
        table = replace(table, foreign_keys=fks)
        if name == target:
            table = replace(
                table,
                columns=tuple(replace(c, name=new) if c.name == old else c for c in table.columns),
                primary_key=table.primary_key
                and replace(table.primary_key, columns=cols(table.primary_key.columns)),
                uniques=tuple(replace(u, columns=cols(u.columns)) for u in table.uniques),
                checks=tuple(replace(c, expression=text(c.expression)) for c in table.checks),
                indexes=tuple(
                    replace(
                        i,
                        keys=tuple(map(text, i.keys)),
                        where=i.where and text(i.where),
                    )
                    for i in table.indexes
                ),
                foreign_keys=tuple(replace(f, columns=cols(f.columns)) for f in fks),
            )
        renamed[name] = table
    return renamed


# --- names -----------------------------------------------------------------------------------


def _names(table: Table) -> set[str]:
    """The names of a table's constraints and indexes."""
    items = (table.primary_key, *table.uniques, *table.checks, *table.indexes, *table.foreign_keys)
    return {item.name for item in items if item is not None and item.name}


def _used_names(current: Schema, target: Schema) -> dict[str, set[str]]:
    """Every relation and constraint name taken in each schema, live or explicitly wanted."""
    used: dict[str, set[str]] = defaultdict(set)
    for table in (*current.tables, *target.tables):
        used[table.name.schema] |= _names(table) | {table.name.name}
    return used


def _pairs(
    current: Iterable[T], target: Iterable[T], key: Callable[[T], object]
) -> Iterator[tuple[T | None, T | None]]:
    """Match items by definition (a same-named one first); unmatched ones pair with None."""
    left = list(current)
    for item in target:
        same = [c for c in left if key(c) == key(item)]
        match = next((c for c in same if c.name == item.name), same[0] if same else None)
        if match is not None:
            left.remove(match)
        yield match, item
    for item in left:
        yield item, None


def _index_def(index: Index) -> object:
    return (index.keys, index.unique, index.method, index.where)


def _fk_def(fk: ForeignKey) -> object:
    return (fk.columns, fk.ref_table, fk.ref_columns, fk.on_delete, fk.on_update)


def _columns_def(item: PrimaryKey | Unique) -> object:
    return item.columns


def _check_def(check: Check) -> object:
    return check.expression


_UNNAMED: dict[type, Callable[[object], tuple[object, ...]]] = {}


def _unnamed_fields(item: _Named) -> tuple[object, ...]:
    """Every field but the name (the getter is made once per class: this runs per constraint
    and index of every table)."""
    getter = _UNNAMED.get(type(item))
    if getter is None:
        getter = attrgetter(*(f.name for f in fields(item) if f.name != "name"))
        _UNNAMED[type(item)] = getter
    values = getter(item)
    return values if isinstance(values, tuple) else (values,)


def _name_of(item: _Named) -> str:
    """The name of a live or already named target item (both always have one)."""
    if item.name is None:
        raise ValueError(f"{type(item).__name__} compared before it was named")
    return item.name


def _matches_live(table: Table, live: Table) -> bool:
    """The target is the live table except for names it leaves open (the common no-change
    case, checked without building a named copy)."""
    if table.columns != live.columns or table.comment != live.comment:
        return False
    pk, live_pk = table.primary_key, live.primary_key
    groups: tuple[tuple[Sequence[_Named], Sequence[_Named]], ...] = (
        ((pk,) if pk else (), (live_pk,) if live_pk else ()),
        (table.uniques, live.uniques),
        (table.checks, live.checks),
        (table.indexes, live.indexes),
        (table.foreign_keys, live.foreign_keys),
    )
    for items, live_items in groups:
        if len(items) != len(live_items):
            return False
        for item, old in zip(items, live_items, strict=True):
            if item == old:  # named as it is live
                continue
            if item.name is not None and item.name != old.name:
                return False
            if _unnamed_fields(item) != _unnamed_fields(old):
                return False
    return True


def _name_table(table: Table, live: Table | None, used: set[str]) -> Table:
    """The target table with every constraint and index named."""
    if live is not None and _matches_live(table, live):
        return live
    base = table.name.name
    column_names = [c.name for c in table.columns]

    def named(
        items: Iterable[T],
        live_items: Iterable[T],
        key: Callable[[T], object],
        make: Callable[[T], str],
    ) -> tuple[T, ...]:
        pairs = list(_pairs(live_items, items, key))
        used.difference_update(old.name for old, new in pairs if new is None and old)
        result = []
        for match, item in pairs:
            if item is None:
                continue
            if item.name is None:
                name = match.name if match is not None else make(item)
                item = replace(item, name=name)
            result.append(item)
        return tuple(result)

    def check_name(check: Check) -> str:
        columns = expression_columns(check.expression, column_names)
        return choose_name(base, columns[0] if len(columns) == 1 else None, "check", used)

    live_pk = (live.primary_key,) if live and live.primary_key else ()
    pk = table.primary_key
    pks = named(
        (pk,) if pk else (), live_pk, _columns_def, lambda _: choose_name(base, None, "pkey", used)
    )
    return replace(
        table,
        primary_key=pks[0] if pks else None,
        uniques=named(
            table.uniques,
            live.uniques if live else (),
            _columns_def,
            lambda u: choose_name(base, name_addition(u.columns), "key", used),
        ),
        checks=named(table.checks, live.checks if live else (), _check_def, check_name),
        indexes=named(
            table.indexes,
            live.indexes if live else (),
            _index_def,
            lambda i: choose_name(base, name_addition(index_column_names(i.keys)), "idx", used),
        ),
        foreign_keys=named(
            table.foreign_keys,
            live.foreign_keys if live else (),
            _fk_def,
            lambda f: choose_name(base, name_addition(f.columns), "fkey", used),
        ),
    )


# --- schemas and enums -----------------------------------------------------------------------


def _diff_schemas(current: Schema, target: Schema, managed: frozenset[str]) -> list[Operation]:
    ops: list[Operation] = [
        CreateSchema(s) for s in sorted(set(target.schemas) - set(current.schemas)) if s in managed
    ]
    ops += [
        DropSchema(s)
        for s in sorted(set(current.schemas) - set(target.schemas))
        if s in managed and s != "public"
    ]
    return ops


def _is_subsequence(short: tuple[str, ...], long: tuple[str, ...]) -> bool:
    values = iter(long)
    return all(v in values for v in short)


def _mentions(tables: Iterable[Table], text: str) -> bool:
    """Whether any default, check or index of the tables spells `text`."""
    for table in tables:
        texts = [c.default or "" for c in table.columns]
        texts += [c.expression for c in table.checks]
        texts += [" ".join((*i.keys, i.where or "")) for i in table.indexes]
        if any(text in t for t in texts):
            return True
    return False


def _diff_enums(
    current: dict[Name, Enum],
    target: dict[Name, Enum],
    current_tables: dict[Name, Table],
    target_tables: dict[Name, Table],
    seeds: Iterable[Records],
) -> tuple[list[Operation], set[tuple[Name, str]]]:
    """Enum operations, and the (table, column)s whose defaults an enum rebuild sets.

    A value added in place cannot be used before the transaction commits (PostgreSQL 12+), so
    when the target's defaults, checks, indexes or seed rows use a new value, the enum is rebuilt.
    """
    seeded = {cell for records in seeds for row in records.rows for cell in row}
    ops: list[Operation] = []
    rebuilt: set[tuple[Name, str]] = set()
    ops += [CreateEnum(target[n]) for n in sorted(target.keys() - current.keys())]
    ops += [DropEnum(current[n]) for n in sorted(current.keys() - target.keys())]
    for name in sorted(current.keys() & target.keys()):
        old, new = current[name], target[name]
        if old.values == new.values:
            if old.comment != new.comment:
                ops.append(CommentOn("type", name, None, old.comment, new.comment))
            continue
        users = _enum_users(name, current_tables, target_tables)
        added = [v for v in new.values if v not in old.values]
        in_place = _is_subsequence(old.values, new.values) and not any(
            v in seeded
            or _mentions(target_tables.values(), f"{quote_literal(v)}::{quote_name(name)}")
            for v in added
        )
        if in_place:
            columns = tuple(replace(c, new_default=c.old_default) for c in users)
            values = old.values
            for value in added:
                index = new.values.index(value)
                after = new.values[index - 1] if index > 0 else None
                before = old.values[0] if index == 0 and old.values else None
                ops.append(AddEnumValue(name, value, before, after, values, columns, old.comment))
                values = AddEnumValue(name, value, before, after, values).new_values
            if old.comment != new.comment:
                ops.append(CommentOn("type", name, None, old.comment, new.comment))
        else:
            ops.append(RecreateEnum(name, old.values, new.values, users, old.comment, new.comment))
            rebuilt |= {(c.table, c.column) for c in users}
    return ops, rebuilt


def _enum_users(
    name: Name, current_tables: dict[Name, Table], target_tables: dict[Name, Table]
) -> tuple[EnumColumn, ...]:
    """Columns that use the enum before and after (same type), in a stable order."""
    users = []
    for table_name in sorted(current_tables.keys() & target_tables.keys()):
        new_table = target_tables[table_name]
        for column in current_tables[table_name].columns:
            new_column = new_table.column(column.name)
            if (
                type_enum(column.type) == name
                and new_column is not None
                and new_column.type == column.type
            ):
                users.append(
                    EnumColumn(
                        table_name, column.name, column.type, column.default, new_column.default
                    )
                )
    return tuple(users)


# --- tables ----------------------------------------------------------------------------------


def _without_fks(table: Table) -> Table:
    return replace(table, foreign_keys=())


def _dropped_unique_keys(live: Table, table: Table) -> set[tuple[Name, frozenset[str]]]:
    """Keys a foreign key may reference whose constraint or index this diff drops."""
    live_pk = (live.primary_key,) if live.primary_key else ()
    new_pk = (table.primary_key,) if table.primary_key else ()
    dropped: list[PrimaryKey | Unique | Index] = []
    dropped += [old for old, new in _pairs(live_pk, new_pk, _columns_def) if new is None and old]
    dropped += [
        old for old, new in _pairs(live.uniques, table.uniques, _columns_def) if new is None and old
    ]
    dropped += [
        old for old, new in _pairs(live.indexes, table.indexes, _index_def) if new is None and old
    ]
    return {
        (live.name, frozenset(d.keys if isinstance(d, Index) else d.columns))
        for d in dropped
        if not isinstance(d, Index) or (d.unique and not d.where)
    }


@dataclass(frozen=True)
class _Context:
    """What the other comparisons decided that each table's comparison must follow."""

    enum_types: frozenset[str]
    """Every enum's quoted name: casts to and from them go through text."""
    rebuilt_enums: frozenset[str]
    """Enums rebuilt under a new type: checks and indexes spelling them are dropped and re-made."""
    rebuilt_columns: frozenset[tuple[Name, str]]
    """Columns of rebuilt enums: the rebuild sets their default."""
    broken_keys: frozenset[tuple[Name, frozenset[str]]]
    """Unique keys dropped on kept tables: foreign keys onto them are dropped and re-added."""

    def spells_rebuilt_enum(self, text: str) -> bool:
        return any(f"::{t}" in text for t in self.rebuilt_enums)


def _diff_tables(
    current: dict[Name, Table], target: dict[Name, Table], context: _Context
) -> list[Operation]:
    ops: list[Operation] = []
    for name in sorted(target.keys() - current.keys()):
        ops.append(CreateTable(_without_fks(target[name])))
        ops += [AddForeignKey(name, fk, new_table=True) for fk in target[name].foreign_keys]
    for name in sorted(current.keys() - target.keys()):
        ops += [DropForeignKey(name, fk, new_table=True) for fk in current[name].foreign_keys]
        ops.append(DropTable(_without_fks(current[name])))
    # An unchanged table needs nothing unless an enum rebuild or a dropped key reaches into it.
    quiet = not context.rebuilt_columns and not context.broken_keys
    for name in sorted(current.keys() & target.keys()):
        if quiet and current[name] == target[name]:
            continue
        ops += _diff_table(current[name], target[name], context)
    return ops


def _diff_table(live: Table, table: Table, context: _Context) -> Iterator[Operation]:
    name = table.name
    for column in table.columns:
        old = live.column(column.name)
        if old is None:
            yield AddColumn(name, column)
        else:
            rebuilt = (name, column.name) in context.rebuilt_columns
            yield from _diff_column(name, old, column, rebuilt, context.enum_types)
    for column in reversed(live.columns):  # last first, so down re-adds them in order
        if table.column(column.name) is None:
            yield DropColumn(name, column)
    old_columns = tuple(c.name for c in live.columns)
    new_columns = tuple(c.name for c in table.columns)
    live_pk = (live.primary_key,) if live.primary_key else ()
    new_pk = (table.primary_key,) if table.primary_key else ()
    yield from _diff_constraints(
        name, live_pk, new_pk, _columns_def, context, old_columns, new_columns
    )
    yield from _diff_constraints(
        name, live.uniques, table.uniques, _columns_def, context, old_columns, new_columns
    )
    yield from _diff_constraints(
        name, live.checks, table.checks, _check_def, context, old_columns, new_columns
    )
    for old_index, new_index in _pairs(live.indexes, table.indexes, _index_def):
        if old_index is None:
            if new_index is not None:
                yield CreateIndex(name, new_index, new_columns)
        elif new_index is None or context.spells_rebuilt_enum(
            " ".join((*old_index.keys, old_index.where or ""))
        ):
            yield DropIndex(name, old_index, old_columns)
            if new_index is not None:
                yield CreateIndex(name, new_index, new_columns)
        else:
            if old_index.name != new_index.name:
                yield RenameConstraint(
                    name, _name_of(old_index), _name_of(new_index), is_index=True
                )
            if old_index.comment != new_index.comment:
                index_name = Name(name.schema, _name_of(new_index))
                yield CommentOn("index", index_name, None, old_index.comment, new_index.comment)
    for old_fk, new_fk in _pairs(live.foreign_keys, table.foreign_keys, _fk_def):
        if old_fk is None:
            if new_fk is not None:
                yield AddForeignKey(name, new_fk)
        elif new_fk is None:
            yield DropForeignKey(name, old_fk)
        elif (old_fk.ref_table, frozenset(old_fk.ref_columns)) in context.broken_keys:
            yield DropForeignKey(name, old_fk)
            yield AddForeignKey(name, new_fk)
        elif old_fk.name != new_fk.name:
            yield RenameConstraint(name, _name_of(old_fk), _name_of(new_fk))
    if live.comment != table.comment:
        yield CommentOn("table", name, None, live.comment, table.comment)


def _diff_constraints(
    table: Name,
    live_items: Iterable[C],
    items: Iterable[C],
    key: Callable[[C], object],
    context: _Context,
    old_columns: tuple[str, ...],
    new_columns: tuple[str, ...],
) -> Iterator[Operation]:
    """Primary keys, unique constraints or checks of one table: added, dropped (and re-added
    when they spell a rebuilt enum) or renamed."""
    for old, new in _pairs(live_items, items, key):
        if old is None:
            if new is not None:
                yield AddConstraint(table, new, new_columns)
        elif new is None or (
            isinstance(old, Check) and context.spells_rebuilt_enum(old.expression)
        ):
            yield DropConstraint(table, old, old_columns)
            if new is not None:
                yield AddConstraint(table, new, new_columns)
        elif old.name != new.name:
            yield RenameConstraint(table, _name_of(old), _name_of(new))


# Defaults PostgreSQL stores apart but evaluates alike: `CURRENT_TIMESTAMP` (no precision) and
# `transaction_timestamp()` are `now()`. Canonicalization cannot join them: each is printed back
# as written.
_SAME_DEFAULT = {"CURRENT_TIMESTAMP": "now()", "transaction_timestamp()": "now()"}


def _same_default(a: str | None, b: str | None) -> bool:
    return _SAME_DEFAULT.get(a or "", a) == _SAME_DEFAULT.get(b or "", b)


def _diff_column(
    table: Name, old: Column, new: Column, rebuilt: bool, enum_types: Collection[str]
) -> Iterator[Operation]:
    serial_default = nextval_default(serial_sequence(table, new.name))
    adopt = (old.identity == SERIAL and new.identity is None and new.default == serial_default) or (
        new.identity == SERIAL and old.identity is None and old.default == serial_default
    )
    if old.type != new.type:
        via_text = any(t.removesuffix("[]") in enum_types for t in (old.type, new.type))
        yield AlterColumnType(
            table, new.name, old.type, new.type, old.default, new.default, via_text
        )
    elif not _same_default(old.default, new.default) and not rebuilt and not adopt:
        yield AlterColumnDefault(table, new.name, old.default, new.default)
    if old.nullable != new.nullable:
        yield AlterColumnNullability(table, new.name, new.nullable)
    if old.identity != new.identity:
        serial_type = old.type if old.identity == SERIAL else new.type
        yield AlterColumnIdentity(table, new.name, serial_type, old.identity, new.identity, adopt)
    if old.comment != new.comment:
        yield CommentOn("column", table, new.name, old.comment, new.comment)
