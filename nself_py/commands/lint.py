"""`db lint`: which migrations to review, and the review itself (see migrations/lint.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import psycopg

from nself_py.database.state import applied_versions
from nself_py.errors import NselfError
from nself_py.migrations import lint
from nself_py.migrations.folders import Migration, find_migrations_dir, local_migrations


def _both(migration: Migration) -> lint.Migration:
    """up.sql, then down.sql: both are reviewed, since both may run against live tables."""
    return lint.Migration(migration.label, migration.up_scripts() + migration.down_scripts())


def lint_project(
    project_dir: Path,
    database_name: str,
    conn: psycopg.Connection | None,
    versions: Sequence[int] = (),
) -> list[lint.Review]:
    """Review the named migrations, else the pending ones (every local one without `conn`),
    with live table sizes when connected. Raises MigrationSyntaxError for a file the parser
    rejects, NselfError for an unknown version."""
    migrations_dir = find_migrations_dir(project_dir, database_name)
    local = local_migrations(migrations_dir) if migrations_dir.is_dir() else []
    if versions:
        by_version = {m.version: m for m in local}
        unknown = [str(v) for v in versions if v not in by_version]
        if unknown:
            raise NselfError(f"no migration with version {', '.join(unknown)} in {migrations_dir}")
        chosen = [by_version[v] for v in sorted(set(versions))]
    elif conn is not None:
        applied = applied_versions(conn, project_dir, database_name)
        conn.rollback()
        chosen = [m for m in local if m.version not in applied]
    else:
        chosen = local
    reviews = lint.review_live(conn, [_both(m) for m in chosen])
    if conn is not None:
        conn.rollback()
    return reviews
