"""The live catalog's model, kept between runs for as long as the catalog does not change.

After an edit of schema.dbml, the catalog is usually exactly as the last run read it: `db run`
writes migrations but never applies them. Reading and building the live model is then the
slowest step of the run (5,000 tables: about 0.5 s of catalog queries and 0.2 s building), and
its result is a function of the catalog rows, the server's spelling context and this code. The
catalog's digest (`read.digest`, taken in the snapshot the rows would be read in) tells whether
the rows are still those of the stored model; the server's system identifier and the database
name keep another server's or database's equal-looking catalog out. Stored under `cache_key` by
`model_codec.store_schema` (marshal data: loading it runs no code).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg

from nself_py.fingerprint import code_hash
from nself_py.read.spelling import spelling_context

LIVE_CACHE = Path(".nself") / "live-model.marshal"
"""Where a project keeps it, relative to the project directory."""
_FORMAT = "1"

# The cluster's identity where the role may read it (hosted services can revoke the function:
# then the database name, the spelling context and the digest still key the model).
_SERVER = """SELECT CASE WHEN has_function_privilege('pg_catalog.pg_control_system()', 'EXECUTE')
    THEN (SELECT system_identifier::text FROM pg_catalog.pg_control_system()) ELSE '' END,
    current_database()"""


def cache_key(conn: psycopg.Connection, digest: str) -> str:
    """The key of the model of the catalog whose digest is `digest`, read on `conn`'s server."""
    row = conn.execute(_SERVER).fetchone()
    server, database = (row[0] or "", row[1]) if row else ("", "")
    parts = (code_hash(), _FORMAT, server, database, spelling_context(conn), digest)
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()
