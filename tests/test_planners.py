"""What migrate:up/down/goto and migrate:squash plan, without a server: local folders on disk
and a recorded state are all the planners read."""

from __future__ import annotations

from pathlib import Path

import pytest

from nself_py.commands.planners import (
    down_planner,
    down_point_planner,
    goto_point_planner,
    require_known,
    squash_range,
    up_planner,
)
from nself_py.database.apply import Plan
from nself_py.errors import ConfigError, NselfError
from nself_py.migrations.folders import Migration, local_migrations, write_migration

T10, T20, T30 = 1700000000010, 1700000000020, 1700000000030


def folders(tmp_path: Path, *versions: int) -> list[Migration]:
    for v in versions:
        write_migration(tmp_path, f"m{v % 100}", "SELECT 1;", "SELECT 2;", version=v)
    return local_migrations(tmp_path)


def steps(plan: Plan) -> list[tuple[str, int]]:
    return [(step.direction, step.migration.version) for step in plan.steps]


def applied(*versions: int) -> dict[int, bool]:
    return dict.fromkeys(versions, False)


def test_goto_a_point_in_time_goes_to_the_newest_version_at_or_before_it(tmp_path):
    local = folders(tmp_path, T10, T20, T30)
    planner = goto_point_planner(T20 + 5)
    assert steps(planner(local, applied(T10, T20, T30))) == [("down", T30)]
    assert steps(planner(local, applied(T10))) == [("up", T20)]
    assert steps(planner(local, applied(T10, T20))) == []


def test_goto_a_point_before_every_version_rolls_everything_back(tmp_path):
    local = folders(tmp_path, T20, T30)
    plan = goto_point_planner(T10)(local, applied(T20, T30))
    assert plan.direction == "goto"
    assert steps(plan) == [("down", T30), ("down", T20)]


def test_down_to_a_point_rolls_back_what_is_newer(tmp_path):
    local = folders(tmp_path, T10, T20, T30)
    assert steps(down_point_planner(T10 + 5)(local, applied(T10, T20, T30))) == [
        ("down", T30),
        ("down", T20),
    ]


def test_one_database_down_refuses_targets_that_do_not_exist(tmp_path):
    local = folders(tmp_path, T10, T20)
    with pytest.raises(ConfigError, match="only 1 applied"):
        down_planner(2, None, None)(local, applied(T10))
    with pytest.raises(ConfigError, match="--to-version 1700000000020: not applied"):
        down_planner(None, T20, None)(local, applied(T10))
    with pytest.raises(ConfigError, match="no such migration"):
        down_planner(None, T30, None)(local, applied(T10))
    assert steps(down_planner(None, T10, None)(local, applied(T10, T20))) == [("down", T20)]


def test_up_binds_its_choices(tmp_path):
    local = folders(tmp_path, T10, T20, T30)
    assert steps(up_planner(1, None, False)(local, {})) == [("up", T10)]
    assert steps(up_planner(None, T20, False)(local, {})) == [("up", T20)]
    with pytest.raises(NselfError, match="older"):
        up_planner(None, None, True)(local, applied(T20))


def test_a_version_for_several_databases_must_be_one_of_theirs(tmp_path):
    first = folders(tmp_path / "a", T10)
    second = folders(tmp_path / "b", T20)
    require_known([first, second], T20, "--to")
    with pytest.raises(ConfigError, match="--to: 1700000000030 is not a migration of any database"):
        require_known([first, second], T30, "--to")


def test_squash_range_is_taken_as_given_or_snapped_to_each_database(tmp_path):
    local = folders(tmp_path, T10, T20, T30)
    assert squash_range(local, T10 - 5, None, point_in_time=False) == (T10 - 5, None)
    assert squash_range(local, T10 - 5, T20 + 5, point_in_time=True) == (T10, T20)
    assert squash_range(local, T20 + 5, None, point_in_time=True) is None
