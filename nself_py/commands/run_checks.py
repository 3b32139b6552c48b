"""What `db run` refuses to write: a target that would drop most of the managed tables (an
empty, truncated or wrong schema.dbml), and a migration the live data cannot accept (it would
only fail later, in `db update`, with no way forward but `migrate:delete`).

Both checks read the plan `db run` already made, with its live-measured hazards; the only
extra query counts the rows of the tables a suspicious plan drops, in one statement."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
from pglast import ast
from psycopg import sql

from nself_py.database.connection import one
from nself_py.errors import NselfError
from nself_py.migrations.conflicts import recorded_base
from nself_py.migrations.folders import local_migrations
from nself_py.model import Name
from nself_py.plan.operations import (
    AddColumn,
    AddConstraint,
    AddForeignKey,
    AlterColumnNullability,
    CreateIndex,
    DropIndex,
    DropTable,
    Operation,
    RecreateEnum,
)
from nself_py.sql.parse import Statement


class SuspiciousTarget(NselfError):
    """schema.dbml would drop most or all of the managed tables; --allow-data-loss is needed."""


class HandWrittenObjects(NselfError):
    """db run would drop what a hand-written migration created; --allow-data-loss is needed."""


class DataWouldReject(NselfError):
    """The migration would fail on the live data; --force writes it anyway."""


def _rows(conn: psycopg.Connection, tables: list[Name]) -> int:
    counts = sql.SQL(" + ").join(
        sql.SQL("(SELECT count(*) FROM {})").format(sql.Identifier(t.schema, t.name))
        for t in tables
    )
    with conn.transaction(force_rollback=True):
        return int(one(conn, sql.SQL("SELECT ") + counts)[0])


def check_suspicious_target(
    conn: psycopg.Connection,
    operations: tuple[Operation, ...],
    managed_tables: int,
    target_tables: int,
    schema_file: str,
) -> None:
    """Refuse a plan dropping more than half of the managed tables when they hold rows, or
    every table (the target has none). The rule is deliberately about tables, not columns:
    losing most of a database at once is what a wrong file looks like."""
    dropped = [op.table.name for op in operations if isinstance(op, DropTable)]
    if not dropped or len(dropped) * 2 <= managed_tables:
        return
    rows = _rows(conn, dropped)
    if not rows and target_tables:
        return
    listed = ", ".join(str(t) for t in dropped[:5]) + (" …" if len(dropped) > 5 else "")
    raise SuspiciousTarget(
        f"refusing to write: {schema_file} would drop {len(dropped)} of the "
        f"{managed_tables} managed table(s) ({listed}) holding {rows:,} row(s); "
        f"it describes {target_tables} table(s). Is it the right file, complete? "
        "Nothing was written. Pass --allow-data-loss if you mean to drop them."
    )


def _fix(op: Operation) -> str:
    """How to make the live data acceptable to `op`."""
    data_migration = "a data migration first (`nself-py db migrate:create <name> --up-sql …`)"
    if isinstance(op, AddColumn):
        return (
            f"give {op.column.name} a default in schema.dbml (`default: …`), or add it nullable, "
            f"fill it with {data_migration}, then make it NOT NULL"
        )
    if isinstance(op, AlterColumnNullability):
        return f"fill the NULLs of {op.column} with {data_migration}, or give it a default"
    if isinstance(op, AddConstraint | CreateIndex):
        return f"remove the offending rows (duplicates, NULLs, violations) with {data_migration}"
    if isinstance(op, AddForeignKey):
        return f"delete or fix the orphan rows with {data_migration}"
    if isinstance(op, RecreateEnum):
        return (
            f"move those rows to a value {op.enum} keeps with {data_migration}, e.g. "
            "`UPDATE t SET c = 'kept' WHERE c = 'removed'` (the remap), then `db run` again"
        )
    return f"change the data with {data_migration}"


def check_live_data(operations: tuple[Operation, ...], measured: dict) -> None:
    """Refuse a plan whose statements the live data would make fail (measured counts > 0)."""
    problems = []
    for op in operations:
        failing = [h for h in measured.get(op, ()) if h.blocking]
        if failing:
            hazards = "; ".join(f"{h.kind}: {h.message}" for h in failing)
            problems.append(f"  {op.describe()}: {hazards}\n    fix: {_fix(op)}")
    if problems:
        raise DataWouldReject(
            f"refusing to write: the live data would make {len(problems)} statement(s) of this "
            "migration fail, so it could never apply (nothing was written):\n"
            + "\n".join(problems)
            + "\nPass --force to write it anyway."
        )


def _created_index(statement: Statement) -> str | None:
    """The name a `CREATE [UNIQUE] INDEX [CONCURRENTLY] [IF NOT EXISTS] name` statement gives."""
    node = statement.node
    return node.idxname if isinstance(node, ast.IndexStmt) and node.idxname else None


def hand_written_indexes(migrations_dir: Path) -> dict[str, str]:
    """Index name → the hand-written migration (no `db run` header) that creates it."""
    found: dict[str, str] = {}
    if not migrations_dir.is_dir():
        return found
    for migration in local_migrations(migrations_dir):
        for script in migration.up_scripts():
            if recorded_base(script.file.read_text(encoding="utf-8"))[0]:
                continue  # generated by db run: the index was declared in schema.dbml
            for statement in script.statements:
                name = _created_index(statement)
                if name is not None:
                    found[name] = migration.label
    return found


_PLAIN = re.compile(r'[a-z_][a-z0-9_$]*|"(?:[^"]|"")+"')


def _dbml_index(op: DropIndex) -> str:
    """The line that declares the index inside the table's `indexes { }` block."""
    index = op.index
    spelled = [k if _PLAIN.fullmatch(k) else f"`{k}`" for k in index.keys]
    keys = spelled[0] if len(spelled) == 1 else f"({', '.join(spelled)})"
    settings = [f"name: '{index.name}'"]
    if index.unique:
        settings.append("unique")
    if index.method != "btree":
        settings.append(f"type: {index.method}")
    return f"{keys} [{', '.join(settings)}]"


def check_hand_written(operations: tuple[Operation, ...], hand_written: dict[str, str]) -> None:
    """Refuse to drop an index that a hand-written migration created and schema.dbml does not
    declare: schema.dbml never said to drop it, so the user decides (declare it, or pass
    --allow-data-loss). Indexes created by generated migrations are schema.dbml's to drop."""
    dropped = [
        op for op in operations if isinstance(op, DropIndex) and op.index.name in hand_written
    ]
    if not dropped:
        return
    lines = [
        f"  index {op.index.name} on {op.table} is not in schema.dbml (created by the "
        f"hand-written migration {hand_written.get(op.index.name or '')}); to keep it, add "
        f"to Table {op.table.name} {{ indexes {{ ... }} }}:\n      {_dbml_index(op)}"
        for op in dropped
    ]
    raise HandWrittenObjects(
        f"refusing to write: the migration would drop {len(dropped)} index(es) that a "
        "hand-written migration created (nothing was written):\n"
        + "\n".join(lines)
        + "\nDeclare them in schema.dbml, or pass --allow-data-loss to drop them."
    )
