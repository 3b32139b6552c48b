"""`db run --force` with pending migrations (a teammate's, just pulled): diff against the schema
the database will have once they are applied, so the new migration never repeats them.

The applied and then the pending migrations are replayed into a scratch database (as the drift
check does). The replay of the applied ones must equal the live database first: otherwise the
replay is not what the pending migrations will run on, and the run is refused."""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path

import psycopg

from nself_py.database import state
from nself_py.database.scratch import ScratchUnavailable, run_scripts, scratch_database
from nself_py.errors import NselfError
from nself_py.migrations.folders import Migration, local_migrations
from nself_py.model import Schema
from nself_py.plan.diff import diff
from nself_py.read.introspect import introspect


class CannotReplayPending(NselfError):
    """The pending migrations could not be replayed to diff on top of them."""


def _replay(conn: psycopg.Connection, migrations: list[Migration]) -> None:
    for migration in migrations:
        try:
            run_scripts(conn, migration.up_scripts())
        except psycopg.Error as error:
            message = (error.diag.message_primary or str(error)).strip()
            raise CannotReplayPending(
                f"replaying {migration.label} into a scratch database failed: {message}; "
                "apply the pending migrations first (`nself-py db update`), then `db run`"
            ) from None


def schema_with_pending(
    url: str,
    conn: psycopg.Connection,
    project_dir: Path,
    database_name: str,
    migrations_dir: Path,
    managed: Collection[str],
    report: Callable[[str], None],
) -> Schema:
    """The live schema as it will be after the pending migrations."""
    applied = state.applied_versions(conn, project_dir, database_name)
    local = {m.version: m for m in local_migrations(migrations_dir)}
    missing = sorted(set(applied) - set(local))
    if missing:
        raise CannotReplayPending(
            f"cannot replay the migrations: {', '.join(map(str, missing))} applied but not in "
            "the migrations directory; apply the pending migrations first (`db update`)"
        )
    pending = [local[v] for v in sorted(local) if v not in applied]
    live = introspect(conn)
    conn.rollback()
    try:
        with scratch_database(url, "pending") as replay:
            _replay(replay, [local[v] for v in sorted(applied)])
            before = introspect(replay)
            _replay(replay, pending)
            after = introspect(replay)
    except ScratchUnavailable as error:
        raise CannotReplayPending(
            f"{error}; apply the pending migrations first (`nself-py db update`), then `db run`"
        ) from None
    schemas = set(managed) | set(live.schemas) | set(before.schemas)
    if list(diff(live, before, managed_schemas=schemas)):
        raise CannotReplayPending(
            "the database is not what its applied migrations produce (see `nself-py db status "
            "--check-drift`), so the pending migrations cannot be replayed faithfully; apply "
            "them first (`nself-py db update`), then `db run`"
        )
    report(
        f"diffing against the database with its {len(pending)} pending migration(s) applied "
        "(replayed in a scratch database), so the new migration does not repeat them"
    )
    return after
