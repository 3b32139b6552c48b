"""Settle a state kept in another database from the target database's own log.

Under config v3 a database other than `default` has its migration state in the metadata
database's `cli_state`, which no transaction of the target database can include. A run marks
versions dirty there before it commits the migration (and its `nself.migration_log` rows), and
writes them clean after. So a dirty version of a transactional migration always has an answer
in the log: logged means the transaction committed (applied), not logged means it rolled back
(not applied; for a rollback, the reverse). No-transaction migrations stay dirty: the resume
finishes them (`database.resume`). Stores inside the target database need none of this: their
writes share the migration's transaction.
"""

from __future__ import annotations

import psycopg

from nself_py.database.state import MetadataStore, StateStore, logged_sha256
from nself_py.migrations.folders import Migration


def reconcile(
    conn: psycopg.Connection, store: StateStore, local: list[Migration], database_name: str
) -> dict[int, bool]:
    """The state after settling what the log answers; written back when it changed."""
    state = store.read(conn)
    if not isinstance(store, MetadataStore):
        return state
    by_version = {m.version: m for m in local}
    dirty = [v for v, is_dirty in state.items() if is_dirty]
    transactional = [
        v
        for v in dirty
        if v in by_version and not any(s.no_transaction for s in by_version[v].up_scripts())
    ]
    if not transactional:
        return state
    logged = logged_sha256(conn, database_name)
    changes: dict[int, bool | None] = {v: False if v in logged else None for v in transactional}
    store.write(conn, changes)
    settled = {v: d for v, d in state.items() if v not in changes}
    settled.update((v, False) for v, d in changes.items() if d is False)
    return settled
