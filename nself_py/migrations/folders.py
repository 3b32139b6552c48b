"""The migrations directory: list, read and write migrations in Hasura's layouts.

Config v2/v3 keep one folder per migration, `<13-digit ms version>_<name>/{up.sql,down.sql}`
(v2 folders may also hold `up.yaml`/`down.yaml`); config v1 keeps flat files
`<version>_<name>.{up|down}.{sql|yaml}`. Both read into the same `Migration`, whose up and down
`Script`s are already in the order they run: SQL before YAML on up, YAML before SQL on down.
YAML files are lists of Hasura API actions: `run_sql` is SQL we run; anything else is metadata
that only Hasura can apply, so it is reported, never executed.
"""

from __future__ import annotations

import functools
import hashlib
import re
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from nself_py.decoding import read_utf8
from nself_py.errors import ConfigError, NselfError

if TYPE_CHECKING:  # the parser is loaded to read a file's statements, not to list migrations
    from nself_py.sql.parse import SqlSyntaxError, Statement

NO_TRANSACTION_MARKER = "-- hasura:no-transaction"
V1_BACKUP_DIR = "migrations_v1_backup"
METADATA_NOTE = "metadata_actions.txt"

_FOLDER = re.compile(r"(\d+)_(.+)")
_FLAT_FILE = re.compile(r"(\d+)_(.+)\.(up|down)\.(sql|yaml)")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]*")
_DEPENDS_ON = re.compile(r"--\s*depends_on:\s*(\d+)(?:_(\S+))?\s*$")


class MigrationSyntaxError(NselfError):
    """A migration file PostgreSQL's parser rejects (or that holds a psql meta-command). Found
    when the file is read, which every command does for all its migrations before running any."""

    def __init__(self, path: Path, error: SqlSyntaxError):
        self.path, self.error = path, error
        self.line, self.column, self.message = error.line, error.column, error.message
        super().__init__(
            f"{path.parent.name}/{path.name}:{error.line}:{error.column}: {error.message}"
            f"\n    {error.statement}\nnothing was run: fix the file first"
        )


def _split(path: Path, text: str) -> list[Statement]:
    from nself_py.sql.parse import SqlSyntaxError, split_statements

    try:
        return split_statements(text)
    except SqlSyntaxError as error:
        raise MigrationSyntaxError(path, error) from None


@dataclass(frozen=True)
class Script:
    """One file's work: SQL statements to run and metadata actions only Hasura can apply."""

    file: Path
    statements: tuple[Statement, ...]
    metadata_actions: tuple[str, ...] = ()
    no_transaction: bool = False


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    up_files: tuple[Path, ...]
    """Up files in the order they run (SQL first)."""
    down_files: tuple[Path, ...]
    """Down files in the order they run (YAML first)."""

    @property
    def label(self) -> str:
        return f"{self.version}_{self.name}"

    def up_scripts(self) -> tuple[Script, ...]:
        return tuple(read_script(f) for f in self.up_files)

    def down_scripts(self) -> tuple[Script, ...]:
        return tuple(read_script(f) for f in self.down_files)

    def up_sha256(self) -> str:
        return scripts_sha256(self.up_scripts())

    def depends_on(self) -> tuple[tuple[int, str | None], ...]:
        """`-- depends_on: <version>[_name]` lines of the up.sql's leading comment block."""
        found: list[tuple[int, str | None]] = []
        for path in self.up_files:
            if path.suffix != ".sql":
                continue
            for raw in read_utf8(path).splitlines():
                line = raw.strip()
                if not line:
                    continue
                if not line.startswith("--"):
                    break
                if match := _DEPENDS_ON.fullmatch(line):
                    found.append((int(match.group(1)), match.group(2)))
        return tuple(found)


def scripts_sha256(scripts: tuple[Script, ...]) -> str:
    """Fingerprint of up statements, kept when applied so `db status` can see edits.

    Taken over the statements rather than the bytes of the files, so comments and blank lines
    between statements do not count and a v1 migration converted to v3 (same SQL in one up.sql)
    keeps its fingerprint."""
    digest = hashlib.sha256()
    for script in scripts:
        for statement in script.statements:
            digest.update(statement.sql.removesuffix(";").encode() + b"\0")
    return digest.hexdigest()


def read_script(path: Path) -> Script:
    """Read one up/down file; YAML files contribute their `run_sql` SQL and name the rest.

    The file is read every time, but text parsed before in this process is not parsed again
    (the cache is keyed by the text itself, so an edit is never missed): a command plans before
    it takes the lock and again after, and splitting a 20,000-table up.sql dominates both."""
    return _parse_script(path, read_utf8(path))


@functools.lru_cache(maxsize=4096)
def _parse_script(path: Path, text: str) -> Script:
    if path.suffix == ".sql":
        no_tx = text.lstrip().startswith(NO_TRANSACTION_MARKER)
        return Script(path, tuple(_split(path, text)), no_transaction=no_tx)
    try:
        actions = yaml.safe_load(text) or []
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    statements: list[Statement] = []
    metadata: list[str] = []
    for action in _flatten_actions(actions, path):
        kind = action.get("type", "?")
        args = action.get("args") or {}
        if kind == "run_sql" and isinstance(args, dict) and isinstance(args.get("sql"), str):
            statements.extend(_split(path, args["sql"]))
        else:
            metadata.append(_describe_action(kind, args))
    return Script(path, tuple(statements), tuple(metadata))


def _flatten_actions(actions: object, path: Path) -> list[dict]:
    """Hasura action lists, with `bulk` actions opened up."""
    if isinstance(actions, dict):
        actions = [actions]
    if not isinstance(actions, list) or not all(isinstance(a, dict) for a in actions):
        raise ConfigError(f"{path}: expected a list of Hasura actions ({{type, args}})")
    flat: list[dict] = []
    for action in actions:
        if action.get("type") == "bulk":
            flat.extend(_flatten_actions(action.get("args") or [], path))
        else:
            flat.append(action)
    return flat


def _describe_action(kind: str, args: object) -> str:
    """`track_table public.authors`: the action and the object it names, if any."""
    target = args.get("table", args) if isinstance(args, dict) else None
    if isinstance(target, dict):
        target = ".".join(str(target[k]) for k in ("schema", "name") if k in target)
    return f"{kind} {target}" if isinstance(target, str) and target else kind


BIGINT_MAX = 2**63 - 1
"""Versions are kept in bigint columns (Hasura's schema_migrations, nself's log)."""


def _version(digits: str, entry: Path) -> int:
    """The version a folder or file name starts with; refused when no bigint can hold it (it
    would never be recorded as applied, so it would stay pending for ever)."""
    version = int(digits)
    if version > BIGINT_MAX:
        raise ConfigError(
            f"{entry}: version {digits[:30]}{'…' if len(digits) > 30 else ''} is larger than "
            f"the largest version PostgreSQL can record ({BIGINT_MAX}); rename the migration"
        )
    return version


def local_migrations(migrations_dir: Path) -> list[Migration]:
    """Every migration under `migrations_dir`, sorted by version; `squashed_*` folders and
    anything not named `<version>_<name>` are skipped."""
    if not migrations_dir.is_dir():
        return []
    found: dict[int, Migration] = {}

    def add(migration: Migration) -> None:
        other = found.get(migration.version)
        if other is not None:
            raise ConfigError(
                f"version {migration.version} is used twice in {migrations_dir}: "
                f"{other.name} and {migration.name}"
            )
        found[migration.version] = migration

    flat: dict[tuple[int, str], list[Path]] = {}
    for entry in sorted(migrations_dir.iterdir()):
        if entry.name.startswith("squashed_"):
            continue
        if entry.is_dir() and (match := _FOLDER.fullmatch(entry.name)):
            up = tuple(p for p in (entry / "up.sql", entry / "up.yaml") if p.is_file())
            down = tuple(p for p in (entry / "down.yaml", entry / "down.sql") if p.is_file())
            add(Migration(_version(match.group(1), entry), match.group(2), up, down))
        elif entry.is_file() and (match := _FLAT_FILE.fullmatch(entry.name)):
            flat.setdefault((_version(match.group(1), entry), match.group(2)), []).append(entry)
    for (version, name), paths in flat.items():
        names = {p.name: p for p in paths}
        base = f"{version}_{name}"
        up = tuple(names[f] for f in (f"{base}.up.sql", f"{base}.up.yaml") if f in names)
        down = tuple(names[f] for f in (f"{base}.down.yaml", f"{base}.down.sql") if f in names)
        add(Migration(version, name, up, down))
    return sorted(found.values(), key=lambda m: m.version)


def version_entries(migrations_dir: Path, version: int) -> list[Path]:
    """The folder (or v1 flat files) of `version`: every entry named `<version>_…`."""
    if not migrations_dir.is_dir():
        return []
    return sorted(p for p in migrations_dir.iterdir() if p.name.startswith(f"{version}_"))


def config_version(project_dir: Path) -> int:
    """`version:` of hasura/config.yaml; 1 when the file or the key is missing (Hasura's rule)."""
    path = project_dir / "hasura" / "config.yaml"
    if not path.is_file():
        return 1
    try:
        config = yaml.safe_load(read_utf8(path)) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    try:
        return int(config.get("version", 1)) if isinstance(config, dict) else 1
    except (TypeError, ValueError):
        raise ConfigError(f"{path}: `version` must be 1, 2 or 3") from None


def find_migrations_dir(project_dir: Path, database_name: str) -> Path:
    """`hasura/migrations/<database>` (config v3); under config v2 `hasura/migrations` itself,
    where the Hasura CLI reads them (unless an earlier nself-py already wrote `<database>/`);
    for a config v1 project whose migrations sit directly in `hasura/migrations`, that folder."""
    v3 = project_dir / "hasura" / "migrations" / database_name
    legacy = v3.parent
    version = config_version(project_dir)
    if v3.is_dir() or version >= 3:
        return v3
    if version == 2:
        return legacy
    if not legacy.is_dir():
        return v3
    if any(_FOLDER.fullmatch(p.name) or _FLAT_FILE.fullmatch(p.name) for p in legacy.iterdir()):
        return legacy
    return v3


_version_lock = threading.Lock()
_last_version = 0


def new_version() -> int:
    """Unix time in milliseconds (13 digits), never the same twice in this process."""
    global _last_version
    with _version_lock:
        _last_version = max(int(time.time() * 1000), _last_version + 1)
        return _last_version


def _header(kind: str, name: str, version: int) -> str:
    return f"-- {kind} of migration {version}_{name}\n"


def write_migration(
    migrations_dir: Path, name: str, up_sql: str, down_sql: str, version: int | None = None
) -> Path:
    """Write `<version>_<name>/{up.sql,down.sql}` and return the folder.

    Empty SQL gets a comment header instead: Hasura's CLI silently skips empty files, and a
    file that says what it is for is easier to fill in."""
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"invalid migration name {name!r}: use letters, digits, `_` and `-` "
            "(starting with a letter or digit)"
        )

    def used(v: int) -> bool:
        return any(migrations_dir.glob(f"{v}_*"))

    if version is None:
        version = new_version()
        while used(version):
            version = new_version()
    elif used(version):
        raise ConfigError(f"version {version} already exists in {migrations_dir}")
    folder = migrations_dir / f"{version}_{name}"
    folder.mkdir(parents=True)
    for file, sql, kind in (("up.sql", up_sql, "up"), ("down.sql", down_sql, "down")):
        text = sql if sql.strip() else _header(kind, name, version)
        (folder / file).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    return folder


@dataclass(frozen=True)
class Converted:
    migration: Migration
    folder: Path
    metadata_actions: tuple[str, ...]


def sql_text(scripts: tuple[Script, ...]) -> str:
    """The SQL of `scripts` in run order as one text: SQL files as written (comments kept),
    YAML `run_sql` statements one per line."""
    parts = []
    for script in scripts:
        if script.file.suffix == ".sql":
            parts.append(script.file.read_text(encoding="utf-8").strip())
        else:
            parts.extend(s.sql if s.sql.endswith(";") else s.sql + ";" for s in script.statements)
    return "\n".join(p for p in parts if p)


def convert_v1(source_dir: Path, target_dir: Path, backup_dir: Path) -> list[Converted]:
    """Rewrite config v1 flat files in `source_dir` as v3 folders in `target_dir`.

    SQL of each step (files and YAML `run_sql`, in run order) goes into up.sql/down.sql; other
    YAML actions are listed in a note file in the folder. The original files are moved to
    `backup_dir` first, so nothing is lost and `source_dir` may be `target_dir`."""
    flat = [
        m
        for m in local_migrations(source_dir)
        if any(_FLAT_FILE.fullmatch(p.name) for p in m.up_files + m.down_files)
    ]
    if not flat:
        raise ConfigError(f"no config v1 migration files (<version>_<name>.up.sql) in {source_dir}")
    taken = {m.version for m in local_migrations(target_dir) if m not in flat}
    if clash := sorted(taken & {m.version for m in flat}):
        raise ConfigError(f"{target_dir} already has versions {clash}")
    planned = []
    for migration in flat:
        up, down = migration.up_scripts(), migration.down_scripts()
        actions = tuple(
            f"{kind}: {action}"
            for kind, scripts in (("up", up), ("down", down))
            for script in scripts
            for action in script.metadata_actions
        )
        planned.append((migration, sql_text(up), sql_text(down), actions))
    backup_dir.mkdir(parents=True, exist_ok=True)
    for migration in flat:
        for path in migration.up_files + migration.down_files:
            shutil.move(path, backup_dir / path.name)
    results: list[Converted] = []
    for migration, up_sql, down_sql, actions in planned:
        folder = write_migration(target_dir, migration.name, up_sql, down_sql, migration.version)
        if actions:
            note = "Hasura metadata actions of the v1 migration (apply them with Hasura):\n"
            (folder / METADATA_NOTE).write_text(note + "\n".join(actions) + "\n", encoding="utf-8")
        results.append(Converted(migration, folder, actions))
    return results
