"""Hasura sees what `db run` builds: metadata written with each migration through the real CLI
against a real PostgreSQL, user edits kept, `db metadata sync|check`, config v2 and v3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

BLOG = """
    Table users {
      id integer [pk]
      email text
    }
    Table profiles {
      id integer [pk]
      user_id integer [unique, ref: - users.id]
    }
    Table posts {
      id integer [pk]
      author_id integer [ref: > users.id]
    }
    Table tags {
      id integer [pk]
    }
    Table post_tags {
      post_id integer [ref: > posts.id]
      tag_id integer [ref: > tags.id]
      indexes {
        (post_id, tag_id) [pk]
      }
    }
    Table employees {
      id integer [pk]
      manager_id integer [ref: > employees.id]
    }
    Table messages {
      id integer [pk]
      sender_id integer [ref: > users.id]
      recipient_id integer [ref: > users.id]
    }
    Table billing.invoices {
      id integer
      tenant_id integer
      user_id integer [ref: > users.id]
      indexes {
        (id, tenant_id) [pk]
      }
    }
    Table billing.invoice_lines {
      id integer [pk]
      invoice_id integer
      tenant_id integer
    }
    Ref: billing.invoice_lines.(invoice_id, tenant_id) > billing.invoices.(id, tenant_id)
"""


def nself(
    project: Path, url: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "nself_py", *args]
    command += ["--project-dir", str(project), "--database-url", url]
    mine = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "HASURA_VERSION")}
    env = {**mine, **(env or {})}
    return subprocess.run(
        command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, check=False
    )


def ok(project: Path, url: str, *args: str, env: dict[str, str] | None = None) -> str:
    result = nself(project, url, *args, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def make_project(tmp_path: Path, dbml: str, version: int = 3) -> Path:
    (tmp_path / "hasura").mkdir()
    (tmp_path / "hasura" / "config.yaml").write_text(f"version: {version}\n")
    (tmp_path / "schema.dbml").write_text(textwrap.dedent(dbml))
    return tmp_path


def tables_dir(project: Path) -> Path:
    return project / "hasura" / "metadata" / "databases" / "default" / "tables"


def run_and_apply(project: Path, url: str, *args: str) -> str:
    out = ok(project, url, "db", "run", "--no-backup", *args)
    ok(project, url, "db", "migrate:up")
    return out


def test_db_run_tracks_every_table_and_relationship(tmp_path: Path, db_url: str) -> None:
    project = make_project(tmp_path, BLOG)
    (project / ".env").write_text("HASURA_VERSION=v2.44.0\n")  # writes what its export writes
    out = run_and_apply(project, db_url)
    assert "Hasura metadata updated: tracks billing.invoice_lines, billing.invoices," in out
    assert "users.messagesByRecipientId" in out
    tables = tables_dir(project)
    assert (tables / "tables.yaml").read_text() == "".join(
        f'- "!include {name}.yaml"\n'
        for name in (
            "billing_invoice_lines", "billing_invoices", "public_employees", "public_messages",
            "public_post_tags", "public_posts", "public_profiles", "public_tags", "public_users",
        )
    )  # fmt: skip
    databases = (project / "hasura/metadata/databases/databases.yaml").read_text()
    assert "from_env: HASURA_GRAPHQL_DATABASE_URL" in databases
    assert 'tables: "!include default/tables/tables.yaml"' in databases
    assert (tables / "public_messages.yaml").read_text() == (
        "table:\n  name: messages\n  schema: public\nobject_relationships:\n"
        "  - name: user\n    using:\n      foreign_key_constraint_on: sender_id\n"
        "  - name: userByRecipientId\n    using:\n      foreign_key_constraint_on: recipient_id\n"
    )
    profiles = (tables / "public_users.yaml").read_text()
    assert "  - name: profile\n" in profiles.split("array_relationships")[0]  # one-to-one: object
    post_tags = (tables / "public_post_tags.yaml").read_text()
    assert "name: post\n" in post_tags and "name: tag\n" in post_tags  # many-to-many join
    lines = (tables / "billing_invoice_lines.yaml").read_text()
    assert "foreign_key_constraint_on:\n        - invoice_id\n        - tenant_id\n" in lines
    # the database matches the DBML and the metadata the database: nothing left to do
    assert "no migration written" in ok(project, db_url, "db", "run", "--no-backup")
    assert "consistent" in ok(project, db_url, "db", "metadata", "check")
    assert "up to date" in ok(project, db_url, "db", "metadata", "sync")


def test_dry_run_writes_no_metadata(tmp_path: Path, db_url: str) -> None:
    project = make_project(tmp_path, BLOG)
    out = ok(project, db_url, "db", "run", "--dry-run")
    assert "Hasura metadata would change (dry run, not written): tracks" in out
    assert not (project / "hasura" / "metadata").exists()
    document = json.loads(ok(project, db_url, "db", "run", "--dry-run", "--json"))
    change = document["metadata"]
    assert change["written"] is False and change["warnings"] == []
    assert any(line.startswith("tracks ") and "public.posts" in line for line in change["changes"])
    assert any(f.endswith("tables.yaml") for f in change["files"])
    assert not (project / "hasura" / "metadata").exists()


def test_project_without_hasura_config_gets_no_metadata(tmp_path: Path, db_url: str) -> None:
    (tmp_path / "schema.dbml").write_text("Table t {\n  id integer [pk]\n}\n")
    ok(tmp_path, db_url, "db", "run", "--no-backup")
    assert not (tmp_path / "hasura" / "metadata").exists()


PERMISSION = """\
select_permissions:
  # reviewed by security
  - role: user
    permission:
      columns:
        - id
        - author_id
      filter:
        author_id:
          _eq: X-Hasura-User-Id
"""


def test_user_edits_survive_add_column_drop_table_and_rename(tmp_path: Path, db_url: str) -> None:
    project = make_project(tmp_path, BLOG)
    run_and_apply(project, db_url)
    posts = tables_dir(project) / "public_posts.yaml"
    posts.write_text(posts.read_text() + PERMISSION)
    schema = project / "schema.dbml"

    # add a column: the permission and its comment stay byte for byte
    author = "author_id integer [ref: > users.id]"
    schema.write_text(schema.read_text().replace(author, author + "\n  title text"))
    run_and_apply(project, db_url)
    assert posts.read_text().endswith(PERMISSION)

    # drop a table: its include, its file and every relationship to it go; the output says so
    schema.write_text(schema.read_text().replace(
        "Table profiles {\n  id integer [pk]\n  user_id integer [unique, ref: - users.id]\n}\n", ""
    ))  # fmt: skip
    out = run_and_apply(project, db_url)
    assert "untracks public.profiles" in out
    assert not (tables_dir(project) / "public_profiles.yaml").exists()
    assert "public_profiles" not in (tables_dir(project) / "tables.yaml").read_text()
    assert "profile" not in (tables_dir(project) / "public_users.yaml").read_text()
    assert posts.read_text().endswith(PERMISSION)

    # rename the table and a column: the file, references and permission columns follow
    text = schema.read_text().replace("Table posts {", "Table articles {")
    text = text.replace("ref: > posts.id", "ref: > articles.id").replace(
        "title text", "heading text"
    )
    schema.write_text(text)
    run_and_apply(
        project, db_url, "--rename", "posts=articles", "--rename", "articles.title=heading"
    )
    articles = tables_dir(project) / "public_articles.yaml"
    assert not posts.exists() and articles.exists()
    assert "  # reviewed by security\n  - role: user\n" in articles.read_text()
    assert "name: articles\n" in articles.read_text()
    assert "posts" not in (tables_dir(project) / "tables.yaml").read_text()
    users = (tables_dir(project) / "public_users.yaml").read_text()
    # the relationship keeps its name (never renamed); its remote table follows the rename
    assert "table:\n          name: posts\n" not in users
    assert "table:\n          name: articles\n" in users
    assert "consistent" in ok(project, db_url, "db", "metadata", "check")


def test_metadata_sync_adopts_an_existing_database(tmp_path: Path, db_url: str) -> None:
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE authors (id int PRIMARY KEY);"
            "CREATE TABLE books (id int PRIMARY KEY, author_id int REFERENCES authors);"
        )
    (tmp_path / "hasura").mkdir()
    (tmp_path / "hasura" / "config.yaml").write_text("version: 3\n")
    check = nself(tmp_path, db_url, "db", "metadata", "check")
    assert check.returncode == 1
    assert "untracked_table: " in check.stderr and "public.books" in check.stderr
    dry = ok(tmp_path, db_url, "db", "metadata", "sync", "--dry-run")
    assert "tracks public.authors, public.books" in dry
    assert not (tmp_path / "hasura" / "metadata").exists()
    out = ok(tmp_path, db_url, "db", "metadata", "sync")
    assert "adds relationships authors.books, books.author" in out
    first = (tables_dir(tmp_path) / "public_books.yaml").read_text()
    assert "up to date" in ok(tmp_path, db_url, "db", "metadata", "sync")
    assert (tables_dir(tmp_path) / "public_books.yaml").read_text() == first
    assert "consistent" in ok(tmp_path, db_url, "db", "metadata", "check")


def test_metadata_check_catches_each_inconsistency(tmp_path: Path, db_url: str) -> None:
    import psycopg

    project = make_project(tmp_path, BLOG)
    run_and_apply(project, db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "DROP TABLE public.employees;"  # tracked table that does not exist
            "ALTER TABLE public.messages DROP CONSTRAINT messages_recipient_id_fkey;"  # gone FK
            "CREATE TABLE public.extra (id int PRIMARY KEY);"  # untracked managed table
        )
    tables = tables_dir(project) / "tables.yaml"
    # tags untracked by hand while post_tags keeps its relationship to it
    tables.write_text(tables.read_text().replace('- "!include public_tags.yaml"\n', ""))
    (tables_dir(project) / "public_profiles.yaml").unlink()  # an include whose file is gone
    result = nself(project, db_url, "db", "metadata", "check")
    assert result.returncode == 1, result.stdout + result.stderr
    err = result.stderr
    assert "missing_table: tracked table public.employees does not exist" in err
    assert "missing_table: included file public_profiles.yaml is missing" in err
    assert "broken_relationship: " in err and "userByRecipientId" in err
    assert "untracked_table: " in err and "public.extra" in err and "public.tags" in err
    assert "relationship_to_untracked_table: " in err and "post_tags" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("version", [2, 3])
def test_fresh_project_migrations_where_the_config_version_puts_them(
    tmp_path: Path, db_url: str, version: int
) -> None:
    project = make_project(tmp_path, "Table t {\n  id integer [pk]\n}\n", version)
    out = ok(project, db_url, "db", "run", "--no-backup")
    migrations = project / "hasura" / "migrations"
    folders = [p.name for p in migrations.iterdir()]
    if version == 2:
        assert len(folders) == 1 and folders[0].endswith("_add_t"), folders
        assert "hasura/migrations/" + folders[0] in out
        assert (project / "hasura/metadata/tables.yaml").read_text() == (
            "- table:\n    name: t\n    schema: public\n"
        )
    else:
        assert folders == ["default"]
        assert (tables_dir(project) / "public_t.yaml").is_file()
    ok(project, db_url, "db", "migrate:up")
    status = ok(project, db_url, "db", "status")
    assert "add_t " in status and "pending" not in status.lower(), status


def test_no_change_run_writes_the_metadata_that_is_missing(tmp_path: Path, db_url: str) -> None:
    project = make_project(tmp_path, BLOG)
    run_and_apply(project, db_url)
    written = {p.name: p.read_text() for p in tables_dir(project).iterdir()}
    assert "no migration written" in ok(project, db_url, "db", "run", "--no-backup")
    memo = ok(project, db_url, "db", "run", "--no-backup")
    assert "as the last run that found no change saw" in memo and "metadata" not in memo
    # someone deleted a table file: tables.yaml still includes it
    (tables_dir(project) / "public_posts.yaml").unlink()
    dry = ok(project, db_url, "db", "run", "--no-backup", "--dry-run")
    assert "Hasura metadata would change (dry run, not written): tracks public.posts" in dry
    assert not (tables_dir(project) / "public_posts.yaml").exists()
    out = ok(project, db_url, "db", "run", "--no-backup")
    assert "no migration written" in out
    assert "Hasura metadata updated: tracks public.posts" in out
    assert {p.name: p.read_text() for p in tables_dir(project).iterdir()} == written
    # a checkout whose metadata was never written: all of it, as a changing run writes it
    for path in sorted((project / "hasura" / "metadata").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    out = ok(project, db_url, "db", "run", "--no-backup")
    assert "Hasura metadata updated: tracks billing.invoice_lines" in out
    assert {p.name: p.read_text() for p in tables_dir(project).iterdir()} == written
    # in step again: the repeat run is the memo's, and says nothing of metadata
    memo = ok(project, db_url, "db", "run", "--no-backup")
    assert "as the last run that found no change saw" in memo and "metadata" not in memo
    assert "consistent" in ok(project, db_url, "db", "metadata", "check")


COMPOSITE_FK = "foreign_key_constraint_on:\n        - invoice_id\n        - tenant_id\n"
COMPOSITE_MANUAL = "manual_configuration:\n        column_mapping:\n          invoice_id: id\n"
PROFILE_FK = "  - name: profile\n    using:\n      foreign_key_constraint_on:\n        column:"
PROFILE_MANUAL = "  - name: profile\n    using:\n      manual_configuration:\n"


@pytest.mark.parametrize(
    ("dotenv", "environment", "composite", "profile"),
    [
        (None, None, COMPOSITE_MANUAL, PROFILE_MANUAL),  # unknown: the form every version takes
        ("HASURA_VERSION=v2.0.0-alpha.10", None, COMPOSITE_MANUAL, PROFILE_FK),
        ("HASURA_VERSION='v2.0.0-alpha.11'", None, COMPOSITE_FK, PROFILE_FK),
        ("HASURA_VERSION=v2.44.0", "v1.3.3", COMPOSITE_MANUAL, PROFILE_MANUAL),  # env wins
    ],
)
def test_relationship_forms_follow_the_projects_hasura_version(
    tmp_path: Path,
    db_url: str,
    dotenv: str | None,
    environment: str | None,
    composite: str,
    profile: str,
) -> None:
    project = make_project(tmp_path, BLOG)
    if dotenv is not None:
        (project / ".env").write_text(dotenv + "\n")
    env = {"HASURA_VERSION": environment} if environment else None
    ok(project, db_url, "db", "run", "--no-backup", env=env)
    assert composite in (tables_dir(project) / "billing_invoice_lines.yaml").read_text()
    assert profile in (tables_dir(project) / "public_users.yaml").read_text()
