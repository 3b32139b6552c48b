"""Whole-process timings of `nself-py` next to migra, in one run, on the same databases.

    python3 bench/bench_vs_migra.py [--sizes 1000,5000] [--repeat 3] [--migra PATH]
                                    [--no-bytecode] [--profile] [--before CHECKOUT]

For each size: a database loaded from the generated SQL and a project whose schema.dbml says the
same. Rows (medians of --repeat whole processes):
- `--help` and `--version`: start-up;
- no change (memo): a repeat of a `db run` that found no change;
- no change (full): the same with the memo deleted (introspect, diff);
- migra no-op: `migra --unsafe URL URL` (two introspections of the same database, as migra
  compares a database with itself when nothing changed);
- after an edit: `db run --dry-run`, and `db run --no-backup` (writing the migration), with ~5 %
  new tables, ~2 % dropped, ~4 % of columns changed (`bench_run.py --profile`: where it goes).
Our processes run with bytecode, as an installed wheel does (pip compiles it at install): a
machine that sets PYTHONDONTWRITEBYTECODE (this one does) would otherwise compile every module
of ours on every run; `--no-bytecode` measures that way instead. `--profile` prints, per size,
where an edit cycle's time goes by stage (`bench_run.profile_edit`) instead of the table.
`--before DIR` also runs every row with another checkout's code (`PYTHONPATH=DIR`, e.g. a `git
worktree` of an older commit) on the same databases, in a column of its own: before and after
measured in one run. migra is skipped when it is not installed (`pip install migra
psycopg2-binary` in a venv of its own: it needs SQLAlchemy 1.x) or when one run takes over 120 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from pgservers import embedded_server  # noqa: E402

from bench.bench_run import load_in_chunks, profile_sizes  # noqa: E402
from bench.generate import generate_dbml, generate_sql  # noqa: E402
from bench.process import seconds_within, timed  # noqa: E402

MIGRA_LIMIT_SECONDS = 120


def nself(*args: str) -> list[str]:
    return [sys.executable, "-m", "nself_py", *args]


def edited_dbml(n: int) -> str:
    """~5 % new tables, ~2 % of the tables dropped (the last ones: nothing references them),
    ~4 % of the tables with a changed column type."""
    text = generate_dbml(n)
    dropped = max(1, n // 50)
    blocks = text.split("\nTable ")
    kept = blocks[: len(blocks) - dropped]
    text = "\nTable ".join(kept) + "\n"
    for i in range(0, n - dropped, 25):
        text = text.replace(
            f"Table t{i} {{\n  id bigint [pk, increment]\n  name varchar(120) [not null]",
            f"Table t{i} {{\n  id bigint [pk, increment]\n  name varchar(200) [not null]",
            1,
        )
    for j in range(max(1, n // 20)):
        text += f"\nTable fresh_{j} {{\n  id bigint [pk, increment]\n  label text\n}}\n"
    return text


def for_migra(url: str) -> str:
    """The URL with psycopg2 named: SQLAlchemy 2.1 (in migra's venv) maps a bare postgresql://
    to psycopg 3, which migra's venv does not have."""
    return url.replace("postgresql://", "postgresql+psycopg2://", 1)


def median_of(repeat: int, command: list[str], before=None, code: Path = ROOT) -> tuple[float, int]:
    """Median seconds and peak MB of `repeat` runs of `command` with the nself-py of `code`."""
    runs = []
    for _ in range(repeat):
        if before is not None:
            before()
        runs.append(run_with(code, command))
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def run_with(code: Path, command: list[str]) -> tuple[float, int, str]:
    """`timed` with the nself-py of the checkout `code`: run from there (a `-m` run imports
    from its working directory first) with it on PYTHONPATH."""
    if code == ROOT:
        return timed(command)
    return timed(command, cwd=code, env={**os.environ, "PYTHONPATH": str(code)})


Row = tuple[str, int, float, int]
"""What, tables, seconds (median), peak MB."""


def after_edit_rows(
    run: list[str], project: Path, n: int, repeat: int, code: Path = ROOT
) -> list[Row]:
    """`db run --dry-run` and `db run --no-backup` on the edited schema.dbml, each repeat from the
    same state: what a `db run` writes for the edit (its migration, the target cache and parse
    marker of the new bytes) is removed before the next, and the lexed blocks are those of the
    file before the edit; the per-piece canonical cache stays, as an earlier run leaves it."""
    lexed = project / ".nself" / "dbml-lexed.marshal"
    before = lexed.read_bytes() if lexed.exists() else None
    (project / "schema.dbml").write_text(edited_dbml(n))
    dry_s, dry_mb = median_of(repeat, [*run, "--dry-run"], code=code)
    migrations = project / "hasura" / "migrations" / "default"

    def forget_the_edit() -> None:
        for folder in migrations.iterdir():
            shutil.rmtree(folder)
        for cache in (".nself/target-cache.marshal", ".nself/target-cache.parsed"):
            (project / cache).unlink(missing_ok=True)
        if before is not None:
            lexed.write_bytes(before)

    write_s, write_mb = median_of(repeat, [*run, "--no-backup"], forget_the_edit, code)
    return [
        ("db run --dry-run after an edit", n, dry_s, dry_mb),
        ("db run --no-backup after an edit", n, write_s, write_mb),
    ]


def size_rows(
    url: str, n: int, repeat: int, code: Path = ROOT
) -> list[tuple[str, int, float, int]]:
    """(what, tables, seconds, peak MB) of our rows for one size, on a project of its own over
    the database at `url` (loaded with the generated schema), with the nself-py of `code`."""
    project = Path(tempfile.mkdtemp(prefix=f"vsmigra{n}_"))
    (project / "hasura" / "migrations" / "default").mkdir(parents=True)
    (project / "schema.dbml").write_text(generate_dbml(n))
    run = nself("db", "run", "--project-dir", str(project), "--database-url", url)
    first = run_with(code, run)
    assert "no migration written" in first[2], first[2]
    run_with(code, run)  # the first memo answer writes the bytecode of its path
    memo = project / ".nself" / "unchanged.json"
    memo_s, memo_mb = median_of(repeat, run, code=code)
    full_s, full_mb = median_of(repeat, run, memo.unlink, code)
    run_with(code, run)  # leave the memo in place again
    return [
        ("db run, no change (memo)", n, memo_s, memo_mb),
        ("db run, no change (memo deleted)", n, full_s, full_mb),
        *after_edit_rows(run, project, n, repeat, code),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--migra", default=shutil.which("migra"))
    parser.add_argument("--no-bytecode", action="store_true", help="compile on every run")
    parser.add_argument("--profile", action="store_true", help="an edit cycle's stages")
    parser.add_argument(
        "--before",
        help="another checkout of nself-py (a directory): its rows are measured too, on the "
        "same databases in the same run",
    )
    args = parser.parse_args()
    if args.no_bytecode:  # bytecode written earlier would still be read: look elsewhere
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
        os.environ["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="no-bytecode-")
    else:
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        timed(nself("--help"))  # writes the bytecode of the start-up path; the runs write theirs
    if args.profile:
        profile_sizes([int(s) for s in args.sizes.split(",")], writes=False)
        return
    server = embedded_server()
    before_code = Path(args.before).resolve() if args.before else None
    if before_code is not None:
        run_with(before_code, nself("--help"))  # its start-up path's bytecode
    rows: list[tuple[str, int, float, float | None, float | None, int]] = []
    help_s, help_mb = median_of(args.repeat, nself("--help"))
    version_s, _ = median_of(args.repeat, nself("--version"))
    help_before = version_before = None
    if before_code is not None:
        help_before = median_of(args.repeat, nself("--help"), code=before_code)[0]
        version_before = median_of(args.repeat, nself("--version"), code=before_code)[0]
    for n in (int(s) for s in args.sizes.split(",")):
        url = server.create_database()
        try:
            load_in_chunks(url, generate_sql(n))
            ours = size_rows(url, n, args.repeat)
            before = size_rows(url, n, args.repeat, before_code) if before_code else None
            migra_s = None
            if args.migra:
                migra = [args.migra, "--unsafe", *[for_migra(url)] * 2]
                once = seconds_within(migra, MIGRA_LIMIT_SECONDS)
                if once is not None:
                    migra_s = statistics.median([once, *(timed(migra)[0] for _ in range(2))])
            for number, (what, _, seconds, mb) in enumerate(ours):
                old = before[number][2] if before else None
                rows.append((what, n, seconds, old, migra_s if "no change" in what else None, mb))
        finally:
            server.drop_database(url)
    how = "compiled on every run" if args.no_bytecode else "with bytecode, as installed"
    print(f"whole-process medians of {args.repeat}; nself-py {how}")
    if args.before:
        print(f"before: the checkout at {args.before}, measured in the same run")
    print(
        f"{'what':<34} {'tables':>7} {'nself-py s':>11} {'before s':>9} {'migra s':>8} "
        f"{'ratio':>6} {'MB':>5}"
    )
    for what, seconds, old, mb in (
        ("nself-py --help", help_s, help_before, str(help_mb)),
        ("nself-py --version", version_s, version_before, ""),
    ):
        print(f"{what:<34} {'':>7} {seconds:>11.2f} {_seconds(old):>9} {'':>8} {'':>6} {mb:>5}")
    for what, n, seconds, old, theirs, mb in rows:
        ratio = f"{theirs / seconds:.1f}x" if theirs is not None else ""
        print(
            f"{what:<34} {n:>7} {seconds:>11.2f} {_seconds(old):>9} {_seconds(theirs):>8} "
            f"{ratio:>6} {mb:>5}"
        )


def _seconds(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "–"


if __name__ == "__main__":
    main()
