"""Squash on real PostgreSQL: checked equivalent in scratch databases, refused when it is not or
when the range is half applied; the originals' folder is skipped by every reader."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from helpers import mdir, state
from pgservers import Server

from nself_py.database.apply import APPLIED, PENDING, migrate_down, migrate_up, migration_status
from nself_py.database.squash import read_catalog, squash
from nself_py.errors import NselfError
from nself_py.migrations.folders import local_migrations, write_migration

V = [1700000000001 + i for i in range(5)]

FIVE = [
    ("mood", "CREATE TYPE mood AS ENUM ('sad', 'happy');", "DROP TYPE mood;"),
    (
        "users",
        "CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL, feeling mood);",
        "DROP TABLE users;",
    ),
    (
        "posts",
        "CREATE TABLE posts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
        "  author int REFERENCES users (id) ON DELETE CASCADE, body text);",
        "DROP TABLE posts;",
    ),
    (
        "posts_index",
        "CREATE INDEX posts_author ON posts (author);\nALTER TABLE users ADD COLUMN age int;",
        "ALTER TABLE users DROP COLUMN age;\nDROP INDEX posts_author;",
    ),
    (
        "names_view",
        "CREATE VIEW names AS SELECT name FROM users;\n"
        "CREATE FUNCTION touch() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;",
        "DROP FUNCTION touch();\nDROP VIEW names;",
    ),
]


def add_five(project: Path) -> None:
    for version, (name, up, down) in zip(V, FIVE, strict=True):
        write_migration(mdir(project), name, up, down, version=version)


def listing(project: Path) -> list[str]:
    return sorted(p.name for p in mdir(project).iterdir())


def test_squash_of_five_pending_migrations_is_equivalent(db_url, conn, project, pg_server: Server):
    add_five(project)
    result = squash(db_url, project, "default", mdir(project), V[0])
    assert result.versions == tuple(V) and not result.applied and result.down_checked
    assert result.folder == mdir(project) / f"{V[4]}_squashed"
    assert listing(project) == [f"{V[4]}_squashed", f"squashed_{V[0]}_to_{V[4]}"]
    originals = sorted(p.name for p in result.sources.iterdir())
    assert originals == [f"{v}_{n}" for v, (n, _, _) in zip(V, FIVE, strict=True)]
    up_sql = (result.folder / "up.sql").read_text()
    assert up_sql.index("CREATE TYPE mood") < up_sql.index("CREATE VIEW names")
    down_sql = (result.folder / "down.sql").read_text()
    assert down_sql.index("DROP VIEW names") < down_sql.index("DROP TYPE mood")

    # Independently of the squash's own check: squash applied here, originals in another database.
    migrate_up(conn, project, "default", mdir(project))
    other_url = pg_server.create_database()
    try:
        with psycopg.connect(other_url, autocommit=True) as other:
            migrate_up(other, project, "default", result.sources)
            assert read_catalog(conn) == read_catalog(other)
            assert "names" in str(read_catalog(other).extras)
    finally:
        pg_server.drop_database(other_url)
    migrate_down(conn, project, "default", mdir(project))
    assert conn.execute("SELECT count(*) FROM pg_class WHERE relname = 'users'").fetchone() == (0,)


def test_squash_of_applied_range_keeps_it_applied(db_url, conn, project):
    add_five(project)
    migrate_up(conn, project, "default", mdir(project))
    result = squash(db_url, project, "default", mdir(project), V[1], V[3], name="middle")
    assert result.applied and result.versions == tuple(V[1:4])
    assert listing(project) == [
        f"{V[0]}_mood",
        f"{V[3]}_middle",
        f"{V[4]}_names_view",
        f"squashed_{V[1]}_to_{V[3]}",
    ]
    assert state(conn, project) == {V[0]: False, V[3]: False, V[4]: False}
    status = migration_status(conn, project, "default", mdir(project))
    assert [r.status for r in status.rows] == [APPLIED] * 3  # not Missing, not Modified
    assert migrate_up(conn, project, "default", mdir(project)).plan.steps == ()
    migrate_down(conn, project, "default", mdir(project), count=2)
    assert state(conn, project) == {V[0]: False}
    assert conn.execute("SELECT to_regclass('public.users')").fetchone() == (None,)


def test_squash_refuses_a_partly_applied_range(db_url, conn, project):
    add_five(project)
    migrate_up(conn, project, "default", mdir(project), count=2)
    before = listing(project)
    with pytest.raises(NselfError) as caught:
        squash(db_url, project, "default", mdir(project), V[0])
    message = str(caught.value)
    assert "partly applied" in message
    assert f"applied: {V[0]}_mood, {V[1]}_users\n" in message
    assert f"pending: {V[2]}_posts, {V[3]}_posts_index, {V[4]}_names_view" in message
    assert listing(project) == before


def test_squash_refuses_when_the_catalog_would_differ(db_url, tmp_path):
    """SET LOCAL ends with its migration's transaction, but not inside one squashed file."""
    migrations = mdir(tmp_path)
    write_migration(migrations, "app", "CREATE SCHEMA app;\nSET LOCAL search_path TO app;", "")
    write_migration(migrations, "t", "CREATE TABLE t (id int);", "DROP TABLE t;")
    before = listing(tmp_path)
    with pytest.raises(NselfError, match=r"does not produce the same catalog .* table t"):
        squash(db_url, tmp_path, "default", migrations, local_migrations(migrations)[0].version)
    assert listing(tmp_path) == before


def test_squashed_folder_is_ignored_by_status_and_apply(db_url, conn, project):
    add_five(project)
    squash(db_url, project, "default", mdir(project), V[0], delete_source=False)
    status = migration_status(conn, project, "default", mdir(project))
    assert [(r.version, r.name, r.status) for r in status.rows] == [(V[4], "squashed", PENDING)]
    outcome = migrate_up(conn, project, "default", mdir(project))
    assert [s.migration.label for s in outcome.plan.steps] == [f"{V[4]}_squashed"]
    assert state(conn, project) == {V[4]: False}


def test_squash_replays_earlier_migrations_first_and_can_delete_the_source(db_url, project):
    add_five(project)
    result = squash(db_url, project, "default", mdir(project), V[2], delete_source=True)
    assert result.sources is None
    assert listing(project) == [f"{V[0]}_mood", f"{V[1]}_users", f"{V[4]}_squashed"]


def test_squash_range_errors(db_url, project):
    add_five(project)
    with pytest.raises(NselfError, match="no migration with version 7"):
        squash(db_url, project, "default", mdir(project), 7)
    with pytest.raises(NselfError, match="--from is after --to"):
        squash(db_url, project, "default", mdir(project), V[3], V[1])
    with pytest.raises(NselfError, match="single migration"):
        squash(db_url, project, "default", mdir(project), V[4])
    later = "-- depends_on: 1700000000002_users\nCREATE TABLE later (id int);"
    write_migration(mdir(project), "later", later, "DROP TABLE later;", version=V[4] + 1)
    with pytest.raises(NselfError, match=f"depends on {V[1]}, which the squash removes"):
        squash(db_url, project, "default", mdir(project), V[0], V[2])


def test_squash_check_runs_on_each_server(any_db_url, tmp_path):
    """The catalog comparison's queries (views, functions, triggers, sequences) on 15 and 18."""
    add_five(tmp_path)
    trigger = (
        "CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;\n"
        "CREATE TRIGGER users_stamp BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION stamp();"
    )
    undo = "DROP TRIGGER users_stamp ON users;\nDROP FUNCTION stamp();"
    write_migration(mdir(tmp_path), "stamp", trigger, undo, version=V[4] + 1)
    result = squash(any_db_url, tmp_path, "default", mdir(tmp_path), V[0])
    assert len(result.versions) == 6 and result.down_checked
    with psycopg.connect(any_db_url, autocommit=True) as conn:
        migrate_up(conn, tmp_path, "default", mdir(tmp_path))
        extras = {(kind, name) for kind, name, _ in read_catalog(conn).extras}
    assert {("trigger", "users.users_stamp"), ("function", "public.stamp()")} <= extras
    assert ("view", "public.names") in extras and ("sequence", "public.users_id_seq") in extras


def test_squash_refuses_config_v1_flat_files(db_url, tmp_path):
    migrations = mdir(tmp_path)
    migrations.mkdir(parents=True)
    for version in V[:2]:
        name = f"t{version % 10}"
        (migrations / f"{version}_{name}.up.sql").write_text(f"CREATE TABLE {name} ();")
    with pytest.raises(NselfError, match="migrate:convert-v1"):
        squash(db_url, tmp_path, "default", migrations, V[0])
