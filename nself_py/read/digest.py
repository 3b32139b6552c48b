"""A digest of the catalog computed by the server: a run that changes nothing reads 32 bytes.

`db run` remembers the catalog it found equal to schema.dbml (`memo`). Re-reading every catalog
row and hashing it on the client made that check cost as much as introspection itself: the
expensive part is the server deparsing types, defaults and constraints (`pg_get_expr`,
`format_type`, …), not the transfer. Instead this digest covers the *inputs* of introspection:
every row version of every catalog its queries and deparsing functions read, identified by the
transaction that wrote it (`xmin`) and its place (`ctid`). Any DDL, in any schema, writes new row
versions there, so equal digests mean the introspection queries would return the same rows; a
change it cannot tell apart (a rewrite of a catalog by VACUUM FULL) only sends the run the full way.

Each catalog contributes its row count and the sum of a 64-bit hash of each row version's
transaction seeded with the hash of its place: no sort and no text built per row, so the server
answers in about a third of the time an ordered md5 of the same pairs took (PostgreSQL 15, which
lacks the hash of a transaction id, hashes its text: about half the time). A change goes unseen
only if the hashes of the row versions it wrote and removed sum to zero (odds of about 2^-64).
"""

from __future__ import annotations

import psycopg

# Everything `introspect`'s queries read, and what their deparsing functions look up (operators,
# functions and collations named inside expressions, operator classes of index keys).
CATALOGS = (
    "pg_namespace",
    "pg_class",
    "pg_attribute",
    "pg_attrdef",
    "pg_type",
    "pg_enum",
    "pg_constraint",
    "pg_index",
    "pg_description",
    "pg_depend",
    "pg_am",
    "pg_opclass",
    "pg_collation",
    "pg_proc",
    "pg_operator",
    "pg_extension",
)

_XID_HASH = "hashxidextended(xmin, hashtidextended(ctid, 0))"
"""A row version's hash without text: hashxidextended is newer than PostgreSQL 15."""
_XID_TEXT_HASH = "hashtidextended(ctid, xmin::text::bigint)"
"""The same inputs where it is missing (the text conversion makes it about twice as slow)."""


def _query(row_hash: str) -> str:
    return (
        "SELECT md5(string_agg(h, ',' ORDER BY n)) FROM ("
        + " UNION ALL ".join(
            f"SELECT {n} AS n, count(*) || ':' || coalesce(sum({row_hash}), 0) AS h "
            f"FROM pg_catalog.{name}"
            for n, name in enumerate(CATALOGS)
        )
        + ") per_catalog"
    )


def catalog_digest(conn: psycopg.Connection) -> str:
    """The digest of the catalog rows introspection depends on, in one query (plus one that
    looks for the faster hash function)."""
    found = conn.execute(
        "SELECT to_regprocedure('pg_catalog.hashxidextended(xid, bigint)') IS NOT NULL"
    ).fetchone()
    row = conn.execute(_query(_XID_HASH if found and found[0] else _XID_TEXT_HASH)).fetchone()
    return "rows:" + (row[0] if row and row[0] else "")
