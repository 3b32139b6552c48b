"""Hazards measured on the live data when `db run` writes a migration: "3 rows violate it".

An operation's own hazards say what *may* go wrong; here the database says what *will*. All
queries run in one read-only transaction that is rolled back, under a short statement_timeout;
tables estimated above `max_rows` are not scanned (the hazard says so). Row conditions on one
table (NULLs for SET NOT NULL, `NOT (check)`, rows for a NOT NULL column without default) are
counted in one scan. Data loss (dropped tables and columns, narrowing type changes) is measured
by `hazards.measure`, the function `db update` uses, so both commands give the same figures.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from nself_py.database import dataloss as loss
from nself_py.model import Check, Name, PrimaryKey, Schema, Table, Unique
from nself_py.plan.operations import (
    BLOCKS_WRITES,
    DELETES_DATA,
    MAY_FAIL,
    REWRITES_TABLE,
    AddColumn,
    AddConstraint,
    AddForeignKey,
    AlterColumnNullability,
    AlterColumnType,
    CreateIndex,
    DropColumn,
    DropTable,
    Hazard,
    Operation,
    RecreateEnum,
)
from nself_py.sql.quote import quote_ident, quote_literal, quote_name

MAX_ROWS = 1_000_000
BIG_ROWS = 100_000
"""Above this, a scan under a write-blocking lock is a BLOCKS_WRITES hazard of its own."""
"""Tables estimated larger than this are not scanned."""
TIMEOUT_MS = 2000
"""Each counting query gives up after this long."""
NO_LOSS = "holds no data that would be lost now"
_LOSS_VERBS = ("drops", "changes", "empties", "deletes")
"""How `hazards.measure` starts a message naming a real loss."""


@dataclass(frozen=True)
class _Count:
    """One figure to measure: rows of `table` matching `condition`, or a whole query."""

    op: Operation
    table: Name
    condition: str | None
    query: str | None
    describe: str
    """How to say the count: `{n} rows violate it`."""
    kind: str = MAY_FAIL
    """The hazard the figure belongs to; any count above 0 makes the statement fail."""


def _not_null(columns: Sequence[str]) -> str:
    return " AND ".join(f"{quote_ident(c)} IS NOT NULL" for c in columns)


def _duplicates(table: Name, keys: Sequence[str], where: str | None, not_null: str) -> str:
    condition = f"{not_null} AND ({where})" if where else not_null
    return (
        f"SELECT count(*) FROM (SELECT 1 FROM {quote_name(table)} WHERE {condition} "
        f"GROUP BY {', '.join(keys)} HAVING count(*) > 1) AS duplicate"
    )


def _enum_counts(op: RecreateEnum, live: dict[Name, Table]) -> list[_Count]:
    """Rows of each live column still holding a value the rebuilt enum drops."""
    removed = [v for v in op.old_values if v not in op.new_values]
    if not removed:
        return []
    values = ", ".join(quote_literal(v) for v in removed)
    found = []
    for c in op.columns:
        if c.table not in live:
            continue
        column = quote_ident(c.column)
        condition = (
            f"{column}::text[] && ARRAY[{values}]" if c.array else f"{column}::text IN ({values})"
        )
        words = f"{{n}} row(s) of {c.table}.{c.column} hold {values}"
        found.append(_Count(op, c.table, condition, None, words, DELETES_DATA))
    return found


def _counts(op: Operation, live: dict[Name, Table]) -> list[_Count]:
    """What to count for one operation (nothing when its table is not live yet)."""
    if isinstance(op, RecreateEnum):
        return _enum_counts(op, live)
    table = live.get(getattr(op, "table", None))  # type: ignore[arg-type]
    if table is None:
        return []
    name, violate = table.name, "{n} row(s) violate it"
    if isinstance(op, AlterColumnNullability) and not op.nullable:
        return [_Count(op, name, f"{quote_ident(op.column)} IS NULL", None, violate)]
    if isinstance(op, AddColumn) and MAY_FAIL in {h.kind for h in op.hazards}:
        return [_Count(op, name, "true", None, "the table has {n} row(s)")]
    if isinstance(op, AddConstraint) and isinstance(op.constraint, Check):
        return [_Count(op, name, f"NOT ({op.constraint.expression})", None, violate)]
    if isinstance(op, AddConstraint) and isinstance(op.constraint, PrimaryKey | Unique):
        columns = op.constraint.columns
        found = []
        if isinstance(op.constraint, PrimaryKey):
            nulls = " OR ".join(f"{quote_ident(c)} IS NULL" for c in columns)
            found.append(_Count(op, name, nulls, None, "{n} row(s) with NULL in the key"))
        keys = [quote_ident(c) for c in columns]
        query = _duplicates(name, keys, None, _not_null(columns))
        found.append(_Count(op, name, None, query, "{n} duplicate group(s)"))
        return found
    if isinstance(op, CreateIndex) and op.index.unique:
        keys = list(op.index.keys)
        not_null = " AND ".join(f"({k}) IS NOT NULL" for k in keys)
        query = _duplicates(name, keys, op.index.where, not_null)
        return [_Count(op, name, None, query, "{n} duplicate group(s)")]
    if isinstance(op, AddForeignKey) and not op.new_table and op.foreign_key.ref_table in live:
        fk = op.foreign_key
        pairs = zip(fk.columns, fk.ref_columns, strict=True)
        match = " AND ".join(f"r.{quote_ident(b)} = c.{quote_ident(a)}" for a, b in pairs)
        present = " AND ".join(f"c.{quote_ident(c)} IS NOT NULL" for c in fk.columns)
        query = (
            f"SELECT count(*) FROM {quote_name(name)} AS c WHERE {present} AND NOT EXISTS "
            f"(SELECT 1 FROM {quote_name(fk.ref_table)} AS r WHERE {match})"
        )
        return [_Count(op, name, None, query, "{n} orphan row(s)")]
    return []


def _say(template: str, count: int) -> str:
    """`{n} row(s) violate it` → `1 row violates it` / `3 rows violate it`."""
    text = template.format(n=count)
    if count == 1:
        return text.replace("(s) violate ", " violates ").replace("(s)", "")
    return text.replace("(s)", "s")


@dataclass(frozen=True)
class _Size:
    rows: float
    """The planner's estimate, or 80 rows a page when never analyzed."""
    pretty: str
    """The table's size on disk as of the last VACUUM/ANALYZE (`12 MB`)."""
    analyzed: bool
    """Whether `rows` is the planner's estimate (else a guess from the size)."""

    def describe(self, table: Name) -> str:
        if not self.analyzed:
            return f"{quote_name(table)} has no size estimate yet (never vacuumed or analyzed)"
        return f"{quote_name(table)} holds about {self.rows:,.0f} rows, {self.pretty}"


def _sizes(conn: psycopg.Connection, tables: set[Name]) -> dict[Name, _Size]:
    """Estimated rows and disk size per table, from pg_class alone: no scan and no lock, so a
    table another session holds locked cannot make `db run` wait."""
    if not tables:
        return {}
    rows = conn.execute(
        "SELECT n.nspname, c.relname, greatest(c.reltuples, c.relpages * 80.0), "
        "pg_size_pretty(c.relpages::bigint * current_setting('block_size')::bigint), "
        "c.reltuples >= 0 "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
        ([t.schema for t in tables], [t.name for t in tables]),
    ).fetchall()
    return {Name(s, t): _Size(float(size), pretty, known) for s, t, size, pretty, known in rows}


_LOCKING = (REWRITES_TABLE, BLOCKS_WRITES)


def _scan_lock(op: Operation) -> str | None:
    """The write-blocking lock an operation holds while it scans every row, if it does."""
    kinds = {h.kind for h in op.hazards}
    if isinstance(op, AlterColumnNullability) and not op.nullable and not op.online:
        return "ACCESS EXCLUSIVE"
    if isinstance(op, AddConstraint) and isinstance(op.constraint, Check) and not op.online:
        return "ACCESS EXCLUSIVE"
    if isinstance(op, AddForeignKey) and not op.new_table and not op.online:
        return "SHARE ROW EXCLUSIVE"
    if isinstance(op, AlterColumnType) and DELETES_DATA in kinds and REWRITES_TABLE not in kinds:
        return "ACCESS EXCLUSIVE"  # no rewrite, but every value is checked
    return None


def _locked_table(op: Operation, live: dict[Name, Table]) -> Name | None:
    """The live table an operation rewrites or blocks writes to, if it has such a hazard."""
    table = getattr(op, "table", None)
    name = table.name if isinstance(table, Table) else table
    if name in live and (_scan_lock(op) or any(h.kind in _LOCKING for h in op.hazards)):
        return name
    return None


def _run(conn: psycopg.Connection, query: str, timeout_ms: int) -> list[int] | str:
    """The query's counts, or why there are none (timeout, an object created by the plan)."""
    try:
        with conn.transaction():
            row = conn.execute(sql.SQL(query)).fetchone()  # type: ignore[arg-type]
            return [int(v) for v in row]
    except psycopg.errors.QueryCanceled:
        return f"not counted: gave up after {timeout_ms} ms"
    except psycopg.Error as error:
        return f"not counted: {str(error).splitlines()[0]}"


def _row_counts(
    conn: psycopg.Connection, table: Name, counts: list[_Count], timeout_ms: int
) -> list[int | str]:
    """Every row condition on one table in one scan; one by one if the scan fails."""
    columns = ", ".join(f"count(*) FILTER (WHERE {c.condition})" for c in counts)
    result = _run(conn, f"SELECT {columns} FROM {quote_name(table)}", timeout_ms)
    if isinstance(result, list):
        return list(result)
    if len(counts) == 1:
        return [result]
    return [_row_counts(conn, table, [c], timeout_ms)[0] for c in counts]


def _loss_target(op: Operation, live: dict[Name, Table]) -> tuple[Name, loss.Target] | None:
    """The live table and what `hazards.measure` should measure for a data-losing operation."""
    if isinstance(op, DropTable):
        table, target = op.table.name, loss.Target("DROP_TABLE", quote_name(op.table.name))
    elif isinstance(op, DropColumn):
        table = op.table
        target = loss.Target("DROP_COLUMN", quote_name(op.table), op.column.name)
    elif isinstance(op, AlterColumnType) and DELETES_DATA in {h.kind for h in op.hazards}:
        table = op.table
        target = loss.Target("ALTER_TYPE", quote_name(op.table), op.column, op.new_type, op.using)
    else:
        return None
    return (table, target) if table in live else None


def _data_loss(conn: psycopg.Connection, target: loss.Target, timeout_ms: int) -> str:
    """What `target` would lose now (a note when the count is cut short)."""
    try:
        with conn.transaction():
            return loss.measure(conn, target) or NO_LOSS
    except psycopg.errors.QueryCanceled:
        return f"not measured: gave up after {timeout_ms} ms"


def measure_plan(
    conn: psycopg.Connection,
    current: Schema,
    ops: Sequence[Operation],
    *,
    max_rows: int = MAX_ROWS,
    timeout_ms: int = TIMEOUT_MS,
    big_rows: int = BIG_ROWS,
) -> dict[Operation, tuple[Hazard, ...]]:
    """Each operation's hazards with live figures appended (only operations that got one).

    `current` is the live model the plan was diffed from: operations on tables it does not
    have (created or renamed by the plan) hold no rows today and are not counted."""
    live = {t.name: t for t in current.tables}
    plans = [c for op in ops for c in _counts(op, live)]
    losses = [(op, found) for op in ops if (found := _loss_target(op, live)) is not None]
    figures: dict[Operation, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    blocking: dict[tuple[Operation, str], int] = defaultdict(int)

    def counted(count: _Count, result: int | str) -> None:
        if isinstance(result, str):
            figures[count.op][count.kind].append(result)
            return
        figures[count.op][count.kind].append(_say(count.describe, result))
        if result:
            blocking[count.op, count.kind] += result

    outermost = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with conn.transaction(force_rollback=True):
        if outermost:
            conn.execute("SET TRANSACTION READ ONLY")
        locked = {op: t for op in ops if (t := _locked_table(op, live)) is not None}
        tables = {c.table for c in plans} | {t for _, (t, _) in losses} | set(locked.values())
        sizes = _sizes(conn, tables)
        conn.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(timeout_ms))
        by_table: dict[Name, list[_Count]] = defaultdict(list)
        for count in plans:
            size = sizes[count.table].rows if count.table in sizes else 0.0
            if size > max_rows:
                note = f"not counted: {quote_name(count.table)} has about {size:,.0f} rows"
                figures[count.op][count.kind].append(note)
            elif count.condition is not None:
                by_table[count.table].append(count)
            else:
                result = _run(conn, count.query or "", timeout_ms)
                counted(count, result if isinstance(result, str) else result[0])
        for table, counts in by_table.items():
            for count, figure in zip(
                counts, _row_counts(conn, table, counts, timeout_ms), strict=True
            ):
                counted(count, figure)
        for op, (table, target) in losses:
            size = sizes[table].rows if table in sizes else 0.0
            if size > max_rows:
                note = f"not measured: {quote_name(table)} has about {size:,.0f} rows"
                figures[op][DELETES_DATA].append(note)
            else:
                figures[op][DELETES_DATA].append(_data_loss(conn, target, timeout_ms))
    scans: dict[Operation, Hazard] = {}
    for op, table in locked.items():
        if table not in sizes:
            continue
        kind = next((h.kind for h in op.hazards if h.kind in _LOCKING), None)
        lock = _scan_lock(op)
        if kind is not None:
            figures[op][kind].append(sizes[table].describe(table))
        elif lock is not None and sizes[table].rows > big_rows:
            message = f"holds {lock} while it scans every row: {sizes[table].describe(table)}"
            if not isinstance(op, AlterColumnType):
                message += "; --online avoids the long lock"
            scans[op] = Hazard(BLOCKS_WRITES, message)
    measured = {}
    for op in [*figures, *(op for op in scans if op not in figures)]:
        notes = figures.get(op, {})
        hazards = []
        for hazard in op.hazards:
            extra = notes.pop(hazard.kind, [])
            if hazard.kind == DELETES_DATA and extra and extra[0].startswith(_LOSS_VERBS):
                message = "; ".join(extra)  # says what the generic message says, with figures
            else:
                message = "; ".join([hazard.message, *extra])
            hazards.append(Hazard(hazard.kind, message, blocking.get((op, hazard.kind))))
        measured[op] = tuple(hazards) + ((scans[op],) if op in scans else ())
    return measured
