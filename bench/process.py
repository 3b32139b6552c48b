"""One whole process timed as a user feels it: wall seconds, peak RSS and output."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(
    command: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None
) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (MB) and output of one process; fails loudly on an error."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        out.seek(0)
        output = out.read()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 2) or "Traceback" in output:  # migra exits 2 when it finds changes
        raise SystemExit(f"{command[:5]} failed ({code}):\n{output[-3000:]}")
    return seconds, usage.ru_maxrss // 1024, output


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
