"""`db revert` says what it discards (rows written and tables created since the backup) before
it restores, and a revert whose restore fails leaves no safety backup to be mistaken for the
newest one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from nself_py.commands.revert import what_revert_discards
from nself_py.database import backup

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "nself_py"]


@pytest.fixture
def backed_up(tmp_path: Path, db_url: str) -> tuple[Path, str, Path]:
    """users (3 rows) and "order" (1 row), backed up; then others write."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id int PRIMARY KEY)")
        conn.execute('CREATE TABLE "order" (id int)')
        conn.execute("INSERT INTO users VALUES (1), (2), (3)")
        conn.execute('INSERT INTO "order" VALUES (1)')
        folder = backup.backup_database(db_url, conn, tmp_path, "default")
        conn.execute("INSERT INTO users SELECT generate_series(4, 53)")
        conn.execute("CREATE TABLE theirs (id int)")
        conn.execute("INSERT INTO theirs VALUES (1)")
    return tmp_path, db_url, folder


def test_what_a_revert_discards_is_counted_before_anything_changes(backed_up):
    _, url, folder = backed_up
    with psycopg.connect(url, autocommit=True) as conn:
        discard = what_revert_discards(conn, folder)
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (53,)
    assert discard.created == ("public.theirs",)
    assert discard.changed == (("public.users", 53, 3),)
    assert "  public.users: 53 rows now, 3 in the backup (+50)" in discard.lines()


def test_the_cli_prints_the_discard_before_restoring(backed_up):
    project, url, _ = backed_up
    result = subprocess.run(
        [*CLI, "db", "revert", "--yes", "--project-dir", str(project), "--database-url", url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "reverting discards every write since" in out
    assert out.index("public.users: 53 rows now, 3 in the backup (+50)") < out.index("restored")
    assert "table public.theirs (created since the backup) is dropped" in out


def test_a_failed_revert_leaves_no_safety_backup_behind(backed_up):
    project, url, folder = backed_up
    (folder / backup.DUMP_FILE).write_bytes(b"PGDMP not really a dump")
    # the dump no longer matches its manifest: refused before a safety backup is even taken (a
    # restore that fails later removes its safety backup: test_backup_safety)
    with psycopg.connect(url) as conn, pytest.raises(backup.IncompleteBackup):
        backup.revert(url, conn, project, "default", folder.name)
    assert backup.list_backups(project) == []
    assert [i.folder for i in backup.scan_backups(project)[1]] == [folder]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (53,)
