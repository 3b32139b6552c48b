"""`db run` measures MAY_FAIL and DELETES_DATA hazards on the live data (real PostgreSQL)."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
from helpers import make_project, migration_dirs, nself

from nself_py.commands import run as engine
from nself_py.commands import run_plan
from nself_py.plan.measure import measure_plan
from nself_py.plan.operations import MAY_FAIL
from nself_py.read.dbml import parse_dbml, read_dbml
from nself_py.read.introspect import introspect

LIVE = """
CREATE TABLE teams (id int PRIMARY KEY);
INSERT INTO teams VALUES (1), (2);
CREATE TABLE users (
  id int PRIMARY KEY, email text, age int, team_id int, nick text, code varchar(10)
);
INSERT INTO users VALUES (1, 'a@x', 30, 1, 'n1', 'abc'), (2, 'a@x', -1, 9, NULL, 'abcdefgh'),
  (3, NULL, -5, 8, 'n3', 'ab'), (4, 'b@x', NULL, NULL, NULL, 'abcdef'),
  (5, 'b@x', 20, 2, NULL, NULL), (6, 'c@x', 1, 1, NULL, 'x');
"""

TARGET = """
Table teams {
  id int [pk]
}
Table users {
  id int [pk]
  email text [not null, unique]
  age int [check: `age >= 0`]
  team_id int [ref: > teams.id]
  code varchar(4)
  born int [not null]
}
"""


def _live_project(url: str, tmp_path: Path) -> Path:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(LIVE)
    return make_project(tmp_path, TARGET)


def test_run_counts_what_each_hazard_would_hit(any_db_url: str, tmp_path: Path) -> None:
    project = _live_project(any_db_url, tmp_path)
    result = nself(project, any_db_url, "db", "run", "--no-backup", "--force")
    assert result.returncode == 0, result.stderr
    (folder,) = migration_dirs(project)
    up = (folder / "up.sql").read_text()
    down = (folder / "down.sql").read_text()
    expected = [
        "SET NOT NULL fails if users.email holds NULLs; scans the table; 1 row violates it",
        "unique constraint users_email_key fails if existing rows violate it; 2 duplicate groups",
        "check users_age_check fails if existing rows violate it; 2 rows violate it",
        "foreign key users_team_id_fkey fails if existing rows break it; 2 orphan rows",
        "NOT NULL without a default fails if users has rows; the table has 6 rows",
        "DELETES_DATA: drops column public.users.nick holding 2 non-null values",
        "DELETES_DATA: changes column public.users.code to character varying(4): "
        "2 values would not survive unchanged",
    ]
    assert "blocking writes; public.users has no size estimate yet (never vacuumed" in up
    for line in expected:
        assert line in up, line
        assert line in result.stdout.replace("\n", ""), line
    assert "rows violate" not in down and "orphan" not in down  # down.sql: the plain reverse


def test_clean_data_says_nothing_violates(db_url: str, tmp_path: Path) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 1)")
    project = make_project(tmp_path, "Table t {\n id int [pk]\n v int [not null, unique]\n}\n")
    result = nself(project, db_url, "db", "run", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "holds NULLs; scans the table; 0 rows violate it" in result.stdout
    assert "0 duplicate groups" in result.stdout


def test_huge_tables_are_not_scanned_and_counts_are_read_only(db_url: str, tmp_path: Path) -> None:
    project = _live_project(db_url, tmp_path)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("ANALYZE users")  # the size check reads the planner's estimate
    with psycopg.connect(db_url) as conn:
        plan = run_plan.plan(conn, read_dbml(project / "schema.dbml"))
        conn.rollback()
        measured = measure_plan(conn, introspect(conn), plan.operations, max_rows=3)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE  # rolled back
        conn.rollback()
        notes = [h.message for hs in measured.values() for h in hs if h.kind == MAY_FAIL]
        assert notes and all("not counted: public.users has about" in n for n in notes), notes
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 6


def test_a_slow_count_gives_up(db_url: str) -> None:
    """A count that cannot finish within its statement_timeout (here: it waits for a lock
    another session holds) says so instead of waiting."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE busy (v int)")
    with psycopg.connect(db_url) as conn, psycopg.connect(db_url) as holder:
        plan = run_plan.plan(conn, parse_dbml("Table busy {\n v int [not null]\n}\n"))
        conn.rollback()
        holder.execute("LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
        measured = measure_plan(conn, plan.current, plan.operations, timeout_ms=300)
        holder.rollback()
    (hazards,) = measured.values()
    assert hazards[0].message.endswith("not counted: gave up after 300 ms")


def test_dropping_a_huge_table_is_not_counted(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE big AS SELECT g AS v FROM generate_series(1, 5000) g; ANALYZE big"
        )
    with psycopg.connect(db_url) as conn:
        plan = run_plan.plan(conn, parse_dbml("Table other {\n id int\n}\n"))
        conn.rollback()
        (drop,) = measure_plan(conn, plan.current, plan.operations, max_rows=1000).values()
        (small,) = measure_plan(conn, plan.current, plan.operations).values()
    assert drop[0].message.endswith("not measured: public.big has about 5,000 rows")
    assert small[0].message == "drops table public.big holding 5000 rows"


def test_dropped_tables_are_counted_together_and_alone_when_one_is_slow(db_url: str) -> None:
    """Drops are counted in one batch; when the batch outlasts the time limit (a table another
    session locks), each table is counted alone, so the others still get their figures."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE a (v int); INSERT INTO a VALUES (1), (2);"
            "CREATE TABLE b (v int); CREATE TABLE c (v int); INSERT INTO c VALUES (3)"
        )
    messages = {}
    with psycopg.connect(db_url) as conn, psycopg.connect(db_url) as holder:
        plan = run_plan.plan(conn, parse_dbml("Table other {\n id int\n}\n"))
        conn.rollback()
        for locked in (None, "c"):
            if locked:
                holder.execute(f"LOCK TABLE {locked} IN ACCESS EXCLUSIVE MODE")
            measured = measure_plan(conn, plan.current, plan.operations, timeout_ms=300)
            holder.rollback()
            messages[locked] = sorted(h[0].message for h in measured.values())
    assert messages[None] == [
        "drops table b and all its rows; holds no data that would be lost now",
        "drops table public.a holding 2 rows",
        "drops table public.c holding 1 row",
    ]
    slow = "drops table c and all its rows; not measured: gave up after 300 ms"
    assert messages["c"] == sorted([*messages[None][:2], slow])


def test_rewrites_say_how_big_the_table_is(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t AS SELECT g AS v FROM generate_series(1, 3000) g; ANALYZE t")
    with psycopg.connect(db_url) as conn:
        plan = run_plan.plan(conn, parse_dbml("Table t {\n v bigint\n}\n"))
        conn.rollback()
        ((rewrite,),) = measure_plan(conn, plan.current, plan.operations).values()
    assert re.search(r"rewrites it; public\.t holds about 3,000 rows, \d+ kB$", rewrite.message)


def test_long_scans_under_write_blocking_locks_on_big_tables(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t AS SELECT g AS v FROM generate_series(1, 3000) g; ANALYZE t")
    written = parse_dbml("Table t {\n v int [not null, check: `v > 0`]\n}\n")
    with psycopg.connect(db_url) as conn:
        for online, expected in ((False, 2), (True, 0)):
            plan = run_plan.plan(conn, written, options=engine.Options(online=online))
            conn.rollback()
            measured = measure_plan(conn, plan.current, plan.operations, big_rows=1000)
            blocking = [
                h.message for hs in measured.values() for h in hs if h.kind == "BLOCKS_WRITES"
            ]
            assert len(blocking) == expected, blocking
            for message in blocking:
                assert message.startswith("holds ACCESS EXCLUSIVE while it scans every row: ")
                assert "public.t holds about 3,000 rows" in message and "--online" in message
            small = measure_plan(conn, plan.current, plan.operations)  # 3,000 rows: not big
            assert not [h for hs in small.values() for h in hs if h.kind == "BLOCKS_WRITES"]
