"""Time the DBML reader (parse + build model) against table count, with pydbml for comparison.

Run from the repository root: `python3 bench/bench_dbml.py [--sizes 100 1000 ...]`.
Peak memory is measured with tracemalloc (Python allocations); "s/1k tables" is from wall time.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate import generate_dbml
from nself_py.read.dbml import parse_dbml

PYDBML_LIMIT = 1000
# pydbml 1.2.1 does not know `checks { }` blocks: it gets the text without them.
_CHECKS = re.compile(r"^  checks \{\n.*?\n  \}\n", re.MULTILINE | re.DOTALL)


def best_of(n: int, fn, clock=time.perf_counter) -> float:
    times = []
    for _ in range(n):
        start = clock()
        fn()
        times.append(clock() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000, 20000])
    args = parser.parse_args()
    header = ("tables", "ours s", "cpu s", "s/1k tables", "peak MB", "pydbml s")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (7, 8, 7, 11, 8, 9), strict=True)))
    for n in args.sizes:
        text = generate_dbml(n)
        runs = 3 if n <= 5000 else 1
        seconds = best_of(runs, lambda text=text: parse_dbml(text))
        # CPU time as well: on a shared machine wall time also measures the neighbours.
        cpu = best_of(runs, lambda text=text: parse_dbml(text), time.process_time)
        tracemalloc.start()
        parse_dbml(text)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        theirs = "-"
        if n <= PYDBML_LIMIT:
            from pydbml import PyDBML

            plain = _CHECKS.sub("", text)
            theirs = f"{best_of(1, lambda plain=plain: PyDBML(plain)):.2f}"
        per_k = seconds / n * 1000
        print(f"{n:>7} {seconds:>8.3f} {cpu:>7.3f} {per_k:>11.3f} {peak:>8.1f} {theirs:>9}")


if __name__ == "__main__":
    main()
