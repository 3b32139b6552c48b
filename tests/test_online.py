"""`db run --online`: lock-friendly migrations, applied for real to tables with rows."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest
from helpers import ROOT, make_project, migration_dirs, nself

from nself_py.database.apply import migrate_up
from nself_py.plan.diff import diff
from nself_py.plan.online import online_parts
from nself_py.plan.operations import CreateIndex, DropIndex
from nself_py.read.dbml import parse_dbml
from nself_py.sql.parse import split_statements as split_sql

T = TypeVar("T")

LIVE = """
CREATE TABLE teams (id int PRIMARY KEY);
INSERT INTO teams SELECT g FROM generate_series(1, 5) g;
CREATE TABLE users (id int PRIMARY KEY, email text, age int, team_id int, nick text);
CREATE INDEX users_nick_idx ON users (nick);
INSERT INTO users SELECT g, 'u' || g || '@x', g, g % 5 + 1, 'n' || g
  FROM generate_series(1, 2000) g;
"""

TARGET = """
Table teams {
  id int [pk]
}
Table users {
  id int [pk]
  email text [not null]
  age int [check: `age >= 0`]
  team_id int [ref: > teams.id]
  nick text
  bio text
  indexes {
    email [unique]
    age
  }
}
"""

NO_TRANSACTION = "-- hasura:no-transaction\n"


def _online_project(url: str, tmp_path: Path, target: str = TARGET) -> Path:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(LIVE)
    return make_project(tmp_path, target)


def test_online_migrations_apply_to_a_table_with_rows(any_db_url: str, tmp_path: Path) -> None:
    project = _online_project(any_db_url, tmp_path)
    run = nself(project, any_db_url, "db", "run", "--online", "--no-backup")
    assert run.returncode == 0, run.stderr
    folders = migration_dirs(project)
    assert [folder.name.split("_", 1)[1] for folder in folders] == [
        "alter_users_drop_indexes", "alter_users", "alter_users_indexes", "alter_users_validate"
    ]  # fmt: skip
    first, main, built, validated = folders
    for folder in (first, built, validated):
        for file in ("up.sql", "down.sql"):
            assert (folder / file).read_text().startswith(NO_TRANSACTION), folder / file
    up = (main / "up.sql").read_text()
    assert (
        "hasura:no-transaction" not in up
        and "hasura:no-transaction" not in (main / "down.sql").read_text()
    )
    assert "ADD COLUMN bio text;" in up and "VALID" not in up and "INDEX" not in up
    assert up.index("SET lock_timeout = '5s';") < up.index("ALTER TABLE")
    assert up.rstrip().endswith("RESET lock_timeout;")
    dropped = (first / "up.sql").read_text()
    assert "DROP INDEX CONCURRENTLY IF EXISTS public.users_nick_idx;" in dropped
    assert "CREATE INDEX CONCURRENTLY users_nick_idx" in (first / "down.sql").read_text()
    indexes = (built / "up.sql").read_text()
    assert "CREATE UNIQUE INDEX CONCURRENTLY users_email_idx ON public.users (email);" in indexes
    assert "BLOCKS_WRITES" not in indexes and "VALID" not in indexes
    checks = (validated / "up.sql").read_text()
    for shape in (
        "FOREIGN KEY (team_id) REFERENCES public.teams (id) NOT VALID;",
        "VALIDATE CONSTRAINT users_team_id_fkey;",
        "CHECK ((age >= 0)) NOT VALID;",
        "VALIDATE CONSTRAINT users_age_check;",
        "ADD CONSTRAINT users_email_not_null_check CHECK (email IS NOT NULL) NOT VALID;",
        "ALTER COLUMN email SET NOT NULL;",
        "DROP CONSTRAINT users_email_not_null_check;",
    ):
        assert shape in checks, shape
    assert "INDEX" not in checks and "BLOCKS_WRITES" not in checks
    undone = (validated / "down.sql").read_text()
    for shape in (
        "DROP CONSTRAINT users_team_id_fkey;",
        "DROP CONSTRAINT users_age_check;",
        "ALTER COLUMN email DROP NOT NULL;",
    ):
        assert shape in undone, shape

    applied = nself(project, any_db_url, "db", "migrate:up")
    assert applied.returncode == 0, applied.stderr
    again = nself(project, any_db_url, "db", "run", "--online", "--no-backup")
    assert "Database matches schema.dbml" in again.stdout, again.stdout + again.stderr
    with psycopg.connect(any_db_url) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 2000
        invalid = "SELECT count(*) FROM pg_index WHERE NOT indisvalid"
        assert conn.execute(invalid).fetchone()[0] == 0
        validated_count = "SELECT count(*) FROM pg_constraint WHERE NOT convalidated"
        assert conn.execute(validated_count).fetchone()[0] == 0

    down = nself(project, any_db_url, "db", "migrate:down", "4")
    assert down.returncode == 0, down.stderr
    with psycopg.connect(any_db_url) as conn:
        indexes_left = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'users' ORDER BY 1"
        ).fetchall()
        assert indexes_left == [("users_nick_idx",), ("users_pkey",)]
        constraints = conn.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'users'::regclass "
            "AND contype <> 'n' ORDER BY 1"
        ).fetchall()
        assert constraints == [("users_pkey",)]
        columns = conn.execute(
            "SELECT attname, attnotnull FROM pg_attribute WHERE attrelid = 'users'::regclass "
            "AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        ).fetchall()
        assert columns == [
            ("id", True), ("email", False), ("age", False), ("team_id", False), ("nick", False)
        ]  # fmt: skip


def test_statement_timeout_is_configurable(db_url: str, tmp_path: Path) -> None:
    project = _online_project(db_url, tmp_path)
    run = nself(
        project, db_url, "db", "run", "--online", "--no-backup", "--lock-timeout", "2s",
        "--statement-timeout", "1min",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    for folder in migration_dirs(project):
        text = (folder / "up.sql").read_text()
        assert "SET lock_timeout = '2s';\nSET statement_timeout = '1min';" in text
        assert "RESET lock_timeout;\nRESET statement_timeout;" in text


def _waits_for(url: str, statement: str) -> str:
    """The lock mode `statement` asks for on users: held off by an ACCESS EXCLUSIVE lock from a
    second connection, it waits, and pg_locks shows what it waits for; then it runs."""
    with (
        psycopg.connect(url) as holder,
        psycopg.connect(url, autocommit=True) as runner,
        psycopg.connect(url, autocommit=True) as observer,
    ):
        holder.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        pid = runner.info.backend_pid
        thread, failure = _in_thread(runner, statement)
        mode = None
        deadline = time.monotonic() + 20
        while mode is None and time.monotonic() < deadline:
            row = observer.execute(
                "SELECT mode FROM pg_locks WHERE pid = %s AND NOT granted "
                "AND relation = 'users'::regclass",
                (pid,),
            ).fetchone()
            mode = row[0] if row else None
            time.sleep(0.02)
        holder.rollback()
        thread.join(30)
        assert not failure, failure
    assert mode is not None, f"{statement} never waited for a lock on users"
    return mode


def _in_thread(conn: psycopg.Connection, statement: str) -> tuple[threading.Thread, list]:
    """Run `statement` on `conn` in a thread (it may wait for a lock); the list gets its error."""
    failure: list[BaseException] = []

    def work() -> None:
        try:
            conn.execute(statement)  # type: ignore[arg-type]  # the test's own SQL
        except BaseException as error:  # reported by the test thread
            failure.append(error)

    thread = threading.Thread(target=work)
    thread.start()
    return thread, failure


def test_each_online_statement_takes_the_lock_it_claims(db_url: str, tmp_path: Path) -> None:
    """The scans (index builds, VALIDATE) take SHARE UPDATE EXCLUSIVE, so writes go on; the
    stronger locks are taken only by catalog-only steps that never scan the rows."""
    project = _online_project(db_url, tmp_path)
    assert nself(project, db_url, "db", "run", "--online", "--no-backup").returncode == 0
    seen = []
    for folder in migration_dirs(project):
        for statement in split_sql((folder / "up.sql").read_text()):
            text = " ".join(statement.sql.split())
            if not text.startswith(("SET ", "RESET ")):
                seen.append((text, _waits_for(db_url, text)))
    claimed = [
        ("DROP INDEX CONCURRENTLY", "ShareUpdateExclusiveLock"),
        ("ADD COLUMN bio text;", "AccessExclusiveLock"),  # catalog only
        ("CREATE UNIQUE INDEX CONCURRENTLY users_email_idx", "ShareUpdateExclusiveLock"),
        ("CREATE INDEX CONCURRENTLY users_age_idx", "ShareUpdateExclusiveLock"),
        ("CHECK (email IS NOT NULL) NOT VALID;", "AccessExclusiveLock"),  # catalog only
        ("VALIDATE CONSTRAINT users_email_not_null_check;", "ShareUpdateExclusiveLock"),
        ("SET NOT NULL;", "AccessExclusiveLock"),  # no scan: the validated check proves it
        ("DROP CONSTRAINT users_email_not_null_check;", "AccessExclusiveLock"),  # catalog only
        ("CHECK ((age >= 0)) NOT VALID;", "AccessExclusiveLock"),  # catalog only
        ("VALIDATE CONSTRAINT users_age_check;", "ShareUpdateExclusiveLock"),
        ("REFERENCES public.teams (id) NOT VALID;", "ShareRowExclusiveLock"),
        ("VALIDATE CONSTRAINT users_team_id_fkey;", "ShareUpdateExclusiveLock"),
    ]
    assert len(seen) == len(claimed), seen
    for (text, mode), (shape, lock) in zip(seen, claimed, strict=True):
        assert shape in text and mode == lock, (text, mode)


def _shapes(parts) -> list[tuple[bool, str, list[str]]]:
    return [(p.no_transaction, p.suffix, [op.describe() for op in p.operations]) for p in parts]


def test_parts_follow_dependencies_not_fixed_phases() -> None:
    """A foreign key that needs a new unique index waits for the concurrent build, so the
    plan becomes: drop indexes, transactional changes, build indexes, validate the key."""
    current = parse_dbml(
        "Table a {\n id int [pk]\n x int\n y int\n indexes {\n y [name: 'a_y_idx']\n }\n}\n"
        "Table b {\n id int [pk]\n a_x int\n}\n"
    )
    target = parse_dbml(
        "Table a {\n id int [pk]\n x int\n z int\n indexes {\n x [unique, name: 'a_x_key']\n }\n}\n"
        "Table b {\n id int [pk]\n a_x int [ref: > a.x]\n}\n"
    )
    parts = online_parts(diff(current, target))
    assert _shapes(parts) == [
        (True, "_drop_indexes", ["drop index a_y_idx on a"]),
        (False, "", ["add column a.z", "drop column a.y"]),
        (True, "_indexes", ["add index a_x_key on a"]),
        (True, "_validate", ["add foreign key b_a_x_fkey on b -> a"]),
    ]
    back = [op for p in parts for op in p.operations]
    assert all(op.concurrently for op in back if isinstance(op, CreateIndex | DropIndex))


def test_a_primary_key_waits_for_its_validated_not_null() -> None:
    """Transactional work that needs a validated step comes after it, in a part of its own."""
    current = parse_dbml("Table a {\n x int\n y int\n}\n")
    target = parse_dbml("Table a {\n x int [pk]\n y int [not null]\n}\n")
    assert _shapes(online_parts(diff(current, target))) == [
        (True, "_validate", ["make a.x NOT NULL", "make a.y NOT NULL"]),
        (False, "", ["add primary key a_pkey on a"]),
    ]


def test_work_that_needs_one_new_unique_key_waits_for_all_the_builds() -> None:
    """The new table's foreign key needs only a_x_key, but runs after the whole `_indexes`
    part: otherwise a_y_key's attachment would need a part of its own."""
    current = parse_dbml("Table a {\n id int [pk]\n x int\n y int\n}\n")
    target = parse_dbml(
        "Table a {\n id int [pk]\n x int [unique]\n y int [unique]\n}\n"
        "Table b {\n id int [pk]\n a_x int [ref: > a.x]\n}\n"
    )
    assert [(p.no_transaction, p.suffix) for p in online_parts(diff(current, target))] == [
        (False, "_1"),
        (True, "_indexes"),
        (False, "_3"),
    ]


def test_a_foreign_key_of_a_new_table_is_not_validated_apart() -> None:
    """A new table has no rows to scan: its foreign key stays in the transactional part."""
    current = parse_dbml("Table a {\n id int [pk]\n}\n")
    target = parse_dbml("Table a {\n id int [pk]\n}\nTable b {\n a_id int [ref: > a.id]\n}\n")
    assert _shapes(online_parts(diff(current, target))) == [
        (False, "", ["add table public.b", "add foreign key b_a_id_fkey on b -> a"]),
    ]


def _unique_email_project(url: str, tmp_path: Path) -> Path:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE users (id int PRIMARY KEY, email text);"
            "INSERT INTO users SELECT g, 'u' || g || '@x' FROM generate_series(1, 2000) g"
        )
    return make_project(tmp_path, "Table users {\n  id int [pk]\n  email text [unique]\n}\n")


def test_unique_constraint_is_built_concurrently_then_attached(
    any_db_url: str, tmp_path: Path
) -> None:
    project = _unique_email_project(any_db_url, tmp_path)
    run = nself(project, any_db_url, "db", "run", "--online", "--no-backup")
    assert run.returncode == 0, run.stderr
    (folder,) = migration_dirs(project)
    assert folder.name.endswith("_indexes"), folder.name
    up = (folder / "up.sql").read_text()
    assert up.startswith(NO_TRANSACTION)
    build = "CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON public.users (email);"
    attach = "ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;"
    assert build in up and attach in up and up.index(build) < up.index(attach)
    assert "BLOCKS_WRITES" not in up
    down = (folder / "down.sql").read_text()
    assert down.startswith(NO_TRANSACTION)
    assert down.index("DROP CONSTRAINT users_email_key;") < down.index(
        "DROP INDEX CONCURRENTLY IF EXISTS public.users_email_key;"
    )

    assert nself(project, any_db_url, "db", "migrate:up").returncode == 0
    again = nself(project, any_db_url, "db", "run", "--online", "--no-backup")
    assert "Database matches schema.dbml" in again.stdout, again.stdout + again.stderr
    with psycopg.connect(any_db_url) as conn:
        kinds = conn.execute(
            "SELECT conname, contype FROM pg_constraint WHERE conrelid = 'users'::regclass "
            "AND contype IN ('p', 'u') ORDER BY 1"
        ).fetchall()
        assert kinds == [("users_email_key", "u"), ("users_pkey", "p")]
        assert conn.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid").fetchone() == (0,)

    undone = nself(project, any_db_url, "db", "migrate:down", "1")
    assert undone.returncode == 0, undone.stderr
    with psycopg.connect(any_db_url) as conn:
        indexes = conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'users'")
        assert indexes.fetchall() == [("users_pkey",)]


def test_unique_constraint_scans_only_under_share_update_exclusive(
    db_url: str, tmp_path: Path
) -> None:
    project = _unique_email_project(db_url, tmp_path)
    assert nself(project, db_url, "db", "run", "--online", "--no-backup").returncode == 0
    seen = []
    for folder in migration_dirs(project):
        for statement in split_sql((folder / "up.sql").read_text()):
            text = " ".join(statement.sql.split())
            if not text.startswith(("SET ", "RESET ")):
                seen.append((text.split(" ON ")[0], _waits_for(db_url, text)))
    assert seen == [
        ("CREATE UNIQUE INDEX CONCURRENTLY users_email_key", "ShareUpdateExclusiveLock"),
        (  # catalog only: the index already proves uniqueness
            "ALTER TABLE public.users ADD CONSTRAINT users_email_key UNIQUE USING INDEX "
            "users_email_key;",
            "AccessExclusiveLock",
        ),
    ]


def test_foreign_key_to_a_new_unique_constraint_waits_for_its_attachment() -> None:
    current = parse_dbml(
        "Table a {\n id int [pk]\n x int\n}\nTable b {\n id int [pk]\n a_x int\n}\n"
    )
    target = parse_dbml(
        "Table a {\n id int [pk]\n x int [unique]\n}\n"
        "Table b {\n id int [pk]\n a_x int [ref: > a.x]\n}\n"
    )
    assert _shapes(online_parts(diff(current, target))) == [
        (
            True,
            "_indexes",
            ["add index a_x_key on a", "add unique constraint a_x_key on a using its index"],
        ),
        (True, "_validate", ["add foreign key b_a_x_fkey on b -> a"]),
    ]


# --- the validating steps run outside a transaction, so writes go on while they scan -------

STRONG = ("ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock")
"""The lock modes that conflict with ROW EXCLUSIVE: held on a table, they block its writes."""

WRITE_BOUND = "1s"
"""The writer's lock_timeout: a write that waits longer fails the test."""

VALIDATED = {
    "check": "  age int [check: `age >= 0`]\n  team_id int\n  email text\n",
    "foreign_key": "  age int\n  team_id int [ref: > teams.id]\n  email text\n",
    "not_null": "  age int\n  team_id int\n  email text [not null]\n",
}
"""One validated change each (the decisive test follows one ADD ... NOT VALID and its VALIDATE)."""


BASE = """
CREATE TABLE public.teams (id int PRIMARY KEY);
INSERT INTO public.teams SELECT g FROM generate_series(1, 5) g;
CREATE TABLE public.users (id int PRIMARY KEY, age int, team_id int, email text);
INSERT INTO public.users SELECT g, g, g % 5 + 1, 'u' || g || '@x' FROM generate_series(1, 2000) g;
"""


def _validated_project(url: str, tmp_path: Path, kind: str) -> Path:
    """Tables with rows made by an applied migration (`db update` replays them to find drift),
    and a schema.dbml that asks for one validated change."""
    dbml = (
        f"Table teams {{\n  id int [pk]\n}}\nTable users {{\n  id int [pk]\n{VALIDATED[kind]}}}\n"
    )
    project = make_project(tmp_path, dbml)
    init = project / "hasura" / "migrations" / "default" / "1700000000000_init"
    init.mkdir()
    (init / "up.sql").write_text(BASE)
    (init / "down.sql").write_text("DROP TABLE public.users;\nDROP TABLE public.teams;\n")
    with psycopg.connect(url, autocommit=True) as conn:
        migrate_up(conn, project, "default", init.parent)
    return project


def _poll(find: Callable[[], T | None], process: subprocess.Popen[str], what: str) -> T:
    deadline = time.monotonic() + 20
    while (found := find()) is None:
        if process.poll() is not None:
            _, err = process.communicate()
            pytest.fail(f"the migration finished before {what}: {err}")
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)
    return found


def _waiting(observer: psycopg.Connection, pids: list[int]) -> tuple[int, str, str] | None:
    """(pid, lock mode, query) of one of `pids` waiting for a lock on users, if any is."""
    return observer.execute(
        "SELECT l.pid, l.mode, a.query FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
        "WHERE NOT l.granted AND l.relation = 'users'::regclass AND l.pid = ANY(%s)",
        (pids,),
    ).fetchone()


def _others(observer: psycopg.Connection, ours: list[int]) -> list[int]:
    """Backends of this database that are not the test's: the command applying migrations."""
    rows = observer.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> ALL(%s)",
        (ours,),
    ).fetchall()
    return [pid for (pid,) in rows]


def _write(writer: psycopg.Connection, count: int = 20) -> list[float]:
    """Insert and update rows of users; the seconds each pair took."""
    writer.execute(f"SET lock_timeout = '{WRITE_BOUND}'")
    took = []
    for i in range(count):
        started = time.monotonic()
        writer.execute(
            "INSERT INTO users (id, email, age, team_id) VALUES (%s, %s, 1, 1)",
            (100_000 + i, f"w{i}@x"),
        )
        writer.execute("UPDATE users SET age = age + 1 WHERE id = %s", (i + 1,))
        took.append(time.monotonic() - started)
    return took


def _apply_while_writing(url: str, project: Path, *command: str) -> list[float]:
    """Apply the pending migrations with the real command while the test steers the locks.

    `holder` keeps ROW EXCLUSIVE on users, so the ADD ... NOT VALID waits; `queued` then asks
    for SHARE UPDATE EXCLUSIVE and queues behind the ADD. Released, the ADD runs first and
    `queued` gets its lock next, so the VALIDATE that follows waits for it: the moment its scan
    would start. There pg_locks must show the applying backend asking for SHARE UPDATE EXCLUSIVE
    and holding nothing that blocks writes, and a writer must get its writes through."""
    with (
        psycopg.connect(url) as holder,
        psycopg.connect(url) as queued,
        psycopg.connect(url, autocommit=True) as observer,
        psycopg.connect(url, autocommit=True) as writer,
    ):
        ours = [c.info.backend_pid for c in (holder, queued, observer, writer)]
        holder.execute("LOCK TABLE users IN ROW EXCLUSIVE MODE")
        args = [*command, "--project-dir", str(project), "--database-url", url]
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        process = subprocess.Popen(
            [sys.executable, "-m", "nself_py", *args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            pid, _, query = _poll(
                lambda: _waiting(observer, _others(observer, ours)), process, "the ADD waits"
            )
            assert "NOT VALID" in query, query
            thread, failure = _in_thread(queued, "LOCK TABLE users IN SHARE UPDATE EXCLUSIVE MODE")
            queue = [queued.info.backend_pid]
            _poll(lambda: _waiting(observer, queue), process, "the second locker queues")
            holder.rollback()
            thread.join(20)
            assert not failure, failure

            def validating() -> tuple[int, str, str] | None:
                row = _waiting(observer, [pid])
                return row if row and "VALIDATE CONSTRAINT" in row[2] else None

            _, mode, _ = _poll(
                validating,
                process,
                "the VALIDATE waits for its scan (was the ADD lock still held?)",
            )
            assert mode == "ShareUpdateExclusiveLock"
            held = observer.execute(
                "SELECT relation::regclass::text, mode FROM pg_locks "
                "WHERE pid = %s AND granted AND locktype = 'relation' AND mode = ANY(%s)",
                (pid, list(STRONG)),
            ).fetchall()
            assert held == [], f"the applying backend blocks writes while validating: {held}"
            took = _write(writer)
            queued.rollback()
            out, err = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            holder.rollback()  # after a failure: frees whatever still waits, so all can close
    assert process.returncode == 0, out + err
    return took


def _online_validate_part(url: str, tmp_path: Path, kind: str) -> tuple[Path, Path]:
    """(project, its `_validate` migration written by `db run --online`)."""
    project = _validated_project(url, tmp_path, kind)
    # a loaded test machine may take seconds to step through the locks: no lock_timeout race
    run = nself(project, url, "db", "run", "--online", "--no-backup", "--lock-timeout", "60s")
    assert run.returncode == 0, run.stderr
    _, folder = migration_dirs(project)
    assert folder.name.endswith("_validate"), folder.name
    for file in ("up.sql", "down.sql"):
        assert (folder / file).read_text().startswith(NO_TRANSACTION), file
    return project, folder


def _writes_go_on(db_url: str, tmp_path: Path, kind: str, *command: str) -> None:
    """Apply one validated change with `command` under the steered locks, check the writes got
    through and the constraint is validated, then roll it back for real."""
    project, _ = _online_validate_part(db_url, tmp_path, kind)
    took = _apply_while_writing(db_url, project, *command)
    assert len(took) == 20 and max(took) < 1.0, took
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (2020,)
        constraints = conn.execute(
            "SELECT conname, convalidated FROM pg_constraint WHERE conrelid = 'users'::regclass "
            "AND contype IN ('c', 'f') ORDER BY 1"
        ).fetchall()
        not_null = conn.execute(
            "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'users'::regclass "
            "AND attname = 'email'"
        ).fetchone()
    expected = {"check": [("users_age_check", True)], "foreign_key": [("users_team_id_fkey", True)]}
    assert constraints == expected.get(kind, [])
    assert not_null == (kind == "not_null",)

    down = nself(project, db_url, "db", "migrate:down", "1")
    assert down.returncode == 0, down.stderr
    with psycopg.connect(db_url) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'users'::regclass "
            "AND contype IN ('c', 'f')"
        ).fetchone()
        assert left == (0,)
        assert conn.execute(
            "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'users'::regclass "
            "AND attname = 'email'"
        ).fetchone() == (False,)


@pytest.mark.parametrize("kind", sorted(VALIDATED))
def test_migrate_up_keeps_writes_going_while_validate_scans(
    any_db_url: str, tmp_path: Path, kind: str
) -> None:
    _writes_go_on(any_db_url, tmp_path, kind, "db", "migrate:up")


def test_db_update_keeps_writes_going_while_validate_scans(db_url: str, tmp_path: Path) -> None:
    """`db update` applies pending migrations in one transaction, but a no-transaction one alone:
    the foreign key (its ADD locks both tables) is validated with writes going on."""
    _writes_go_on(db_url, tmp_path, "foreign_key", "db", "update", "--yes")


def test_set_not_null_after_validate_does_not_scan(any_db_url: str, tmp_path: Path) -> None:
    """SET NOT NULL takes ACCESS EXCLUSIVE; the validated check lets PostgreSQL skip its scan,
    which it says at DEBUG1. Run as `migrate:up` runs a no-transaction migration."""
    _, folder = _online_validate_part(any_db_url, tmp_path, "not_null")
    proof = 'existing constraints on column "users.email" are sufficient to prove'
    messages: list[str] = []
    proved = []
    with psycopg.connect(any_db_url, autocommit=True) as conn:
        conn.add_notice_handler(lambda diag: messages.append(diag.message_primary or ""))
        conn.execute("SET client_min_messages = debug1")
        for statement in split_sql((folder / "up.sql").read_text()):
            conn.execute(statement.sql)  # type: ignore[arg-type]  # SQL from a migration file
            proved += [statement.sql for m in messages if m.startswith(proof)]
            messages.clear()
    assert [" ".join(sql.split()) for sql in proved] == [
        "ALTER TABLE public.users ALTER COLUMN email SET NOT NULL;"
    ]
