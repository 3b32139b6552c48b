"""Backups hold production data: private modes whatever the umask, a manifest written last, and
broken or partial backups that are reported (never tracebacks) and never restored."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from nself_py.database import backup

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "nself_py"]


def cli(*args: str, code: int = 0, umask: int | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [*CLI, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        preexec_fn=None if umask is None else (lambda: os.umask(umask)),
    )
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result


def take(project: Path, url: str, *extra: str) -> Path:
    before = set(backup_folders(project))
    cli("db", "backup", "--project-dir", str(project), "--database-url", url, *extra)
    (new,) = set(backup_folders(project)) - before
    return new


def backup_folders(project: Path) -> list[Path]:
    root = project / backup.BACKUP_ROOT
    return sorted(p for p in root.iterdir() if not p.name.startswith(".")) if root.exists() else []


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def filled(conn: psycopg.Connection) -> psycopg.Connection:
    conn.execute("CREATE TABLE secrets (id int PRIMARY KEY, card text)")
    conn.execute("INSERT INTO secrets SELECT i, 'card ' || i FROM generate_series(1, 50) i")
    return conn


@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask022", "umask000"])
def test_backups_are_private_whatever_the_umask(
    tmp_path: Path, db_url: str, filled: psycopg.Connection, umask: int
) -> None:
    cli("db", "backup", "--project-dir", str(tmp_path), "--database-url", db_url, umask=umask)
    root = tmp_path / backup.BACKUP_ROOT
    (folder,) = backup_folders(tmp_path)
    assert mode(root) == 0o700
    assert mode(folder) == 0o700
    assert sorted(p.name for p in folder.iterdir()) == [backup.DUMP_FILE, backup.MANIFEST_FILE]
    assert {p.name: mode(p) for p in folder.iterdir()} == {
        backup.DUMP_FILE: 0o600,
        backup.MANIFEST_FILE: 0o600,
    }


def test_a_truncated_manifest_is_listed_as_incomplete_and_never_restored(
    tmp_path: Path, db_url: str, filled: psycopg.Connection
) -> None:
    opts = ["--project-dir", str(tmp_path), "--database-url", db_url]
    good = take(tmp_path, db_url)
    filled.execute("DELETE FROM secrets WHERE id > 10")
    broken = take(tmp_path, db_url)
    manifest = broken / backup.MANIFEST_FILE
    manifest.write_bytes(manifest.read_bytes()[:40])

    listed = cli("db", "backups", "--project-dir", str(tmp_path))
    assert f"incomplete backup {broken.name}: unreadable manifest.json" in listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines() if line.strip()}
    assert good.name in rows and "incomplete" not in rows[good.name]
    assert "incomplete: unreadable manifest.json" in rows[broken.name]
    assert "1 backup," in listed.stdout and "1 incomplete" in listed.stdout

    named = cli("db", "revert", "--yes", "--backup", broken.name, *opts, code=2)
    assert "cannot be restored" in named.stderr
    assert filled.execute("SELECT count(*) FROM secrets").fetchone()[0] == 10

    cli("db", "revert", "--yes", *opts)  # the newest restorable one: `good`
    assert filled.execute("SELECT count(*) FROM secrets").fetchone()[0] == 50

    cli("db", "backup", "--keep", "1", *opts)
    assert not broken.exists(), "an incomplete backup older than the newest one is pruned"
    assert not good.exists()


def test_a_truncated_dump_is_listed_as_incomplete(
    tmp_path: Path, db_url: str, filled: psycopg.Connection
) -> None:
    folder = take(tmp_path, db_url)
    dump = folder / backup.DUMP_FILE
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])
    listed = cli("db", "backups", "--json", "--project-dir", str(tmp_path))
    [row] = json.loads(listed.stdout)
    assert row["name"] == folder.name and row["complete"] is False
    assert "truncated" in row["reason"] and "truncated" in listed.stderr
    result = cli(
        "db", "revert", "--yes", "--project-dir", str(tmp_path), "--database-url", db_url, code=2
    )
    assert "no backups in" in result.stderr and "1 incomplete" in result.stderr
    assert filled.execute("SELECT count(*) FROM secrets").fetchone()[0] == 50


def test_a_dump_pg_restore_cannot_read_is_incomplete_even_without_a_recorded_size(
    tmp_path: Path, db_url: str, filled: psycopg.Connection
) -> None:
    """Manifests written before the size was recorded: `pg_restore --list` is the judge."""
    folder = take(tmp_path, db_url)
    manifest = folder / backup.MANIFEST_FILE
    text = manifest.read_text()
    legacy = "\n".join(line for line in text.splitlines() if "dump_" not in line)
    manifest.write_text(legacy.replace('",\n}', '"\n}'))
    (folder / backup.DUMP_FILE).write_bytes(b"PGDMP\x01\x0e")
    ((incomplete,),) = [backup.scan_backups(tmp_path)[1]]
    assert "pg_restore cannot read" in incomplete.reason


def test_a_backup_killed_midway_is_cleaned_up_by_the_next_one(
    tmp_path: Path, db_url: str, filled: psycopg.Connection
) -> None:
    root = tmp_path / backup.BACKUP_ROOT
    child = subprocess.Popen(["true"])
    child.wait()
    killed = root / f"{backup.PARTIAL_PREFIX}2026-01-01_00-00-00-{child.pid}"
    killed.mkdir(parents=True)
    (killed / backup.DUMP_FILE).write_bytes(b"PGDMP half a dump")
    alive = root / f"{backup.PARTIAL_PREFIX}2026-01-01_00-00-01-{os.getpid()}"
    alive.mkdir()
    listed = cli("db", "backups", "--project-dir", str(tmp_path))
    assert "0 backups," in listed.stdout and "incomplete" not in listed.stdout
    take(tmp_path, db_url)
    assert not killed.exists()
    assert alive.exists(), "a backup being written by a live process is left alone"
    assert len(backup.list_backups(tmp_path)) == 1


def test_a_failed_pg_dump_shows_its_own_stderr_and_keeps_nothing(
    tmp_path: Path, db_url: str
) -> None:
    bad = db_url.replace("/t_", "/missing_t_", 1)
    result = cli("db", "backup", "--project-dir", str(tmp_path), "--database-url", bad, code=2)
    assert "missing_t_" in result.stderr and "does not exist" in result.stderr
    root = tmp_path / backup.BACKUP_ROOT
    assert not root.exists() or list(root.iterdir()) == []


def test_a_failed_revert_does_not_leave_its_safety_backup_as_the_newest(
    tmp_path: Path, db_url: str, filled: psycopg.Connection
) -> None:
    """Restoring a dump that names a role dropped since fails (and rolls back); the safety
    backup taken first must not become the "newest" that a second revert reports restoring."""
    role = f"gone_{uuid.uuid4().hex[:8]}"
    filled.execute(f'CREATE ROLE "{role}"')
    filled.execute(f'CREATE TABLE owned (id int); ALTER TABLE owned OWNER TO "{role}"')
    chosen = take(tmp_path, db_url)
    filled.execute(f'DROP TABLE owned; DROP ROLE "{role}"')
    opts = ["--project-dir", str(tmp_path), "--database-url", db_url]
    failed = cli("db", "revert", "--yes", *opts, code=2)
    assert "rolled back" in failed.stderr and role in failed.stderr
    assert [b.folder for b in backup.list_backups(tmp_path)] == [chosen]
    assert filled.execute("SELECT to_regclass('public.owned')").fetchone() == (None,)
    again = cli("db", "revert", "--yes", *opts, code=2)
    assert "rolled back" in again.stderr


def test_a_real_kill_mid_backup_leaves_nothing_the_next_run_does_not_clear(
    tmp_path: Path, db_url: str, filled: psycopg.Connection
) -> None:
    """SIGKILL `db backup` once its partial folder exists (pg_dump running): no incomplete
    backup is ever listed, and the next backup removes what the killed one left."""
    filled.execute(
        "CREATE TABLE bulk AS SELECT i, md5(i::text) AS h FROM generate_series(1, 300000) i"
    )
    root = tmp_path / backup.BACKUP_ROOT
    process = subprocess.Popen(
        [*CLI, "db", "backup", "--project-dir", str(tmp_path), "--database-url", db_url],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(600):  # bounded: 60 s
        if root.exists() and any(p.name.startswith(backup.PARTIAL_PREFIX) for p in root.iterdir()):
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert backup.scan_backups(tmp_path)[1] == []
    survivors = backup.list_backups(tmp_path)  # complete if the kill came after the rename
    left = [p for p in root.iterdir() if p.name.startswith(backup.PARTIAL_PREFIX)]
    assert left or survivors
    take(tmp_path, db_url)
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []
    assert len(backup.list_backups(tmp_path)) == len(survivors) + 1
