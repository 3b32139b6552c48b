"""Resume an interrupted `-- hasura:no-transaction` migration instead of leaving it for a human.

Such a migration commits statement by statement, so a kill, a lost connection or a failing
statement leaves it half-done and its version dirty. The forms nself-py writes for these parts
(`CREATE [UNIQUE] INDEX CONCURRENTLY`, `DROP INDEX CONCURRENTLY IF EXISTS`, `ADD CONSTRAINT … NOT
VALID` / `USING INDEX`, `VALIDATE CONSTRAINT`, `SET NOT NULL`, `SET`/`RESET`) each show in the
catalog whether they are done, so a rerun skips what is there and runs the rest. An INVALID
index (what an interrupted or failed `CREATE INDEX CONCURRENTLY` leaves) is never kept: it is
dropped concurrently and built again. A migration holding any other statement is not resumable
and stays dirty for a human, as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import psycopg
from pglast import ast
from pglast.enums import AlterTableType, ConstrType, ObjectType

from nself_py.migrations.folders import Migration, Script
from nself_py.sql.parse import Statement
from nself_py.sql.quote import quote_ident

_CONSTRAINT_CMDS = {
    AlterTableType.AT_AddConstraint,
    AlterTableType.AT_ValidateConstraint,
    AlterTableType.AT_DropConstraint,
    AlterTableType.AT_SetNotNull,
}


@dataclass(frozen=True)
class _Index:
    qualified: str
    """The index as `to_regclass` reads it: the table's schema when written, quoted."""


@dataclass(frozen=True)
class _Constraint:
    table: str
    name: str


@dataclass(frozen=True)
class _Always:
    """Safe to run again as it is (SET, RESET, VALIDATE, SET NOT NULL, DROP … IF EXISTS)."""


Check = _Index | _Constraint | _Always


def _qualified(rv: ast.RangeVar) -> str:
    parts = [p for p in (rv.schemaname, rv.relname) if p]
    return ".".join(quote_ident(p) for p in parts)


def _check(node: ast.Node) -> Check | None:
    """What says this statement is already done, or None when nothing can say."""
    if isinstance(node, ast.VariableSetStmt):
        return _Always()
    if isinstance(node, ast.IndexStmt) and node.idxname and node.relation is not None:
        schema = node.relation.schemaname
        parts = [schema, node.idxname] if schema else [node.idxname]
        return _Index(".".join(quote_ident(p) for p in parts))
    if isinstance(node, ast.DropStmt) and node.removeType == ObjectType.OBJECT_INDEX:
        return _Always() if node.missing_ok else None
    if isinstance(node, ast.AlterTableStmt) and node.cmds and len(node.cmds) == 1:
        if node.relation is None:
            return None
        cmd = node.cmds[0]
        if cmd.subtype not in _CONSTRAINT_CMDS:
            return None
        if cmd.subtype == AlterTableType.AT_AddConstraint:
            constraint = cmd.def_
            if not isinstance(constraint, ast.Constraint) or not constraint.conname:
                return None
            if constraint.contype == ConstrType.CONSTR_PRIMARY and not constraint.indexname:
                return None
            return _Constraint(_qualified(node.relation), constraint.conname)
        if cmd.subtype == AlterTableType.AT_DropConstraint and not cmd.missing_ok:
            return None
        return _Always()
    return None


def _checks(scripts: Iterable[Script]) -> Iterator[tuple[Script, Statement, Check | None]]:
    for script in scripts:
        for statement in script.statements:
            yield script, statement, _check(statement.node)


def resumable(migration: Migration) -> bool:
    """Whether every statement of this no-transaction migration shows when it is done."""
    scripts = migration.up_scripts()
    if not any(s.no_transaction for s in scripts):
        return False
    return all(check is not None for _, _, check in _checks(scripts))


def _index_validity(conn: psycopg.Connection, names: list[str]) -> dict[str, bool]:
    """Index name → indisvalid, for those that exist (one query for all)."""
    rows = conn.execute(
        "SELECT n, i.indisvalid FROM unnest(%s::text[]) AS n "
        "JOIN pg_index i ON i.indexrelid = to_regclass(n)",
        (names,),
    )
    return dict(rows.fetchall())


def _existing_constraints(conn: psycopg.Connection, wanted: list[_Constraint]) -> set[_Constraint]:
    rows = conn.execute(
        "SELECT t, c FROM unnest(%s::text[], %s::text[]) AS w(t, c) "
        "JOIN pg_constraint k ON k.conrelid = to_regclass(t) AND k.conname = c",
        ([w.table for w in wanted], [w.name for w in wanted]),
    )
    return {_Constraint(t, c) for t, c in rows}


def drop_invalid_indexes(conn: psycopg.Connection, scripts: Iterable[Script]) -> list[str]:
    """Drop (concurrently) every INVALID index these scripts create; the names dropped.

    `conn` must be in autocommit mode (DROP INDEX CONCURRENTLY refuses a transaction)."""
    names = [c.qualified for _, _, c in _checks(scripts) if isinstance(c, _Index)]
    if not names:
        return []
    invalid = [n for n, valid in _index_validity(conn, names).items() if not valid]
    for name in invalid:
        conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
    return invalid


def remaining(
    conn: psycopg.Connection, scripts: tuple[Script, ...]
) -> tuple[list[tuple[Script, Statement]], list[str]]:
    """The statements still to run to finish a resumable migration, after dropping its INVALID
    indexes (the second value names them). Reads the catalog once for all statements."""
    dropped = drop_invalid_indexes(conn, scripts)
    checked = list(_checks(scripts))
    indexes = _index_validity(conn, [c.qualified for _, _, c in checked if isinstance(c, _Index)])
    constraints = [c for _, _, c in checked if isinstance(c, _Constraint)]
    present = _existing_constraints(conn, constraints) if constraints else set()
    todo = []
    for script, statement, check in checked:
        if isinstance(check, _Index) and indexes.get(check.qualified):
            continue
        if isinstance(check, _Constraint) and check in present:
            continue
        todo.append((script, statement))
    return todo, dropped
