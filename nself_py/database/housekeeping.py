"""Fixing the record by hand, safely: mark a migration applied or not without running it, and
delete migrations from the state and the directory.

Hasura's `migrate apply --skip-execution` and `migrate delete` write whatever they are told. Here
a mark is refused when the live schema clearly disagrees with it (the table the up.sql creates
is missing, say) unless forced, every write takes the migration lock and happens in one
transaction with our log, and a deletion is planned first so the CLI can show it before asking.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import psycopg

from nself_py.database.apply import Report, database_errors, migration_lock, no_report
from nself_py.database.schemacheck import disagreements, expectations, inverted
from nself_py.database.state import StateStore, log_applied, log_removed, prepare_log, state_store
from nself_py.errors import NselfError
from nself_py.migrations.folders import local_migrations, scripts_sha256, version_entries


@dataclass(frozen=True)
class Marked:
    version: int
    applied: bool
    store: str
    disagreements: tuple[str, ...]
    """What the schema check found (only non-empty when forced)."""
    checked: bool
    """False when there was no local up.sql to check against."""


@database_errors
def mark_version(
    conn: psycopg.Connection,
    project_dir: Path,
    database_name: str,
    migrations_dir: Path,
    version: int,
    *,
    applied: bool,
    force: bool = False,
    dry_run: bool = False,
    lock_timeout: float = 60.0,
    report: Report = no_report,
) -> Marked:
    """Record `version` as applied (or not) without running its SQL.

    Marking a dirty version is allowed: it is how a half-done migration finished by hand is
    settled. `conn` must be in autocommit mode."""
    migration = next((m for m in local_migrations(migrations_dir) if m.version == version), None)
    store = state_store(conn, project_dir, database_name)
    with migration_lock(conn, lock_timeout, report):
        state = store.read(conn)
        if applied and migration is None:
            raise NselfError(f"no migration with version {version} in {migrations_dir}")
        if migration is not None and applied and state.get(version) is False:
            raise NselfError(f"migration {migration.label} is already applied")
        if not applied and version not in state:
            raise NselfError(f"version {version} is not applied")
        found: tuple[str, ...] = ()
        scripts = migration.up_scripts() if migration else ()
        if migration is not None:
            expected = expectations(s for script in scripts for s in script.statements)
            found = tuple(disagreements(conn, expected if applied else inverted(expected)))
        if migration is not None and found and not force:
            said = "applied" if applied else "not applied"
            raise NselfError(
                f"refusing to mark {migration.label} as {said}: the database disagrees:\n  "
                + "\n  ".join(found)
                + "\nrun the migration instead, or pass --force if you are sure"
            )
        if not dry_run:
            _record(conn, store, database_name, version, applied, scripts)
    return Marked(version, applied, store.describe(), found, migration is not None)


def _record(
    conn: psycopg.Connection,
    store: StateStore,
    database_name: str,
    version: int,
    applied: bool,
    scripts: tuple,
) -> None:
    with conn.transaction():
        store.prepare(conn)
        prepare_log(conn)
        if applied:
            log_applied(conn, database_name, {version: scripts_sha256(scripts)})
        else:
            log_removed(conn, database_name, [version])
        # last: a store in the metadata database commits on its own connection
        store.write(conn, {version: False if applied else None})


@dataclass(frozen=True)
class Deletion:
    """What a delete will remove: versions from the state store, paths from the directory."""

    state_versions: tuple[int, ...]
    paths: tuple[Path, ...]


@database_errors
def plan_deletion(
    conn: psycopg.Connection,
    project_dir: Path,
    database_name: str,
    migrations_dir: Path,
    version: int | None,
    *,
    server_only: bool = False,
) -> Deletion:
    """`version`, or every migration when None; local paths are kept when `server_only`."""
    state = state_store(conn, project_dir, database_name).read(conn)
    local = [m.version for m in local_migrations(migrations_dir)]
    if version is None:
        in_state, on_disk = sorted(state), local
    else:
        if version not in state and version not in local:
            raise NselfError(
                f"version {version} not found: not in {migrations_dir} and not applied"
            )
        in_state = [version] if version in state else []
        on_disk = [version] if version in local else []
    paths = [] if server_only else [p for v in on_disk for p in version_entries(migrations_dir, v)]
    return Deletion(tuple(in_state), tuple(paths))


@database_errors
def delete(
    conn: psycopg.Connection,
    project_dir: Path,
    database_name: str,
    deletion: Deletion,
    *,
    lock_timeout: float = 60.0,
    report: Report = no_report,
) -> None:
    """Remove the state rows (one transaction, under the lock), then the local paths."""
    if deletion.state_versions:
        store = state_store(conn, project_dir, database_name)
        with migration_lock(conn, lock_timeout, report), conn.transaction():
            store.prepare(conn)
            prepare_log(conn)
            log_removed(conn, database_name, list(deletion.state_versions))
            store.write(conn, dict.fromkeys(deletion.state_versions))
    for path in deletion.paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
