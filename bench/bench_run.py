"""Time `nself-py db run` on generated schemas, as whole commands in a subprocess: no change
(cold: first run, parse and canonicalize; cached: target cache but no no-change memo, the full
introspect + diff; memo: a repeat of a no-change run), with changes, plus peak memory and
catalog query counts.

    python3 bench/bench_run.py [--sizes 100,1000,5000] [--repeat 3]
    python3 bench/bench_run.py --profile [--sizes 5000]

Each size gets a fresh database on the embedded PostgreSQL loaded from the generated SQL, and a
project whose schema.dbml is the same schema in DBML, so the first run must find no change.
`--profile` instead runs the edit cycle (bench_vs_migra's edit: ~5 % new tables, ~2 % dropped,
~4 % of columns changed) in this process under cProfile, and prints where it went by stage.
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
    from nself_py.commands import run_plan
    from nself_py.read import introspect
    from nself_py.read.dbml import read_dbml

    written = read_dbml(dbml_path)
    with psycopg.connect(url) as conn:
        start = time.perf_counter()
        run_plan.plan(conn, written, cache)
        return introspect.query_count(), time.perf_counter() - start


# The stages of a run, as (label, file suffix, function): cumulative seconds of each come from
# the profile. Stages nest (a plan contains its diff); the catalog read itself runs in a thread
# cProfile does not see, so "wait for the catalog read" is what the main thread waited for it.
STAGES = (
    ("whole run", "commands/run.py", "run"),
    ("parse schema.dbml", "read/dbml/__init__.py", "decode_dbml"),
    ("read by blocks (cached tables kept)", "read/dbml/fragments.py", "read"),
    ("decode the cached tables", "read/dbml/fragments.py", "_decode"),
    ("lex the changed blocks", "read/dbml/blocks.py", "lex_block"),
    ("syntax tree", "read/dbml/parser.py", "parse"),
    ("model as written", "read/dbml/build.py", "build"),
    ("a cached model read (target, live)", "read/model_codec.py", "load_schema"),
    ("a cached model stored (target, live)", "read/model_codec.py", "store_schema"),
    ("memo: catalog digest", "read/digest.py", "catalog_digest"),
    ("wait for the catalog read", "concurrent/futures/_base.py", "result"),
    ("build the live model", "read/introspect.py", "build_schema"),
    ("plan (everything below)", "commands/run_plan.py", "plan"),
    ("canonicalize", "read/canonical.py", "canonicalize"),
    ("rename candidates", "plan/renames.py", "resolve_renames"),
    ("diff", "plan/diff.py", "diff"),
    ("views around retyped columns", "plan/dependents.py", "keep_views"),
    ("measure hazards on live data", "plan/measure.py", "measure_plan"),
    ("render SQL", "render/__init__.py", "render_migration"),
    ("Hasura metadata plan", "commands/metadata.py", "plan_for_run"),
    ("safety checks", "commands/run_checks.py", "check_suspicious_target"),
)


def profile_edit(url: str, n: int, dry_run: bool) -> None:
    """One in-process `db run` after the bench's edit, under cProfile: seconds per stage, then
    the functions that took most time of their own (what no stage names)."""
    import cProfile
    import pstats

    from bench.bench_vs_migra import edited_dbml
    from nself_py.commands.project import Project
    from nself_py.commands.run import RunOptions, run

    project = Path(tempfile.mkdtemp(prefix=f"profile{n}_"))
    (project / "hasura" / "migrations" / "default").mkdir(parents=True)
    (project / "schema.dbml").write_text(generate_dbml(n))
    target = Project(project, url)
    run(target, RunOptions(make_backup=False))  # the caches an earlier run leaves
    (project / "schema.dbml").write_text(edited_dbml(n))
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.enable()
    result = run(target, RunOptions(dry_run=dry_run, make_backup=False))
    profile.disable()
    wall = time.perf_counter() - start
    stats = pstats.Stats(profile)
    cumulative: dict[str, float] = {}
    for (file, _, function), (_, _, _, seconds, _) in stats.stats.items():  # type: ignore[attr-defined]
        for label, suffix, name in STAGES:
            if function == name and file.endswith(suffix):
                # the larger of two same-named functions of one file (a method and the
                # module function that calls it): one nests the other
                cumulative[label] = max(cumulative.get(label, 0.0), seconds)
    what = "db run --dry-run" if dry_run else "db run"
    print(f"\n{what} after an edit, {n} tables: {len(result.operations)} operations, "
          f"{wall:.2f} s wall under the profiler")  # fmt: skip
    for label, _, _ in STAGES:
        if label in cumulative:
            print(f"  {label:<30} {cumulative[label]:>7.2f} s")
    print("  most time of their own:")
    own = sorted(stats.stats.items(), key=lambda item: -item[1][2])  # type: ignore[attr-defined]
    for (file, line, function), (_, _, seconds, _, _) in own[:12]:
        place = file.split("site-packages/")[-1].split("nself_py/")[-1]
        print(f"    {seconds:>6.2f} s  {function} ({place}:{line})")


def profile_sizes(sizes: list[int], *, writes: bool) -> None:
    """`profile_edit` of the dry run (and with `writes` of the run that writes) for each size,
    on a fresh database loaded with the generated schema."""
    server = embedded_server()
    for n in sizes:
        url = server.create_database()
        try:
            load_in_chunks(url, generate_sql(n))
            profile_edit(url, n, dry_run=True)
            if writes:
                profile_edit(url, n, dry_run=False)
        finally:
            server.drop_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="where an edit cycle goes, by stage")
    args = parser.parse_args()
    if args.profile:
        profile_sizes([int(s) for s in args.sizes.split(",")], writes=True)
        return
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
