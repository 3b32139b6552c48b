"""Start-up: whole-process medians of the commands that only print help or versions.

    python3 bench/bench_startup.py [--repeat 7] [--before /work/main]

Each row runs `python -m nself_py ARGS` in an empty folder (no database configured, so
--version connects nowhere) with this checkout on PYTHONPATH; with --before, the same command
from another checkout (e.g. main) runs alternately with it, so both see the same machine load,
and the last column is before / after. `python -c pass` is the floor no command goes below.
Rows marked "(terminal)" run with stdout on a pseudo-terminal, where help is rich-formatted;
the others are piped, where it is plain.
"""

from __future__ import annotations

import argparse
import os
import pty
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TERMINAL = "(terminal)"
COMMANDS = (
    ("--help",),
    ("--help", TERMINAL),
    ("--version",),
    ("db", "--help"),
    ("db", "status", "--help"),
    ("db", "status", "--help", TERMINAL),
    ("db", "migrate:up", "--help"),
    ("db", "run", "--help"),
)


def seconds(checkout: Path, args: tuple[str, ...], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one `python -m nself_py ARGS` importing nself_py from `checkout`,
    its output piped, or on a pseudo-terminal when ARGS end with TERMINAL."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    env["PYTHONPATH"] = str(checkout)
    on_terminal = args[-1] == TERMINAL
    args = args[:-1] if on_terminal else args
    module = [] if args[0] == "-c" else ["-m", "nself_py"]
    command = [sys.executable, *module, *args]
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+b") as out:
        if on_terminal:
            reader, terminal = pty.openpty()
            child = subprocess.Popen(command, cwd=cwd, env=env, stdout=terminal, stderr=out)
            os.close(terminal)
            while _read(reader):  # drained, so that the child never blocks on a full terminal
                pass
            os.close(reader)
        else:
            child = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=out)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            out.seek(0)
            raise SystemExit(f"{args} failed in {checkout}:\n{out.read().decode()}")
    return elapsed, usage.ru_utime + usage.ru_stime


def _read(fd: int) -> bytes:
    """The next output on a pseudo-terminal; b"" once the child closed it (EIO on Linux)."""
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--before", type=Path, help="another checkout to compare with")
    args = parser.parse_args()
    checkouts = [ROOT] + ([args.before.resolve()] if args.before else [])
    rows: list[tuple[str, list[tuple[float, float]]]] = []
    with tempfile.TemporaryDirectory(prefix="startup_") as empty:
        for command in [("-c", "pass"), *COMMANDS]:
            runs: list[list[tuple[float, float]]] = [[] for _ in checkouts]
            for _ in range(args.repeat):
                for i, checkout in enumerate(checkouts):
                    runs[i].append(seconds(checkout, command, Path(empty)))
            label = "python -c pass" if command[0] == "-c" else "nself-py " + " ".join(command)
            medians = [
                (statistics.median(w for w, _ in r), statistics.median(c for _, c in r))
                for r in runs
            ]
            rows.append((label, medians))
    header = f"{'what':<38} {'after s':>8} {'cpu s':>6}"
    if args.before:
        header += f" {'before s':>9} {'cpu s':>6} {'ratio':>6}"
    print(header)
    for label, medians in rows:
        (wall, cpu), *before = medians
        line = f"{label:<38} {wall:>8.3f} {cpu:>6.3f}"
        if before:
            line += f" {before[0][0]:>9.3f} {before[0][1]:>6.3f} {before[0][0] / wall:>5.1f}x"
        print(line)


if __name__ == "__main__":
    main()
