"""`db run --online`: lock-friendly migrations, applied for real to tables with rows."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
from test_db_run import make_project, migration_dirs, nself

from nself_py.dbml import parse_dbml
from nself_py.diff import diff
from nself_py.online import online_parts
from nself_py.operations import CreateIndex, DropIndex
from nself_py.sqlsplit import split_sql

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
  indexes {
    email [unique]
    age
  }
}
"""


def _online_project(url: str, tmp_path: Path) -> Path:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(LIVE)
    return make_project(tmp_path, TARGET)


def test_online_migrations_apply_to_a_table_with_rows(any_db_url: str, tmp_path: Path) -> None:
    project = _online_project(any_db_url, tmp_path)
    run = nself(project, any_db_url, "db", "run", "--online", "--no-backup")
    assert run.returncode == 0, run.stderr
    first, main, last = migration_dirs(project)
    assert first.name.endswith("_drop_indexes") and last.name.endswith("_indexes")
    for folder in (first, last):
        for file in ("up.sql", "down.sql"):
            assert (folder / file).read_text().startswith("-- hasura:no-transaction\n")
    assert "hasura:no-transaction" not in (main / "up.sql").read_text()
    dropped = (first / "up.sql").read_text()
    assert "DROP INDEX CONCURRENTLY IF EXISTS public.users_nick_idx;" in dropped
    assert "CREATE INDEX CONCURRENTLY users_nick_idx" in (first / "down.sql").read_text()
    built = (last / "up.sql").read_text()
    assert "CREATE UNIQUE INDEX CONCURRENTLY users_email_idx ON public.users (email);" in built
    assert "BLOCKS_WRITES" not in built
    up = (main / "up.sql").read_text()
    assert up.index("SET lock_timeout = '5s';") < up.index("ALTER TABLE")
    assert up.rstrip().endswith("RESET lock_timeout;")
    for shape in (
        "FOREIGN KEY (team_id) REFERENCES public.teams (id) NOT VALID;",
        "VALIDATE CONSTRAINT users_team_id_fkey;",
        "CHECK ((age >= 0)) NOT VALID;",
        "VALIDATE CONSTRAINT users_age_check;",
        "ADD CONSTRAINT users_email_not_null_check CHECK (email IS NOT NULL) NOT VALID;",
        "ALTER COLUMN email SET NOT NULL;",
        "DROP CONSTRAINT users_email_not_null_check;",
    ):
        assert shape in up, shape

    applied = nself(project, any_db_url, "db", "migrate:up")
    assert applied.returncode == 0, applied.stderr
    again = nself(project, any_db_url, "db", "run", "--online", "--no-backup")
    assert "Database matches schema.dbml" in again.stdout, again.stdout + again.stderr
    with psycopg.connect(any_db_url) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 2000
        invalid = "SELECT count(*) FROM pg_index WHERE NOT indisvalid"
        assert conn.execute(invalid).fetchone()[0] == 0
        validated = "SELECT count(*) FROM pg_constraint WHERE NOT convalidated"
        assert conn.execute(validated).fetchone()[0] == 0

    down = nself(project, any_db_url, "db", "migrate:down", "3")
    assert down.returncode == 0, down.stderr
    with psycopg.connect(any_db_url) as conn:
        indexes = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'users' ORDER BY 1"
        ).fetchall()
        assert indexes == [("users_nick_idx",), ("users_pkey",)]
        constraints = conn.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'users'::regclass "
            "AND contype <> 'n' ORDER BY 1"
        ).fetchall()
        assert constraints == [("users_pkey",)]


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
        failure: list[BaseException] = []

        def work() -> None:
            try:
                runner.execute(statement)
            except BaseException as error:  # reported by the test thread
                failure.append(error)

        thread = threading.Thread(target=work)
        thread.start()
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
        ("CHECK (email IS NOT NULL) NOT VALID;", "AccessExclusiveLock"),  # catalog only
        ("VALIDATE CONSTRAINT users_email_not_null_check;", "ShareUpdateExclusiveLock"),
        ("SET NOT NULL;", "AccessExclusiveLock"),  # no scan: the validated check proves it
        ("DROP CONSTRAINT users_email_not_null_check;", "AccessExclusiveLock"),  # catalog only
        ("CHECK ((age >= 0)) NOT VALID;", "AccessExclusiveLock"),  # catalog only
        ("VALIDATE CONSTRAINT users_age_check;", "ShareUpdateExclusiveLock"),
        ("REFERENCES public.teams (id) NOT VALID;", "ShareRowExclusiveLock"),
        ("VALIDATE CONSTRAINT users_team_id_fkey;", "ShareUpdateExclusiveLock"),
        ("CREATE UNIQUE INDEX CONCURRENTLY users_email_idx", "ShareUpdateExclusiveLock"),
        ("CREATE INDEX CONCURRENTLY users_age_idx", "ShareUpdateExclusiveLock"),
    ]
    assert len(seen) == len(claimed), seen
    for (text, mode), (shape, lock) in zip(seen, claimed, strict=True):
        assert shape in text and mode == lock, (text, mode)


def test_parts_follow_dependencies_not_fixed_phases() -> None:
    """A foreign key that needs a new unique index waits for the concurrent build, so the
    plan becomes: drop indexes, transactional changes, build indexes, the key."""
    current = parse_dbml(
        "Table a {\n id int [pk]\n x int\n y int\n indexes {\n y [name: 'a_y_idx']\n }\n}\n"
        "Table b {\n id int [pk]\n a_x int\n}\n"
    )
    target = parse_dbml(
        "Table a {\n id int [pk]\n x int\n z int\n indexes {\n x [unique, name: 'a_x_key']\n }\n}\n"
        "Table b {\n id int [pk]\n a_x int [ref: > a.x]\n}\n"
    )
    parts = online_parts(diff(current, target))
    shapes = [(p.no_transaction, p.suffix, [op.describe() for op in p.operations]) for p in parts]
    assert shapes == [
        (True, "_drop_indexes", ["drop index a_y_idx on a"]),
        (False, "_2", ["add column a.z", "drop column a.y"]),
        (True, "_indexes", ["add index a_x_key on a"]),
        (False, "_4", ["add foreign key b_a_x_fkey on b -> a"]),
    ]
    back = [op for p in parts for op in p.operations]
    assert all(op.concurrently for op in back if isinstance(op, CreateIndex | DropIndex))


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
    build, attach = migration_dirs(project)
    assert build.name.endswith("_indexes") and not attach.name.endswith("_indexes")
    built = (build / "up.sql").read_text()
    assert built.startswith("-- hasura:no-transaction\n")
    assert "CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON public.users (email);" in built
    attached = (attach / "up.sql").read_text()
    assert "hasura:no-transaction" not in attached
    shape = "ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;"
    assert shape in attached and "BLOCKS_WRITES" not in built + attached

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

    down = nself(project, any_db_url, "db", "migrate:down", "2")
    assert down.returncode == 0, down.stderr
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
    parts = online_parts(diff(current, target))
    assert [(p.no_transaction, [op.describe() for op in p.operations]) for p in parts] == [
        (True, ["add index a_x_key on a"]),
        (
            False,
            [
                "add unique constraint a_x_key on a using its index",
                "add foreign key b_a_x_fkey on b -> a",
            ],
        ),
    ]
