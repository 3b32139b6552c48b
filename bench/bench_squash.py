"""Time squashing N migrations, most of it the equivalence check in two scratch databases.

Usage: python3 bench/bench_squash.py [-n 200] [--applied]
A scratch project and database on the embedded PostgreSQL (bench data directory), both removed.
Each migration creates a table with an index and a foreign key to the previous one.
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

from nself_py.database.apply import migrate_up  # noqa: E402
from nself_py.database.squash import squash  # noqa: E402
from nself_py.migrations.folders import write_migration  # noqa: E402


def write_project(root: Path, n: int) -> Path:
    migrations = root / "hasura" / "migrations" / "default"
    for i in range(n):
        parent = f", parent bigint REFERENCES b{i - 1} (id)" if i else ""
        write_migration(
            migrations,
            f"create_b{i}",
            f"CREATE TABLE b{i} (id bigint PRIMARY KEY, name text NOT NULL{parent});\n"
            f"CREATE INDEX b{i}_name ON b{i} (name);",
            f"DROP TABLE b{i};",
            version=1700000000000 + i,
        )
    return migrations


def bench(url: str, n: int, applied: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        migrations = write_project(root, n)
        if applied:
            with psycopg.connect(url, autocommit=True) as conn:
                migrate_up(conn, root, "default", migrations)
        started = time.perf_counter()
        result = squash(url, root, "default", migrations, 1700000000000)
        seconds = time.perf_counter() - started
    print(
        f"squash of {len(result.versions)} {'applied' if applied else 'pending'} migrations "
        f"(up and down checked: {result.down_checked}): {seconds:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--applied", action="store_true")
    args = parser.parse_args()
    server = embedded_server()  # the test suite's embedded PostgreSQL, in a fresh database
    url = server.create_database()
    try:
        bench(url, args.n, args.applied)
    finally:
        server.drop_database(url)


if __name__ == "__main__":
    main()
