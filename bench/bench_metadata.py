"""Time planning Hasura metadata for N tables with foreign keys (no database, no server).

Usage: python3 bench/bench_metadata.py [-n 200 1000 5000]
       python3 bench/bench_metadata.py --run 1000 [--code DIR ...] [--repeat 3]
Each table has an id, a name and an FK to each of the two tables before it, so every table
file holds object and array relationships, one file per table as `hasura metadata export`
writes. Figures, wall and CPU seconds (CPU is the steadier on a shared machine): the first plan
(from an empty project, then applied), a no-change plan, and a plan adding one table with 2 FKs
(it edits tables.yaml and the two referenced tables' files).

`--run N`: whole-process no-change `db run` on an N-table project (bench/generate.py, loaded in
the embedded PostgreSQL) whose Hasura metadata is in step, median of `--repeat` runs: the memo
path (a repeat of a no-change run) and the full path (memo deleted). `--code` names source trees
to run the command from (default: this one), e.g. an export of the previous commit, so before
and after are measured in one run under the same load.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from bench.process import run_process  # noqa: E402
from nself_py.metadata import MetadataPlan, apply, plan_metadata  # noqa: E402
from nself_py.model import Column, ForeignKey, Name, PrimaryKey, Schema, Table  # noqa: E402


def table(i: int) -> Table:
    cols = [Column("id", "bigint", nullable=False), Column("name", "text")]
    fks = []
    for back in (1, 2):
        if i - back >= 0:
            cols.append(Column(f"t{i - back}_id", "bigint"))
            fks.append(ForeignKey((f"t{i - back}_id",), Name("public", f"t{i - back}"), ("id",)))
    return Table(Name("public", f"t{i}"), tuple(cols), PrimaryKey(("id",)), foreign_keys=tuple(fks))


def bench(n: int) -> dict[str, tuple[float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        hasura = Path(tmp) / "hasura"
        hasura.mkdir()
        (hasura / "config.yaml").write_text("version: 3\nmetadata_directory: metadata\n")
        schema = Schema(tables=tuple(table(i) for i in range(n)))
        out: dict[str, tuple[float, float]] = {}

        def timed(label: str, *args: object, **kw: object) -> MetadataPlan:
            w, c = time.perf_counter(), time.process_time()
            plan = plan_metadata(*args, **kw)  # type: ignore[arg-type]
            out[label] = (time.perf_counter() - w, time.process_time() - c)
            return plan

        apply(timed("first plan", schema, hasura, ["public"]))
        plan = timed("no-change plan", schema, hasura, ["public"])
        assert plan.empty, plan.summary
        bigger = Schema(tables=(*schema.tables, table(n)))
        plan = timed("add 1 table, 2 FKs", bigger, hasura, ["public"], previous=schema)
        assert len(plan.writes) == 4, sorted(map(str, plan.writes))
        return out


def db_run(code: Path, project: Path, url: str) -> tuple[float, float, str]:
    """Wall and CPU seconds (user + system) and output of one `db run` run from the source tree
    `code`."""
    command = [
        sys.executable, "-m", "nself_py", "db", "run", "--project-dir", str(project),
        "--database-url", url, "--no-backup",
    ]  # fmt: skip
    run = run_process(command, cwd=code, env={**os.environ, "PYTHONPATH": str(code)})
    if run.exit_code != 0:
        raise SystemExit(f"db run failed:\n{run.output}")
    return run.seconds, run.cpu_seconds, run.output


def bench_run(n: int, codes: list[Path], repeat: int) -> None:
    sys.path[:0] = [str(ROOT / "tests")]
    from pgservers import embedded_server

    from bench.bench_run import load_in_chunks
    from bench.generate import generate_dbml, generate_sql

    server = embedded_server()
    url = server.create_database()
    try:
        load_in_chunks(url, generate_sql(n))
        with tempfile.TemporaryDirectory() as tmp:
            project = Path(tmp)
            (project / "hasura" / "migrations" / "default").mkdir(parents=True)
            (project / "hasura" / "config.yaml").write_text("version: 3\n")
            (project / "schema.dbml").write_text(generate_dbml(n))
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            subprocess.run(
                [sys.executable, "-m", "nself_py", "db", "metadata", "sync", "--project-dir",
                 str(project), "--database-url", url],
                check=True, capture_output=True, cwd=ROOT, env=env,
            )  # fmt: skip
            memo = project / ".nself" / "unchanged.json"
            for code in codes:
                db_run(code, project, url)  # leaves the memo (and any cache) of this tree
                memo_path = [db_run(code, project, url) for _ in range(repeat)]
                assert all("as the last run that found no change saw" in r[2] for r in memo_path)
                full = []
                for _ in range(repeat):
                    memo.unlink()
                    full.append(db_run(code, project, url))
                shown = (
                    f"{label} {statistics.median(r[0] for r in runs):.2f} s "
                    f"({statistics.median(r[1] for r in runs):.2f} s CPU)"
                    for label, runs in (("memo path", memo_path), ("full path", full))
                )
                print(f"{n:>5} tables, {code}: no-change db run, " + ", ".join(shown), flush=True)
    finally:
        server.drop_database(url)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, nargs="+", default=[200, 1000, 5000])
    ap.add_argument("--run", type=int, help="time whole-process no-change `db run` at N tables")
    ap.add_argument("--code", type=Path, nargs="+", default=[ROOT])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if args.run:
        bench_run(args.run, [c.resolve() for c in args.code], args.repeat)
        return
    for n in args.n:
        figures = bench(n)
        shown = (f"{k} {w:.2f} s ({c:.2f} s CPU)" for k, (w, c) in figures.items())
        print(f"{n:>5} tables: " + ", ".join(shown), flush=True)


if __name__ == "__main__":
    main()
