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
from nself_py.model import Name, Schema, Table
from nself_py.plan.operations import (
    BLOCKS_WRITES,
    DELETES_DATA,
    REWRITES_TABLE,
    AlterColumnType,
    Hazard,
    LiveCount,
    Operation,
)
from nself_py.sql.quote import quote_name

MAX_ROWS = 1_000_000
BIG_ROWS = 100_000
"""Above this, a scan under a write-blocking lock is a BLOCKS_WRITES hazard of its own."""
"""Tables estimated larger than this are not scanned."""
TIMEOUT_MS = 2000
"""Each counting query gives up after this long."""
NO_LOSS = "holds no data that would be lost now"
_LOSS_VERBS = ("drops", "changes", "empties", "deletes")
"""How `hazards.measure` starts a message naming a real loss."""


def _counts(ops: Sequence[Operation], live: dict[Name, Table]) -> list[tuple[Operation, LiveCount]]:
    """What to count for each operation (each kind says what, `Operation.live_counts`)."""
    return [(op, count) for op in ops for count in op.live_counts(live)]


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
    return op.scan_lock()


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
            row = conn.execute(sql.SQL(query)).fetchone()
            assert row is not None  # an aggregate query returns one row
            return [int(v) for v in row]
    except psycopg.errors.QueryCanceled:
        return f"not counted: gave up after {timeout_ms} ms"
    except psycopg.Error as error:
        return f"not counted: {str(error).splitlines()[0]}"


def _row_counts(
    conn: psycopg.Connection, table: Name, counts: list[LiveCount], timeout_ms: int
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
    found = op.data_loss()
    if found is None or found.table not in live:
        return None
    target = loss.Target(
        found.kind, quote_name(found.table), found.column, found.new_type, found.using
    )
    return found.table, target


def _data_loss(conn: psycopg.Connection, target: loss.Target, timeout_ms: int) -> str:
    """What `target` would lose now (a note when the count is cut short)."""
    try:
        with conn.transaction():
            return loss.measure(conn, target) or NO_LOSS
    except psycopg.errors.QueryCanceled:
        return f"not measured: gave up after {timeout_ms} ms"


def _drop_losses(
    conn: psycopg.Connection, drops: list[tuple[Operation, loss.Target]], timeout_ms: int
) -> list[str]:
    """What each dropped table would lose, counted together; one at a time (each with its own
    time limit) when the counts together outlast the limit."""
    if not drops:
        return []
    try:
        with conn.transaction():
            found = loss.measure_table_drops(conn, [target for _, target in drops])
            return [said or NO_LOSS for said in found]
    except psycopg.errors.QueryCanceled:
        return [_data_loss(conn, target, timeout_ms) for _, target in drops]


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
    plans = _counts(ops, live)
    losses = [(op, found) for op in ops if (found := _loss_target(op, live)) is not None]
    figures: dict[Operation, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    blocking: dict[tuple[Operation, str], int] = defaultdict(int)

    def counted(op: Operation, count: LiveCount, result: int | str) -> None:
        if isinstance(result, str):
            figures[op][count.kind].append(result)
            return
        figures[op][count.kind].append(_say(count.describe, result))
        if result:
            blocking[op, count.kind] += result

    outermost = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with conn.transaction(force_rollback=True):
        if outermost:
            conn.execute("SET TRANSACTION READ ONLY")
        locked = {op: t for op in ops if (t := _locked_table(op, live)) is not None}
        tables = {c.table for _, c in plans} | {t for _, (t, _) in losses} | set(locked.values())
        sizes = _sizes(conn, tables)
        conn.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(timeout_ms))
        by_table: dict[Name, list[tuple[Operation, LiveCount]]] = defaultdict(list)
        for op, count in plans:
            size = sizes[count.table].rows if count.table in sizes else 0.0
            if size > max_rows:
                note = f"not counted: {quote_name(count.table)} has about {size:,.0f} rows"
                figures[op][count.kind].append(note)
            elif count.condition is not None:
                by_table[count.table].append((op, count))
            else:
                result = _run(conn, count.query or "", timeout_ms)
                counted(op, count, result if isinstance(result, str) else result[0])
        for table, pairs in by_table.items():
            counts = [count for _, count in pairs]
            results = _row_counts(conn, table, counts, timeout_ms)
            for (op, count), outcome in zip(pairs, results, strict=True):
                counted(op, count, outcome)
        drops: list[tuple[Operation, loss.Target]] = []
        for op, (table, target) in losses:
            size = sizes[table].rows if table in sizes else 0.0
            if size > max_rows:
                note = f"not measured: {quote_name(table)} has about {size:,.0f} rows"
                figures[op][DELETES_DATA].append(note)
            elif target.kind == "DROP_TABLE":
                drops.append((op, target))
            else:
                figures[op][DELETES_DATA].append(_data_loss(conn, target, timeout_ms))
        for (op, _), said in zip(drops, _drop_losses(conn, drops, timeout_ms), strict=True):
            figures[op][DELETES_DATA].append(said)
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
