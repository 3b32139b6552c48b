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

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from nself_py.commands import drift
from nself_py.database import backup
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

PRODUCTION_NAMES = ("prod", "production")

Report = Callable[[str], None]
Ask = Callable[[str], bool]


def is_production(env: str | None) -> bool:
    """`--env`, else NSELF_ENV, else ENV names production."""
    name = env or os.environ.get("NSELF_ENV") or os.environ.get("ENV") or ""
    return name.strip().lower() in PRODUCTION_NAMES


class DataLossRefused(NselfError):
    """Pending migrations would destroy data and --allow-data-loss was not given."""

    def __init__(self, losses: list[DataLoss]):
        self.losses = losses
        listed = "\n".join(f"  {loss}" for loss in losses)
        super().__init__(
            f"refusing to apply: {len(losses)} statement(s) of the pending migrations would "
            f"destroy data (nothing was changed):\n{listed}\n"
            "Review them; pass --allow-data-loss to apply anyway (a backup is taken first)."
        )


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


class ConfirmationRequired(NselfError):
    """Production databases are only changed with --confirm."""


@dataclass(frozen=True)
class UpdateResult:
    plan: Plan
    backup_dir: Path | None
    """None when nothing was pending (no backup is needed then)."""
    losses: tuple[DataLoss, ...]
    """Data-loss hazards that --allow-data-loss let through."""
    drift: drift.Drift


def _describe_plan(plan: Plan) -> list[str]:
    return [
        f"  {step.migration.label} ({step.statement_count} statement"
        + ("" if step.statement_count == 1 else "s")
        + (", outside a transaction)" if step.no_transaction else ")")
        for step in plan.steps
    ]


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
    ask: Ask = lambda _question: False,
    report: Report = lambda _line: None,
) -> UpdateResult:
    """Back up, apply every pending migration atomically, verify. Raises DataLossRefused,
    ConfirmationRequired, or the MigrationError (nothing restored: see the module docstring).
    `ask` is kept for callers; no question is asked any more."""
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
        if losses and not allow_data_loss:
            raise DataLossRefused(losses)
        backup_dir = None
        if plan.steps:
            if production and not confirmed:
                raise ConfirmationRequired(
                    "this is a production database: pass --confirm to apply "
                    f"{len(plan.steps)} pending migration(s) (nothing was changed):\n"
                    + "\n".join(_describe_plan(plan))
                )
            backup_dir = backup.backup_database(url, conn, project_dir, database_name)
            report(f"backed up the database to {backup_dir}")
            if keep is not None:
                for folder in backup.prune_backups(project_dir, keep):
                    report(f"pruned old backup {folder.name}")
            if production:
                report("applying:\n" + "\n".join(_describe_plan(plan)))
            for loss in losses:
                report(f"warning: applying with data loss (--allow-data-loss): {loss}")
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
