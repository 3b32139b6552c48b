"""Scratch databases: throwaway databases on the same server where migrations are replayed
(the drift check and the squash check compare what migrations produce with a catalog)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from nself_py.database.connection import connect, with_database
from nself_py.errors import NselfError
from nself_py.migrations.folders import Script

STALE_AFTER_SECONDS = 60
"""A scratch database nobody is connected to and older than this was left by a killed run
(a live run connects to its scratch database within milliseconds of creating it)."""
DROP_WAIT_SECONDS = 10.0
_NAME = re.compile(r"nself_[a-z]+_(?:(\d{10})_[0-9a-f]{8}|[0-9a-f]{12})")
"""`nself_<purpose>_<unix time>_<random>`, or the older `nself_<purpose>_<random>`."""


class ScratchUnavailable(NselfError):
    """This role may not CREATE DATABASE."""


def remove_stale_scratch_databases(admin: psycopg.Connection) -> list[str]:
    """Drop scratch databases a killed run left behind (autocommit `admin`): ours by name,
    owned by a role this one is a member of, with no session, older than STALE_AFTER_SECONDS.
    One catalog query finds them all."""
    rows = admin.execute(
        "SELECT d.datname FROM pg_database d WHERE d.datname LIKE 'nself\\_%' "
        "AND pg_has_role(current_user, d.datdba, 'MEMBER') "
        "AND NOT EXISTS (SELECT FROM pg_stat_activity a WHERE a.datname = d.datname)"
    ).fetchall()
    now, dropped = time.time(), []
    for (name,) in rows:
        match = _NAME.fullmatch(name)
        if not match or (match[1] and now - int(match[1]) < STALE_AFTER_SECONDS):
            continue
        try:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        except psycopg.Error:  # someone connected meanwhile, or another run dropped it
            continue
        dropped.append(name)
    return dropped


def _drop(admin: psycopg.Connection, name: str) -> None:
    """DROP DATABASE without FORCE (which needs the right to signal backends, pg_signal_backend
    for a non-superuser): our own session has just closed, but its backend may take a moment
    to exit, so retry while the database is still in use. A database that cannot be dropped
    now is left for `remove_stale_scratch_databases` on the next run."""
    drop = sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name))
    deadline = time.monotonic() + DROP_WAIT_SECONDS
    while True:
        try:
            admin.execute(drop)
            return
        except psycopg.errors.ObjectInUse:
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
        except psycopg.Error:
            return


@contextmanager
def scratch_database(url: str, purpose: str) -> Iterator[psycopg.Connection]:
    """A new empty database on the same server (autocommit connection), dropped afterwards;
    ones left by a killed run are dropped first. Copied from template0, which no session can
    be connected to (a busy template1 fails CREATE DATABASE) and which holds nothing a site
    added to template1."""
    name = f"nself_{purpose}_{int(time.time())}_{uuid.uuid4().hex[:8]}"
    with connect(url, autocommit=True) as admin:
        remove_stale_scratch_databases(admin)
        try:
            create = sql.SQL("CREATE DATABASE {} TEMPLATE template0")
            admin.execute(create.format(sql.Identifier(name)))
        except psycopg.errors.InsufficientPrivilege:
            raise ScratchUnavailable(
                "this role may not CREATE DATABASE, which the replay into a scratch database needs"
            ) from None
        try:
            with connect(with_database(url, name), autocommit=True) as conn:
                conn.execute("SET synchronous_commit = off")  # throwaway: no fsync per commit
                yield conn
        finally:
            _drop(admin, name)


def run_scripts(conn: psycopg.Connection, scripts: Iterable[Script]) -> None:
    """Run migration scripts on an autocommit connection the way apply does: each in a
    transaction, a no-transaction one statement by statement. psycopg errors pass through."""
    for script in scripts:
        if script.no_transaction:
            for statement in script.statements:
                conn.execute(statement.sql)  # migration SQL
        else:
            with conn.transaction():
                for statement in script.statements:
                    conn.execute(statement.sql)
