"""The drift check on databases as teams run them: a non-superuser owner, schemas nself-py does
not manage, and scratch databases a killed run left behind."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from test_drift import drift, generate_and_apply, scratch_databases

from nself_py.database.scratch import scratch_database


def test_drift_check_works_for_a_non_superuser_owner(tmp_path: Path, conn: psycopg.Connection):
    """No DROP DATABASE … WITH (FORCE), which a role without pg_signal_backend may not run."""
    role = f"owner_{uuid.uuid4().hex[:8]}"
    database = f"owned_{uuid.uuid4().hex[:8]}"
    conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB").format(sql.Identifier(role)))
    conn.execute(
        sql.SQL("CREATE DATABASE {} OWNER {}").format(
            sql.Identifier(database), sql.Identifier(role)
        )
    )
    url = make_conninfo(conn.info.dsn, user=role, dbname=database)
    try:
        with psycopg.connect(url) as owner:
            superuser = owner.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            assert superuser.fetchone() == (False,)
        generate_and_apply(tmp_path, url)
        result = drift(tmp_path, url)
        assert result.as_json()["errors"] == [] and result.as_json()["notes"] == []
        assert result.exit_code == 0, result.as_json()
        assert scratch_databases(url) == []
    finally:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )
        for (name,) in conn.execute(
            "SELECT datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
            "WHERE r.rolname = %s",
            (role,),
        ).fetchall():
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_an_unmanaged_schema_is_not_drift(tmp_path: Path, db_url: str):
    generate_and_apply(tmp_path, db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA auth; CREATE TABLE auth.users (id uuid PRIMARY KEY)")
    result = drift(tmp_path, db_url)
    assert result.as_json()["migrations"] == []
    assert result.as_json()["schema_dbml"] == []
    assert result.as_json()["errors"] == []
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.hand_made (id int)")
    result = drift(tmp_path, db_url)
    assert result.as_json()["migrations"] == [
        "table hand_made exists in the database but not in the applied migrations"
    ]


def test_scratch_databases_a_killed_run_left_are_dropped_by_the_next(
    db_url: str, conn: psycopg.Connection
):
    left = ["nself_drift_1000000000_deadbeef", "nself_drift_0123456789ab"]
    fresh = f"nself_drift_9999999999_{uuid.uuid4().hex[:8]}"  # a run creating it right now
    for name in [*left, fresh]:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with scratch_database(db_url, "drift") as replay:
            replay.execute("SELECT 1")
        names = {n for (n,) in conn.execute("SELECT datname FROM pg_database")}
        assert not names & set(left)
        assert fresh in names
    finally:
        for name in [*left, fresh]:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def test_replaying_a_migration_that_re_creates_a_hand_made_view_works(tmp_path: Path, db_url: str):
    """Changing a column's type drops and re-creates the views on it; a view made outside the
    migrations is not in the scratch database, and the replay used to fail on its DROP."""
    generate_and_apply(tmp_path, db_url, "Table users {\n  id int [pk]\n  name varchar(10)\n}\n")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE VIEW named AS SELECT name FROM users")
    generate_and_apply(tmp_path, db_url, "Table users {\n  id int [pk]\n  name text\n}\n")
    ups = sorted(tmp_path.glob("hasura/migrations/default/*/up.sql"))
    assert "DROP VIEW public.named;" in ups[-1].read_text()
    result = drift(tmp_path, db_url)
    assert result.as_json() == {
        "drift": False,
        "schema_dbml": [],
        "migrations": [],
        "notes": [],
        "errors": [],
    }
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM named").fetchone() == (0,)
