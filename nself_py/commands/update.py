"""`db update`: the one command every team member runs to bring a database up to date, safely.

Order matters: under the migration lock, plan the pending migrations, refuse data-loss hazards
(measured on the live data) before anything changes, back up, apply in one transaction, then
verify against schema.dbml and the replayed migrations. A failing migration rolls its
transaction back; only when something was committed outside a transaction (`-- hasura:
no-transaction` migrations, which split the run) is the backup restored, and only when `ask`
agrees.
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
from nself_py.database.apply import Plan, migrate_up, migration_lock, plan_up
from nself_py.database.connection import connect
from nself_py.database.dataloss import DataLoss
from nself_py.database.state import state_store
from nself_py.errors import MigrationError, NselfError
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


def _recover(
    conn: psycopg.Connection,
    url: str,
    before: dict[int, bool],
    store_read: Callable[[], dict[int, bool]],
    backup_dir: Path,
    ask: Ask,
    report: Report,
) -> None:
    """After a failed apply: say what state the database is in, restoring if needed."""
    if store_read() == before:
        report("the failing migration's transaction was rolled back: the database is as before")
        return
    report(
        "some migrations were committed outside a transaction before the failure; the database "
        f"no longer matches the backup in {backup_dir}"
    )
    if not ask(f"Restore the database from {backup_dir}?"):
        report(f"not restored; restore later with `nself-py db revert --backup {backup_dir.name}`")
        return
    backup.restore_backup(url, conn, backup_dir)
    report(f"restored the database from {backup_dir}: it is as before the update")


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
    ConfirmationRequired, or the MigrationError after rolling back / restoring."""
    with connect(url, autocommit=True) as conn, migration_lock(conn, lock_timeout, report):
        store = state_store(conn, project_dir, database_name)
        before = store.read(conn)
        local = local_migrations(migrations_dir) if migrations_dir.is_dir() else []
        plan = plan_up(local, before)
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
            try:
                migrate_up(
                    conn,
                    project_dir,
                    database_name,
                    migrations_dir,
                    lock_timeout=lock_timeout,
                    report=report,
                )
            except MigrationError:
                _recover(
                    conn,
                    url,
                    before,
                    lambda: store.read(conn),
                    backup_dir,
                    ask,
                    report,
                )
                raise
    with connect(url) as conn:
        found = drift.check_drift(url, conn, written, project_dir, database_name, migrations_dir)
    return UpdateResult(plan, backup_dir, tuple(losses), found)
