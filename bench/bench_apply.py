"""Time applying N small pending migrations in one batch (and rolling them all back), next to
what the same statements cost the server alone, measured before and after (the file system of a
small VM varies by several times within minutes).

Usage: python3 bench/bench_apply.py [-n 1000] [--database-url URL] [--store table|catalog]
Without --database-url a scratch database is created on the embedded PostgreSQL and dropped.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from pgservers import embedded_server  # noqa: E402

from nself_py.database.apply import migrate_down, migrate_up  # noqa: E402
from nself_py.migrations.folders import write_migration  # noqa: E402

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
        alone_before = server_alone(conn, migrations)
        started = time.perf_counter()
        outcome = migrate_up(conn, root, "default", migrations)
        up_s = time.perf_counter() - started
        started = time.perf_counter()
        migrate_down(conn, root, "default", migrations, count=n)
        down_s = time.perf_counter() - started
        alone_after = server_alone(conn, migrations)
    steps = len(outcome.plan.steps)
    print(f"store={store} migrations={steps} statements={2 * steps}")
    print(f"up (one transaction):   {up_s:.2f} s  ({1000 * up_s / steps:.2f} ms/migration)")
    print(f"down (one transaction): {down_s:.2f} s  ({1000 * down_s / steps:.2f} ms/migration)")
    for when, (alone_up, alone_down) in (("before", alone_before), ("after", alone_after)):
        said = f"up {alone_up:.2f} s, down {alone_down:.2f} s"
        print(f"the server alone {when} (each script as one query string): {said}")


def server_alone(conn: psycopg.Connection, migrations: Path) -> tuple[float, float]:
    """What the same statements cost the server without any tool around them: all of them sent
    as one query string in one transaction (no state kept, no per-statement results)."""
    folders = sorted(migrations.iterdir())
    timings = []
    for script, order in (("up.sql", folders), ("down.sql", folders[::-1])):
        text = "\n".join((folder / script).read_text() for folder in order)
        started = time.perf_counter()
        with conn.transaction():
            conn.execute(text.encode())  # bytes: psycopg sends it as is, several statements
        timings.append(time.perf_counter() - started)
    return timings[0], timings[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--database-url")
    parser.add_argument("--store", choices=["table", "catalog"], default="table")
    args = parser.parse_args()
    if args.database_url:
        bench(args.database_url, args.n, args.store)
        return
    server = embedded_server()  # the test suite's embedded PostgreSQL, in a fresh database
    url = server.create_database()
    try:
        bench(url, args.n, args.store)
    finally:
        server.drop_database(url)


if __name__ == "__main__":
    main()
