"""nself-py: keep a PostgreSQL database in step with schema.dbml through Hasura migrations."""

from __future__ import annotations

from pathlib import Path

__version__ = "0.3.0"


def versions(project_dir: Path) -> list[str]:
    """nself-py's version, pg_dump's, and the configured server's (never starting one); here,
    not in the CLI, so that `--version` runs without typer, rich or (with no server) psycopg."""
    import subprocess

    from nself_py.database.connection import redact, server_bin
    from nself_py.database.sources import DEFAULT_DATABASE, configured_url, find_source
    from nself_py.errors import NselfError

    lines = [f"nself-py {__version__}"]
    try:
        pg_dump = server_bin("pg_dump")
        out = subprocess.run([pg_dump, "--version"], capture_output=True, text=True, timeout=10)
        lines.append(f"client: {out.stdout.strip()} ({pg_dump})")
    except Exception as error:  # no client installed: say so rather than fail --version
        lines.append(f"client: pg_dump not found ({error})")
    try:
        url = configured_url(project_dir, find_source(project_dir, DEFAULT_DATABASE))
    except (NselfError, OSError) as error:  # an unreadable .env or databases.yaml
        lines.append(f"server: cannot read the configuration ({error})")
        return lines
    if url is None:
        lines.append("server: no database configured (DATABASE_URL, .env or --database-url)")
        return lines
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5, autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        lines.append(f"server: PostgreSQL {row[0] if row else '?'} at {redact(url)}")
    except psycopg.Error as error:
        lines.append(f"server: unreachable at {redact(url)} ({redact(str(error)).strip()})")
    return lines
