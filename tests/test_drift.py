"""Drift checks against schema.dbml and against the replayed applied migrations (real servers)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import psycopg
import pytest
from helpers import mdir

from nself_py.commands import run as engine
from nself_py.commands.drift import check_drift
from nself_py.commands.project import Project
from nself_py.database.apply import migrate_up
from nself_py.migrations.folders import write_migration
from nself_py.read.dbml import read_dbml

DBML = """
Enum mood {
  ok
  sad
}
Table users {
  id integer [pk]
  name text [not null]
  m mood
}
"""


def generate_and_apply(project: Path, url: str, dbml: str = DBML) -> None:
    (project / "schema.dbml").write_text(dbml)
    engine.run(Project(project, url))
    with psycopg.connect(url, autocommit=True) as conn:
        migrate_up(conn, project, "default", mdir(project))


def drift(project: Path, url: str, with_dbml: bool = True):
    written = read_dbml(project / "schema.dbml") if with_dbml else None
    with psycopg.connect(url) as conn:
        return check_drift(url, conn, written, project, "default", mdir(project))


def scratch_databases(url: str) -> list[str]:
    """Scratch databases left behind. Other tests' checks may be replaying in parallel, so
    any seen now must be gone within a few seconds; a leaked one never goes."""
    query = "SELECT datname FROM pg_database WHERE datname LIKE 'nself_drift%'"
    with psycopg.connect(url) as conn:
        seen = {name for (name,) in conn.execute(query)}
        for _ in range(100):
            seen &= {name for (name,) in conn.execute(query)}
            if not seen:
                break
            time.sleep(0.1)
    return sorted(seen)


def test_clean_database_has_no_drift_and_views_functions_triggers_do_not_count(
    tmp_path, any_db_url
):
    generate_and_apply(tmp_path, any_db_url)
    with psycopg.connect(any_db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE VIEW named AS SELECT name FROM users;"
            "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RETURN NEW; END $$;"
            "CREATE TRIGGER users_touch BEFORE UPDATE ON users FOR EACH ROW "
            "EXECUTE FUNCTION touch();"
        )
    result = drift(tmp_path, any_db_url)
    assert result.as_json() == {
        "drift": False,
        "schema_dbml": [],
        "migrations": [],
        "notes": [],
        "errors": [],
    }
    assert result.exit_code == 0
    assert scratch_databases(any_db_url) == []


def test_hand_added_column_is_named_in_both_comparisons(tmp_path, any_db_url):
    generate_and_apply(tmp_path, any_db_url)
    with psycopg.connect(any_db_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE users ADD COLUMN hack text")
        conn.execute("ALTER TABLE users ALTER COLUMN name DROP NOT NULL")
    result = drift(tmp_path, any_db_url)
    assert result.exit_code == 1
    assert sorted(result.against_dbml) == [
        "column users.hack exists in the database but not in schema.dbml",
        "column users.name is nullable in the database but NOT NULL in schema.dbml",
    ]
    assert sorted(result.against_migrations) == [
        "column users.hack exists in the database but not in the applied migrations",
        "column users.name is nullable in the database but NOT NULL in the applied migrations",
    ]
    assert scratch_databases(any_db_url) == []


def test_dbml_edited_like_the_hand_change_still_drifts_from_the_migrations(tmp_path, db_url):
    generate_and_apply(tmp_path, db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE audit (id integer PRIMARY KEY)")
        conn.execute("ALTER TYPE mood ADD VALUE 'meh'")
    dbml = DBML.replace("  sad\n", "  sad\n  meh\n")
    (tmp_path / "schema.dbml").write_text(dbml + "\nTable audit {\n  id integer [pk]\n}\n")
    result = drift(tmp_path, db_url)
    assert result.against_dbml == ()
    assert sorted(result.against_migrations) == [
        "enum mood has values (ok, sad, meh) in the database but (ok, sad) in the "
        "applied migrations",
        "table audit exists in the database but not in the applied migrations",
    ]
    assert result.exit_code == 1


def test_missing_schema_file_or_migration_folder_is_an_error(tmp_path, db_url):
    generate_and_apply(tmp_path, db_url)
    result = drift(tmp_path, db_url, with_dbml=False)
    assert result.exit_code == 2
    assert "schema.dbml not found" in result.errors[0]
    assert result.against_migrations == ()
    for folder in mdir(tmp_path).iterdir():
        for file in folder.iterdir():
            file.unlink()
        folder.rmdir()
    result = drift(tmp_path, db_url)
    assert result.exit_code == 2
    assert "applied but not in the migrations directory" in result.errors[0]


def test_applied_migration_that_no_longer_replays_is_an_error(tmp_path, db_url):
    write_migration(mdir(tmp_path), "t", "CREATE TABLE t (id int);", "DROP TABLE t;", version=1)
    (tmp_path / "schema.dbml").write_text("Table t {\n  id int\n}\n")
    with psycopg.connect(db_url, autocommit=True) as conn:
        migrate_up(conn, tmp_path, "default", mdir(tmp_path))
    (mdir(tmp_path) / "1_t" / "up.sql").write_text("CREATE TABLE t (id int REFERENCES nowhere);")
    result = drift(tmp_path, db_url)
    assert result.against_dbml == ()
    assert result.exit_code == 2
    assert "replaying applied migration 1_t" in result.errors[0]
    assert 'relation "nowhere" does not exist' in result.errors[0]
    assert scratch_databases(db_url) == []


def test_role_without_createdb_skips_the_replay_with_a_note(tmp_path, db_url):
    generate_and_apply(tmp_path, db_url)
    role = f"r_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN NOCREATEDB")
        conn.execute(f"GRANT USAGE ON SCHEMA public, hdb_catalog TO {role}")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public, hdb_catalog TO {role}")
        conn.execute("ALTER TABLE users ADD COLUMN hack text")
    _user, rest = db_url.split("://", 1)[1].split("@", 1)
    limited = f"postgresql://{role}@{rest}"
    try:
        result = drift(tmp_path, limited)
        assert result.against_dbml == (
            "column users.hack exists in the database but not in schema.dbml",
        )
        assert result.notes and "may not CREATE DATABASE" in result.notes[0]
        assert result.exit_code == 1
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


@pytest.mark.parametrize("count", [40])
def test_replay_of_many_migrations_is_measured(tmp_path, db_url, count):
    for i in range(count):
        write_migration(
            mdir(tmp_path), f"t{i}", f"CREATE TABLE t{i} (id int PRIMARY KEY);", "", version=i + 1
        )
    (tmp_path / "schema.dbml").write_text(
        "".join(f"Table t{i} {{\n  id int [pk]\n}}\n" for i in range(count))
    )
    with psycopg.connect(db_url, autocommit=True) as conn:
        migrate_up(conn, tmp_path, "default", mdir(tmp_path))
    started = time.perf_counter()
    result = drift(tmp_path, db_url)
    print(f"drift check with {count} applied migrations: {time.perf_counter() - started:.2f} s")
    assert result.exit_code == 0, result


def test_view_on_a_column_whose_type_drifted_is_not_itself_drift(tmp_path, db_url):
    """A view on the changed column would be kept alive by a migration; drift only names the
    column (and is not refused, as a plan dropping the column's view would be)."""
    generate_and_apply(tmp_path, db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE VIEW named AS SELECT id, name FROM users")
    (tmp_path / "schema.dbml").write_text(DBML.replace("name text", "name varchar(50)"))
    result = drift(tmp_path, db_url)
    assert result.exit_code == 1
    assert len(result.against_dbml) == 1 and "users.name" in result.against_dbml[0]
    assert "view" not in result.against_dbml[0]
    assert not result.against_migrations
