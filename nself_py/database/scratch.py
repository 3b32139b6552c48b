"""Scratch databases: throwaway databases on the same server where migrations are replayed
(the drift check and the squash check compare what migrations produce with a catalog)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from nself_py.database.connection import connect, with_database
from nself_py.errors import NselfError
from nself_py.migrations.folders import Script


class ScratchUnavailable(NselfError):
    """This role may not CREATE DATABASE."""


@contextmanager
def scratch_database(url: str, purpose: str) -> Iterator[psycopg.Connection]:
    """A new empty database on the same server (autocommit connection), always dropped
    afterwards. Copied from template0, which no session can be connected to (a busy template1
    fails CREATE DATABASE) and which holds nothing a site added to template1."""
    name = f"nself_{purpose}_{uuid.uuid4().hex[:12]}"
    with connect(url, autocommit=True) as admin:
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
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(sql.Identifier(name)))


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
