"""Whole-process timings of `nself-py` next to migra, in one run, on the same databases.

    python3 bench/bench_vs_migra.py [--sizes 1000,5000] [--repeat 3] [--migra PATH]
                                    [--no-bytecode] [--profile]

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
migra is skipped when it is not installed (`pip install migra psycopg2-binary` in a venv of its
own: it needs SQLAlchemy 1.x) or when one run takes over 120 s.
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


def median_of(repeat: int, command: list[str], before=None) -> tuple[float, int]:
    runs = []
    for _ in range(repeat):
        if before is not None:
            before()
        runs.append(timed(command))
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def after_edit_rows(
    run: list[str], project: Path, n: int, repeat: int
) -> list[tuple[str, int, float, float | None, int]]:
    """`db run --dry-run` and `db run --no-backup` on the edited schema.dbml, each repeat from the
    same state: what a `db run` writes for the edit (its migration, the target cache and parse
    marker of the new bytes) is removed before the next, and the lexed blocks are those of the
    file before the edit; the per-piece canonical cache stays, as an earlier run leaves it."""
    lexed = project / ".nself" / "dbml-lexed.marshal"
    before = lexed.read_bytes() if lexed.exists() else None
    (project / "schema.dbml").write_text(edited_dbml(n))
    dry_s, dry_mb = median_of(repeat, [*run, "--dry-run"])
    migrations = project / "hasura" / "migrations" / "default"

    def forget_the_edit() -> None:
        for folder in migrations.iterdir():
            shutil.rmtree(folder)
        for cache in (".nself/target-cache.marshal", ".nself/target-cache.parsed"):
            (project / cache).unlink(missing_ok=True)
        if before is not None:
            lexed.write_bytes(before)

    write_s, write_mb = median_of(repeat, [*run, "--no-backup"], before=forget_the_edit)
    return [
        ("db run --dry-run after an edit", n, dry_s, None, dry_mb),
        ("db run --no-backup after an edit", n, write_s, None, write_mb),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--migra", default=shutil.which("migra"))
    parser.add_argument("--no-bytecode", action="store_true", help="compile on every run")
    parser.add_argument("--profile", action="store_true", help="an edit cycle's stages")
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
    rows: list[tuple[str, int, float, float | None, int]] = []
    help_s, help_mb = median_of(args.repeat, nself("--help"))
    version_s, _ = median_of(args.repeat, nself("--version"))
    for n in (int(s) for s in args.sizes.split(",")):
        url = server.create_database()
        try:
            load_in_chunks(url, generate_sql(n))
            project = Path(tempfile.mkdtemp(prefix=f"vsmigra{n}_"))
            (project / "hasura" / "migrations" / "default").mkdir(parents=True)
            (project / "schema.dbml").write_text(generate_dbml(n))
            run = nself("db", "run", "--project-dir", str(project), "--database-url", url)
            first = timed(run)
            assert "no migration written" in first[2], first[2]
            timed(run)  # the first memo answer writes the bytecode of its path
            memo = project / ".nself" / "unchanged.json"
            memo_s, memo_mb = median_of(args.repeat, run)
            full_s, full_mb = median_of(args.repeat, run, before=memo.unlink)
            timed(run)  # leave the memo in place again
            migra_s = None
            if args.migra:
                migra = [args.migra, "--unsafe", *[for_migra(url)] * 2]
                once = seconds_within(migra, MIGRA_LIMIT_SECONDS)
                if once is not None:
                    migra_s = statistics.median([once, *(timed(migra)[0] for _ in range(2))])
            rows += [
                ("db run, no change (memo)", n, memo_s, migra_s, memo_mb),
                ("db run, no change (memo deleted)", n, full_s, migra_s, full_mb),
                *after_edit_rows(run, project, n, args.repeat),
            ]
        finally:
            server.drop_database(url)
    how = "compiled on every run" if args.no_bytecode else "with bytecode, as installed"
    print(f"whole-process medians of {args.repeat}; nself-py {how}")
    print(f"{'what':<34} {'tables':>7} {'nself-py s':>11} {'migra s':>8} {'ratio':>6} {'MB':>5}")
    print(f"{'nself-py --help':<34} {'':>7} {help_s:>11.2f} {'':>8} {'':>6} {help_mb:>5}")
    print(f"{'nself-py --version':<34} {'':>7} {version_s:>11.2f}")
    for what, n, ours, theirs, mb in rows:
        migra = f"{theirs:.2f}" if theirs is not None else "–"
        ratio = f"{theirs / ours:.1f}x" if theirs is not None else ""
        print(f"{what:<34} {n:>7} {ours:>11.2f} {migra:>8} {ratio:>6} {mb:>5}")


if __name__ == "__main__":
    main()
