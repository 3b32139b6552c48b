"""Faults injected into real runs on real PostgreSQL: SIGKILL of the CLI at random points, the
applying backend terminated, the server stopped with `pg_ctl -m immediate`, five runs at once.

After each fault: the state says exactly what the catalog has, no row written before is lost,
and one command (`migrate:up` or `db update`) brings the database to done. Loops are bounded and
seeded; each test prints its figures (run with -s to see them).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from helpers import mdir

from nself_py.database.connection import server_bin, start_embedded_server, with_database
from nself_py.migrations.folders import write_migration

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "nself_py"]
BASE, FILL, INDEXES, AFTER = 1800000000000, 1800000000001, 1800000000002, 1800000000003
KEPT_ROWS = 1000
INDEX_NAMES = ("big_id", "big_v", "big_id_key")

UP_FILL = """CREATE TABLE big (id int, v int);
INSERT INTO big SELECT g, g % 97 FROM generate_series(1, 200000) g;
INSERT INTO runs VALUES ('fill');"""
UP_INDEXES = """-- hasura:no-transaction
SET lock_timeout = '5s';
CREATE INDEX CONCURRENTLY big_id ON big (id);
CREATE INDEX CONCURRENTLY big_v ON big (v);
ALTER TABLE big ADD CONSTRAINT big_v_small CHECK (v < 100) NOT VALID;
ALTER TABLE big VALIDATE CONSTRAINT big_v_small;
CREATE UNIQUE INDEX CONCURRENTLY big_id_key ON big (id);
RESET lock_timeout;"""
UP_AFTER = """CREATE TABLE after_fill (id int);
INSERT INTO runs VALUES ('after');"""


def make_project(project: Path, url: str) -> None:
    """The base migration (`runs`, `keep` with rows) applied; three pending ones after it."""
    folder = mdir(project)
    write_migration(
        folder,
        "base",
        "CREATE TABLE runs (name text);\nCREATE TABLE keep (id int PRIMARY KEY);",
        "DROP TABLE keep;\nDROP TABLE runs;",
        version=BASE,
    )
    cli("db", "migrate:up", *opts(project, url))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"INSERT INTO keep SELECT generate_series(1, {KEPT_ROWS})")
    write_migration(folder, "fill", UP_FILL, "DROP TABLE big;", version=FILL)
    down = "\n".join(f"DROP INDEX CONCURRENTLY IF EXISTS {n};" for n in INDEX_NAMES)
    write_migration(folder, "indexes", UP_INDEXES, "-- hasura:no-transaction\n" + down, INDEXES)
    write_migration(folder, "after", UP_AFTER, "DROP TABLE after_fill;", version=AFTER)
    cli("db", "migrate:up", *opts(project, url))  # schema.dbml of the finished state, for the
    cli("db", "pull", *opts(project, url))  # check `db update` ends with; then pending again
    reset(url)


def opts(project: Path, url: str) -> list[str]:
    return ["--project-dir", str(project), "--database-url", url]


def cli(*args: str, check_code: int | None = 0) -> subprocess.CompletedProcess:
    result = subprocess.run([*CLI, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    if check_code is not None:
        assert result.returncode == check_code, result.stdout + result.stderr
    return result


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*CLI, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )


def command(kind: str, project: Path, url: str) -> list[str]:
    return (
        ["db", "migrate:up", *opts(project, url)]
        if kind == "up"
        else [
            "db",
            "update",
            "--yes",
            *opts(project, url),
        ]
    )


def state_of(conn: psycopg.Connection) -> dict[int, bool]:
    rows = conn.execute("SELECT version, dirty FROM hdb_catalog.schema_migrations")
    return {v: d for v, d in rows if v != BASE}


def check_consistent(url: str) -> dict[int, bool]:
    """State equals the catalog; the rows written before are all there. Returns the state.
    Read in one snapshot, so a commit landing between two reads cannot fool the check."""
    with psycopg.connect(url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        state = state_of(conn)
        runs = Counter(r[0] for r in conn.execute("SELECT name FROM runs"))
        assert conn.execute("SELECT count(*) FROM keep").fetchone()[0] == KEPT_ROWS
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE tablename IN ('big', 'after_fill')"
            )
        }
        indexes = dict(
            conn.execute(
                "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c "
                "ON c.oid = i.indexrelid WHERE c.relname = ANY(%s)",
                (list(INDEX_NAMES),),
            ).fetchall()
        )
    for version, table, run in ((FILL, "big", "fill"), (AFTER, "after_fill", "after")):
        assert state.get(version) in (None, False), state  # transactional: never dirty
        applied = version in state
        assert (table in tables) == applied, (state, tables)
        assert runs[run] == (1 if applied else 0), (state, runs)
    if state.get(INDEXES) is False:
        assert indexes == dict.fromkeys(INDEX_NAMES, True), indexes
    elif INDEXES not in state:
        assert indexes == {}, (state, indexes)
    return state


def check_done(url: str) -> None:
    assert check_consistent(url) == {FILL: False, INDEXES: False, AFTER: False}
    with psycopg.connect(url) as conn:
        invalid = conn.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid").fetchone()
        assert invalid == (0,)


def reset(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS big, after_fill")
        conn.execute("DELETE FROM runs")
        conn.execute("DELETE FROM hdb_catalog.schema_migrations WHERE version > %s", (BASE,))
        conn.execute("DELETE FROM nself.migration_log WHERE version > %s", (BASE,))


def phase(state: dict[int, bool]) -> str:
    return ",".join(f"{v % 10}{'d' if d else ''}" for v, d in sorted(state.items())) or "none"


PHASES = (
    "INSERT INTO big%",
    "CREATE INDEX CONCURRENTLY big_v%",
    "ALTER TABLE big VALIDATE%",
    "CREATE UNIQUE INDEX CONCURRENTLY%",
    "%",
)
"""Where kills aim: inside the transactional fill, inside the no-transaction part (an index
build, a validation), and anywhere after the run connected ("%")."""


def _wait_for(url: str, pattern: str, process: subprocess.Popen) -> None:
    """Until a backend of the run executes `pattern` (or the run has ended)."""
    with psycopg.connect(url, autocommit=True) as conn:
        while process.poll() is None:
            row = conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND query ILIKE %s",
                (pattern,),
            ).fetchone()
            if row:
                return
            time.sleep(0.005)


@pytest.mark.parametrize("kind", ["up", "update"])
def test_sigkill_at_random_points_leaves_a_state_one_command_finishes(kind, tmp_path, db_url):
    make_project(tmp_path, db_url)
    rng = random.Random(9 if kind == "up" else 11)
    seen: Counter[str] = Counter()
    iterations = len(PHASES)
    for pattern in PHASES:
        reset(db_url)
        process = start(*command(kind, tmp_path, db_url))
        _wait_for(db_url, pattern, process)
        time.sleep(rng.uniform(0, 0.3 if pattern != "%" else 3.0))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        seen[phase(check_consistent(db_url))] += 1
        cli(*command(kind, tmp_path, db_url))
        check_done(db_url)
    print(f"\nSIGKILL {kind}: {iterations} kills (aimed at {PHASES}), states after: {seen}")


def _backend_running(url: str, pattern: str, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND query ILIKE %s",
                (pattern,),
            ).fetchone()
            if row:
                return row[0]
            time.sleep(0.01)
    raise AssertionError(f"no backend ran {pattern!r}")


@pytest.mark.parametrize(
    ("kind", "pattern"),
    [
        ("up", "INSERT INTO big%"),
        ("up", "CREATE INDEX CONCURRENTLY big_v%"),
        ("update", "CREATE UNIQUE INDEX CONCURRENTLY%"),
    ],
)
def test_terminated_backend_gives_a_message_and_the_next_run_finishes(
    kind, pattern, tmp_path, db_url
):
    make_project(tmp_path, db_url)
    process = start(*command(kind, tmp_path, db_url))
    pid = _backend_running(db_url, pattern)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "Traceback" not in stderr, stderr
    assert "terminat" in stderr.lower(), stderr
    if kind == "update":
        assert "the connection was lost mid-run (read again on a fresh connection)" in stdout
    check_consistent(db_url)
    cli(*command(kind, tmp_path, db_url))
    check_done(db_url)


@pytest.fixture(scope="module")
def throwaway_server() -> Iterator[Path]:
    """A server of its own: stopping it the hard way disturbs no other test. Its folder is
    outside pytest's (0700, root's when run as root: the server's own user could not enter)."""
    base = Path(tempfile.mkdtemp(prefix="nself-faults-"))
    base.chmod(0o755)
    pgdata = base / "pgdata"
    start_embedded_server(pgdata)
    yield pgdata
    owner = pgdata.stat().st_uid
    user = None if owner == os.geteuid() else owner
    subprocess.run(
        [server_bin("pg_ctl"), "-D", str(pgdata), "-m", "immediate", "stop"],
        capture_output=True,
        user=user,
        check=False,
    )
    shutil.rmtree(base, ignore_errors=True)


def test_immediate_server_stop_mid_run_then_one_command_finishes(throwaway_server, tmp_path):
    pgdata = throwaway_server
    url = start_embedded_server(pgdata)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS faults")
        conn.execute("CREATE DATABASE faults")
    url = with_database(url, "faults")
    make_project(tmp_path, url)
    seen: Counter[str] = Counter()
    for pattern in ("INSERT INTO big%", "CREATE INDEX CONCURRENTLY big_v%"):
        reset(url)
        process = start(*command("up", tmp_path, url))
        _backend_running(url, pattern)
        owner = pgdata.stat().st_uid
        subprocess.run(
            [server_bin("pg_ctl"), "-D", str(pgdata), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            user=None if owner == os.geteuid() else owner,
            check=True,
        )
        _, stderr = process.communicate(timeout=60)
        assert process.returncode != 0
        assert "Traceback" not in stderr, stderr
        fresh = start_embedded_server(pgdata)
        url = with_database(fresh, "faults")
        seen[phase(check_consistent(url))] += 1
        cli(*command("up", tmp_path, url))
        check_done(url)
    print(f"\npg_ctl -m immediate: 2 stops, states after: {seen}")


@pytest.mark.parametrize("kind", ["up", "update"])
def test_five_concurrent_runs_queue_and_apply_each_migration_once(kind, tmp_path, db_url):
    make_project(tmp_path, db_url)
    processes = [start(*command(kind, tmp_path, db_url)) for _ in range(5)]
    outputs = [p.communicate(timeout=120) for p in processes]
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stdout + stderr
        assert "Traceback" not in stderr
    said = [stdout for stdout, _ in outputs]
    assert sum("applied 3 migrations" in s for s in said) == 1, said
    assert sum("nothing to apply" in s for s in said) == 4, said
    check_done(db_url)
    with psycopg.connect(db_url) as conn:
        logged = conn.execute(
            "SELECT count(*) FROM nself.migration_log WHERE version > %s", (BASE,)
        ).fetchone()
    assert logged == (3,)


KILL_AT = """
import os, sys
from pathlib import Path
from nself_py.database import apply
from nself_py.database.connection import connect

point = sys.argv[1]
original = getattr(apply._Runner, point)


def die(self, *args):
    if point == "record":
        original(self, *args)  # the log row is written; the transaction is not committed
    os._exit(9)


setattr(apply._Runner, point, die)
with connect(sys.argv[2], autocommit=True) as conn:
    apply.migrate_up(conn, Path(sys.argv[3]), "analytics", Path(sys.argv[4]))
"""


@pytest.mark.parametrize(
    ("point", "applied"), [("record", False), ("settle", True)], ids=["before-commit", "after"]
)
def test_kill_around_the_commit_of_another_databases_migration_is_settled_by_one_command(
    point, applied, tmp_path, db_url, pg_server, monkeypatch
):
    """Config v3, database `analytics`: its state lives in the metadata database, which the
    migration's transaction cannot include. A kill just before or just after the commit must
    not leave state "applied" with the table missing (or the reverse) after one command."""
    from test_state import make_hasura_catalog, v3_project

    analytics = pg_server.create_database()
    try:
        monkeypatch.setenv("DEFAULT_DATABASE_URL", db_url)
        project = v3_project(tmp_path)
        with psycopg.connect(db_url, autocommit=True) as metadata:
            make_hasura_catalog(metadata)
        migrations = project / "hasura" / "migrations" / "analytics"
        write_migration(migrations, "t", "CREATE TABLE t (id int);", "DROP TABLE t;", FILL)
        killed = subprocess.run(
            [sys.executable, "-c", KILL_AT, point, analytics, str(project), str(migrations)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert killed.returncode == 9, killed.stderr

        def cli_state() -> dict:
            with psycopg.connect(db_url) as metadata:
                state = metadata.execute("SELECT cli_state FROM hdb_catalog.hdb_version")
                return state.fetchone()[0]["migrations"]["analytics"]

        def has_table() -> bool:
            with psycopg.connect(analytics) as conn:
                return conn.execute("SELECT to_regclass('t') IS NOT NULL").fetchone()[0]

        assert has_table() is applied
        assert cli_state() == {str(FILL): True}  # dirty: never "applied" without the table
        where = ["--project-dir", str(project), "--database-url", analytics]
        status = cli("db", "status", "--json", *where, "--database-name", "analytics")
        assert ('"applied"' in status.stdout) is applied, status.stdout
        assert cli_state() == ({str(FILL): False} if applied else {})
        cli("db", "migrate:up", *where, "--database-name", "analytics")
        assert has_table() and cli_state() == {str(FILL): False}
    finally:
        pg_server.drop_database(analytics)
