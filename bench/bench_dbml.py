"""Time the DBML reader (parse + build model) against table count, with pydbml for comparison.

Run from the repository root: `python3 bench/bench_dbml.py [--sizes 100 1000 ...]`.
Peak memory is measured with tracemalloc (Python allocations); "s/1k tables" is from wall time.
`--edit` times instead the read of the bench's edit (`bench_vs_migra.edited_dbml`) with the
block cache an earlier read of the file before the edit left (`decode_dbml(..., cache=...,
save=False)`, as a dry run does), each in a fresh process as in `db run`: medians of --repeat.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
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


# One read in a fresh process: `warm` (writes the cache), `edit` (a dry read), `cache` (the
# cache's load and store seconds). Prints seconds.
_CHILD = """
import sys, time
from pathlib import Path
from nself_py.read.dbml import blocks, decode_dbml
mode, dbml, cache = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
data = dbml.read_bytes()
start = time.perf_counter()
if mode == "cache":
    known = blocks.load(cache)
    loaded = time.perf_counter()
    blocks.store(cache.with_suffix(".copy"), known)
    print(loaded - start, time.perf_counter() - loaded)
else:
    decode_dbml(data, "schema.dbml", cache=cache, save=mode == "warm")
    print(time.perf_counter() - start)
"""


def _child(mode: str, dbml: Path, cache: Path) -> list[float]:
    command = [sys.executable, "-c", _CHILD, mode, str(dbml), str(cache)]
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(command, cwd=root, capture_output=True, text=True, check=True)
    return [float(x) for x in out.stdout.split()]


def read_after_edit(sizes: list[int], repeat: int) -> None:
    from bench.bench_vs_migra import edited_dbml

    print(f"{'tables':>7} {'edit s':>7} {'cold s':>7} {'load s':>7} {'store s':>8} {'cache MB':>9}")
    for n in sizes:
        work = Path(tempfile.mkdtemp(prefix=f"dbml_edit{n}_"))
        before, after, cache = work / "before.dbml", work / "after.dbml", work / "blocks.marshal"
        before.write_text(generate_dbml(n))
        after.write_text(edited_dbml(n))
        cold = _child("warm", before, cache)[0]
        edit = statistics.median(_child("edit", after, cache)[0] for _ in range(repeat))
        load, store = _child("cache", after, cache)
        size = cache.stat().st_size / 2**20
        print(f"{n:>7} {edit:>7.3f} {cold:>7.3f} {load:>7.3f} {store:>8.3f} {size:>9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000, 20000])
    parser.add_argument("--edit", action="store_true", help="the read of an edit, cache warm")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.edit:
        read_after_edit(args.sizes, args.repeat)
        return
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
