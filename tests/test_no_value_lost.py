"""Issue 11, property style: random schema.dbml edits over a populated database, each applied
through a rotating command path (update, migrate:up, goto, then a migrate:down and up again).
Without --allow-data-loss no value is ever lost; with it, every lost value was named first.

Bounded and seeded: 20 edits, one RNG seed, so a failure reproduces exactly."""

from __future__ import annotations

import contextlib
import random
import shutil
from pathlib import Path

import psycopg
import pytest
from helpers import make_project, mdir

from nself_py.commands import run as engine
from nself_py.commands.gate import Guard
from nself_py.commands.planners import down_planner, goto_planner
from nself_py.commands.project import Project
from nself_py.commands.safety import guarded_migrate
from nself_py.commands.update import update
from nself_py.database.apply import plan_up
from nself_py.errors import NselfError
from nself_py.migrations.folders import local_migrations
from nself_py.read.dbml import read_dbml

COLUMNS = {
    "name": ["text", "varchar(5)", "varchar(300)"],
    "qty": ["int", "smallint", "bigint", "numeric(12,2)"],
    "price": ["numeric(10,2)", "numeric(10,0)", "numeric(14,4)", "text"],
    "at": ["timestamptz", "date", "timestamp"],
    "note": ["text", "varchar(3)"],
}


def _dbml(columns: dict[str, str], with_tags: bool) -> str:
    body = "\n".join(f"  {name} {kind}" for name, kind in columns.items())
    tags = "Table tags {\n  id int [pk]\n  label text\n}\n" if with_tags else ""
    return f"Table items {{\n  id int [pk]\n{body}\n}}\n{tags}"


def _values(conn: psycopg.Connection) -> dict[tuple[str, str, int], str | None]:
    """Every value of every user table, as text, by (table, column, id)."""
    found = {}
    for (table,) in conn.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
        "AND relkind = 'r' ORDER BY 1"
    ).fetchall():
        cur = conn.execute(f'SELECT * FROM "{table}"')
        names = [d.name for d in cur.description]
        for row in cur.fetchall():
            for name, value in zip(names, row, strict=True):
                found[table, name, row[0]] = None if value is None else str(value)
    conn.rollback()
    return found


def _lost(before: dict, after: dict) -> set[tuple[str, str]]:
    """(table, column) whose non-null values did not survive: gone, or changed in text
    (a retype may respell a value; compared after the same cast, see `_same`)."""
    lost = set()
    for key, value in before.items():
        if value is None:
            continue
        if key not in after or not _same(value, after[key]):
            lost.add(key[:2])
    return lost


def _same(old: str, new: str | None) -> bool:
    if new is None:
        return False
    if old == new:
        return True
    try:  # 5 -> 5.00, 2024-01-01 00:00:00+00:00 -> 2024-01-01 ...: the same number or instant
        return float(old) == float(new)
    except ValueError:
        return new.startswith(old[:10]) and old[10:].strip(" :0+") == ""


def _populate(conn: psycopg.Connection, rng: random.Random) -> None:
    for i in range(1, 31):
        conn.execute(
            "INSERT INTO items VALUES (%s, %s, %s, %s, %s, %s)",
            (
                i,
                "x" * rng.randint(1, 8),
                rng.randint(-40000, 40000),
                round(rng.uniform(0, 100), 2),
                f"2024-01-0{1 + i % 9} {i % 24:02}:30:00+00",
                None if i % 3 else "abcdef"[: rng.randint(1, 6)],
            ),
        )
    conn.execute("INSERT INTO tags SELECT i, 'tag ' || i FROM generate_series(1, 5) i")
    conn.commit()


def _apply(path: str, url: str, conn, project: Path, allow: bool) -> list:
    """Apply every pending migration through `path`; the data losses it named."""
    with psycopg.connect(url, autocommit=True) as auto:
        if path == "update":
            written = read_dbml(project / "schema.dbml")
            result = update(url, project, "default", mdir(project), written, allow_data_loss=allow)
            return list(result.losses)
        local = local_migrations(mdir(project))
        if path == "goto":
            planner = goto_planner(local[-1].version)
        elif path == "down-up":  # roll the newest applied one back first, then everything up
            _, losses = guarded_migrate(
                auto,
                url,
                project,
                "default",
                mdir(project),
                down_planner(1, None, None),
                Guard(allow),
            )
            planner = lambda local, state: plan_up(local, state)  # noqa: E731
            _, more = guarded_migrate(
                auto, url, project, "default", mdir(project), planner, Guard(allow)
            )
            return losses + more
        else:
            planner = lambda local, state: plan_up(local, state)  # noqa: E731
        _, losses = guarded_migrate(
            auto, url, project, "default", mdir(project), planner, Guard(allow)
        )
        return losses


@pytest.mark.parametrize("allow", [False, True], ids=["refused", "allowed"])
def test_random_edits_never_lose_an_unnamed_value(
    db_url: str, tmp_path: Path, allow: bool, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("PGTZ", "UTC")  # every session, the migrations' too, reads UTC
    rng = random.Random(11)
    columns = {name: kinds[0] for name, kinds in COLUMNS.items()}
    with_tags = True
    project = make_project(tmp_path, _dbml(columns, with_tags))
    with psycopg.connect(db_url) as conn:
        engine.run(Project(project, db_url), engine.RunOptions(make_backup=False))
        _apply("migrate:up", db_url, conn, project, allow)
        _populate(conn, rng)
        paths = ["update", "migrate:up", "goto", "down-up"]
        outcomes = {"applied": 0, "refused": 0, "lost": 0}
        for step in range(20):
            edited, tags = dict(columns), with_tags
            choice = rng.random()
            if choice < 0.6:
                name = rng.choice(list(COLUMNS))
                edited[name] = rng.choice(COLUMNS[name])
            elif choice < 0.8 and len(edited) > 1:
                edited.pop(rng.choice(list(edited)))
            elif choice < 0.9:
                tags = not tags
            else:
                missing = [n for n in COLUMNS if n not in edited]
                if missing:
                    edited[missing[0]] = COLUMNS[missing[0]][0]
            (project / "schema.dbml").write_text(_dbml(edited, tags))
            before = _values(conn)
            named: list = []
            folders = {p.name for p in mdir(project).iterdir()}
            try:
                result = engine.run(
                    Project(project, db_url),
                    engine.RunOptions(make_backup=False, allow_data_loss=allow),
                )
                conn.rollback()
                if result.migration_dir is not None:
                    named = _apply(paths[step % len(paths)], db_url, conn, project, allow)
                columns, with_tags = edited, tags
                outcomes["applied"] += 1
            except NselfError:
                conn.rollback()
                outcomes["refused"] += 1
                for folder in mdir(project).iterdir():  # the unapplied migration goes
                    if folder.name not in folders:
                        shutil.rmtree(folder)
                (project / "schema.dbml").write_text(_dbml(columns, with_tags))
                with contextlib.suppress(NselfError):  # a rolled-back down-up goes back up
                    _apply("migrate:up", db_url, conn, project, allow)
            lost = _lost(before, _values(conn))
            outcomes["lost"] += len(lost)
            if not allow:
                assert not lost, (step, lost)
            else:
                said = " ".join(str(loss) for loss in named)
                for table, column in lost:
                    assert f"{table}.{column}" in said or f"table public.{table}" in said, (
                        step,
                        table,
                        column,
                        said,
                    )
        # both halves must have had something to check: refusals without the flag, named
        # losses with it
        assert outcomes["applied"] >= 5, outcomes
        assert outcomes["lost"] if allow else outcomes["refused"], outcomes
