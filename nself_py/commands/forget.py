"""`migrate:delete`: forget migrations on one or every database, planned on all of them before
anything is removed from any, so one question covers the lot."""

from __future__ import annotations

from collections.abc import Callable

from nself_py.commands.targets import Target
from nself_py.database.connection import connect
from nself_py.database.housekeeping import Deletion, delete, plan_deletion

Planned = list[tuple[Target, Deletion]]


def plan_forgetting(targets: list[Target], version: int | None, server_only: bool) -> Planned:
    """Each database with something to remove (state rows, and without --server folders)."""
    planned = []
    for target in targets:
        with connect(target.url, autocommit=True) as conn:
            args = (conn, target.project.dir, target.name, target.migrations_dir)
            deletion = plan_deletion(*args, version, server_only=server_only)
        if deletion.state_versions or deletion.paths:
            planned.append((target, deletion))
    return planned


def forget(planned: Planned, report: Callable[[str], None]) -> tuple[int, int]:
    """Carry out what `plan_forgetting` found; returns the state rows and paths removed."""
    for target, deletion in planned:
        with connect(target.url, autocommit=True) as conn:
            delete(conn, target.project.dir, target.name, deletion, report=report)
    rows = sum(len(d.state_versions) for _, d in planned)
    return rows, sum(len(d.paths) for _, d in planned)
