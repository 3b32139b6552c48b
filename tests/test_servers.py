import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pgservers import Server

from nself_py.database.connection import _wait_until_ready, server_bin, start_embedded_server
from nself_py.errors import DatabaseError


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
