"""Time `nself-py db run` on generated schemas, as whole commands in a subprocess: no change
(cold: first run, parse and canonicalize; cached: target cache but no no-change memo, the full
introspect + diff; memo: a repeat of a no-change run), with changes, plus peak memory and
catalog query counts.

    python3 bench/bench_run.py [--sizes 100,1000,5000] [--repeat 3]

Each size gets a fresh database on the embedded PostgreSQL loaded from the generated SQL, and a
project whose schema.dbml is the same schema in DBML, so the first run must find no change.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import psycopg  # noqa: E402
from pgservers import embedded_server  # noqa: E402

from bench.generate import generate_dbml, generate_sql  # noqa: E402


def run_command(project: Path, url: str, *extra: str) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (MB) and output of one `db run` in its own process."""
    command = [
        sys.executable, "-m", "nself_py", "db", "run", "--project-dir", str(project),
        "--database-url", url, "--no-backup", *extra,
    ]  # fmt: skip
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        out.seek(0)
        output = out.read()
    if child.returncode != 0:
        raise SystemExit(f"db run failed:\n{output}")
    return seconds, usage.ru_maxrss // 1024, output


def load_in_chunks(url: str, script: str, statements_per_chunk: int = 500) -> None:
    """Load a generated script a few hundred statements per transaction: thousands of tables in
    one transaction exceed PostgreSQL's default lock table (max_locks_per_transaction)."""
    statements = script.split(";\n")
    with psycopg.connect(url, autocommit=True) as conn:
        for start in range(0, len(statements), statements_per_chunk):
            chunk = ";\n".join(statements[start : start + statements_per_chunk])
            conn.execute(chunk)  # type: ignore[arg-type]


def changed_dbml(n: int) -> str:
    """The same schema plus one new table and a new column on ten tables."""
    text = generate_dbml(n)
    for i in range(min(10, n)):
        text = text.replace(f"Table t{i} {{\n", f"Table t{i} {{\n  extra_{i} text\n", 1)
    return text + "\nTable bench_new {\n  id bigint [pk, increment]\n  label text\n}\n"


def in_process_counts(url: str, dbml_path: Path, cache: Path) -> tuple[int, float]:
    """Catalog queries of the plan's introspection, and the in-process seconds of a no-change
    plan (canonical cache warm, no overlap with parsing)."""
    from nself_py.commands import run as engine
    from nself_py.read import introspect
    from nself_py.read.dbml import read_dbml

    written = read_dbml(dbml_path)
    with psycopg.connect(url) as conn:
        start = time.perf_counter()
        engine.plan(conn, written, cache)
        return introspect.query_count(), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    server = embedded_server()
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        url = server.create_database()
        try:
            load_in_chunks(url, generate_sql(n))
            project = Path(tempfile.mkdtemp(prefix=f"bench{n}_"))
            (project / "hasura" / "migrations" / "default").mkdir(parents=True)
            (project / "schema.dbml").write_text(generate_dbml(n))
            cold, cold_mb, out = run_command(project, url)
            assert "no migration written" in out, out
            memo = project / ".nself" / "unchanged.json"
            cached = []
            for _ in range(args.repeat):
                memo.unlink()
                cached.append(run_command(project, url))
            repeat = [run_command(project, url) for _ in range(args.repeat)]
            assert all("as the last run that found no change saw" in r[2] for r in repeat)
            queries, in_process = in_process_counts(
                url, project / "schema.dbml", project / ".nself" / "canonical-cache.json"
            )
            (project / "schema.dbml").write_text(changed_dbml(n))
            change = [run_command(project, url, "--dry-run") for _ in range(args.repeat)]
            rows.append((
                n, cold, statistics.median(c[0] for c in cached),
                statistics.median(r[0] for r in repeat), in_process,
                statistics.median(c[0] for c in change), max(cold_mb, *(c[1] for c in change)),
                queries,
            ))  # fmt: skip
        finally:
            server.drop_database(url)
    print(
        f"{'tables':>7} {'no-change cold s':>16} {'cached s':>9} {'memo s':>7} "
        f"{'in-process s':>12} {'with change s':>13} {'peak MB':>8} {'introspect queries':>18}"
    )
    for n, cold, cached, memo, inproc, change, mb, queries in rows:
        print(
            f"{n:>7} {cold:>16.2f} {cached:>9.2f} {memo:>7.2f} {inproc:>12.2f} {change:>13.2f} "
            f"{mb:>8} {queries:>18}"
        )


if __name__ == "__main__":
    main()
