"""Time planning Hasura metadata for N tables with foreign keys (no database, no server).

Usage: python3 bench/bench_metadata.py [-n 200 1000 5000]
Each table has an id, a name and an FK to each of the two tables before it, so every table
file holds object and array relationships, one file per table as `hasura metadata export`
writes. Figures, wall and CPU seconds (CPU is the steadier on a shared machine): the first plan
(from an empty project, then applied), a no-change plan, and a plan adding one table with 2 FKs
(it edits tables.yaml and the two referenced tables' files).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, nargs="+", default=[200, 1000, 5000])
    args = ap.parse_args()
    for n in args.n:
        figures = bench(n)
        shown = (f"{k} {w:.2f} s ({c:.2f} s CPU)" for k, (w, c) in figures.items())
        print(f"{n:>5} tables: " + ", ".join(shown), flush=True)


if __name__ == "__main__":
    main()
