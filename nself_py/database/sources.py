"""Several databases in one project: Hasura's sources and the URL each one is reached at.

Config v3 lists its sources in `hasura/metadata/databases/databases.yaml`, each with a `name`
(also the folder under `hasura/migrations/`), a `kind`, and a `database_url` that is either a
literal URL, `{from_env: VARIABLE}` or `{connection_parameters: {...}}`.

Every command finds the database it works on (`--database-name`, default `default`) in one
order, implemented once in `target_url` (a variable is looked up in the environment first, then
in the project's `.env`):

1. `--database-url`;
2. `<NAME>_DATABASE_URL` (`DEFAULT_DATABASE_URL` for `default`), so a developer can point any
   source at a local server;
3. for `default` only: `DATABASE_URL`, then nself's `POSTGRES_HOST/PORT/DB/USER/PASSWORD` in
   `.env` (before the Hasura variables, which in nself's `.env` name a host only reachable
   inside Docker);
4. the source's `from_env` variable in databases.yaml;
5. the source's literal URL or `connection_parameters` in databases.yaml;
6. for `default` only: the embedded PostgreSQL under `.nself/pgdata`, started on demand.

Any other database with none of these is an error that names the variables to set.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import yaml

from nself_py.database.connection import read_env_file, resolve_database_url, url_from_settings
from nself_py.decoding import read_utf8
from nself_py.errors import ConfigError

DATABASES_FILE = Path("hasura") / "metadata" / "databases" / "databases.yaml"
DEFAULT_DATABASE = "default"
POSTGRES_KINDS = frozenset({"postgres", "pg", "citus", "cockroach", "alloy"})
"""Source kinds spoken to over the PostgreSQL protocol; other kinds are Hasura's alone."""


@dataclass(frozen=True)
class Source:
    """One database of the project, as databases.yaml names it."""

    name: str
    kind: str = "postgres"
    from_env: str | None = None
    url: str | None = None

    @property
    def env_name(self) -> str:
        """`<NAME>_DATABASE_URL`: the per-database variable nself-py reads first."""
        return re.sub(r"[^A-Za-z0-9]", "_", self.name).upper() + "_DATABASE_URL"


class _Loader(yaml.SafeLoader):
    """Safe YAML that reads unknown tags (`!include file`) as their plain value."""


def _tagged(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> object:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    raise yaml.constructor.ConstructorError(
        None, None, f"unexpected YAML node {node.tag}", node.start_mark
    )


_Loader.add_multi_constructor("!", _tagged)


def _connection_url(params: dict) -> str | None:
    """A URL from Hasura's `connection_parameters` (host, port, username, password, database)."""
    if not all(isinstance(params.get(k), str | int) for k in ("host", "database")):
        return None
    auth = quote(str(params.get("username", "postgres")), safe="")
    if isinstance(params.get("password"), str):
        auth += ":" + quote(params["password"], safe="")
    database = quote(str(params["database"]), safe="")
    return f"postgresql://{auth}@{params['host']}:{params.get('port', 5432)}/{database}"


def _source(entry: object, path: Path) -> Source:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise ConfigError(f"{path}: each database needs a `name`")
    info = (entry.get("configuration") or {}).get("connection_info") or {}
    database_url = info.get("database_url") if isinstance(info, dict) else None
    from_env = url = None
    if isinstance(database_url, str):
        url = database_url
    elif isinstance(database_url, dict):
        if isinstance(database_url.get("from_env"), str):
            from_env = database_url["from_env"]
        elif isinstance(database_url.get("connection_parameters"), dict):
            url = _connection_url(database_url["connection_parameters"])
    return Source(entry["name"], str(entry.get("kind", "postgres")).lower(), from_env, url)


def project_sources(project_dir: Path) -> list[Source]:
    """Every PostgreSQL source in databases.yaml, in file order; [] without the file."""
    path = project_dir / DATABASES_FILE
    if not path.is_file():
        return []
    try:
        entries = yaml.load(read_utf8(path), Loader=_Loader) or []
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: expected a list of databases")
    sources = [_source(entry, path) for entry in entries]
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: a database name is used twice: {names}")
    return [s for s in sources if s.kind in POSTGRES_KINDS]


def find_source(project_dir: Path, name: str) -> Source:
    """The source called `name`, or a bare one when databases.yaml does not list it."""
    for source in project_sources(project_dir):
        if source.name == name:
            return source
    return Source(name)


def configured_url(project_dir: Path, source: Source) -> str | None:
    """The URL the lookup order in the module doc finds, or None: never starts the embedded
    server (asking where a database is must not create one)."""
    settings = {**read_env_file(project_dir), **os.environ}
    if settings.get(source.env_name):
        return settings[source.env_name]
    if source.name == DEFAULT_DATABASE and (
        os.environ.get("DATABASE_URL") or url_from_settings(read_env_file(project_dir))
    ):
        return resolve_database_url(project_dir)
    if source.from_env and settings.get(source.from_env):
        return settings[source.from_env]
    return source.url


def source_url(project_dir: Path, source: Source, database_url: str | None = None) -> str:
    """The URL for one database: --database-url, then the lookup order in the module doc."""
    url = database_url or configured_url(project_dir, source)
    if url:
        return url
    if source.name == DEFAULT_DATABASE:
        return resolve_database_url(project_dir)
    tried = " or ".join(v for v in (source.env_name, source.from_env) if v)
    raise ConfigError(
        f"no connection URL for database {source.name!r}: set {tried} in the environment or in "
        f"{project_dir / '.env'}"
    )


def target_url(
    project_dir: Path, database_name: str = DEFAULT_DATABASE, database_url: str | None = None
) -> str:
    """The URL every command works on for `--database-name` (default `default`): the one
    resolution order of the module doc, for `db run`, `db update`, `db revert`, `migrate:*` …"""
    return source_url(project_dir, find_source(project_dir, database_name), database_url)


def metadata_url(project_dir: Path) -> str | None:
    """Where Hasura keeps its metadata (and, under config v3, every database's migration
    state): the `default` database, when a URL for it is configured."""
    return configured_url(project_dir, find_source(project_dir, DEFAULT_DATABASE))


def all_sources(project_dir: Path) -> list[Source]:
    """The databases `--all-databases` runs on: databases.yaml's, which must exist."""
    sources = project_sources(project_dir)
    if not sources:
        raise ConfigError(
            f"--all-databases needs the PostgreSQL databases listed in {DATABASES_FILE} "
            f"(none found under {project_dir})"
        )
    return sources
