"""Refusals shared by `migrate:up`, `migrate:down` and `migrate:goto`: a target must exist, and
then the gate `db update` passes too (commands/gate.py: data loss, production, backup).

Every path that changes the schema goes through `guarded_migrate`, so rollbacks (down.sql) are
measured exactly like applies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg

from nself_py.commands.gate import Guard, Report, pass_gate
from nself_py.database.apply import (
    Outcome,
    Plan,
    migrate,
    migration_lock,
    plan_down,
    plan_goto,
)
from nself_py.database.dataloss import DataLoss, data_loss
from nself_py.errors import ConfigError
from nself_py.migrations.folders import Migration

Planner = Callable[[list[Migration], dict[int, bool]], Plan]


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
        plan = migrate(*args, dry_run=True).plan
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
        )
    return outcome, losses
