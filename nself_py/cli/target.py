"""The project and database a command works on, kept apart from `nself_py.cli` so that a
group's help or --version does not import the database layer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nself_py.cli import err_console, options
from nself_py.commands import project as projects


@dataclass(frozen=True)
class Project(projects.Project):
    """The project of the running command: resolving its URL also says which database it is."""

    def url(self) -> str:
        """The target database (the one resolution order of database/sources.py), announced
        on stderr before anything is done to it."""
        url = super().url()
        announce(url)
        return url


def announce(url: str) -> None:
    """Say which database a command works on (host, port, name, user; never the password)."""
    from nself_py.database.connection import describe_target

    err_console.print(f"→ {describe_target(url)}", markup=False, highlight=False)


def project(
    project_dir: Path, database_url: str | None, database_name: str, yes: bool = False
) -> Project:
    """The project of a command; --yes counts whether the command declares it or not."""
    return Project(project_dir.resolve(), database_url, database_name, yes or options().yes)
