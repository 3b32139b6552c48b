"""`db update`: the one command every team member runs to bring a database up to date, safely.

Order matters: under the migration lock, plan the pending migrations, refuse data-loss hazards
(measured on the live data) before anything changes, back up, apply in one transaction, then
verify against schema.dbml and the replayed migrations. Nothing is ever restored
automatically: a restore would also discard what other sessions wrote meanwhile. A failing
transactional migration rolls back by itself; a failing `-- hasura: no-transaction` one drops the
INVALID indexes it left and stays dirty, and the next `db update` resumes it. The backup is for
an explicit `db revert`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from nself_py.commands import drift
from nself_py.commands.gate import Guard, pass_gate
from nself_py.database import dataloss as hazards
from nself_py.database.apply import (
    Plan,
    database_errors,
    migrate_up,
    migration_lock,
    plan_up,
    resumable_dirty,
)
from nself_py.database.connection import connect
from nself_py.database.dataloss import DataLoss
from nself_py.database.reconcile import reconcile
from nself_py.database.sources import DEFAULT_DATABASE
from nself_py.database.state import state_store
from nself_py.errors import MigrationError, NselfError
from nself_py.migrations.conflicts import Conflict, local_conflicts
from nself_py.migrations.folders import local_migrations
from nself_py.model import Schema
from nself_py.read.dbml import read_dbml

Report = Callable[[str], None]


class MergeConflictRefused(NselfError):
    """Two pending (or a pending and an applied) migrations were generated from the same base
    and change the same table: applying both would repeat or undo one of them."""

    def __init__(self, conflicts: list[Conflict]):
        self.conflicts = conflicts
        listed = "\n".join(f"  {c}" for c in conflicts)
        later = max(c.second.version for c in conflicts)
        super().__init__(
            f"refusing to apply: {len(conflicts)} likely merge conflict(s) (nothing was "
            f"changed):\n{listed}\nTo regenerate: `nself-py db migrate:delete --version "
            f"{later}` (drops the later folder; its change is still in schema.dbml), "
            "`nself-py db update` (applies the other), then `nself-py db run` writes the "
            "change again on top of it."
        )


def written_schema(schema_file: Path) -> Schema | None:
    """schema.dbml read, or None when the project has none (verification then says so)."""
    return read_dbml(schema_file) if schema_file.is_file() else None


@dataclass(frozen=True)
class UpdateResult:
    plan: Plan
    backup_dir: Path | None
    """None when nothing was pending (no backup is needed then)."""
    losses: tuple[DataLoss, ...]
    """Data-loss hazards that --allow-data-loss let through."""
    drift: drift.Drift


def _after_lost_connection(
    url: str, project_dir: Path, database_name: str, where: str, report: Report
) -> None:
    """The connection died mid-run: say, from a fresh one, what the state is and what next."""
    try:
        with connect(url, autocommit=True) as fresh:
            state = state_store(fresh, project_dir, database_name).read(fresh)
    except (NselfError, psycopg.Error):
        report(
            f"the connection was lost and the database cannot be reached now; run "
            f"`nself-py db update{where}` again when it can"
        )
        return
    dirty = sorted(v for v, is_dirty in state.items() if is_dirty)
    said = f"version {dirty[-1]} is dirty; " if dirty else "nothing is half-done; "
    report(
        "the connection was lost mid-run (read again on a fresh connection): "
        f"{said}run `nself-py db update{where}` to finish"
    )


@database_errors
def update(
    url: str,
    project_dir: Path,
    database_name: str,
    migrations_dir: Path,
    written: Schema | None,
    *,
    allow_data_loss: bool = False,
    production: bool = False,
    confirmed: bool = False,
    keep: int | None = None,
    lock_timeout: float = 60.0,
    report: Report = lambda _line: None,
    show_plan: Report = lambda _text: None,
) -> UpdateResult:
    """Back up, apply every pending migration atomically, verify. Raises DataLossRefused,
    ConfirmationRequired (commands/gate.py), or the MigrationError (nothing restored: see the
    module docstring). No question is ever asked."""
    with connect(url, autocommit=True) as conn, migration_lock(conn, lock_timeout, report):
        store = state_store(conn, project_dir, database_name)
        local = local_migrations(migrations_dir) if migrations_dir.is_dir() else []
        before = reconcile(conn, store, local, database_name)
        resuming = resumable_dirty(local, before, store)
        plan = plan_up(local, {v: d for v, d in before.items() if v not in resuming})
        conflicts = local_conflicts(migrations_dir, before) if plan.steps else []
        if conflicts:
            raise MergeConflictRefused(conflicts)
        for version in sorted(resuming):
            report(f"version {version} is dirty (interrupted outside a transaction): resuming it")
        losses = hazards.data_loss(conn, plan.steps)
        backup_dir = pass_gate(
            conn,
            url,
            project_dir,
            database_name,
            plan,
            losses,
            Guard(allow_data_loss, production, confirmed),
            always_backup=True,
            keep=keep,
            report=report,
            show_plan=show_plan,
        )
        if plan.steps:
            where = "" if database_name == DEFAULT_DATABASE else f" --database-name {database_name}"
            try:
                migrate_up(
                    conn,
                    project_dir,
                    database_name,
                    migrations_dir,
                    lock_timeout=lock_timeout,
                    report=report,
                    next_command=f"nself-py db update{where}",
                )
            except MigrationError:
                if conn.closed or conn.broken:
                    _after_lost_connection(url, project_dir, database_name, where, report)
                raise
    with connect(url) as conn:
        found = drift.check_drift(url, conn, written, project_dir, database_name, migrations_dir)
    return UpdateResult(plan, backup_dir, tuple(losses), found)
