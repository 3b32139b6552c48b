"""`db pull`: schema.dbml written from the live database, to adopt an existing database."""

from __future__ import annotations

from pathlib import Path

from nself_py.commands.project import Project
from nself_py.database.connection import connect
from nself_py.errors import ConfigError
from nself_py.model import Schema
from nself_py.read.introspect import introspect
from nself_py.read.pull import to_dbml


def pull(proj: Project, output: Path | None, overwrite: bool) -> tuple[Path, Schema]:
    """Write the DBML of the live schema to `output` (default: schema.dbml), which must not
    exist unless `overwrite`; returns where it went and what it holds."""
    target = output or proj.schema_file
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} exists; pass --overwrite to replace it")
    with connect(proj.url()) as conn:
        schema = introspect(conn)
    target.write_text(to_dbml(schema), encoding="utf-8")
    return target, schema
