"""The server state, beyond the catalog, that shapes how PostgreSQL prints what nself-py reads.

Part of every cache key (the target cache, the canonical cache, the no-change memo), so that a
changed setting or extension is never answered from a cache. A module of its own: the no-change
answer of `db run` needs this one query and none of the readers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

# Everything besides the catalog that changes how PostgreSQL prints a type, default, check or
# index: the server version, the settings that shape printed constants (a timestamptz default
# under another TimeZone, a float under extra_float_digits, a string literal under
# standard_conforming_strings) and the extensions' versions. search_path is not among them:
# every read and probe pins it to pg_catalog.
_SPELLING_CONTEXT = """SELECT concat_ws(' | ', current_setting('server_version_num'),
    current_setting('DateStyle'), current_setting('IntervalStyle'), current_setting('TimeZone'),
    current_setting('extra_float_digits'), current_setting('bytea_output'),
    current_setting('standard_conforming_strings'), current_setting('lc_monetary'),
    (SELECT string_agg(extname || '=' || extversion, ',' ORDER BY extname) FROM pg_extension))"""


def spelling_context(conn: psycopg.Connection) -> str:
    """The server state (beyond the catalog) that canonical and introspected text depend on:
    part of every cache key, so a changed setting or extension is never answered from a cache."""
    row = conn.execute(_SPELLING_CONTEXT).fetchone()
    return str(row[0]) if row else ""
