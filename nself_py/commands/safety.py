"""The one way `migrate:up`, `migrate:down` and `migrate:goto` change a database: plan
(commands/planners.py), then the gate `db update` passes too (commands/gate.py: data loss,
production, backup), then run.

Every path that changes the schema goes through `guarded_migrate`, so rollbacks (down.sql) are
measured exactly like applies."""

from __future__ import annotations

from pathlib import Path

import psycopg

from nself_py.commands.gate import Guard, Report, pass_gate, require_confirmation
from nself_py.commands.planners import Planner
from nself_py.commands.targets import Target
from nself_py.database.apply import (
    Outcome,
    migrate,
    migration_lock,
)
from nself_py.database.connection import connect
from nself_py.database.dataloss import DataLoss, data_loss
from nself_py.database.housekeeping import Marked, mark_version


def guarded_migrate(
    conn: psycopg.Connection,
    url: str,
    project_dir: Path,
    database_name: str,
    migrations_dir: Path,
    planner: Planner,
    guard: Guard,
    *,
    dry_run: bool = False,
    per_migration_transaction: bool = False,
    lock_timeout: float = 60.0,
    keep: int | None = None,
    report: Report = lambda _line: None,
    show_plan: Report = lambda _text: None,
) -> tuple[Outcome, list[DataLoss]]:
    """Under the migration lock: plan, measure every statement (up or down) on the live data,
    pass the production gate (commands/gate.py), then run (the run plans again under the same
    re-entrant lock and so finds the same steps). A dry run reports the losses it would
    refuse."""
    args = (conn, project_dir, database_name, migrations_dir, planner)
    if dry_run:  # takes no lock, as before
        outcome = migrate(*args, dry_run=True)
        losses = data_loss(conn, outcome.plan.steps) if outcome.plan.steps else []
        for loss in losses:
            report(f"warning: would destroy data (needs --allow-data-loss): {loss}")
        return outcome, losses
    with migration_lock(conn, lock_timeout, report):
        plan = migrate(*args, dry_run=True, report=report).plan  # reviewed (linted) here, once
        losses = data_loss(conn, plan.steps) if plan.steps else []
        pass_gate(
            conn,
            url,
            project_dir,
            database_name,
            plan,
            losses,
            guard,
            always_backup=False,
            keep=keep,
            report=report,
            show_plan=show_plan,
        )
        outcome = migrate(
            *args,
            per_migration_transaction=per_migration_transaction,
            lock_timeout=lock_timeout,
            report=report,
            lint=False,
        )
    return outcome, losses


def migrate_target(
    target: Target,
    planner: Planner,
    guard: Guard,
    *,
    dry_run: bool,
    per_migration_transaction: bool,
    lock_timeout: float,
    keep: int | None,
    report: Report,
    show_plan: Report,
) -> Outcome:
    """`guarded_migrate` on one database, on its own connection."""
    with connect(target.url, autocommit=True) as conn:
        outcome, _ = guarded_migrate(
            conn,
            target.url,
            target.project.dir,
            target.name,
            target.migrations_dir,
            planner,
            guard,
            dry_run=dry_run,
            per_migration_transaction=per_migration_transaction,
            lock_timeout=lock_timeout,
            keep=keep,
            report=report,
            show_plan=show_plan,
        )
    return outcome


def record_version(
    target: Target,
    version: int,
    applied: bool,
    guard: Guard,
    *,
    force: bool,
    dry_run: bool,
    lock_timeout: float,
    report: Report,
) -> Marked:
    """`--skip-execution`: record `version` as applied or not without running it; it changes
    the state, so production needs --confirm as for running it."""
    require_confirmation(guard, f"record {version} as {'applied' if applied else 'not applied'}")
    with connect(target.url, autocommit=True) as conn:
        return mark_version(
            conn,
            target.project.dir,
            target.name,
            target.migrations_dir,
            version,
            applied=applied,
            force=force,
            dry_run=dry_run,
            lock_timeout=lock_timeout,
            report=report,
        )
