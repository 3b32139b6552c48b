"""`db run`: schema.dbml and the live catalog in, a reviewed up/down migration out.

The steps are the pipeline's modules in order: read the DBML, canonicalize it through the live
server, introspect the managed schemas, diff, render, back up, write. The database itself is
never changed by a run: canonicalization happens in a transaction that is always rolled back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from . import backup, migrations, state
from .canonical import canonicalize
from .diff import diff
from .errors import NselfError
from .introspect import introspect
from .model import Schema
from .operations import Operation
from .render import render_migration

CANONICAL_CACHE = Path(".nself") / "canonical-cache.json"


class PendingMigrationsError(NselfError):
    """Local migrations the database has not applied: a new diff would repeat them."""


@dataclass(frozen=True)
class Plan:
    current: Schema
    target: Schema
    operations: tuple[Operation, ...]
    up_sql: str
    down_sql: str

    @property
    def hazards(self) -> list[str]:
        return [f"{h.kind}: {h.message}" for op in self.operations for h in op.hazards]


def plan(conn: psycopg.Connection, written: Schema, cache_file: Path | None = None) -> Plan:
    """Diff the live database against a model as written in DBML (pure apart from reading)."""
    target = canonicalize(conn, written, cache_file)
    current = introspect(conn, target.schemas)
    operations = tuple(diff(current, target, managed_schemas=target.schemas))
    up_sql, down_sql = render_migration(operations) if operations else ("", "")
    return Plan(current, target, operations, up_sql, down_sql)


def change_summary(operations: tuple[Operation, ...]) -> str:
    """`2 tables added, 1 column altered`: counts per (object, verb) in first-seen order."""
    counts = Counter(op.summary for op in operations)
    parts = []
    for (noun, verb), count in counts.items():
        plural = noun if count == 1 else (noun[:-1] + "ies" if noun.endswith("y") else noun + "s")
        parts.append(f"{count} {plural} {verb}")
    return ", ".join(parts)


def migration_name(operations: tuple[Operation, ...]) -> str:
    """`add_posts_table`, `alter_users`, or `schema_update` when the change is mixed."""
    subjects = {op.subject for op in operations}
    kinds = {op.summary for op in operations}
    if len(subjects) == 1:
        subject = next(iter(subjects))
        if kinds == {("table", "added")}:
            return f"add_{subject.name}_table"
        if kinds == {("table", "dropped")}:
            return f"drop_{subject.name}_table"
        if kinds == {("enum", "added")}:
            return f"add_{subject.name}_enum"
        return f"alter_{subject.name}"
    if kinds == {("table", "added")} and len(subjects) <= 3:
        return "add_" + "_".join(sorted(s.name for s in subjects)) + "_tables"
    return "schema_update"


def safe_name(name: str) -> str:
    """A migration name usable as a folder name: lowercase words joined by `_`."""
    cleaned = "".join(ch if ch.isalnum() else "_" for ch in name.lower()).strip("_")
    while "__" in cleaned:
        cleaned = cleaned.replace("__", "_")
    return cleaned[:80] or "schema_update"


@dataclass(frozen=True)
class RunResult:
    plan: Plan
    backup_dir: Path | None
    migration_dir: Path | None


def unapplied_local_versions(
    conn: psycopg.Connection, project_dir: Path, database_name: str, migrations_dir: Path
) -> list[int]:
    applied = state.applied_versions(conn, project_dir, database_name)
    local = migrations.local_migrations(migrations_dir) if migrations_dir.is_dir() else []
    return [m.version for m in local if m.version not in applied]


def run(
    conn: psycopg.Connection,
    url: str,
    written: Schema,
    *,
    project_dir: Path,
    database_name: str = "default",
    name: str | None = None,
    dry_run: bool = False,
    force: bool = False,
    make_backup: bool = True,
    report: Callable[[str], None] = lambda _line: None,
) -> RunResult:
    """Write the migration that takes the live database to `written` (nothing when equal).

    A backup is taken only when there is something to migrate: a run that finds no change
    leaves nothing behind, which keeps the common case fast."""
    migrations_dir = project_dir / "hasura" / "migrations" / database_name
    pending = unapplied_local_versions(conn, project_dir, database_name, migrations_dir)
    if pending and not force:
        listed = ", ".join(str(v) for v in pending[:5]) + (" …" if len(pending) > 5 else "")
        raise PendingMigrationsError(
            f"the database has not applied {len(pending)} local migration(s) ({listed}); a new "
            "diff would repeat them. Apply them first (`nself-py db migrate:up`, or `db update`), "
            "or pass --force."
        )
    result = plan(conn, written, project_dir / CANONICAL_CACHE)
    conn.rollback()
    if not result.operations:
        return RunResult(result, None, None)
    report(f"Schema changes detected: {change_summary(result.operations)}")
    if dry_run:
        return RunResult(result, None, None)
    backup_dir = None
    if make_backup:
        applied = state.applied_versions(conn, project_dir, database_name)
        full = introspect(conn)
        conn.rollback()
        backup_dir = backup.take_backup(url, conn, project_dir, full, applied)
        report(f"Backed up database to {backup_dir.relative_to(project_dir)}")
    folder = migrations.write_migration(
        migrations_dir,
        safe_name(name or migration_name(result.operations)),
        result.up_sql,
        result.down_sql,
    )
    return RunResult(result, backup_dir, folder)
