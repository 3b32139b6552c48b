"""Applying and rolling back on real PostgreSQL: atomic batches, exact state, clear refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from helpers import add_tables, mdir, state
from test_state import make_hasura_catalog, v3_project

from nself_py.database.apply import (
    LOCK_KEY,
    MISSING,
    MODIFIED,
    OUT_OF_ORDER,
    PENDING,
    migrate_down,
    migrate_up,
    migration_status,
)
from nself_py.errors import DatabaseError, MigrationError, NselfError
from nself_py.migrations.folders import write_migration

V1, V2, V3, V4 = 1700000000001, 1700000000002, 1700000000003, 1700000000004


def add(project: Path, version: int, name: str, up: str, down: str = "") -> Path:
    return write_migration(mdir(project), name, up, down, version=version)


def up(conn: psycopg.Connection, project: Path, **options):
    return migrate_up(conn, project, "default", mdir(project), **options)


def down(conn: psycopg.Connection, project: Path, **options):
    return migrate_down(conn, project, "default", mdir(project), **options)


def user_tables(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
    return [r[0] for r in rows]


def test_up_all_then_down_one(conn, project):
    add_tables(project, V1, V2, V3)
    outcome = up(conn, project)
    assert [s.migration.version for s in outcome.plan.steps] == [V1, V2, V3]
    assert state(conn, project) == {V1: False, V2: False, V3: False}
    assert user_tables(conn) == ["t1", "t2", "t3"]
    assert up(conn, project).plan.steps == ()
    down(conn, project)
    assert state(conn, project) == {V1: False, V2: False}
    assert user_tables(conn) == ["t1", "t2"]


def test_up_n_and_up_version_and_down_n_and_down_to_version(conn, project):
    add_tables(project, V1, V2, V3, V4)
    up(conn, project, count=2)
    assert set(state(conn, project)) == {V1, V2}
    up(conn, project, version=V4)
    assert set(state(conn, project)) == {V1, V2, V4}
    with pytest.raises(NselfError, match="already applied"):
        up(conn, project, version=V4)
    up(conn, project)
    assert user_tables(conn) == ["t1", "t2", "t3", "t4"]
    down(conn, project, count=2)
    assert set(state(conn, project)) == {V1, V2}
    up(conn, project)
    down(conn, project, to_version=V1)
    assert set(state(conn, project)) == {V1}
    assert user_tables(conn) == ["t1"]


def test_catalog_store_document_after_up_and_down(conn, tmp_path):
    project = v3_project(tmp_path)
    make_hasura_catalog(conn)
    add_tables(project, V1, V2)
    up(conn, project)
    down(conn, project)
    document = conn.execute("SELECT cli_state FROM hdb_catalog.hdb_version").fetchone()[0]
    assert document == {
        "migrations": {"default": {str(V1): False}},
        "settings": {"migration_mode": "true"},
        "isStateCopyCompleted": True,
    }
    assert conn.execute("SELECT to_regclass('hdb_catalog.schema_migrations')").fetchone()[0] is None


def test_failed_third_migration_leaves_nothing_of_the_batch(conn, project):
    add(project, V1, "one", "CREATE TABLE one (id int);")
    add(project, V2, "two", "ALTER TABLE one ADD COLUMN extra text;")
    add(
        project,
        V3,
        "three",
        "SELECT 1;\n\n-- explain\nALTER TABLE one\n  ADD COLUMN x int REFERENCES nowhere (id);",
    )
    with pytest.raises(MigrationError) as caught:
        up(conn, project)
    error = caught.value
    assert (error.version, error.name, error.line, error.statement_line) == (str(V3), "three", 4, 4)
    assert error.file == f"hasura/migrations/default/{V3}_three/up.sql"
    assert error.exit_code == 1
    assert str(error) == (
        f"migration {V3}_three failed in hasura/migrations/default/{V3}_three/up.sql at line 4:\n"
        "    line 4: ALTER TABLE one\n"
        'ERROR: relation "nowhere" does not exist'
    )
    assert user_tables(conn) == []
    assert state(conn, project) == {}
    assert conn.execute("SELECT count(*) FROM nself.migration_log").fetchone()[0] == 0


def test_function_bodies_and_percent_signs_run_as_written(conn, tmp_path):
    add(
        tmp_path,
        V1,
        "functions",
        "CREATE FUNCTION half(x int) RETURNS int LANGUAGE sql\n"
        "BEGIN ATOMIC\n  SELECT CASE WHEN x % 2 = 0 THEN x / 2 ELSE NULL END;\nEND;\n"
        "CREATE FUNCTION pct() RETURNS text LANGUAGE plpgsql AS $$\n"
        "BEGIN RETURN format('%s;%%', 5); END; $$;\n"
        "CREATE TABLE results AS SELECT half(8) AS h, pct() AS p;",
    )
    up(conn, tmp_path)
    assert conn.execute("TABLE results").fetchall() == [(4, "5;%")]


def test_rule_with_several_actions_in_parentheses_runs_as_one_statement(conn, tmp_path):
    add(
        tmp_path,
        V1,
        "rule",
        "CREATE TABLE t (id int);\nCREATE TABLE a (id int);\nCREATE TABLE b (id int);\n"
        "CREATE RULE fan_out AS ON INSERT TO t DO ALSO (\n"
        "  INSERT INTO a VALUES (NEW.id); INSERT INTO b VALUES (NEW.id * 10);\n"
        ");\n"
        "INSERT INTO t VALUES (1);",
    )
    up(conn, tmp_path)
    assert conn.execute("SELECT (TABLE a), (TABLE b)").fetchone() == (1, 10)


def test_error_line_points_inside_a_multi_line_statement_and_carries_the_hint(conn, tmp_path):
    add(tmp_path, V1, "bad", "SELECT 1;\n\nCREATE TABLE a (\n  id int,\n  x intt\n);")
    with pytest.raises(MigrationError) as caught:
        up(conn, tmp_path)
    assert (caught.value.line, caught.value.statement_line) == (5, 3)
    assert 'type "intt" does not exist' in caught.value.pg_message
    assert str(caught.value) == (
        f"migration {V1}_bad failed in hasura/migrations/default/{V1}_bad/up.sql at line 5 "
        "(the statement starts at line 3):\n"
        "    line 3: CREATE TABLE a (\n"
        "    line 5:   x intt\n"
        "                ^\n"
        'ERROR: type "intt" does not exist'
    )
    add(tmp_path, V2, "hint", "SELECT now() + 1;")
    with pytest.raises(MigrationError) as caught:
        up(conn, tmp_path, version=V2)
    assert caught.value.hint and "explicit type casts" in caught.value.hint
    assert "\nHINT: " in str(caught.value)


def test_per_migration_transaction_keeps_the_ones_before_the_failure(conn, tmp_path):
    add_tables(tmp_path, V1, V2)
    add(tmp_path, V3, "bad", "SELECT nope;")
    with pytest.raises(MigrationError):
        up(conn, tmp_path, per_migration_transaction=True)
    assert state(conn, tmp_path) == {V1: False, V2: False}
    assert user_tables(conn) == ["t1", "t2"]


def test_no_transaction_migration_with_create_index_concurrently(conn, project):
    add(project, V1, "table", "CREATE TABLE big (id int, x int);", "DROP TABLE big;")
    add(
        project,
        V2,
        "index",
        "-- hasura:no-transaction\nCREATE INDEX CONCURRENTLY big_x ON big (x);\n"
        "CREATE INDEX CONCURRENTLY big_id ON big (id);",
        "-- hasura:no-transaction\nDROP INDEX CONCURRENTLY big_x;\nDROP INDEX CONCURRENTLY big_id;",
    )
    add_tables(project, V3)
    up(conn, project)
    valid = conn.execute(
        "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = 'big'::regclass ORDER BY 1"
    ).fetchall()
    assert valid == [("big_id", True), ("big_x", True)]
    assert state(conn, project) == {V1: False, V2: False, V3: False}
    down(conn, project, count=2)
    assert state(conn, project) == {V1: False}
    assert (
        conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'big'").fetchone()[0] == 0
    )


def test_failed_no_transaction_migration_stays_dirty_and_blocks(conn, db_url, tmp_path):
    add(tmp_path, V1, "table", "CREATE TABLE big (id int);")
    add(
        tmp_path,
        V2,
        "index",
        "-- hasura:no-transaction\nCREATE INDEX CONCURRENTLY big_id ON big (id);\nSELECT nope;",
    )
    with pytest.raises(MigrationError):
        up(conn, tmp_path)
    assert state(conn, tmp_path) == {V1: False, V2: True}
    for run in (up, down):
        with pytest.raises(NselfError, match=f"version {V2} is marked dirty") as caught:
            run(conn, tmp_path)
        assert f"migrate:down --version {V2} --skip-execution" in str(caught.value)
    status = migration_status(conn, tmp_path, "default", mdir(tmp_path))
    assert [r.status for r in status.rows] == ["applied", "dirty"]
    cli = [sys.executable, "-m", "nself_py", "db", "status", "--json", "--project-dir"]
    shown = subprocess.run(
        [*cli, str(tmp_path), "--database-url", db_url], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 1, shown.stderr  # a dirty migration needs action: exit 1
    assert json.loads(shown.stdout) == {
        "database": "default",
        "migrations": [
            {"version": str(V1), "name": "table", "status": "applied"},
            {"version": str(V2), "name": "index", "status": "dirty"},
        ],
    }


def test_dirty_version_set_by_someone_else_blocks_with_fix(conn, tmp_path):
    project = v3_project(tmp_path)
    make_hasura_catalog(conn, {"migrations": {"default": {str(V1): True}}})
    add_tables(project, V1, V2)
    with pytest.raises(NselfError, match="marked dirty") as caught:
        up(conn, project)
    assert "cli_state" in str(caught.value)
    assert user_tables(conn) == []


def test_down_refuses_missing_or_empty_down_before_running_anything(conn, tmp_path):
    add_tables(tmp_path, V1)
    add(tmp_path, V2, "no_down", "CREATE TABLE t2 (id int);")
    add_tables(tmp_path, V3)
    up(conn, tmp_path)
    with pytest.raises(NselfError, match=f"cannot roll back {V2}_no_down"):
        down(conn, tmp_path, count=2)
    (mdir(tmp_path) / f"{V2}_no_down" / "down.sql").unlink()
    with pytest.raises(NselfError, match="missing or holds no SQL"):
        down(conn, tmp_path, to_version=V1)
    assert set(state(conn, tmp_path)) == {V1, V2, V3}
    assert user_tables(conn) == ["t1", "t2", "t3"]


def test_depends_on_must_exist_and_be_applied_first(conn, tmp_path):
    add_tables(tmp_path, V1)
    add(
        tmp_path,
        V3,
        "child",
        f"-- depends_on: {V2}_parent\nCREATE TABLE c (id int);",
        "DROP TABLE c;",
    )
    with pytest.raises(NselfError, match=f"depends on {V2}, which does not exist"):
        up(conn, tmp_path)
    add(tmp_path, V2, "parent", "CREATE TABLE p (id int);", "DROP TABLE p;")
    with pytest.raises(NselfError, match="not applied and not part of this run"):
        up(conn, tmp_path, version=V3)
    assert user_tables(conn) == []
    up(conn, tmp_path)
    assert user_tables(conn) == ["c", "p", "t1"]


def test_down_refuses_to_remove_what_a_remaining_migration_depends_on(conn, tmp_path):
    add(
        tmp_path,
        V2,
        "late_child",
        f"-- depends_on: {V3}\nCREATE TABLE c (id int);",
        "DROP TABLE c;",
    )
    add(tmp_path, V3, "parent", "CREATE TABLE p (id int);", "DROP TABLE p;")
    up(conn, tmp_path, version=V3)
    up(conn, tmp_path)
    with pytest.raises(NselfError, match=f"cannot roll back {V3}: {V2}_late_child depends on it"):
        down(conn, tmp_path)
    assert set(state(conn, tmp_path)) == {V2, V3}


def test_out_of_order_applies_with_warning_or_refuses_when_strict(conn, tmp_path):
    add_tables(tmp_path, V1, V3)
    up(conn, tmp_path)
    add_tables(tmp_path, V2)
    with pytest.raises(NselfError, match="--strict-order"):
        up(conn, tmp_path, strict_order=True)
    messages: list[str] = []
    outcome = up(conn, tmp_path, report=messages.append)
    assert any("out of order" in m and f"{V2}_t2" in m for m in messages)
    assert [s.migration.version for s in outcome.plan.steps] == [V2]
    assert set(state(conn, tmp_path)) == {V1, V2, V3}


def test_dry_run_changes_nothing(conn, tmp_path):
    add_tables(tmp_path, V1, V2)
    outcome = up(conn, tmp_path, dry_run=True)
    assert [(s.migration.version, s.statement_count) for s in outcome.plan.steps] == [
        (V1, 1),
        (V2, 1),
    ]
    assert conn.execute("SELECT to_regnamespace('hdb_catalog')").fetchone()[0] is None
    up(conn, tmp_path)
    assert [
        s.migration.version for s in down(conn, tmp_path, count=2, dry_run=True).plan.steps
    ] == [V2, V1]
    assert set(state(conn, tmp_path)) == {V1, V2}


def test_lock_held_elsewhere_times_out_without_running(conn, db_url, tmp_path):
    add_tables(tmp_path, V1)
    with psycopg.connect(db_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        messages: list[str] = []
        with pytest.raises(NselfError, match="--lock-timeout"):
            up(conn, tmp_path, lock_timeout=0.3, report=messages.append)
        assert any("waiting" in m for m in messages)
    assert user_tables(conn) == []
    up(conn, tmp_path, lock_timeout=0.3)
    assert user_tables(conn) == ["t1"]
    assert conn.execute("SELECT current_setting('lock_timeout')").fetchone()[0] == "0"


def test_unreadable_state_is_a_database_error(conn, tmp_path):
    conn.execute("CREATE SCHEMA hdb_catalog; CREATE TABLE hdb_catalog.schema_migrations (v text)")
    add_tables(tmp_path, V1)
    with pytest.raises(DatabaseError, match='column "version" does not exist') as caught:
        up(conn, tmp_path)
    assert caught.value.exit_code == 2
    with pytest.raises(DatabaseError):
        migration_status(conn, tmp_path, "default", mdir(tmp_path))


def test_status_reports_every_state_and_changes_nothing(conn, project):
    add_tables(project, V1, V2, V4)
    up(conn, project)
    add_tables(project, V3)
    (mdir(project) / f"{V2}_t2" / "up.sql").write_text("CREATE TABLE t2 (id bigint);\n")
    folder = mdir(project) / f"{V1}_t1"
    for file in folder.iterdir():
        file.unlink()
    folder.rmdir()
    add_tables(project, 1700000000009)
    before = conn.execute("SELECT count(*) FROM pg_class").fetchone()[0]
    status = migration_status(conn, project, "default", mdir(project))
    assert [(r.version, r.status) for r in status.rows] == [
        (V1, MISSING),
        (V2, MODIFIED),
        (V3, OUT_OF_ORDER),
        (V4, "applied"),
        (1700000000009, PENDING),
    ]
    assert status.last_applied == V4
    assert conn.execute("SELECT count(*) FROM pg_class").fetchone()[0] == before


def test_v1_directory_with_sql_and_yaml_applies_and_rolls_back(conn, tmp_path):
    migrations = tmp_path / "hasura" / "migrations"
    migrations.mkdir(parents=True)
    (migrations / f"{V1}_init.up.sql").write_text("CREATE SCHEMA app;\n")
    (migrations / f"{V1}_init.up.yaml").write_text(
        "- type: run_sql\n  args:\n    sql: CREATE TABLE app.authors (id int);\n"
        "- type: track_table\n  args:\n    schema: app\n    name: authors\n"
    )
    (migrations / f"{V1}_init.down.yaml").write_text(
        "- type: run_sql\n  args:\n    sql: DROP TABLE app.authors;\n"
    )
    (migrations / f"{V1}_init.down.sql").write_text("DROP SCHEMA app;\n")
    messages: list[str] = []
    migrate_up(conn, tmp_path, "default", migrations, report=messages.append)
    assert conn.execute("SELECT to_regclass('app.authors')").fetchone()[0] == "app.authors"
    assert any("track_table app.authors" in m for m in messages)
    migrate_down(conn, tmp_path, "default", migrations)
    assert conn.execute("SELECT to_regnamespace('app')").fetchone()[0] is None
    assert json.loads(json.dumps(state(conn, tmp_path))) == {}


def test_round_trip_on_every_server(any_db_url: str, tmp_path: Path):
    """Same apply, no-transaction index and rollback on PostgreSQL 18 and the system's."""
    add_tables(tmp_path, V1)
    add(
        tmp_path,
        V2,
        "index",
        "-- hasura:no-transaction\nCREATE INDEX CONCURRENTLY t1_id ON t1 (id);",
        "-- hasura:no-transaction\nDROP INDEX CONCURRENTLY t1_id;",
    )
    with psycopg.connect(any_db_url, autocommit=True) as conn:
        up(conn, tmp_path)
        assert state(conn, tmp_path) == {V1: False, V2: False}
        assert conn.execute("SELECT to_regclass('t1_id')").fetchone()[0] == "t1_id"
        down(conn, tmp_path, count=2)
        assert state(conn, tmp_path) == {}
        assert user_tables(conn) == []
