"""Fixtures: real PostgreSQL servers and a fresh database per test. Never mocks."""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pgservers import (
    RUN_ID_VARIABLE,
    Server,
    embedded_server,
    postgres_processes_under,
    stop_test_servers,
    system_server,
    test_data_dirs,
)
from test_state import make_hasura_catalog, v3_project

_servers: dict[str, Server | None] = {}


SERVER_FIXTURES = frozenset(
    {"pg_server", "any_pg_server", "db_url", "any_db_url", "conn", "own_pgdata"}
)
"""Fixtures that start a PostgreSQL server: a test using any of them (directly or through
another fixture) is marked `db`, so `pytest -m "not db"` runs the rest without a server."""


def pytest_configure(config: pytest.Config) -> None:
    """In the controlling process (before any xdist worker starts): name this run, so databases
    left by killed earlier runs can be told apart from this run's (workers inherit the name)."""
    if not hasattr(config, "workerinput"):
        os.environ[RUN_ID_VARIABLE] = str(os.getpid())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In the controlling process, after every worker: stop the test servers, delete their data
    folders, and fail the run if any PostgreSQL of this checkout's tests is still running (a
    test that started an embedded server must stop it) or a data folder is left."""
    if hasattr(session.config, "workerinput"):
        return
    stop_test_servers()
    roots = [*test_data_dirs(), session.config._tmp_path_factory.getbasetemp()]  # type: ignore[attr-defined]
    left = postgres_processes_under([r for r in roots if r]) + [
        f"data folder {d}" for d in test_data_dirs()
    ]
    if left:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = "PostgreSQL left behind by the tests:\n  " + "\n  ".join(left)
        if reporter is not None:
            reporter.write_line(message, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _server(kind: str) -> Server | None:
    """The server, started on first use (once per process; a file lock keeps xdist workers from
    starting it together), after dropping the databases killed earlier runs left on it."""
    if kind not in _servers:
        lock = Path(tempfile.gettempdir()) / f"nself-py-tests-{os.getuid()}-{kind}.lock"
        with open(lock, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            server = embedded_server() if kind == "embedded" else system_server()
            if server is not None:
                server.sweep_stale_databases()
        _servers[kind] = server
    return _servers[kind]


@pytest.fixture(scope="session")
def pg_server() -> Server:
    """The embedded PostgreSQL 18 server."""
    server = _server("embedded")
    assert server is not None
    return server


@pytest.fixture(scope="session", params=["embedded", "system"])
def any_pg_server(request: pytest.FixtureRequest) -> Server:
    """Each available server in turn: engine tests run on PostgreSQL 18 and the system's."""
    server = _server(request.param)
    if server is None:
        pytest.skip("no system PostgreSQL installed")
    return server


@pytest.fixture
def db_url(pg_server: Server) -> Iterator[str]:
    """A fresh empty database on the embedded server."""
    url = pg_server.create_database()
    yield url
    pg_server.drop_database(url)


@pytest.fixture
def any_db_url(any_pg_server: Server) -> Iterator[str]:
    """A fresh empty database on each available server."""
    url = any_pg_server.create_database()
    yield url
    any_pg_server.drop_database(url)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to a fresh database on the embedded server."""
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection


@pytest.fixture(params=["table", "catalog"])
def project(request: pytest.FixtureRequest, tmp_path: Path, conn: psycopg.Connection) -> Path:
    """A project on each state store: hdb_catalog.schema_migrations, or Hasura's cli_state."""
    if request.param == "catalog":
        v3_project(tmp_path)
        make_hasura_catalog(conn)
    return tmp_path
