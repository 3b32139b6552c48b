"""Renames never become drop + add silently: hints, candidates, and data that survives."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from helpers import ROOT, make_project, migration_dirs, nself

from nself_py.commands import run as engine
from nself_py.commands import run_plan
from nself_py.model import Name
from nself_py.plan.renames import RenameError, parse_hints
from nself_py.read.dbml import parse_dbml

LIVE = """
CREATE SCHEMA crm;
CREATE TABLE users (id int PRIMARY KEY, fullname text NOT NULL, age int);
INSERT INTO users VALUES (1, 'Ada Lovelace', 36), (2, 'Alan Turing', 41);
CREATE TABLE crm.people (id int PRIMARY KEY, note text);
INSERT INTO crm.people VALUES (7, 'kept');
"""

TARGET = """
Table users {
  id int [pk]
  name text [not null]
  age int
}
Table crm.persons {
  id int [pk]
  note text
}
"""


def _project(url: str, tmp_path: Path) -> Path:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(LIVE)
    return make_project(tmp_path, TARGET)


def test_rename_hints_rename_and_keep_the_data(any_db_url: str, tmp_path: Path) -> None:
    project = _project(any_db_url, tmp_path)
    run = nself(
        project, any_db_url, "db", "run", "--no-backup",
        "--rename", "users.fullname=name", "--rename", "crm.people=persons",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    (folder,) = migration_dirs(project)
    up, down = (folder / "up.sql").read_text(), (folder / "down.sql").read_text()
    assert "ALTER TABLE public.users RENAME COLUMN fullname TO name;" in up
    assert "ALTER TABLE crm.people RENAME TO persons;" in up
    assert "DROP" not in up and "HAZARD" not in up and "! hint" not in run.stdout
    assert "RENAME COLUMN name TO fullname;" in down and "crm.persons RENAME TO people;" in down
    assert nself(project, any_db_url, "db", "migrate:up").returncode == 0
    with psycopg.connect(any_db_url) as conn:
        assert conn.execute("SELECT name FROM users ORDER BY id").fetchall() == [
            ("Ada Lovelace",),
            ("Alan Turing",),
        ]
        assert conn.execute("SELECT id, note FROM crm.persons").fetchall() == [(7, "kept")]
    again = nself(project, any_db_url, "db", "run", "--no-backup")
    assert "Database matches schema.dbml" in again.stdout, again.stdout + again.stderr


def test_candidate_without_hint_is_drop_add_with_printed_hint(db_url: str, tmp_path: Path) -> None:
    project = _project(db_url, tmp_path)
    # drop + add of the NOT NULL `name` over 2 rows could never apply: written with --force
    run = nself(project, db_url, "db", "run", "--no-backup", "--force")
    assert run.returncode == 0, run.stderr
    out = " ".join(run.stdout.split())
    assert "rerun with --rename users.fullname=name" in out
    assert "rerun with --rename crm.people=persons" in out
    assert "HAZARD DELETES_DATA: drops column public.users.fullname holding 2 non-null" in out
    up = (migration_dirs(project)[0] / "up.sql").read_text()
    assert "ALTER TABLE public.users DROP COLUMN fullname;" in up
    assert "-- HAZARD: DELETES_DATA: drops table crm.people holding 1 row" in up
    assert "RENAME" not in up


def test_confirmed_candidates_become_renames(db_url: str) -> None:
    """What a terminal `yes` does: the core asks about each candidate, then plans renames."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(LIVE)
    asked = []

    def confirm(candidate) -> bool:
        asked.append(candidate.describe())
        return True

    with psycopg.connect(db_url) as conn:
        plan = run_plan.plan(
            conn, parse_dbml(TARGET), options=engine.Options(confirm_rename=confirm)
        )
    assert asked == [
        "table crm.people renamed to crm.persons",
        "column public.users.fullname renamed to name",
    ]
    assert [op.describe() for op in plan.operations] == [
        "rename table crm.people to crm.persons",
        "rename column users.fullname to name",
    ]
    assert plan.rename_candidates == ()


def test_declined_or_incompatible_changes_are_not_renames(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, a text, b int)")
    target = "Table t {\n id int [pk]\n c int\n d text\n}\n"
    with psycopg.connect(db_url) as conn:
        plan = run_plan.plan(conn, parse_dbml(target), options=engine.Options(confirm_rename=None))
    pairs = sorted((c.column, c.new) for c in plan.rename_candidates)
    assert pairs == [("a", "d"), ("b", "c")]  # same type only


@pytest.mark.parametrize(
    ("hint", "message"),
    [
        ("users.nope=name", "no column users.nope in the database"),
        ("users.fullname=other", "no column users.other in schema.dbml"),
        ("ghost=persons", "no table ghost in the database"),
        ("users", "write old=new"),
    ],
)
def test_bad_hints_are_clear_errors(db_url: str, tmp_path: Path, hint: str, message: str) -> None:
    project = _project(db_url, tmp_path)
    run = nself(project, db_url, "db", "run", "--no-backup", "--rename", hint)
    assert run.returncode == 1 and message in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and migration_dirs(project) == []


def test_hint_forms() -> None:
    current = parse_dbml("Table s.a {\n x int\n}\nTable b {\n y int\n}\n")
    target = parse_dbml("Table s.c {\n x int\n}\nTable b {\n z int\n}\n")
    managed = {"public", "s"}
    for hints in (["s.a=c", "b.y=z"], ["s.a=s.c", "public.b.y=z"]):
        renames = parse_hints(hints, current, target, managed)
        assert renames.tables == {Name("s", "a"): Name("s", "c")}
        assert renames.columns == {(Name("public", "b"), "y"): "z"}
    with pytest.raises(RenameError):
        parse_hints(["s.a=c", "s.c.x=q"], current, target, managed)


def test_terminal_run_asks_whether_it_is_a_rename(db_url: str, tmp_path: Path) -> None:
    """On a terminal `db run` asks about each candidate; answering yes plans the renames."""
    project = _project(db_url, tmp_path)
    command = [sys.executable, "-m", "nself_py", "db", "run", "--no-backup", "--force"]
    command += ["--project-dir", str(project), "--database-url", db_url]
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    terminal, stdin = os.openpty()
    try:
        process = subprocess.Popen(
            command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=ROOT, env=env,
        )  # fmt: skip
        os.write(terminal, b"y\nn\n")
        out, err = process.communicate(timeout=120)
    finally:
        os.close(terminal)
        os.close(stdin)
    assert process.returncode == 0, err
    assert "Is this a rename: table crm.people renamed to crm.persons?" in out
    assert "Is this a rename: column public.users.fullname renamed to name?" in out
    up = (migration_dirs(project)[0] / "up.sql").read_text()
    assert "ALTER TABLE crm.people RENAME TO persons;" in up
    assert "DROP COLUMN fullname" in up and "rerun with --rename users.fullname=name" in out
