"""The real CLI in subprocesses: exit codes, output formats, concurrent runs and SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from helpers import cli, mdir

from nself_py.database.apply import LOCK_KEY
from nself_py.migrations.folders import write_migration

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "nself_py"]
BASE = 1700000000000


def run(*args: str, check_code: int | None = 0, **kwargs) -> subprocess.CompletedProcess:
    return cli(*args, code=check_code, **kwargs)


def start(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [*CLI, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def opts(project: Path, url: str) -> list[str]:
    return ["--project-dir", str(project), "--database-url", url]


def add_tables(project: Path, count: int, sleep: float = 0.0) -> list[int]:
    """`count` migrations, each creating table t<i> and logging its run in `runs`."""
    versions = []
    for i in range(count):
        up = f"CREATE TABLE t{i} (id int);\nINSERT INTO runs VALUES ({BASE + i});"
        if sleep:
            up += f"\nSELECT pg_sleep({sleep});"
        write_migration(mdir(project), f"t{i}", up, f"DROP TABLE t{i};", version=BASE + i)
        versions.append(BASE + i)
    return versions


def applied(conn: psycopg.Connection) -> dict[int, bool]:
    if conn.execute("SELECT to_regclass('hdb_catalog.schema_migrations')").fetchone()[0] is None:
        return {}
    return dict(conn.execute("SELECT version, dirty FROM hdb_catalog.schema_migrations"))


def tables(conn: psycopg.Connection) -> set[int]:
    rows = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename ~ '^t[0-9]+$'"
    )
    return {BASE + int(r[0][1:]) for r in rows}


def test_create_up_status_down_round_trip(db_url: str, tmp_path: Path):
    run(
        "db",
        "migrate:create",
        "add_posts",
        "--project-dir",
        str(tmp_path),
        "--up-sql",
        "CREATE TABLE posts (id int PRIMARY KEY);",
        "--down-sql",
        "DROP TABLE posts;",
    )
    sql_file = tmp_path / "comments.sql"
    sql_file.write_text("CREATE TABLE comments (id int);\n")
    run(
        "db",
        "migrate:create",
        "add_comments",
        "--project-dir",
        str(tmp_path),
        "--from-file",
        str(sql_file),
    )
    folders = sorted(p.name for p in mdir(tmp_path).iterdir())
    assert [f.split("_", 1)[1] for f in folders] == ["add_posts", "add_comments"]
    assert all(len(f.split("_")[0]) == 13 for f in folders)
    down_sql = (mdir(tmp_path) / folders[1] / "down.sql").read_text()
    assert down_sql.startswith("-- down of migration")

    dry = run("db", "migrate:up", "--dry-run", *opts(tmp_path, db_url)).stdout
    assert "VERSION" in dry and "STATEMENTS" in dry and "add_comments" in dry
    out = run("db", "migrate:up", "1", *opts(tmp_path, db_url)).stdout
    assert "applied 1 migration in" in out

    status = json.loads(run("db", "status", "--json", *opts(tmp_path, db_url)).stdout)
    assert status == {
        "database": "default",
        "migrations": [
            {"version": folders[0].split("_")[0], "name": "add_posts", "status": "applied"},
            {"version": folders[1].split("_")[0], "name": "add_comments", "status": "pending"},
        ],
    }
    table = run("db", "status", *opts(tmp_path, db_url)).stdout
    assert "Applied" in table and "Pending" in table and "1 applied, 1 pending" in table

    run("db", "migrate:up", *opts(tmp_path, db_url))
    refused = run("db", "migrate:down", *opts(tmp_path, db_url), check_code=1)
    assert "down.sql is missing or holds no SQL" in refused.stderr
    run(
        "db",
        "migrate:down",
        "--to-version",
        folders[0].split("_")[0],
        *opts(tmp_path, db_url),
        check_code=1,
    )
    with psycopg.connect(db_url) as conn:
        assert len(applied(conn)) == 2


def test_failed_migration_exit_code_and_message(db_url: str, tmp_path: Path):
    write_migration(mdir(tmp_path), "good", "CREATE TABLE good (id int);", "", version=BASE)
    write_migration(
        mdir(tmp_path), "bad", "\nALTER TABLE good\n  ADD COLUMN x nope;", "", version=BASE + 1
    )
    result = run("db", "migrate:up", *opts(tmp_path, db_url), check_code=1)
    assert (
        f"migration {BASE + 1}_bad failed in hasura/migrations/default/{BASE + 1}_bad/up.sql"
        in result.stderr
    )
    assert "at line 3" in result.stderr and 'type "nope" does not exist' in result.stderr
    with psycopg.connect(db_url) as conn:
        assert applied(conn) == {}
        assert conn.execute("SELECT to_regclass('good')").fetchone()[0] is None


def test_cannot_connect_exits_2(tmp_path: Path):
    result = run(
        "db",
        "status",
        "--project-dir",
        str(tmp_path),
        "--database-url",
        "postgresql://nobody:secret@127.0.0.1:1/none",
        check_code=2,
    )
    assert "cannot connect" in result.stderr and "secret" not in result.stderr


def test_two_processes_at_once_apply_each_migration_exactly_once(db_url: str, tmp_path: Path):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE runs (version bigint)")
    versions = add_tables(tmp_path, 30, sleep=0.1)  # 3 s: the second arrives mid-run
    first = start("db", "migrate:up", *opts(tmp_path, db_url))
    second = start("db", "migrate:up", *opts(tmp_path, db_url))
    outputs = [p.communicate(timeout=120) for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    combined = "".join(out + err for out, err in outputs)
    assert "waiting" in combined and "nothing to apply" in combined
    with psycopg.connect(db_url) as conn:
        counts = dict(conn.execute("SELECT version, count(*) FROM runs GROUP BY 1"))
        assert counts == dict.fromkeys(versions, 1)
        assert applied(conn) == dict.fromkeys(versions, False)


@pytest.mark.parametrize("per_migration", [False, True])
def test_sigkill_mid_batch_leaves_state_and_schema_agreeing(
    db_url: str, tmp_path: Path, per_migration: bool
):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE runs (version bigint)")
    versions = add_tables(tmp_path, 30, sleep=0.01)
    extra = ["--per-migration-transaction"] if per_migration else []
    for lines_before_kill in (2, 6, 11):
        process = start("db", "migrate:up", *extra, *opts(tmp_path, db_url))
        for _ in range(lines_before_kill):
            assert process.stdout.readline()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        with psycopg.connect(db_url, autocommit=True) as conn:
            for _ in range(100):  # the killed session ends once its backend sees the socket gone
                busy = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'nself-py' "
                    "AND datname = current_database()"
                ).fetchone()[0]
                if not busy:
                    break
                time.sleep(0.05)
            state = applied(conn)
            assert not any(state.values())
            assert set(state) == tables(conn)
            ran = {v for (v,) in conn.execute("SELECT version FROM runs")}
            assert ran == set(state)
            if per_migration:  # a progress line is printed just before its commit
                assert len(state) >= lines_before_kill - 1
            else:  # killed long before the single commit at the end
                assert state == {}
    run("db", "migrate:up", *opts(tmp_path, db_url))
    with psycopg.connect(db_url) as conn:
        assert applied(conn) == dict.fromkeys(versions, False)
        assert tables(conn) == set(versions)


def test_v1_directory_applies_then_converts(db_url: str, tmp_path: Path):
    migrations = tmp_path / "hasura" / "migrations"
    migrations.mkdir(parents=True)
    (tmp_path / "hasura" / "config.yaml").write_text("endpoint: http://localhost:8080\n")
    (migrations / f"{BASE}_init.up.sql").write_text("CREATE SCHEMA app;\n")
    (migrations / f"{BASE}_init.up.yaml").write_text(
        "- type: run_sql\n  args:\n    sql: CREATE TABLE app.authors (id int)\n"
        "- type: track_table\n  args:\n    schema: app\n    name: authors\n"
    )
    (migrations / f"{BASE}_init.down.yaml").write_text(
        "- type: run_sql\n  args:\n    sql: DROP TABLE app.authors;\n"
    )
    (migrations / f"{BASE}_init.down.sql").write_text("DROP SCHEMA app;\n")
    out = run("db", "migrate:up", *opts(tmp_path, db_url)).stdout
    assert "Hasura metadata not applied: track_table app.authors" in out
    converted = run("db", "migrate:convert-v1", "--project-dir", str(tmp_path)).stdout
    assert f"{BASE}_init" in converted
    assert (mdir(tmp_path) / f"{BASE}_init" / "up.sql").is_file()
    assert (tmp_path / "hasura" / "migrations_v1_backup" / f"{BASE}_init.up.yaml").is_file()
    status = json.loads(run("db", "status", "--json", *opts(tmp_path, db_url)).stdout)
    assert status["migrations"] == [{"version": str(BASE), "name": "init", "status": "applied"}]
    run("db", "migrate:down", *opts(tmp_path, db_url))
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT to_regnamespace('app')").fetchone()[0] is None


def test_contradictory_choices_exit_2_before_connecting(tmp_path: Path):
    bad_url = ["--database-url", "postgresql://nobody@127.0.0.1:1/none"]
    for args in (
        ["migrate:up", "2", "--version", str(BASE)],
        ["migrate:down", "1", "--to-version", str(BASE)],
        ["migrate:up", "0"],
    ):
        result = run("db", *args, "--project-dir", str(tmp_path), *bad_url, check_code=2)
        assert "cannot connect" not in result.stderr


def env_named(**variables: str) -> dict[str, str]:
    """The environment without any production marker, plus `variables`."""
    env = {k: v for k, v in os.environ.items() if k not in ("NSELF_ENV", "ENV")}
    return {**env, **variables}


def test_production_migrate_up_needs_confirm_then_plans_and_backs_up(db_url: str, tmp_path: Path):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE runs (version bigint)")
        versions = add_tables(tmp_path, 2)
        backups = tmp_path / "bin" / "dbsyncs"

        refused = run(
            "db",
            "migrate:up",
            "--env",
            "production",
            *opts(tmp_path, db_url),
            check_code=1,
            env=env_named(),
        )
        assert "production database default: to apply" in refused.stdout
        assert "t0" in refused.stdout and "t1" in refused.stdout
        assert "pass --confirm to apply 2 pending migration(s)" in refused.stderr
        assert applied(conn) == {} and not backups.exists()
        run("db", "migrate:up", "--dry-run", *opts(tmp_path, db_url), env=env_named(ENV="prod"))
        assert applied(conn) == {} and not backups.exists()

        done = run(
            "db",
            "migrate:up",
            "--confirm",
            *opts(tmp_path, db_url),
            env=env_named(NSELF_ENV="Prod"),
        )
        lines = done.stdout.splitlines()
        backed_up = next(i for i, line in enumerate(lines) if line.startswith("backed up the"))
        applied_line = next(i for i, line in enumerate(lines) if line.startswith("applied 2"))
        assert backed_up < applied_line
        (folder,) = backups.iterdir()
        assert str(folder) in lines[backed_up]
        assert json.loads((folder / "manifest.json").read_text())["applied_versions"] == []
        assert applied(conn) == dict.fromkeys(versions, False)
        assert tables(conn) == set(versions)

        again = run("db", "migrate:up", "--env", "prod", *opts(tmp_path, db_url), env=env_named())
        assert "nothing to apply" in again.stdout and len(list(backups.iterdir())) == 1
        plain = run(
            "db", "migrate:up", "--env", "staging", *opts(tmp_path, db_url), env=env_named()
        )
        assert "nothing to apply" in plain.stdout


def test_production_skip_execution_needs_confirm(db_url: str, tmp_path: Path):
    write_migration(mdir(tmp_path), "noop", "SELECT 1;", "", version=BASE)
    mark = ["db", "migrate:up", "--version", str(BASE), "--skip-execution"]
    refused = run(*mark, *opts(tmp_path, db_url), check_code=1, env=env_named(ENV="production"))
    assert "pass --confirm to record" in refused.stderr
    run(*mark, "--confirm", *opts(tmp_path, db_url), env=env_named(ENV="production"))
    with psycopg.connect(db_url) as conn:
        assert applied(conn) == {BASE: False}


def test_skip_execution_refuses_flags_that_do_not_apply(tmp_path: Path):
    bad_url = ["--database-url", "postgresql://nobody@127.0.0.1:1/none"]
    mark = ["--version", str(BASE), "--skip-execution"]
    for args, flag in (
        (["migrate:up", *mark, "--strict-order"], "--strict-order"),
        (["migrate:up", *mark, "--per-migration-transaction"], "--per-migration-transaction"),
        (["migrate:down", *mark, "--per-migration-transaction"], "--per-migration-transaction"),
    ):
        result = run("db", *args, "--project-dir", str(tmp_path), *bad_url, check_code=2)
        assert flag in result.stderr and "cannot connect" not in result.stderr


def test_skip_execution_honours_lock_timeout(db_url: str, tmp_path: Path):
    write_migration(mdir(tmp_path), "noop", "SELECT 1;", "", version=BASE)
    with psycopg.connect(db_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        started = time.monotonic()
        result = run(
            "db",
            "migrate:up",
            "--version",
            str(BASE),
            "--skip-execution",
            "--lock-timeout",
            "0.5",
            *opts(tmp_path, db_url),
            check_code=1,
        )
        assert "still held the lock after 0.5 s" in result.stderr
        assert time.monotonic() - started < 30
        assert applied(holder) == {}


def test_dirty_hint_names_commands_that_settle_it(db_url: str, tmp_path: Path):
    up = "-- hasura:no-transaction\nCREATE TABLE half (id int);\nSELECT nope;"
    write_migration(mdir(tmp_path), "half", up, "DROP TABLE half;", version=BASE)
    run("db", "migrate:up", *opts(tmp_path, db_url), check_code=1)
    blocked = run("db", "migrate:up", *opts(tmp_path, db_url), check_code=1)
    down = f"nself-py db migrate:down --version {BASE} --skip-execution"
    assert f"`nself-py db migrate:up --version {BASE} --skip-execution`" in blocked.stderr
    assert f"`{down}` (it is not)" in blocked.stderr
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP TABLE half")  # undone by hand, as the hint says
        run("db", *down.split()[2:], *opts(tmp_path, db_url))
        assert applied(conn) == {}
        (mdir(tmp_path) / f"{BASE}_half" / "up.sql").write_text(up.replace("nope", "1"))
        run("db", "migrate:up", *opts(tmp_path, db_url))
        assert applied(conn) == {BASE: False}
