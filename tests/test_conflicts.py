"""Two migrations generated from the same applied base that change the same table."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

from helpers import make_project, migration_dirs, nself

from nself_py.migrations.conflicts import (
    MigrationText,
    base_line,
    merge_conflicts,
    recorded_base,
    touched_tables,
)


def _text(version: int, base: int | None, sql: str) -> MigrationText:
    return MigrationText(version, f"m{version}", f"-- Generated\n{base_line(base)}\n\n{sql}")


def test_touched_tables_reads_the_statements() -> None:
    sql = textwrap.dedent("""
        CREATE TABLE IF NOT EXISTS a (id int);
        ALTER TABLE ONLY "S"."B" ADD COLUMN x int;
        DROP TABLE c, d;
        CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON s.e (x);
        COMMENT ON COLUMN f.x IS 'ALTER TABLE nope';
        ALTER TABLE g ADD CONSTRAINT fk FOREIGN KEY (x) REFERENCES h (id) ON DELETE CASCADE;
        -- ALTER TABLE commented
        TRUNCATE k;
    """)
    assert touched_tables(sql) == {
        "public.a", "S.B", "public.c", "public.d", "s.e", "public.f", "public.g", "public.k",
    }  # fmt: skip
    # every table of `DROP TABLE c, d` (the hand-written reader only saw the first)


def test_same_base_same_table_is_flagged() -> None:
    one = _text(200, 100, "ALTER TABLE users ADD COLUMN phone text;")
    two = _text(201, 100, "ALTER TABLE public.users ADD COLUMN phone varchar(20);")
    other = _text(202, 100, "ALTER TABLE posts ADD COLUMN x int;")
    later = _text(203, 200, "ALTER TABLE users DROP COLUMN phone;")
    hand = MigrationText(204, "hand", "ALTER TABLE users ADD COLUMN y int;")
    (conflict,) = merge_conflicts([later, two, one, other, hand], applied={100})
    assert (conflict.first, conflict.second, conflict.tables) == (one, two, ("public.users",))
    assert "200_m200 and 201_m201 were both generated from version 100" in str(conflict)
    assert "public.users: likely a merge conflict" in str(conflict)
    assert merge_conflicts([one, two], applied={100, 200, 201}) == []  # both taken: resolved
    assert merge_conflicts([_text(1, None, "DROP TABLE t;"), _text(2, None, "DROP TABLE t;")])
    assert recorded_base(hand.up_sql) == (False, None)


def test_two_runs_from_one_base_are_flagged_online_parts_are_not(
    db_url: str, tmp_path: Path
) -> None:
    base_dbml = "Table users {\n id int [pk]\n}\n"
    alice = make_project(tmp_path / "alice", base_dbml)
    assert nself(alice, db_url, "db", "run", "--no-backup").returncode == 0
    assert nself(alice, db_url, "db", "migrate:up").returncode == 0
    bob = tmp_path / "bob"
    shutil.copytree(alice, bob)
    (alice / "schema.dbml").write_text(base_dbml.replace("}", " phone text\n}"))
    (bob / "schema.dbml").write_text(
        base_dbml.replace("}", " email text\n indexes {\n email\n }\n}")
    )
    assert nself(alice, db_url, "db", "run", "--no-backup").returncode == 0
    bob_run = nself(bob, db_url, "db", "run", "--no-backup", "--online")
    assert bob_run.returncode == 0, bob_run.stderr
    assert len(migration_dirs(bob)) == 3  # the base, then the column and its index (online)
    for folder in migration_dirs(alice)[1:]:
        shutil.copytree(folder, bob / "hasura" / "migrations" / "default" / folder.name)
    texts = [
        MigrationText(
            int(f.name.split("_")[0]), f.name.split("_", 1)[1], (f / "up.sql").read_text()
        )
        for f in migration_dirs(bob)
    ]
    (conflict,) = merge_conflicts(texts, applied={texts[0].version})
    assert conflict.base == texts[0].version and conflict.tables == ("public.users",)
    assert {conflict.first.name, conflict.second.name} == {"alter_users_phone", "alter_users"}
    status = nself(bob, db_url, "db", "status")
    assert status.returncode == 0, status.stderr
    assert "likely a merge conflict" in status.stdout and "public.users" in status.stdout
