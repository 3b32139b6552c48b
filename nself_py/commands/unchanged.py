"""`db run`'s inputs, and its answer when nothing changed since the last run that found no change.

What decides a run's result besides the catalog (schema.dbml's bytes with the server's spelling
context, the database, the schemas earlier migrations managed, the options) is hashed into the
memo's key (`read.memo`); the catalog is compared by its server-side digest (`read.digest`). A
run whose key and digest are those the memo holds, with the metadata files in step, ends here:
this module needs psycopg and the migration folders' names only, so such a run loads neither the
DBML reader, nor pglast, nor the planner, renderer or metadata stage.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg

from nself_py.commands.metadata_in_step import in_step
from nself_py.commands.project import Project
from nself_py.database import state
from nself_py.migrations import folders
from nself_py.read import memo, target_cache
from nself_py.read.digest import catalog_digest
from nself_py.read.spelling import spelling_context

MANAGED_MARKER = "-- nself-py managed schemas:"
"""The line of a generated up.sql that names the schemas its run managed."""


@dataclass(frozen=True)
class RunInputs:
    """What a `db run` reads before it plans."""

    migrations_dir: Path
    applied: set[int]
    """Versions the database has applied (clean), as the run found them."""
    pending: list[int]
    """Local migrations the database has not applied."""
    also_manage: set[str]
    """Schemas earlier generated migrations managed."""
    source_key: str
    """schema.dbml's bytes with the server version, settings and database (the target cache's
    key)."""
    memo_key: str
    """Everything but the catalog that decides the run's result."""


def recorded_schemas(migrations_dir: Path) -> set[str]:
    """Schemas that earlier generated migrations managed (from their up.sql marker line)."""
    return _managed_by(folders.local_migrations(migrations_dir))


def _managed_by(local: list[folders.Migration]) -> set[str]:
    found: set[str] = set()
    for migration in local:
        for file in migration.up_files:
            with file.open(encoding="utf-8", errors="replace") as lines:
                for line in itertools.islice(lines, 5):
                    if line.startswith(MANAGED_MARKER):
                        names = line.removeprefix(MANAGED_MARKER).split(",")
                        found.update(n.strip() for n in names if n.strip())
    return found


def source_key(conn: psycopg.Connection, source: bytes) -> str:
    row = conn.execute("SELECT current_database()").fetchone()
    assert row is not None
    return target_cache.cache_key(source, spelling_context(conn), row[0])


def run_inputs(
    conn: psycopg.Connection,
    project: Project,
    source: bytes,
    all_schemas: bool,
    renames: Sequence[str],
) -> RunInputs:
    migrations_dir = folders.find_migrations_dir(project.dir, project.database_name)
    local = folders.local_migrations(migrations_dir)  # listed once, read twice
    applied = state.applied_versions(conn, project.dir, project.database_name)
    pending = [m.version for m in local if m.version not in applied]
    also_manage = _managed_by(local)
    key = source_key(conn, source)
    memo_key = memo.inputs_key(key, project.database_name, also_manage, all_schemas, renames)
    return RunInputs(migrations_dir, applied, pending, also_manage, key, memo_key)


def unchanged_summary(conn: psycopg.Connection, project: Project, inputs: RunInputs) -> str | None:
    """schema.dbml's size as the memo recorded it when the inputs, the catalog and the metadata
    files are exactly as the last run that found no change saw them; None otherwise."""
    if inputs.pending:
        return None
    known = memo.load(project.dir / memo.MEMO)
    if (
        known
        and known.inputs == inputs.memo_key
        and known.catalog == catalog_digest(conn)
        and in_step(project.dir, project.database_name, inputs.memo_key)
    ):
        return known.summary
    return None
