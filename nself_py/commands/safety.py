"""Refusals shared by `migrate:up`, `migrate:down` and `migrate:goto`: a target must exist, a
statement that would destroy live data runs only with --allow-data-loss (after a backup), and a
production database only with --confirm.

Every path that changes the schema goes through `guarded_migrate`, so rollbacks (down.sql) are
measured exactly like applies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from nself_py.commands.update import ConfirmationRequired, DataLossRefused
from nself_py.database.apply import (
    DOWN,
    Outcome,
    Plan,
    migrate,
    migration_lock,
    plan_down,
    plan_goto,
)
from nself_py.database.backup import backup_database
from nself_py.database.dataloss import DataLoss, data_loss
from nself_py.errors import ConfigError
from nself_py.migrations.folders import Migration
from nself_py.plan.operations import NOT_RESTORED

Planner = Callable[[list[Migration], dict[int, bool]], Plan]
Report = Callable[[str], None]


def down_planner(count: int | None, to_version: int | None, version: int | None) -> Planner:
    """`plan_down` that refuses a target that does not exist instead of rolling back
    everything: an unknown --to-version, or a count larger than what is applied."""

    def planner(local: list[Migration], state: dict[int, bool]) -> Plan:
        applied = len(state)
        if count is not None and count > applied:
            raise ConfigError(
                f"cannot roll back {count} migration(s): only {applied} applied "
                "(nothing was run); give N at most "
                f"{applied} or --to-version V"
            )
        if to_version is not None and to_version not in state:
            known = {m.version for m in local}
            where = "not applied" if to_version in known else "no such migration"
            raise ConfigError(
                f"--to-version {to_version}: {where}; it must name an applied version, which "
                "stays applied (nothing was run)"
            )
        return plan_down(local, state, count=count, to_version=to_version, version=version)

    return planner


def goto_planner(version: int) -> Planner:
    """`plan_goto`, which already refuses a version that is neither local nor applied."""
    return lambda local, state: plan_goto(local, state, version)


@dataclass(frozen=True)
class Guard:
    """What a migrate command is allowed to do beyond the harmless."""

    allow_data_loss: bool = False
    production: bool = False
    confirmed: bool = False


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
    report: Report = lambda _line: None,
    show_plan: Callable[[Plan], None] = lambda _plan: None,
) -> tuple[Outcome, list[DataLoss]]:
    """Under the migration lock: plan, measure every statement (up or down) on the live data,
    refuse losses without --allow-data-loss and production without --confirm, back up before
    anything destructive, then run (the run plans again under the same re-entrant lock and so
    finds the same steps). A dry run reports the losses it would refuse."""
    args = (conn, project_dir, database_name, migrations_dir, planner)
    if dry_run:  # takes no lock, as before
        outcome = migrate(*args, dry_run=True)
        losses = data_loss(conn, outcome.plan.steps) if outcome.plan.steps else []
        for loss in losses:
            report(f"warning: would destroy data (needs --allow-data-loss): {loss}")
        return outcome, losses
    with migration_lock(conn, lock_timeout, report):
        plan = migrate(*args, dry_run=True).plan
        losses = data_loss(conn, plan.steps) if plan.steps else []
        if losses and not guard.allow_data_loss:
            raise DataLossRefused(losses)
        if guard.production and plan.steps:
            show_plan(plan)
            if not guard.confirmed:
                what = {"up": "apply", "down": "roll back"}.get(plan.direction, "run")
                pending = " pending" if plan.direction == "up" else ""
                raise ConfirmationRequired(
                    f"this is a production database: pass --confirm to {what} "
                    f"{len(plan.steps)}{pending} migration(s) (nothing was changed)"
                )
        if plan.steps and (losses or guard.production):
            folder = backup_database(url, conn, project_dir, database_name)
            report(f"backed up the database to {folder}")
        for loss in losses:
            report(f"warning: destroying data (--allow-data-loss): {loss}")
        for note in _not_restored(plan):
            report("warning: " + note)
        outcome = migrate(
            *args,
            per_migration_transaction=per_migration_transaction,
            lock_timeout=lock_timeout,
            report=report,
        )
    return outcome, losses


def _not_restored(plan: Plan) -> list[str]:
    """The NOT_RESTORED hazards `db run` wrote into the down.sql files about to run: what a
    rollback re-creates empty."""
    marker = f"-- HAZARD: {NOT_RESTORED}: "
    return [
        f"{step.migration.label}: {line.removeprefix(marker)}"
        for step in plan.steps
        if step.direction == DOWN
        for script in step.scripts
        for line in script.file.read_text(encoding="utf-8").splitlines()
        if line.startswith(marker)
    ]
