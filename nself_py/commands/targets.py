"""The databases a `migrate:*` or `status` command runs on: one, or with `--all-databases`
every database in databases.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nself_py.commands.project import Project
from nself_py.database.sources import all_sources, source_url
from nself_py.errors import ConfigError
from nself_py.migrations.folders import Migration, find_migrations_dir, local_migrations


@dataclass(frozen=True)
class Target:
    """One database a command runs on."""

    project: Project
    name: str
    migrations_dir: Path
    url: str

    def local(self) -> list[Migration]:
        return local_migrations(self.migrations_dir)


def database_targets(proj: Project, all_databases: bool) -> list[Target]:
    """The project's database, or every configured one (each URL from <NAME>_DATABASE_URL or
    its from_env variable, so --database-url is refused with --all-databases)."""
    if not all_databases:
        name = proj.database_name
        return [Target(proj, name, find_migrations_dir(proj.dir, name), proj.url())]
    if proj.database_url:
        raise ConfigError(
            "--database-url names one database; with --all-databases each database's URL "
            "comes from <NAME>_DATABASE_URL or its from_env variable"
        )
    return [
        Target(proj, s.name, find_migrations_dir(proj.dir, s.name), source_url(proj.dir, s))
        for s in all_sources(proj.dir)
    ]
