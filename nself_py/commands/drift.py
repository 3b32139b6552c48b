"""Drift: has the live database moved away from what the project says it should be?

Two comparisons, each a diff of models read by the same code, so only real differences show:
(a) the live database against schema.dbml (the engine's own plan: if `db run` would write
    something, that something is drift);
(b) the live database against the schema its applied migrations produce, by replaying their
    up SQL into a scratch database on the same server (dropped afterwards), which catches hand
    edits even when schema.dbml was edited the same way.
Objects DBML cannot describe (views, functions, triggers, hdb_catalog) are not in the model,
so they are never drift.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
from pglast import ast
from pglast.enums import ObjectType
from pglast.stream import RawStream

from nself_py.commands.run_plan import CANONICAL_CACHE, plan
from nself_py.commands.unchanged import recorded_schemas
from nself_py.database.connection import redact
from nself_py.database.scratch import ScratchUnavailable, run_scripts, scratch_database
from nself_py.database.state import applied_versions
from nself_py.errors import EXIT_CANNOT_RUN, EXIT_OK, EXIT_PROBLEM, NselfError
from nself_py.migrations.folders import Migration, Script, local_migrations
from nself_py.model import Schema
from nself_py.plan.diff import diff
from nself_py.plan.operations import Operation
from nself_py.read.introspect import introspect
from nself_py.sql.parse import Statement, split_statements

DBML_SOURCE = "schema.dbml"
MIGRATIONS_SOURCE = "the applied migrations"


def describe(op: Operation, source: str) -> str:
    """An operation that would take the database to `source`, as the difference it repairs."""
    return op.drift(source)


@dataclass(frozen=True)
class Drift:
    against_dbml: tuple[str, ...] = ()
    against_migrations: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    """Why a comparison was skipped (e.g. no permission to create a scratch database)."""
    errors: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        if self.errors:
            return EXIT_CANNOT_RUN
        return EXIT_PROBLEM if self.against_dbml or self.against_migrations else EXIT_OK

    def as_json(self) -> dict:
        return {
            "drift": bool(self.against_dbml or self.against_migrations),
            "schema_dbml": list(self.against_dbml),
            "migrations": list(self.against_migrations),
            "notes": list(self.notes),
            "errors": list(self.errors),
        }


def against_dbml(
    conn: psycopg.Connection, written: Schema, project_dir: Path, migrations_dir: Path
) -> list[str]:
    """(a): what `db run` would change, as differences (reads only; rolls back)."""
    try:
        result = plan(
            conn,
            written,
            project_dir / CANONICAL_CACHE,
            also_manage=recorded_schemas(migrations_dir),
            keep_views=False,  # drift is what differs, not how a migration would keep views
        )
    finally:
        if not conn.autocommit:
            conn.rollback()
    return [describe(op, DBML_SOURCE) for op in result.operations]


class ReplayError(NselfError):
    """The applied migrations could not be replayed into the scratch database."""

    exit_code = EXIT_CANNOT_RUN


_VIEW_KINDS = frozenset({ObjectType.OBJECT_VIEW, ObjectType.OBJECT_MATVIEW})


def _replayable(statement: Statement) -> Statement:
    """A statement as the replay runs it: `DROP VIEW v` becomes `DROP VIEW IF EXISTS v`.

    A migration that changes a column's type drops the views on it and re-creates them; when
    such a view was made outside the migrations, the scratch database never had it, and the
    replay must go on (views are not compared). Everything else runs as written."""
    node = statement.node
    if not isinstance(node, ast.DropStmt) or node.missing_ok or node.removeType not in _VIEW_KINDS:
        return statement
    guarded = ast.DropStmt(node())  # a copy: the parsed tree is shared with the script
    guarded.missing_ok = True
    text = RawStream()(guarded)
    (rewritten,) = split_statements(text + ";")
    return replace(rewritten, line=statement.line, column=statement.column)


def _replay_scripts(migration: Migration) -> list[Script]:
    return [
        replace(script, statements=tuple(_replayable(s) for s in script.statements))
        for script in migration.up_scripts()
    ]


def _replay(conn: psycopg.Connection, migrations: list[Migration]) -> None:
    for migration in migrations:
        try:
            run_scripts(conn, _replay_scripts(migration))
        except psycopg.Error as error:
            message = (error.diag.message_primary or str(error)).strip()
            raise ReplayError(
                f"replaying applied migration {migration.label} into a scratch database "
                f"failed: {message} (does it depend on a change made outside the "
                "migrations, or was it edited after it was applied?)"
            ) from None


def replayed_schema(
    url: str, migrations: list[Migration], report: Callable[[str], None]
) -> Schema | None:
    """The schema `migrations` produce from an empty database, or None (with a note through
    `report`) when this role may not create a scratch database."""
    try:
        with scratch_database(url, "drift") as replay:
            _replay(replay, migrations)
            return introspect(replay)
    except ScratchUnavailable as error:
        report(f"skipped the comparison with the applied migrations: {error}")
        return None


def against_migrations(
    url: str,
    conn: psycopg.Connection,
    project_dir: Path,
    database_name: str,
    migrations_dir: Path,
    report: Callable[[str], None],
) -> list[str] | None:
    """(b): live database against the replayed applied migrations; None when skipped."""
    applied = applied_versions(conn, project_dir, database_name)
    live = introspect(conn)
    if not conn.autocommit:
        conn.rollback()
    local = (
        {m.version: m for m in local_migrations(migrations_dir)} if migrations_dir.is_dir() else {}
    )
    missing = sorted(applied - set(local))
    if missing:
        raise ReplayError(
            f"cannot replay the applied migrations: {', '.join(map(str, missing))} applied but "
            "not in the migrations directory"
        )
    produced = replayed_schema(url, [local[v] for v in sorted(applied)], report)
    if produced is None:
        return None
    # Only the schemas the migrations build: one they never touch (nself's `auth`, an
    # extension's) is someone else's, so what it holds is not drift.
    managed = set(produced.schemas)
    return [describe(op, MIGRATIONS_SOURCE) for op in diff(live, produced, managed_schemas=managed)]


def check_drift(
    url: str,
    conn: psycopg.Connection,
    written: Schema | None,
    project_dir: Path,
    database_name: str,
    migrations_dir: Path,
) -> Drift:
    """Both comparisons; each failure is kept as an error so the other still runs."""
    notes: list[str] = []
    errors: list[str] = []
    dbml: list[str] = []
    replayed: list[str] = []
    if written is None:
        errors.append(f"{project_dir / 'schema.dbml'} not found: cannot compare with it")
    else:
        try:
            dbml = against_dbml(conn, written, project_dir, migrations_dir)
        except NselfError as error:
            errors.append(str(error))
        except psycopg.Error as error:
            errors.append(f"database error while checking drift: {redact(str(error)).strip()}")
            conn.rollback()
    try:
        replayed = (
            against_migrations(url, conn, project_dir, database_name, migrations_dir, notes.append)
            or []
        )
    except NselfError as error:
        errors.append(str(error))
    except psycopg.Error as error:
        errors.append(f"database error while checking drift: {redact(str(error)).strip()}")
    return Drift(tuple(dbml), tuple(replayed), tuple(notes), tuple(errors))
