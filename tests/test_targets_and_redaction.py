"""Where commands point and what they print: one resolution order for every command, the
target announced first, passwords hidden in every form, a lost connection reported cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from nself_py.database.connection import describe_target, redact, redact_dsn, remember_passwords
from nself_py.database.sources import target_url
from nself_py.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "nself_py"]


def cli(*args: str, code: int, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [*CLI, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False, env=env
    )
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result


# (connection string, the secret that must not appear, what must remain)
REDACTION = [
    ("postgresql://u:secret@h/db", "secret", "postgresql://u:***@h/db"),
    ("postgres://u:pa%40ss@h:6543/db?sslmode=require", "pa%40ss", "@h:6543/db?sslmode=require"),
    ("postgresql://u:pa@ss@host/db", "ss", "u:***@host/db"),
    ("postgresql://u:p:w@h/db", "p:w", "u:***@h/db"),
    ("postgresql://u@h/db?password=secret&sslmode=disable", "secret", "sslmode=disable"),
    ("postgresql:///db?host=/tmp&password=zz9", "zz9", "host=/tmp"),
    ("host=h password='a b' dbname=d", "b'", "dbname=d"),
    ("host=h password=secret dbname=d", "secret", "dbname=d"),
    ("password = 'x\\' y' host=h", "y'", "host=h"),
]


@pytest.mark.parametrize(("dsn", "secret", "kept"), REDACTION)
def test_passwords_are_hidden_in_every_form(dsn: str, secret: str, kept: str) -> None:
    for shown in (redact_dsn(dsn), redact(f"error: could not use {dsn} today")):
        assert secret not in shown, shown
        assert kept in shown, shown
        assert "***" in shown
    assert secret not in describe_target(dsn)


def test_a_password_this_process_used_is_hidden_anywhere_in_a_message() -> None:
    remember_passwords("postgresql://u:w0rd%20x@h/db")
    assert redact('FATAL: role "w0rd x" says w0rd%20x') == 'FATAL: role "***" says ***'


def test_a_url_password_libpq_would_misread_is_refused_without_echoing_it() -> None:
    from nself_py.database.connection import connect

    with pytest.raises(ConfigError, match="percent-encode") as caught:
        connect("postgresql://u:pa@ss@127.0.0.1:1/db")
    assert "ss@" not in str(caught.value) and "pa@" not in str(caught.value)


def test_describe_target_names_host_port_database_and_user() -> None:
    assert describe_target("postgresql://ann:pw@db.example:6543/shop") == (
        "database 'shop' on db.example:6543 as ann"
    )
    assert describe_target("host=/tmp/s port=5433 dbname=x user=bo password=p") == (
        "database 'x' on /tmp/s (socket, port 5433) as bo"
    )


def databases_yaml(project: Path, url: str) -> None:
    folder = project / "hasura" / "metadata" / "databases"
    folder.mkdir(parents=True)
    (folder / "databases.yaml").write_text(
        f"- name: default\n  kind: postgres\n  configuration:\n    connection_info:\n"
        f"      database_url: {url}\n"
    )
    (project / "hasura" / "config.yaml").write_text("version: 3\n")


def test_the_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "DEFAULT_DATABASE_URL", "HASURA_URL"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "hasura" / "metadata" / "databases"
    folder.mkdir(parents=True)
    yaml_file = folder / "databases.yaml"
    yaml_file.write_text(
        "- name: default\n  configuration:\n    connection_info:\n"
        "      database_url: {from_env: HASURA_URL}\n"
        "- name: other\n  configuration:\n    connection_info:\n"
        "      database_url: postgresql://literal/other\n"
    )
    assert target_url(tmp_path, "other") == "postgresql://literal/other"
    monkeypatch.setenv("HASURA_URL", "postgresql://from-env/db")
    assert target_url(tmp_path) == "postgresql://from-env/db"
    (tmp_path / ".env").write_text("DATABASE_URL=postgresql://dotenv/db\n")
    assert target_url(tmp_path) == "postgresql://dotenv/db"
    monkeypatch.setenv("DATABASE_URL", "postgresql://environment/db")
    assert target_url(tmp_path) == "postgresql://environment/db"
    monkeypatch.setenv("DEFAULT_DATABASE_URL", "postgresql://per-database/db")
    assert target_url(tmp_path) == "postgresql://per-database/db"
    assert target_url(tmp_path, database_url="postgresql://flag/db") == "postgresql://flag/db"


def test_every_command_points_at_the_same_database_and_says_which(
    tmp_path: Path, db_url: str, conn: psycopg.Connection
) -> None:
    """databases.yaml names the database literally and nothing else is set: `migrate:*`
    followed it while `db run`/`db backup` went to the embedded server."""
    databases_yaml(tmp_path, db_url)
    env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    (tmp_path / "schema.dbml").write_text("Table shared_target { id int [pk] }\n")
    opts = ["--project-dir", str(tmp_path)]
    expected = describe_target(db_url)
    for command in (["db", "run"], ["db", "migrate:up"], ["db", "backup"], ["db", "status"]):
        result = cli(*command, *opts, code=0, env=env)
        assert result.stderr.startswith(f"→ {expected}\n"), (command, result.stderr)
    assert conn.execute("SELECT to_regclass('public.shared_target')").fetchone()[0] is not None


def test_a_terminated_backend_is_a_message_not_a_traceback(
    tmp_path: Path, db_url: str, conn: psycopg.Connection
) -> None:
    path = tmp_path / "hasura" / "migrations" / "default" / "1700000000001_slow"
    path.mkdir(parents=True)
    (path / "up.sql").write_text("CREATE TABLE slow (id int);\nSELECT pg_sleep(60);\n")
    (path / "down.sql").write_text("DROP TABLE slow;\n")
    process = subprocess.Popen(
        [*CLI, "db", "migrate:up", "--project-dir", str(tmp_path), "--database-url", db_url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    killed = 0
    while not killed and time.monotonic() < deadline:
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()"
        ).fetchone()[0]
        time.sleep(0.1)
    assert killed, "the migration never started"
    _, stderr = process.communicate(timeout=120)
    assert process.returncode in (1, 2), stderr
    assert "Traceback" not in stderr, stderr
    assert "terminat" in stderr.lower() or "connection" in stderr.lower(), stderr
    assert conn.execute("SELECT to_regclass('public.slow')").fetchone()[0] is None
