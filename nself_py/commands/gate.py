"""The one gate between a plan and a changed database, shared by `db update` and
`migrate:up/down/goto` so both refuse, print and back up the same way.

The caller holds the migration lock and has planned and measured the data-loss hazards on the
live data; then, in this order:

1. a statement that would destroy data is refused without --allow-data-loss (nothing changed);
2. with nothing to run nothing more happens: no plan, no question, no backup;
3. on production (--env, else NSELF_ENV, else ENV = prod/production) the plan is printed, and
   without --confirm refused (nothing changed, exit 1);
4. a backup is taken and its path printed (`db update` always; `migrate:*` on production or
   with data loss), then older backups beyond the retention are pruned;
5. each accepted loss, and each table a rollback re-creates empty, is warned about;

and only then does the caller run the plan. Recording a version without running it
(`--skip-execution`) changes the state, so on production it needs --confirm too
(`require_confirmation`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from nself_py.database import backup
from nself_py.database.apply import DOWN, GOTO, UP, Plan
from nself_py.database.dataloss import DataLoss
from nself_py.errors import NselfError
from nself_py.plan.operations import NOT_RESTORED

PRODUCTION_NAMES = ("prod", "production")

Report = Callable[[str], None]


def is_production(env: str | None) -> bool:
    """`--env`, else NSELF_ENV, else ENV names production."""
    name = env or os.environ.get("NSELF_ENV") or os.environ.get("ENV") or ""
    return name.strip().lower() in PRODUCTION_NAMES


class DataLossRefused(NselfError):
    """Planned statements would destroy data and --allow-data-loss was not given."""

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
class Guard:
    """What a command is allowed to do beyond the harmless."""

    allow_data_loss: bool = False
    production: bool = False
    confirmed: bool = False


def require_confirmation(guard: Guard, what: str) -> None:
    """Refuse to `what` (a verb phrase) on production without --confirm."""
    if guard.production and not guard.confirmed:
        raise ConfirmationRequired(
            f"this is a production database: pass --confirm to {what} (nothing was changed)"
        )


def what_runs(plan: Plan) -> str:
    """The plan as a verb phrase: `apply 2 pending migration(s)`, `roll back 1 migration(s)`,
    or for a goto both."""
    ups = sum(step.direction == UP for step in plan.steps)
    downs = len(plan.steps) - ups
    if not downs:
        return f"apply {ups} pending migration(s)"
    if not ups:
        return f"roll back {downs} migration(s)"
    return f"roll back {downs} and apply {ups} migration(s)"


def plan_lines(plan: Plan) -> list[str]:
    """One line a step, with its direction when a goto mixes them."""
    return [
        "  "
        + (f"{step.direction} " if plan.direction == GOTO else "")
        + f"{step.migration.label} ({step.statement_count} statement"
        + ("" if step.statement_count == 1 else "s")
        + (", outside a transaction)" if step.no_transaction else ")")
        for step in plan.steps
    ]


def pass_gate(
    conn: psycopg.Connection,
    url: str,
    project_dir: Path,
    database_name: str,
    plan: Plan,
    losses: list[DataLoss],
    guard: Guard,
    *,
    always_backup: bool,
    keep: int | None,
    report: Report,
    show_plan: Report,
) -> Path | None:
    """Steps 1 to 5 of the module docstring; returns the backup taken, if any."""
    if losses and not guard.allow_data_loss:
        raise DataLossRefused(losses)
    if not plan.steps:
        return None
    if guard.production:
        heading = f"production database {database_name}: to {what_runs(plan)}:"
        show_plan("\n".join([heading, *plan_lines(plan)]))
    require_confirmation(guard, what_runs(plan))
    folder = None
    if always_backup or losses or guard.production:
        folder = backup.backup_database(url, conn, project_dir, database_name)
        report(f"backed up the database to {folder}")
        for pruned in backup.prune_backups(project_dir, keep) if keep is not None else []:
            report(f"pruned old backup {pruned.name}")
    for loss in losses:
        report(f"warning: destroying data (--allow-data-loss): {loss}")
    for note in _not_restored(plan):
        report("warning: " + note)
    return folder


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
