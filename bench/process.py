"""One whole process timed as a user feels it: wall and CPU seconds, peak RSS and output."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Run:
    seconds: float
    cpu_seconds: float
    """User + system time of the process."""
    peak_mb: int
    exit_code: int
    output: str
    """stdout and stderr, interleaved."""


def run_process(command: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None) -> Run:
    """One process run to its end and measured; the caller judges its exit code."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        out.seek(0)
        output = out.read()
    cpu = usage.ru_utime + usage.ru_stime
    return Run(seconds, cpu, usage.ru_maxrss // 1024, os.waitstatus_to_exitcode(status), output)


def timed(
    command: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None
) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (MB) and output of one process; fails loudly on an error."""
    run = run_process(command, cwd, env)
    if run.exit_code not in (0, 2) or "Traceback" in run.output:  # migra exits 2 on changes
        raise SystemExit(f"{command[:5]} failed ({run.exit_code}):\n{run.output[-3000:]}")
    return run.seconds, run.peak_mb, run.output


def seconds_within(command: list[str], limit: float) -> float | None:
    """Wall seconds of `command`, or None when it has not finished within `limit` seconds (it
    is stopped then: a competitor that takes minutes is shown as not finishing, not waited for)."""
    start = time.perf_counter()
    with subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    ) as child:
        try:
            child.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            return None
    if child.returncode not in (0, 2):  # migra exits 2 when it finds changes
        raise SystemExit(f"{command[:5]} failed ({child.returncode})")
    return time.perf_counter() - start
