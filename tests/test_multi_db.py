"""Two databases in one project: databases.yaml names them, `.env` gives each its URL, and
`--all-databases` applies each folder to its own database with its own state."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from helpers import cli
from pgservers import Server
from test_state import make_hasura_catalog, v3_project

from nself_py.database.sources import Source, find_source, project_sources, source_url
from nself_py.errors import ConfigError
from nself_py.migrations.folders import write_migration

V1, V2 = 1700000000001, 1700000000002

DATABASES_YAML = """\
- name: default
  kind: postgres
  configuration:
    connection_info:
      database_url:
        from_env: HASURA_GRAPHQL_DATABASE_URL
      isolation_level: read-committed
      use_prepared_statements: true
  tables: "!include default/tables/tables.yaml"
- name: analytics
  kind: postgres
  configuration:
    connection_info:
      database_url:
        from_env: PG_DATABASE_URL
  tables: !include analytics/tables/tables.yaml
- name: mongo
  kind: Mongo
  configuration:
    value:
      connection: mongodb://mongo:27017/
"""


@pytest.fixture
def second_url(pg_server: Server) -> Iterator[str]:
    url = pg_server.create_database()
    yield url
    pg_server.drop_database(url)


def two_database_project(root: Path, default_url: str, analytics_url: str) -> Path:
    project = v3_project(root)
    databases = project / "hasura" / "metadata" / "databases"
    databases.mkdir(parents=True)
    (databases / "databases.yaml").write_text(DATABASES_YAML)
    (project / ".env").write_text(
        f"HASURA_GRAPHQL_DATABASE_URL={default_url}\nANALYTICS_DATABASE_URL='{analytics_url}'\n"
    )
    migrations = project / "hasura" / "migrations"
    write_migration(migrations / "default", "users", "CREATE TABLE users (id int);", "", V1)
    write_migration(migrations / "analytics", "events", "CREATE TABLE events (id int);", "", V1)
    write_migration(migrations / "analytics", "hits", "CREATE TABLE hits (id int);", "", V2)
    return project


def applied(url: str) -> tuple[dict[int, bool], list[str]]:
    with psycopg.connect(url) as conn:
        state = dict(conn.execute("SELECT version, dirty FROM hdb_catalog.schema_migrations"))
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return state, sorted(r[0] for r in rows)


def test_sources_and_their_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in [k for k in os.environ if k.endswith("DATABASE_URL")]:
        monkeypatch.delenv(name)
    project = two_database_project(tmp_path, "postgresql://a/one", "postgresql://b/two")
    assert project_sources(project) == [
        Source("default", "postgres", "HASURA_GRAPHQL_DATABASE_URL"),
        Source("analytics", "postgres", "PG_DATABASE_URL"),
    ]
    urls = [source_url(project, s) for s in project_sources(project)]
    assert urls == ["postgresql://a/one", "postgresql://b/two"]
    assert source_url(project, find_source(project, "analytics"), "postgresql://x/y") == (
        "postgresql://x/y"
    )
    with pytest.raises(ConfigError, match="set OTHER_DATABASE_URL"):
        source_url(project, find_source(project, "other"))


def test_all_databases_apply_each_with_its_own_state(db_url, second_url, tmp_path):
    project = two_database_project(tmp_path, db_url, second_url)
    out = cli("db", "migrate:up", "--all-databases", "--project-dir", str(project))
    assert "Database: default" in out.stdout and "Database: analytics" in out.stdout
    summary = out.stdout.strip().splitlines()[-2:]
    assert summary[0].startswith("default: applied 1 migration in ")
    assert summary[1].startswith("analytics: applied 2 migrations in ")
    assert applied(db_url) == ({V1: False}, ["users"])
    assert applied(second_url) == ({V1: False, V2: False}, ["events", "hits"])

    status = cli("db", "status", "--hasura", "--all-databases", "--project-dir", str(project))
    assert status.stdout.split("\n") == [
        "",
        "Database: default",
        "VERSION        NAME   SOURCE STATUS  DATABASE STATUS",
        "1700000000001  users  Present        Present",
        "",
        "Database: analytics",
        "VERSION        NAME    SOURCE STATUS  DATABASE STATUS",
        "1700000000001  events  Present        Present",
        "1700000000002  hits    Present        Present",
        "",
    ]


def test_a_failing_database_does_not_stop_the_others(db_url, second_url, tmp_path):
    project = two_database_project(tmp_path, db_url, second_url)
    hits = project / "hasura" / "migrations" / "analytics" / f"{V2}_hits" / "up.sql"
    hits.write_text("CREATE TABLE hits (id int REFERENCES nowhere);\n")
    out = cli("db", "migrate:up", "--all-databases", "--project-dir", str(project), code=1)
    assert "analytics: failed: migration 1700000000002_hits failed" in out.stdout
    assert "failed on 1 database(s): analytics" in out.stderr
    assert applied(db_url) == ({V1: False}, ["users"])
    with psycopg.connect(second_url) as conn:
        assert conn.execute("SELECT to_regclass('public.events')").fetchone() == (None,)


def test_all_databases_needs_databases_yaml(tmp_path: Path):
    out = cli("db", "migrate:up", "--all-databases", "--project-dir", str(tmp_path), code=2)
    assert "databases.yaml" in out.stderr


def test_status_json_for_all_databases_is_one_document(db_url, second_url, tmp_path):
    project = two_database_project(tmp_path, db_url, second_url)
    out = cli("db", "status", "--json", "--all-databases", "--project-dir", str(project))
    documents = json.loads(out.stdout)
    assert [(d["database"], len(d["migrations"])) for d in documents] == [
        ("default", 1),
        ("analytics", 2),
    ]
    assert {m["status"] for d in documents for m in d["migrations"]} == {"pending"}


def test_delete_all_on_all_databases_server_only(db_url, second_url, tmp_path):
    project = two_database_project(tmp_path, db_url, second_url)
    cli("db", "migrate:up", "--all-databases", "--project-dir", str(project))
    args = ["db", "migrate:delete", "--all", "--server", "--all-databases"]
    out = cli(*args, "--project-dir", str(project), code=1)
    assert "state rows to remove of database analytics: 1700000000001, 1700000000002" in out.stdout
    assert applied(second_url)[0] == {V1: False, V2: False}
    out = cli(*args, "--yes", "--project-dir", str(project))
    assert "deleted 3 state row(s) and 0 local folder(s)/file(s)" in out.stdout
    assert applied(db_url) == ({}, ["users"]) and applied(second_url) == ({}, ["events", "hits"])


def test_literal_urls_and_connection_parameters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("PLAIN_DATABASE_URL", raising=False)
    monkeypatch.delenv("PARTS_DATABASE_URL", raising=False)
    databases = tmp_path / "hasura" / "metadata" / "databases"
    databases.mkdir(parents=True)
    (databases / "databases.yaml").write_text(
        "- name: plain\n  kind: postgres\n  configuration:\n    connection_info:\n"
        "      database_url: postgresql://u@h:5433/plain\n"
        "- name: parts\n  kind: citus\n  configuration:\n    connection_info:\n"
        "      database_url:\n        connection_parameters:\n          host: db.local\n"
        "          port: 6432\n          username: app\n          password: p@ss\n"
        "          database: parts\n"
    )
    sources = project_sources(tmp_path)
    assert [source_url(tmp_path, s) for s in sources] == [
        "postgresql://u@h:5433/plain",
        "postgresql://app:p%40ss@db.local:6432/parts",
    ]
    (tmp_path / ".env").write_text("PLAIN_DATABASE_URL=postgresql://local/plain\n")
    assert source_url(tmp_path, sources[0]) == "postgresql://local/plain"


def cli_state(url: str) -> dict:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT cli_state FROM hdb_catalog.hdb_version").fetchone()[0]


def has_hdb_catalog(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT to_regnamespace('hdb_catalog')").fetchone()[0] is not None


def test_every_database_state_lives_in_the_metadata_database(db_url, second_url, tmp_path):
    """Config v3 with Hasura: like `hasura migrate apply --database-name analytics`, the state
    goes to the default database's cli_state under "analytics"; analytics gets no hdb_catalog."""
    project = two_database_project(tmp_path, db_url, second_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        make_hasura_catalog(conn, {"migrations": {"default": {}}, "settings": {"x": "y"}})
    where = ("--project-dir", str(project))
    out = cli("db", "migrate:up", "1", "--database-name", "analytics", *where)
    assert "state: hdb_catalog.hdb_version.cli_state of the metadata database" in out.stdout
    assert cli_state(db_url)["migrations"] == {"default": {}, "analytics": {str(V1): False}}

    out = cli("db", "migrate:up", "--all-databases", *where)
    assert "analytics: applied 1 migration" in out.stdout
    assert cli_state(db_url) == {
        "migrations": {"default": {str(V1): False}, "analytics": {str(V1): False, str(V2): False}},
        "settings": {"x": "y"},
        "isStateCopyCompleted": True,
    }
    assert not has_hdb_catalog(second_url)
    assert applied_tables(second_url) == ["events", "hits"]
    status = cli("db", "status", "--hasura", "--database-name", "analytics", *where)
    assert "1700000000002  hits    Present        Present" in status.stdout

    down = project / "hasura" / "migrations" / "analytics" / f"{V2}_hits" / "down.sql"
    down.write_text("DROP TABLE hits;\n")
    cli("db", "migrate:down", "--database-name", "analytics", *where)
    assert cli_state(db_url)["migrations"]["analytics"] == {str(V1): False}
    assert applied_tables(second_url) == ["events"]
    cli(
        "db",
        "migrate:down",
        "--version",
        str(V1),
        "--skip-execution",
        "--force",
        "--database-name",
        "analytics",
        *where,
    )
    assert cli_state(db_url)["migrations"]["analytics"] == {}
    assert not has_hdb_catalog(second_url)


def test_without_hasura_each_database_keeps_its_own_table(db_url, second_url, tmp_path):
    project = two_database_project(tmp_path, db_url, second_url)
    cli("db", "migrate:up", "--database-name", "analytics", "--project-dir", str(project))
    assert not has_hdb_catalog(db_url)
    assert applied(second_url) == ({V1: False, V2: False}, ["events", "hits"])


def test_an_unreachable_metadata_database_is_an_error(second_url, tmp_path):
    project = two_database_project(tmp_path, "postgresql://nobody@127.0.0.1:9/none", second_url)
    out = cli(
        "db", "migrate:up", "--database-name", "analytics", "--project-dir", str(project), code=2
    )
    assert "the migration state of database 'analytics' would be in the metadata" in out.stderr
    assert not has_hdb_catalog(second_url)


def applied_tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return sorted(r[0] for r in rows)


V0, V3 = 1699999999999, 1700000000003


def with_downs(project: Path) -> Path:
    """Adds default's V3 and analytics' V0, and a down.sql to every migration."""
    migrations = project / "hasura" / "migrations"
    write_migration(
        migrations / "default", "orders", "CREATE TABLE orders (id int);", "", version=V3
    )
    write_migration(
        migrations / "analytics", "early", "CREATE TABLE early (id int);", "", version=V0
    )
    for folder in migrations.glob("*/*_*"):
        table = folder.name.split("_", 1)[1]
        (folder / "down.sql").write_text(f"DROP TABLE {table};\n")
    return project


def test_goto_all_databases_moves_each_to_the_same_point_in_time(db_url, second_url, tmp_path):
    project = with_downs(two_database_project(tmp_path, db_url, second_url))
    where = ("--all-databases", "--project-dir", str(project))
    cli("db", "migrate:up", *where)
    assert applied(db_url) == ({V1: False, V3: False}, ["orders", "users"])

    out = cli("db", "migrate:goto", str(V2), *where)
    assert "default: rolled back 1 migration" in out.stdout
    assert "analytics: nothing to do" in out.stdout
    assert applied(db_url) == ({V1: False}, ["users"])
    assert applied(second_url)[0] == {V0: False, V1: False, V2: False}

    cli("db", "migrate:goto", str(V0), *where)
    assert applied(db_url) == ({}, [])
    assert applied(second_url) == ({V0: False}, ["early"])

    cli("db", "migrate:goto", str(V3), *where)
    assert applied(db_url) == ({V1: False, V3: False}, ["orders", "users"])
    assert applied(second_url)[0] == {V0: False, V1: False, V2: False}

    out = cli("db", "migrate:goto", "1600000000000", *where, code=2)
    assert "1600000000000 is not a migration of any database" in out.stderr


def test_squash_all_databases_squashes_each_own_range(db_url, second_url, tmp_path):
    """Analytics' state is in the metadata database (Hasura config v3): the squash rewrites it
    there; default has a single migration in the range and is left alone."""
    project = with_downs(two_database_project(tmp_path, db_url, second_url))
    with psycopg.connect(db_url, autocommit=True) as conn:
        make_hasura_catalog(conn)
    where = ("--all-databases", "--project-dir", str(project))
    cli("db", "migrate:up", *where)
    analytics = project / "hasura" / "migrations" / "analytics"
    before = sorted(p.name for p in analytics.iterdir())

    out = cli("db", "migrate:squash", "--from", str(V1), "--to", str(V2), *where)
    assert "default: nothing to squash" in out.stdout
    assert f"analytics: squashed 2 migrations into {V2}_squashed" in out.stdout
    assert sorted(p.name for p in analytics.iterdir()) == [
        f"{V0}_early",
        f"{V2}_squashed",
        f"squashed_{V1}_to_{V2}",
    ]
    assert before == [f"{V0}_early", f"{V1}_events", f"{V2}_hits"]
    assert cli_state(db_url)["migrations"] == {
        "default": {str(V1): False, str(V3): False},
        "analytics": {str(V0): False, str(V2): False},
    }
    assert not has_hdb_catalog(second_url)
    status = cli("db", "status", "--database-name", "analytics", "--project-dir", str(project))
    assert "2 migrations: 2 applied" in status.stdout

    out = cli("db", "migrate:squash", "--from", "1600000000000", *where, code=2)
    assert "--from: 1600000000000 is not a migration of any database" in out.stderr


def test_production_up_on_all_databases_backs_up_each(db_url, second_url, tmp_path):
    project = two_database_project(tmp_path, db_url, second_url)
    where = ("--all-databases", "--env", "prod", "--project-dir", str(project))
    refused = cli("db", "migrate:up", *where, code=1)
    assert "failed on 2 database(s): default, analytics" in refused.stderr
    assert "production database analytics: to apply" in refused.stdout
    assert not (project / "bin").exists() and applied_tables(second_url) == []
    assert not has_hdb_catalog(db_url) and not has_hdb_catalog(second_url)

    done = cli("db", "migrate:up", "--confirm", *where)
    assert done.stdout.count("backed up the database to ") == 2
    assert len(list((project / "bin" / "dbsyncs").iterdir())) == 2
    assert applied(db_url) == ({V1: False}, ["users"])
    assert applied(second_url) == ({V1: False, V2: False}, ["events", "hits"])
