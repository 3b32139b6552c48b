"""What `migrate:up/down/goto` and `migrate:squash` would run, as pure functions of the local
migrations and the recorded state (no server needed).

With `--all-databases` a version is a point in time (versions are timestamps): each database
is matched by its own versions at or before it, and the version must be one of some database's,
so a typo is refused rather than taken as a time."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from nself_py.database.apply import GOTO, Plan, plan_down, plan_goto, plan_up
from nself_py.database.squash import snap_range
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


def up_planner(count: int | None, version: int | None, strict_order: bool) -> Planner:
    """`plan_up` with the command's choices bound."""
    return lambda local, state: plan_up(
        local, state, count=count, version=version, strict_order=strict_order
    )


def goto_point_planner(version: int) -> Planner:
    """goto --all-databases: nothing lies between V and a database's newest version at or
    before it, so going there is going to V; without one, every version after V is rolled
    back."""

    def planner(local: list[Migration], state: dict[int, bool]) -> Plan:
        before = [v for v in {m.version for m in local} | set(state) if v <= version]
        if before:
            return plan_goto(local, state, max(before))
        return Plan(GOTO, plan_down(local, state, to_version=version).steps)

    return planner


def down_point_planner(to_version: int) -> Planner:
    """migrate:down --to-version V --all-databases: each database rolls back what is newer
    than V, which need not be one of its own versions."""
    return lambda local, state: plan_down(local, state, to_version=to_version)


def require_known(local_by_database: Iterable[list[Migration]], version: int, option: str) -> None:
    """A version given to several databases must be one of theirs."""
    if not any(m.version == version for local in local_by_database for m in local):
        raise ConfigError(f"{option}: {version} is not a migration of any database")


def squash_range(
    local: list[Migration], from_version: int, to_version: int | None, point_in_time: bool
) -> tuple[int, int | None] | None:
    """The versions one database squashes: as given, or (across databases) its own first and
    last inside the range; None when fewer than two of its own fall inside."""
    if not point_in_time:
        return from_version, to_version
    return snap_range(local, from_version, to_version)
