"""The server-side catalog digest changes exactly when the rows introspection reads change."""

from __future__ import annotations

import psycopg
import pytest

from nself_py.read.digest import catalog_digest
from nself_py.read.introspect import read_catalog

SETUP = """
CREATE SCHEMA other;
CREATE TYPE public.mood AS ENUM ('a', 'b');
CREATE TABLE other.ext (id int PRIMARY KEY, code text UNIQUE);
CREATE TABLE public.t (
  id bigserial PRIMARY KEY,
  name text NOT NULL DEFAULT 'x',
  mood public.mood,
  ext_code text REFERENCES other.ext (code),
  CHECK (length(name) < 100)
);
CREATE INDEX t_name_idx ON public.t (lower(name));
"""

CHANGES = [
    "ALTER TABLE public.t ADD COLUMN extra int",
    "ALTER TABLE public.t ALTER COLUMN name SET DEFAULT 'y'",
    "ALTER TABLE public.t ALTER COLUMN name DROP NOT NULL",
    "COMMENT ON COLUMN public.t.name IS 'the name'",
    "COMMENT ON TABLE public.t IS 'things'",
    "ALTER TYPE public.mood ADD VALUE 'c'",
    "CREATE INDEX t_mood_idx ON public.t (mood)",
    "DROP INDEX public.t_name_idx",
    "ALTER TABLE public.t DROP CONSTRAINT t_name_check",
    "ALTER TABLE other.ext RENAME COLUMN code TO label",
    "CREATE TABLE other.new (id int)",
    "CREATE SCHEMA third",
    "ALTER TABLE public.t RENAME TO u",
    "ALTER TABLE public.t ALTER COLUMN name TYPE varchar(50)",
]


def _both(conn: psycopg.Connection) -> tuple[str, str | None]:
    server = catalog_digest(conn)
    client = read_catalog(conn).digest()
    conn.rollback()
    return server, client


@pytest.mark.parametrize("change", CHANGES)
def test_digest_changes_with_every_catalog_change(any_db_url: str, change: str) -> None:
    """On PostgreSQL 18 and the system's: the digest's hash functions exist on both."""
    with psycopg.connect(any_db_url, autocommit=True) as conn:
        conn.execute(SETUP)
        before_server, before_client = _both(conn)
        assert _both(conn) == (before_server, before_client)  # stable while nothing changes
        conn.execute(change)
        after_server, after_client = _both(conn)
    assert after_client != before_client
    assert after_server != before_server


def test_digest_ignores_data_but_not_ddl_anywhere(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(SETUP)
        before = catalog_digest(conn)
        conn.execute("INSERT INTO other.ext SELECT g, g::text FROM generate_series(1, 2000) g")
        conn.execute("ANALYZE other.ext")
        conn.execute("UPDATE public.t SET name = 'z'")
        assert catalog_digest(conn) == before
        conn.execute("CREATE SCHEMA nself; CREATE TABLE nself.log (id int)")
        assert catalog_digest(conn) != before


def test_digest_of_an_empty_database(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        empty = catalog_digest(conn)
        conn.execute("CREATE SCHEMA s")
        assert catalog_digest(conn) != empty
