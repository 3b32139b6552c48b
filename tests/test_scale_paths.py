"""The scale benchmark's round trip (bench/bench_scale.py) at a size the suite can afford:
schema-per-tenant through the real CLI, so what breaks at 200 schemas breaks here first."""

from __future__ import annotations

import sys
from pathlib import Path

import psycopg
from helpers import make_project, nself

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.generate import generate_tenants_dbml, tenant_names

SCHEMAS, TABLES = 30, 5


def _tenant_tables(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname LIKE 'tenant\\_%'"
        ).fetchone()
        return row[0] if row else 0


def _schemas(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant\\_%'")
        return {name for (name,) in rows}


def test_schema_per_tenant_round_trip(db_url: str, tmp_path: Path) -> None:
    project = make_project(tmp_path, generate_tenants_dbml(SCHEMAS, TABLES))

    written = nself(project, db_url, "db", "run", "--no-backup", "--yes")
    assert written.returncode == 0, written.stdout + written.stderr
    applied = nself(project, db_url, "db", "migrate:up", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert _tenant_tables(db_url) == SCHEMAS * TABLES
    assert _schemas(db_url) == set(tenant_names(SCHEMAS))

    again = nself(project, db_url, "db", "run", "--no-backup", "--yes")
    assert again.returncode == 0 and "no migration written" in again.stdout + again.stderr

    rolled_back = nself(project, db_url, "db", "migrate:down", "--yes")
    assert rolled_back.returncode == 0, rolled_back.stdout + rolled_back.stderr
    assert _tenant_tables(db_url) == 0
    assert _schemas(db_url) == set()
