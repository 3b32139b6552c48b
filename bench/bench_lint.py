"""Time splitting and linting N migrations (offline: no database, so no sizes).

Usage: python3 bench/bench_lint.py [-n 1000] [--repeat 5]
Each migration is a few statements of the kinds real ones hold (columns, indexes, constraints,
a trigger function, a data backfill), written to a temporary project; the figure is reading
every up.sql and down.sql with PostgreSQL's parser plus reviewing every statement. Classifying
(the locks and effects of every statement, part of the review) is timed again on its own after.
Each figure is the median of `--repeat` rounds over the same files.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from nself_py.migrations import lint  # noqa: E402
from nself_py.migrations.folders import local_migrations, write_migration  # noqa: E402
from nself_py.sql.parse import effects, lock_of  # noqa: E402

T = TypeVar("T")

UP = """SET lock_timeout = '5s';
ALTER TABLE orders_{i} ADD COLUMN note_{i} text DEFAULT 'none';
CREATE INDEX orders_{i}_created ON orders_{i} (created_at);
ALTER TABLE orders_{i} ADD CONSTRAINT orders_{i}_fk FOREIGN KEY (user_id) REFERENCES users (id);
CREATE OR REPLACE FUNCTION touch_{i}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
UPDATE orders_{i} SET note_{i} = 'x' WHERE id < 100;
"""
DOWN = """ALTER TABLE orders_{i} DROP CONSTRAINT orders_{i}_fk;
DROP INDEX orders_{i}_created;
ALTER TABLE orders_{i} DROP COLUMN note_{i};
DROP FUNCTION touch_{i}();
"""


def _timed(work: Callable[[], T]) -> tuple[T, float, float]:
    """`work()`, its wall-clock and its CPU seconds (the CPU figure is steadier on a busy
    machine)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _round(migrations_dir: Path) -> tuple[int, int, float, float, float]:
    """Statements, findings, and the seconds of read+split, lint and classify (CPU)."""
    reviewed, _, split_cpu = _timed(
        lambda: [
            lint.Migration(m.label, m.up_scripts() + m.down_scripts())
            for m in local_migrations(migrations_dir)
        ]
    )
    reviews, _, lint_cpu = _timed(lambda: lint.review(reviewed))
    statements = [s for m in reviewed for script in m.scripts for s in script.statements]
    _, _, classify_cpu = _timed(
        lambda: [(lock_of(s), effects(s, deparse=False)) for s in statements]
    )
    return len(reviews), len(lint.findings(reviews)), split_cpu, lint_cpu, classify_cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        migrations_dir = Path(tmp) / "migrations"
        for i in range(args.n):
            write_migration(
                migrations_dir, f"m{i}", UP.format(i=i), DOWN.format(i=i), version=10**12 + i
            )
        rounds = [_round(migrations_dir) for _ in range(args.repeat)]
    statements, found = rounds[0][:2]
    split, lint_, classify = (statistics.median(r[i] for r in rounds) for i in (2, 3, 4))
    totals = sorted(r[2] + r[3] for r in rounds)
    print(
        f"{args.n} migrations, {statements} statements, {found} findings, median of "
        f"{args.repeat} rounds (CPU seconds): read+split {split:.3f} s, lint {lint_:.3f} s, "
        f"total {statistics.median(totals):.3f} s (fastest {totals[0]:.3f}, slowest "
        f"{totals[-1]:.3f}); within lint, classify (locks and effects) {classify:.3f} s, the "
        "rules the rest"
    )


if __name__ == "__main__":
    main()
