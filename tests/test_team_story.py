"""The team story of issue 4, through the real CLI in subprocesses on a real PostgreSQL:
`db run` → `db update` → a hand-added column → `db status --check-drift` exits 1 naming it →
schema.dbml drops a column with data → `db update` refuses, `--allow-data-loss` applies →
`db revert` brings the column and its values back."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import psycopg
from helpers import cli as run_cli

DBML = """
Table users {
  id integer [pk]
  name text [not null]
  nickname text
}
"""


def cli(project: Path, url: str, *args: str, code: int = 0) -> subprocess.CompletedProcess:
    database = ["--database-url", url] if args[:2] != ("db", "backups") else []
    return run_cli(*args, "--project-dir", str(project), *database, code=code)


def rows(url: str, query: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def test_team_story(tmp_path, db_url):
    project, url = tmp_path, db_url
    (project / "schema.dbml").write_text(DBML)
    cli(project, url, "db", "run")
    out = cli(project, url, "db", "update").stdout
    assert "applied 1 migration" in out
    assert "no drift: the database matches schema.dbml and the applied migrations" in out
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO users VALUES (1, 'ann', 'a'), (2, 'bob', NULL), (3, 'cy', 'c')")
        conn.execute("ALTER TABLE users ADD COLUMN hack text")  # someone, by hand

    drift = cli(project, url, "db", "status", "--check-drift", code=1).stdout
    assert "column users.hack exists in the database but not in schema.dbml" in drift
    assert "column users.hack exists in the database but not in the applied migrations" in drift
    report = json.loads(cli(project, url, "db", "status", "--check-drift", "--json", code=1).stdout)
    assert report["drift"]["drift"] is True
    assert report["drift"]["schema_dbml"] == [
        "column users.hack exists in the database but not in schema.dbml"
    ]

    # the team removes the hand-made column; the check is clean again
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE users DROP COLUMN hack")
    clean = cli(project, url, "db", "status", "--check-drift").stdout
    assert "no drift: the database matches schema.dbml and the applied migrations" in clean

    (project / "schema.dbml").write_text(DBML.replace("  nickname text\n", ""))
    cli(project, url, "db", "run")
    refused = cli(project, url, "db", "update", code=1)
    assert "drops column public.users.nickname holding 2 non-null values" in refused.stderr
    assert "--allow-data-loss" in refused.stderr
    assert rows(url, "SELECT nickname FROM users ORDER BY id") == [("a",), (None,), ("c",)]

    applied = cli(project, url, "db", "update", "--allow-data-loss")
    assert "applied 1 migration" in applied.stdout
    assert "no drift" in applied.stdout
    assert rows(url, "SELECT to_regclass('users')::text, count(*) FROM users GROUP BY 1") == [
        ("users", 3)
    ]
    assert rows(
        url,
        "SELECT attname FROM pg_attribute WHERE attrelid = 'users'::regclass AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum",
    ) == [("id",), ("name",)]

    reverted = cli(project, url, "db", "revert", "--yes")
    assert "verified: the schema hash equals the backup's manifest" in reverted.stdout
    assert rows(url, "SELECT id, nickname FROM users ORDER BY id") == [
        (1, "a"),
        (2, None),
        (3, "c"),
    ]
    status = json.loads(cli(project, url, "db", "status", "--json").stdout)
    assert [m["status"] for m in status["migrations"]] == ["applied", "pending"]

    first, second = (m["version"] for m in status["migrations"])
    backups = json.loads(cli(project, url, "db", "backups", "--json").stdout)
    # one per change of the database: db update, db update --allow-data-loss (the refused one
    # took none), revert; db run writes files only and takes none
    assert [b["version"] for b in backups] == [None, first, second]


def test_revert_needs_yes_without_a_terminal(tmp_path, db_url):
    (tmp_path / "schema.dbml").write_text(DBML)
    cli(tmp_path, db_url, "db", "backup")
    refused = cli(tmp_path, db_url, "db", "revert", code=1)
    assert "needs --yes" in refused.stderr
    cli(tmp_path, db_url, "db", "revert", "--yes", "--keep", "1")
    listed = cli(tmp_path, db_url, "db", "backups").stdout
    assert "1 backup," in listed


def test_production_update_needs_confirm_then_prints_plan_and_backup(tmp_path, db_url):
    (tmp_path / "schema.dbml").write_text(DBML)
    cli(tmp_path, db_url, "db", "run", "--no-backup")
    refused = cli(tmp_path, db_url, "db", "update", "--env", "production", code=1)
    assert "production database: pass --confirm" in refused.stderr
    assert "_add_users (1 statement)" in refused.stdout
    assert rows(db_url, "SELECT to_regclass('users')") == [(None,)]
    out = cli(tmp_path, db_url, "db", "update", "--env", "prod", "--confirm").stdout
    lines = out.splitlines()
    plan = lines.index("production database default: to apply 1 pending migration(s):")
    backed_up = next(i for i, line in enumerate(lines) if line.startswith("backed up"))
    assert plan < backed_up < next(i for i, line in enumerate(lines) if line.startswith("up "))
    assert "applied 1 migration" in out
