"""The one production gate (commands/gate.py) of `db update` and `db migrate:up/down/goto`,
through the real CLI on a real PostgreSQL: the same exit codes, refusal text and printed plan
from both, and a backup taken (its path printed) before anything is applied."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from helpers import cli, mdir, state

from nself_py.migrations.folders import write_migration

BASE = 1700000000000
UPDATE = ("db", "update")
UP = ("db", "migrate:up")


def prod(project: Path, url: str, *args: str, code: int = 0) -> subprocess.CompletedProcess:
    """`nself-py ARGS` with production named by --env and no other production marker."""
    env = {k: v for k, v in os.environ.items() if k not in ("NSELF_ENV", "ENV")}
    env = {k: v for k, v in env.items() if not k.endswith("DATABASE_URL")}
    where = ("--env", "production", "--project-dir", str(project), "--database-url", url)
    return cli(*args, *where, code=code, env=env)


def backups(project: Path) -> list[Path]:
    root = project / "bin" / "dbsyncs"
    return sorted(root.iterdir()) if root.is_dir() else []


def add(project: Path, offset: int, up: str, down: str) -> int:
    write_migration(mdir(project), f"m{offset}", up, down, version=BASE + offset)
    return BASE + offset


def dbml(project: Path, *tables: str) -> None:
    """schema.dbml as the database will be, so `db update`'s verification passes."""
    text = "".join(f"Table {name} {{\n  id int\n}}\n" for name in tables)
    (project / "schema.dbml").write_text(text)


@pytest.mark.parametrize("command", [UPDATE, UP])
def test_refused_without_confirm_changes_nothing(command, conn, tmp_path):
    add(tmp_path, 1, "CREATE TABLE a (id int);", "DROP TABLE a;")
    refused = prod(tmp_path, conn.info.dsn, *command, code=1)
    assert (
        "this is a production database: pass --confirm to apply 1 pending migration(s) "
        "(nothing was changed)" in refused.stderr
    )
    assert refused.stdout.splitlines()[:2] == [
        "production database default: to apply 1 pending migration(s):",
        "  1700000000001_m1 (1 statement)",
    ]
    assert state(conn, tmp_path) == {} and backups(tmp_path) == []
    assert conn.execute("SELECT to_regclass('a')").fetchone() == (None,)


@pytest.mark.parametrize("command", [UPDATE, UP])
def test_confirmed_backs_up_before_applying_and_prints_the_path(command, conn, tmp_path):
    first = add(tmp_path, 1, "CREATE TABLE a (id int);", "DROP TABLE a;")
    cli(*UP, "--project-dir", str(tmp_path), "--database-url", conn.info.dsn)
    second = add(tmp_path, 2, "CREATE TABLE b (id int);", "DROP TABLE b;")
    dbml(tmp_path, "a", "b")
    done = prod(tmp_path, conn.info.dsn, *command, "--confirm")
    lines = done.stdout.splitlines()
    (folder,) = backups(tmp_path)
    backed_up = lines.index(f"backed up the database to {folder}")
    plan = lines.index("  1700000000002_m2 (1 statement)")
    applied = next(i for i, line in enumerate(lines) if line.startswith("applied 1 migration"))
    assert plan < backed_up < applied
    assert json.loads((folder / "manifest.json").read_text())["applied_versions"] == [first]
    assert state(conn, tmp_path) == {first: False, second: False}


@pytest.mark.parametrize("command", [UPDATE, UP])
def test_nothing_pending_needs_no_confirm_and_takes_no_backup(command, conn, tmp_path):
    add(tmp_path, 1, "CREATE TABLE a (id int);", "DROP TABLE a;")
    cli(*UP, "--project-dir", str(tmp_path), "--database-url", conn.info.dsn)
    dbml(tmp_path, "a")
    done = prod(tmp_path, conn.info.dsn, *command)
    assert "nothing to apply" in done.stdout and backups(tmp_path) == []


@pytest.mark.parametrize("command", [UPDATE, UP])
def test_data_loss_is_refused_before_production_is_asked(command, conn, tmp_path):
    add(tmp_path, 1, "CREATE TABLE a (id int);", "DROP TABLE a;")
    cli(*UP, "--project-dir", str(tmp_path), "--database-url", conn.info.dsn)
    conn.execute("INSERT INTO a VALUES (1)")
    add(tmp_path, 2, "DROP TABLE a;", "CREATE TABLE a (id int);")
    dbml(tmp_path)
    refused = prod(tmp_path, conn.info.dsn, *command, "--confirm", code=1)
    assert "would destroy data (nothing was changed)" in refused.stderr
    assert "--allow-data-loss" in refused.stderr and backups(tmp_path) == []
    done = prod(tmp_path, conn.info.dsn, *command, "--confirm", "--allow-data-loss")
    lines = done.stdout.splitlines() + done.stderr.splitlines()
    assert any(line.startswith("backed up the database to") for line in lines)
    assert any("warning: destroying data (--allow-data-loss)" in line for line in lines)
    assert conn.execute("SELECT to_regclass('a')").fetchone() == (None,)


@pytest.mark.parametrize("command", ["migrate:down", "migrate:goto"])
def test_rollback_on_production_needs_confirm_then_backs_up(command, conn, tmp_path):
    first = add(tmp_path, 1, "CREATE TABLE a (id int);", "DROP TABLE a;")
    add(tmp_path, 2, "CREATE TABLE b (id int);", "DROP TABLE b;")
    cli(*UP, "--project-dir", str(tmp_path), "--database-url", conn.info.dsn)
    args = ("db", command, *([str(first)] if command == "migrate:goto" else []))
    refused = prod(tmp_path, conn.info.dsn, *args, code=1)
    assert (
        "this is a production database: pass --confirm to roll back 1 migration(s) "
        "(nothing was changed)" in refused.stderr
    )
    assert "1700000000002" in refused.stdout and backups(tmp_path) == []
    done = prod(tmp_path, conn.info.dsn, *args, "--confirm")
    (folder,) = backups(tmp_path)
    assert f"backed up the database to {folder}" in done.stdout
    assert state(conn, tmp_path) == {first: False}


def test_goto_names_both_directions(conn, tmp_path):
    first = add(tmp_path, 1, "CREATE TABLE a (id int);", "DROP TABLE a;")
    cli(*UP, "--project-dir", str(tmp_path), "--database-url", conn.info.dsn)
    add(tmp_path, 0, "CREATE TABLE z (id int);", "DROP TABLE z;")
    refused = prod(tmp_path, conn.info.dsn, "db", "migrate:goto", str(BASE), code=1)
    assert "pass --confirm to roll back 1 and apply 1 migration(s)" in refused.stderr
    assert refused.stdout.splitlines()[1:3] == [
        f"  down {first}_m1 (1 statement)",
        f"  up {BASE}_m0 (1 statement)",
    ]


@pytest.mark.parametrize(
    ("command", "said"), [("migrate:up", "applied"), ("migrate:down", "not applied")]
)
def test_recording_a_version_on_production_needs_confirm(command, said, conn, tmp_path):
    version = add(tmp_path, 1, "SELECT 1;", "SELECT 1;")
    if command == "migrate:down":
        cli(*UP, "--project-dir", str(tmp_path), "--database-url", conn.info.dsn)
    before = state(conn, tmp_path)
    mark = ("db", command, "--version", str(version), "--skip-execution")
    refused = prod(tmp_path, conn.info.dsn, *mark, code=1)
    assert (
        f"this is a production database: pass --confirm to record {version} as {said} "
        "(nothing was changed)" in refused.stderr
    )
    assert state(conn, tmp_path) == before
    prod(tmp_path, conn.info.dsn, *mark, "--confirm")
    assert state(conn, tmp_path) != before
