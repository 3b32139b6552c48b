"""Round trips at scale on the tool's own embedded server: whole processes, peak memory, migra.

    python3 bench/bench_scale.py [--sizes 1000,5000,20000] [--tenants 200x100] [--migra PATH]
                                 [--profile write|up|noop|down]

Each case is a project of its own with no database URL, so the commands start the embedded
PostgreSQL in `<project>/.nself/pgdata` with the tool's own settings. Rows per case, one process
each: `db run` writing the migration that creates every table (v1, empty → v2); `db migrate:up`
applying it in one transaction; a no-change `db run` (its memo deleted: full introspection and
diff); `db migrate:down` dropping every table in one transaction; and migra comparing the v2
database with itself (`migra --unsafe URL URL`, shown only within 120 s). MB: the command's
peak RSS. Each row is printed as its stage ends. `--profile STAGE` runs that stage's command
under cProfile (its row is marked and slower) and prints the functions it spent most in.
"""

from __future__ import annotations

import argparse
import os
import pstats
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

import psycopg  # noqa: E402

from bench.generate import generate_dbml, generate_tenants_dbml  # noqa: E402
from bench.process import timed  # noqa: E402
from nself_py.database.connection import (  # noqa: E402
    EMBEDDED_DATA_DIR,
    start_embedded_server,
    stop_embedded_server,
)

MIGRA_LIMIT_SECONDS = 120
STAGES = ("write", "up", "noop", "down")
PROFILE_LINES = 25


def nself(project: Path, *args: str, profile: bool = False) -> tuple[float, int, str]:
    """One command on `project` with no DATABASE_URL variables, so it uses the embedded server;
    with `profile`, under cProfile, its top functions printed."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    stats = project / "profile.out"
    profiler = ["-m", "cProfile", "-o", str(stats)] if profile else []
    command = [sys.executable, *profiler, "-m", "nself_py", *args, "--project-dir", str(project)]
    result = timed(command, env=env)
    if profile:
        print(f"--- cProfile of `nself-py {' '.join(args)}`", flush=True)
        profiled = pstats.Stats(str(stats), stream=sys.stdout)
        print("the stages: nself_py's functions by cumulative time (imports included)")
        profiled.sort_stats("cumulative").print_stats(r"nself_py[/\\]", PROFILE_LINES)
        print("where the time goes: every function by its own time (server waits included)")
        profiled.sort_stats("tottime").print_stats(PROFILE_LINES // 2)
    return result


def table_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN "
            "('pg_catalog', 'information_schema', 'hdb_catalog', 'nself')"
        ).fetchone()
    return row[0] if row else 0


Row = tuple[str, int, float, float | None, int]
"""What, tables, nself-py seconds, migra seconds (None: not run or over the limit), MB."""


def round_trip(
    label: str, dbml: str, tables: int, migra: str | None, profile: str | None
) -> Iterator[Row]:
    """Up, no-op and down of `dbml` on a fresh embedded cluster: a row as each stage ends."""
    project = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    pgdata = project / EMBEDDED_DATA_DIR

    def stage(name: str, *args: str) -> tuple[float, int, str]:
        return nself(project, *args, profile=profile == name)

    def what(name: str, text: str) -> str:
        return f"{label}: {text}" + (" (profiled)" if profile == name else "")

    try:
        (project / "hasura" / "migrations" / "default").mkdir(parents=True)
        (project / "hasura" / "config.yaml").write_text("version: 3\n")
        (project / "schema.dbml").write_text(dbml)
        write = stage("write", "db", "run", "--no-backup", "--yes")
        yield what("write", "db run (writes v2)"), tables, write[0], None, write[1]
        up = stage("up", "db", "migrate:up", "--yes")
        url = start_embedded_server(pgdata)
        assert table_count(url) == tables, up[2][-2000:]
        yield what("up", "migrate:up"), tables, up[0], None, up[1]
        (project / ".nself" / "unchanged.json").unlink(missing_ok=True)
        noop = stage("noop", "db", "run", "--no-backup", "--yes")
        assert "no migration written" in noop[2], noop[2][-2000:]
        migra_s = None
        if migra:
            # SQLAlchemy 2.1 reads postgresql:// as psycopg 3, which migra's venv lacks
            url2 = url.replace("postgresql://", "postgresql+psycopg2://", 1)
            once = timed([migra, "--unsafe", url2, url2])[0]
            migra_s = once if once <= MIGRA_LIMIT_SECONDS else None
        yield what("noop", "db run, no change"), tables, noop[0], migra_s, noop[1]
        down = stage("down", "db", "migrate:down", "--yes")
        assert table_count(url) == 0, down[2][-2000:]
        yield what("down", "migrate:down"), tables, down[0], None, down[1]
    finally:
        stop_embedded_server(pgdata)
        shutil.rmtree(project, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,5000,20000")
    parser.add_argument("--tenants", default="200x100", help="SCHEMASxTABLES, or '' for none")
    parser.add_argument("--migra", default=shutil.which("migra"))
    parser.add_argument("--profile", choices=STAGES, help="run this stage under cProfile")
    args = parser.parse_args()
    print(f"{'what':<36} {'tables':>7} {'nself-py s':>11} {'migra s':>8} {'ratio':>6} {'MB':>5}")
    cases = [("public", generate_dbml(n), n) for n in (int(s) for s in args.sizes.split(",") if s)]
    if args.tenants:
        schemas, per_schema = (int(x) for x in args.tenants.split("x"))
        tenants = generate_tenants_dbml(schemas, per_schema)
        cases.append((f"{schemas} schemas", tenants, schemas * per_schema))
    for label, dbml, tables in cases:
        for what, n, ours, theirs, mb in round_trip(label, dbml, tables, args.migra, args.profile):
            migra = f"{theirs:.2f}" if theirs is not None else "–"
            ratio = f"{theirs / ours:.1f}x" if theirs is not None else ""
            print(f"{what:<36} {n:>7} {ours:>11.2f} {migra:>8} {ratio:>6} {mb:>5}", flush=True)


if __name__ == "__main__":
    main()
