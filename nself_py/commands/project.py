"""The project a command works on: its folder, database and how to reach it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nself_py.database.sources import DEFAULT_DATABASE


@dataclass(frozen=True)
class Project:
    """The options every `db` command shares."""

    dir: Path
    database_url: str | None = None
    database_name: str = DEFAULT_DATABASE
    yes: bool = False

    @property
    def migrations_dir(self) -> Path:
        return self.dir / "hasura" / "migrations" / self.database_name

    @property
    def schema_file(self) -> Path:
        return self.dir / "schema.dbml"

    def url(self) -> str:
        """The target database, by the one resolution order of `database.sources`."""
        from nself_py.database.sources import target_url

        return target_url(self.dir, self.database_name, self.database_url)
