"""Marking migrations applied or not without running them, goto, delete: on real PostgreSQL,
on both state stores, with the refusals that make them safer than Hasura's verbs."""

from __future__ import annotations

import psycopg
import pytest
from helpers import add_tables, cli, mdir, state

from nself_py.database.apply import GOTO, migrate_down, migrate_goto, migrate_up, migration_status
from nself_py.database.housekeeping import delete, mark_version, plan_deletion
from nself_py.database.schemacheck import expectations
from nself_py.database.state import logged_sha256, state_store
from nself_py.errors import MigrationError, NselfError
from nself_py.migrations.folders import write_migration
from nself_py.sql.parse import split_statements as split_sql

V1, V2, V3, V4, V5 = (1700000000001 + i for i in range(5))


def tables(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
    return [r[0] for r in rows]


def mark(conn, project, version, applied, **options):
    return mark_version(
        conn, project, "default", mdir(project), version, applied=applied, **options
    )


def goto(conn, project, version, **options):
    return migrate_goto(conn, project, "default", mdir(project), version=version, **options)


# --- skip execution -------------------------------------------------------------------------


def test_skip_execution_round_trip(conn, project):
    add_tables(project, V1)
    conn.execute("CREATE TABLE t1 (id int)")  # the fix someone made by hand
    marked = mark(conn, project, V1, True)
    assert state(conn, project) == {V1: False}
    assert marked.checked and marked.disagreements == ()
    assert V1 in logged_sha256(conn, "default")
    status = migration_status(conn, project, "default", mdir(project))
    assert [r.status for r in status.rows] == ["applied"]
    assert tables(conn) == ["t1"]  # nothing ran: a second CREATE TABLE would have failed

    conn.execute("DROP TABLE t1")
    mark(conn, project, V1, False)
    assert state(conn, project) == {}
    assert V1 not in logged_sha256(conn, "default")
    migrate_up(conn, project, "default", mdir(project))
    assert tables(conn) == ["t1"] and state(conn, project) == {V1: False}


def test_skip_refused_when_the_table_it_creates_is_missing(conn, project):
    add_tables(project, V1)
    with pytest.raises(NselfError, match=r"(?s)refusing to mark .*t1 does not exist"):
        mark(conn, project, V1, True)
    assert state(conn, project) == {}
    marked = mark(conn, project, V1, True, force=True)
    assert marked.disagreements == ("table t1 does not exist",)
    assert state(conn, project) == {V1: False}


def test_skip_down_refused_while_the_table_is_still_there(conn, project):
    add_tables(project, V1)
    migrate_up(conn, project, "default", mdir(project))
    with pytest.raises(NselfError, match="table t1 exists"):
        mark(conn, project, V1, False)
    assert state(conn, project) == {V1: False}


def test_skip_checks_enum_values_and_extensions(conn, project):
    conn.execute("CREATE TYPE mood AS ENUM ('sad')")
    up = "ALTER TYPE mood ADD VALUE 'happy';\nCREATE EXTENSION IF NOT EXISTS pg_trgm;"
    write_migration(mdir(project), "happy", up, "", version=V1)
    with pytest.raises(NselfError, match=r"(?s)enum mood value 'happy' does not exist.*pg_trgm"):
        mark(conn, project, V1, True)
    conn.execute("ALTER TYPE mood ADD VALUE 'happy'")
    conn.execute("CREATE EXTENSION pg_trgm")
    mark(conn, project, V1, True)
    assert state(conn, project) == {V1: False}


def test_skip_settles_a_dirty_version(conn, project):
    add_tables(project, V1)
    store = state_store(conn, project, "default")
    store.prepare(conn)
    store.write(conn, {V1: True})
    conn.execute("CREATE TABLE t1 (id int)")
    mark(conn, project, V1, True)
    assert state(conn, project) == {V1: False}


def test_skip_refuses_unknown_and_repeated_versions(conn, project):
    add_tables(project, V1)
    with pytest.raises(NselfError, match="no migration with version 42"):
        mark(conn, project, 42, True)
    with pytest.raises(NselfError, match=f"version {V1} is not applied"):
        mark(conn, project, V1, False)
    mark(conn, project, V1, True, force=True)
    with pytest.raises(NselfError, match="already applied"):
        mark(conn, project, V1, True)


def test_expectations_follow_the_net_effect_of_the_file():
    sql = (
        'CREATE TABLE IF NOT EXISTS app."Posts" (id int);\n'
        'CREATE UNIQUE INDEX posts_id ON app."Posts" (id);\n'
        "ALTER TABLE users ADD COLUMN age int, DROP COLUMN name, ADD CONSTRAINT c CHECK (id > 0);\n"
        "CREATE TABLE scratch (id int);\nDROP TABLE scratch;\n"
        "ALTER TABLE old RENAME TO new;\n"
        "CREATE EXTENSION IF NOT EXISTS pgcrypto;\nALTER TYPE mood ADD VALUE 'it''s ok';\n"
    )
    found = {e.describe() for e in expectations(split_sql(sql))}
    assert found == {
        'table app."Posts" does not exist',
        "index app.posts_id does not exist",
        "column users.age does not exist",
        "column users.name exists",
        "table scratch exists",
        "table old exists",
        "table new does not exist",
        "extension pgcrypto does not exist",
        "enum mood value 'it''s ok' does not exist",
    }


# --- goto -----------------------------------------------------------------------------------


def test_goto_up_then_down_across_several_versions(conn, project):
    add_tables(project, V1, V2, V3, V4, V5)
    outcome = goto(conn, project, V4)
    assert outcome.plan.direction == GOTO
    assert [(s.direction, s.migration.version) for s in outcome.plan.steps] == [
        ("up", V1),
        ("up", V2),
        ("up", V3),
        ("up", V4),
    ]
    assert tables(conn) == ["t1", "t2", "t3", "t4"]
    outcome = goto(conn, project, V1)
    assert [(s.direction, s.migration.version) for s in outcome.plan.steps] == [
        ("down", V4),
        ("down", V3),
        ("down", V2),
    ]
    assert tables(conn) == ["t1"] and set(state(conn, project)) == {V1}
    assert goto(conn, project, V1).plan.steps == ()


def test_goto_rolls_back_and_applies_in_one_run(conn, project):
    """V2 pending under applied V3: goto V2 rolls V3 back and applies V2."""
    add_tables(project, V1, V2, V3)
    migrate_up(conn, project, "default", mdir(project), version=V1)
    migrate_up(conn, project, "default", mdir(project), version=V3)
    outcome = goto(conn, project, V2)
    assert [(s.direction, s.migration.version) for s in outcome.plan.steps] == [
        ("down", V3),
        ("up", V2),
    ]
    assert tables(conn) == ["t1", "t2"] and set(state(conn, project)) == {V1, V2}


def test_goto_failure_keeps_nothing(conn, project):
    add_tables(project, V1, V2, V3)
    write_migration(mdir(project), "broken", "CREATE TABLE t1 (id int);", "", version=V4)
    with pytest.raises(MigrationError):
        goto(conn, project, V4)
    assert tables(conn) == [] and state(conn, project) == {}
    goto(conn, project, V3)
    (mdir(project) / f"{V2}_t2" / "down.sql").write_text("DROP TABLE nowhere;\n")
    with pytest.raises(MigrationError):
        goto(conn, project, V1)
    assert tables(conn) == ["t1", "t2", "t3"] and set(state(conn, project)) == {V1, V2, V3}


def test_goto_unknown_version(conn, project):
    add_tables(project, V1)
    with pytest.raises(NselfError, match="no migration with version 5"):
        goto(conn, project, 5)


# --- delete ---------------------------------------------------------------------------------


def test_delete_one_version_from_state_and_directory(conn, project):
    add_tables(project, V1, V2)
    migrate_up(conn, project, "default", mdir(project))
    deletion = plan_deletion(conn, project, "default", mdir(project), V2)
    assert deletion.state_versions == (V2,)
    assert deletion.paths == (mdir(project) / f"{V2}_t2",)
    delete(conn, project, "default", deletion)
    assert state(conn, project) == {V1: False}
    assert sorted(p.name for p in mdir(project).iterdir()) == [f"{V1}_t1"]
    assert V2 not in logged_sha256(conn, "default")
    assert tables(conn) == ["t1", "t2"]  # delete never touches the schema


def test_delete_all_server_only_keeps_folders(conn, project):
    add_tables(project, V1, V2, V3)
    migrate_up(conn, project, "default", mdir(project), count=2)
    deletion = plan_deletion(conn, project, "default", mdir(project), None, server_only=True)
    assert deletion.state_versions == (V1, V2) and deletion.paths == ()
    delete(conn, project, "default", deletion)
    assert state(conn, project) == {}
    assert len(list(mdir(project).iterdir())) == 3


def test_delete_unknown_version_is_refused(conn, project):
    add_tables(project, V1)
    with pytest.raises(NselfError, match="version 99 not found"):
        plan_deletion(conn, project, "default", mdir(project), 99)


# --- the CLI --------------------------------------------------------------------------------


def test_cli_skip_execution_goto_and_delete(db_url, conn, tmp_path):
    add_tables(tmp_path, V1, V2, V3)
    opts = ["--project-dir", str(tmp_path), "--database-url", db_url]
    out = cli("db", "migrate:up", "--version", str(V1), "--skip-execution", *opts, code=1)
    assert "refusing to mark" in out.stderr and "table t1 does not exist" in out.stderr
    out = cli("db", "migrate:up", "--version", str(V1), "--skip-execution", "--force", *opts)
    assert f"recorded {V1} as applied without running it" in out.stdout
    assert "warning: table t1 does not exist (--force)" in out.stderr
    cli("db", "migrate:down", "--version", str(V1), "--skip-execution", *opts)
    assert state(conn, tmp_path) == {}
    cli("db", "migrate:up", "--skip-execution", *opts, code=2)

    out = cli("db", "migrate:goto", str(V2), *opts)
    assert "applied 2 migrations" in out.stdout and tables(conn) == ["t1", "t2"]
    out = cli("db", "migrate:goto", str(V1), "--dry-run", *opts)
    assert "would goto" in out.stdout and tables(conn) == ["t1", "t2"]

    out = cli("db", "migrate:delete", "--version", str(V2), *opts, code=1)
    assert "nothing deleted" in out.stderr and state(conn, tmp_path) == {V1: False, V2: False}
    out = cli("db", "migrate:delete", "--version", str(V2), "--yes", *opts)
    assert "deleted 1 state row(s) and 1 local folder(s)/file(s)" in out.stdout
    assert state(conn, tmp_path) == {V1: False} and not (mdir(tmp_path) / f"{V2}_t2").exists()
    cli("db", "migrate:delete", *opts, code=2)


def test_cli_squash(db_url, tmp_path):
    add_tables(tmp_path, V1, V2, V3)
    opts = ["--project-dir", str(tmp_path), "--database-url", db_url]
    out = cli("db", "migrate:squash", "--from", str(V2), "--name", "both", *opts)
    assert f"created hasura/migrations/default/{V3}_both from 2 migrations" in out.stdout
    assert "same catalog as the originals (up and down)" in out.stdout
    out = cli("db", "status", "--hasura", *opts)
    assert out.stdout.splitlines()[1:] == [
        "1700000000001  t1    Present        Not Present",
        "1700000000003  both  Present        Not Present",
    ]


def test_down_exactly_one_version(conn, project):
    add_tables(project, V1, V2, V3)
    migrate_up(conn, project, "default", mdir(project))
    outcome = migrate_down(conn, project, "default", mdir(project), version=V2)
    assert [s.migration.version for s in outcome.plan.steps] == [V2]
    assert tables(conn) == ["t1", "t3"] and set(state(conn, project)) == {V1, V3}
    with pytest.raises(NselfError, match=f"version {V2} is not applied"):
        migrate_down(conn, project, "default", mdir(project), version=V2)
