"""`db status --hasura` prints what `hasura migrate status` prints, line for line.

The expected texts below are written out by hand from the Hasura CLI's printStatus
(cli/commands/migrate_status.go): Go's tabwriter with minwidth 0, padding 2 and spaces, header
`VERSION\\tNAME\\tSOURCE STATUS\\tDATABASE STATUS`, `Present`/`Not Present`, and under config v3 an
empty line and `Database: <name>` before each database. Hasura's own test expects the substring
`Present        Not Present` for a local, unapplied migration."""

from __future__ import annotations

from pathlib import Path

import psycopg
from helpers import cli
from test_state import make_hasura_catalog, v3_project

from nself_py.database.apply import APPLIED, MISSING, PENDING, Status, StatusRow, hasura_status_text
from nself_py.database.state import state_store
from nself_py.migrations.folders import write_migration

V1, V2, V3 = 1700000000001, 1700000000002, 1700000000009


def test_format_matches_the_hasura_cli_for_one_database():
    status = Status(
        "default",
        "x",
        (
            StatusRow(V1, "create_a", APPLIED),
            StatusRow(V2, "create_b", PENDING),
            StatusRow(V3, "", MISSING),
        ),
    )
    assert hasura_status_text([status], headings=True).split("\n") == [
        "",
        "Database: default",
        "VERSION        NAME      SOURCE STATUS  DATABASE STATUS",
        "1700000000001  create_a  Present        Present",
        "1700000000002  create_b  Present        Not Present",
        "1700000000009            Not Present    Present",
        "",
    ]
    assert "Present        Not Present" in hasura_status_text([status], headings=False)


def test_each_database_is_aligned_on_its_own_and_config_v2_has_no_heading():
    one = Status("default", "x", (StatusRow(V1, "a_rather_long_name", APPLIED),))
    two = Status("reports", "x", (StatusRow(V2, "b", PENDING),))
    assert hasura_status_text([one, two], headings=True) == (
        "\n"
        "Database: default\n"
        "VERSION        NAME                SOURCE STATUS  DATABASE STATUS\n"
        "1700000000001  a_rather_long_name  Present        Present\n"
        "\n"
        "Database: reports\n"
        "VERSION        NAME  SOURCE STATUS  DATABASE STATUS\n"
        "1700000000002  b     Present        Not Present\n"
    )
    assert hasura_status_text([Status("default", "x", ())], headings=False) == (
        "VERSION  NAME  SOURCE STATUS  DATABASE STATUS\n"
    )


def test_cli_status_hasura_on_a_config_v3_project(db_url: str, tmp_path: Path):
    project = v3_project(tmp_path)
    migrations = project / "hasura" / "migrations" / "default"
    write_migration(migrations, "create_a", "CREATE TABLE a (id int);", "", version=V1)
    write_migration(migrations, "create_b", "CREATE TABLE b (id int);", "", version=V2)
    with psycopg.connect(db_url, autocommit=True) as conn:
        make_hasura_catalog(conn)
        store = state_store(conn, project, "default")
        store.write(conn, {V1: False, V3: False})
    out = cli("db", "status", "--hasura", "--project-dir", str(project), "--database-url", db_url)
    assert out.stdout.split("\n") == [
        "",
        "Database: default",
        "VERSION        NAME      SOURCE STATUS  DATABASE STATUS",
        "1700000000001  create_a  Present        Present",
        "1700000000002  create_b  Present        Not Present",
        "1700000000009            Not Present    Present",
        "",
    ]
