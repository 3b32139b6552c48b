"""`db status`: each database's migrations, which pending ones are blocked, likely merge
conflicts, and (with --check-drift) the live schema against schema.dbml and the applied
migrations. The CLI words the hints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nself_py.commands.drift import Drift, check_drift
from nself_py.commands.targets import Target
from nself_py.commands.update import written_schema
from nself_py.database.apply import (
    APPLIED,
    DIRTY,
    MODIFIED,
    OUT_OF_ORDER,
    PENDING,
    Status,
    migration_status,
)
from nself_py.database.connection import connect
from nself_py.migrations.conflicts import Conflict, local_conflicts
from nself_py.migrations.folders import local_migrations


@dataclass(frozen=True)
class StatusReport:
    """One database's status and what follows from it."""

    status: Status
    blocked: dict[int, list[int]]
    conflicts: list[Conflict]

    @property
    def needs_attention(self) -> bool:
        """A modified or dirty row: `db status` exits 1."""
        return any(r.status in (MODIFIED, DIRTY) for r in self.status.rows)


def read_status(target: Target) -> Status:
    """The rows `hasura migrate status` would show."""
    with connect(target.url, autocommit=True) as conn:
        return migration_status(conn, target.project.dir, target.name, target.migrations_dir)


def status_report(target: Target) -> StatusReport:
    status = read_status(target)
    blocked = blocked_by(status, target.migrations_dir)
    applied = {r.version for r in status.rows if r.status in (APPLIED, MODIFIED)}
    conflicts = local_conflicts(target.migrations_dir, applied)
    return StatusReport(status, blocked, conflicts)


def drift_of(target: Target) -> Drift:
    """`db status --check-drift`: the live database against schema.dbml and the migrations."""
    written = written_schema(target.project.schema_file)
    with connect(target.url) as conn:
        return check_drift(
            target.url, conn, written, target.project.dir, target.name, target.migrations_dir
        )


def blocked_by(status: Status, migrations_dir: Path) -> dict[int, list[int]]:
    """Pending versions whose `-- depends_on:` names a version that is neither a local folder
    nor applied: migrate:up refuses them, so status shows them as blocked."""
    known = {r.version for r in status.rows}
    pending = {r.version for r in status.rows if r.status in (PENDING, OUT_OF_ORDER)}
    blocked: dict[int, list[int]] = {}
    for migration in local_migrations(migrations_dir):
        if migration.version in pending:
            needs = [v for v, _ in migration.depends_on() if v not in known]
            if needs:
                blocked[migration.version] = needs
    return blocked
