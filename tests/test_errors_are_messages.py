"""Every error is a message: bad bytes, huge literals, impossible versions and lost connections
reach the user as one clear line and an exit code, never as a Python traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "nself_py"]


def cli(*args: str, code: int) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [*CLI, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result


def migration(project: Path, folder: str, up: bytes, down: bytes = b"SELECT 1;") -> Path:
    path = project / "hasura" / "migrations" / "default" / folder
    path.mkdir(parents=True)
    (path / "up.sql").write_bytes(up)
    (path / "down.sql").write_bytes(down)
    return path


def test_invalid_utf8_in_schema_dbml_names_the_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "schema.dbml").write_bytes(
        b'Table t {\n  id int\n  n text [note: "h\xc3\xa9\xff"]\n}\n'
    )
    result = cli("schema", "check", str(tmp_path / "schema.dbml"), code=1)
    assert "schema.dbml:3:20: not UTF-8 text: byte 0xff" in result.stderr


def test_invalid_utf8_in_up_sql_is_a_message_and_nothing_runs(
    tmp_path: Path, db_url: str, conn: psycopg.Connection
) -> None:
    migration(tmp_path, "1700000000001_a", b"CREATE TABLE a (id int);")
    migration(tmp_path, "1700000000002_b", b"CREATE TABLE b (id int);\n-- caf\xe9\n")
    result = cli(
        "db", "migrate:up", "--project-dir", str(tmp_path), "--database-url", db_url, code=2
    )
    assert "1700000000002_b/up.sql:2:7: not UTF-8 text: byte 0xe9" in result.stderr
    assert conn.execute("SELECT to_regclass('public.a')").fetchone()[0] is None


def test_invalid_utf8_in_config_yaml_is_a_message(tmp_path: Path, db_url: str) -> None:
    (tmp_path / "hasura").mkdir()
    (tmp_path / "hasura" / "config.yaml").write_bytes(b"version: 3\n# \xff\n")
    result = cli("db", "status", "--project-dir", str(tmp_path), "--database-url", db_url, code=2)
    assert "config.yaml:2:3: not UTF-8 text" in result.stderr


def test_invalid_utf8_in_databases_yaml_is_a_message(tmp_path: Path) -> None:
    folder = tmp_path / "hasura" / "metadata" / "databases"
    folder.mkdir(parents=True)
    (folder / "databases.yaml").write_bytes(b"- name: default\n  kind: p\xc3ostgres\n")
    result = cli("db", "status", "--project-dir", str(tmp_path), code=2)
    assert "databases.yaml:2:10: not UTF-8 text" in result.stderr


def test_a_version_above_bigint_is_refused_when_read(tmp_path: Path, db_url: str) -> None:
    migration(tmp_path, "99999999999999999999_huge", b"CREATE TABLE huge (id int);")
    result = cli(
        "db", "migrate:up", "--project-dir", str(tmp_path), "--database-url", db_url, code=2
    )
    assert "larger than the largest version PostgreSQL can record" in result.stderr


MEMORY_PROBE = textwrap.dedent(
    """
    import resource, sys
    from nself_py.read.dbml import read_dbml
    read_dbml(__import__("pathlib").Path(sys.argv[1]))
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    """
)


@pytest.mark.parametrize(
    "body",
    [
        "  s text [default: '{big}']\n",
        '  s text [note: "{big}"]\n',
        "  Note: '''{big}'''\n",
        "  s text [default: `'{big}'`]\n",
    ],
    ids=["string", "quoted", "multiline-note", "expression"],
)
def test_a_huge_literal_costs_memory_in_proportion(tmp_path: Path, body: str) -> None:
    """A 20 MB literal took gigabytes (the lexer's regex kept a backtracking frame per
    character); now reading stays within 10× the file size over an empty interpreter's."""
    size = 20_000_000
    path = tmp_path / "schema.dbml"
    path.write_text("Table t {\n  id int [pk]\n" + body.format(big="x" * size) + "}\n")
    baseline = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE.replace("read_dbml(", "(", 1), str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    probe = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(path)], capture_output=True, text=True, check=True
    )
    grown = int(probe.stdout) - int(baseline.stdout)
    assert grown < 10 * path.stat().st_size, f"{grown / 1e6:.0f} MB for a {size / 1e6:.0f} MB file"


def test_error_echoes_are_cut_and_the_caret_still_points(tmp_path: Path) -> None:
    path = tmp_path / "schema.dbml"
    path.write_text("Table t {\n  id int [pk, note: '" + "x" * 200_000 + "'] ? junk\n}\n")
    result = cli("schema", "check", str(path), code=1)
    assert len(result.stderr) < 1000
    assert "schema.dbml:2:200025: expected end of line, found '?'" in result.stderr
    source, caret = result.stderr.splitlines()[1:3]
    assert source.startswith("    …") and source.endswith("? junk")
    assert source[caret.index("^")] == "?"


def test_invalid_utf8_in_dot_env_is_a_message(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"# settings\nPOSTGRES_PASSWORD=s\xe9cret\n")
    result = cli("db", "status", "--project-dir", str(tmp_path), code=2)
    assert ".env:2:20: not UTF-8 text: byte 0xe9" in result.stderr
    assert "cret" not in result.stderr


def test_a_folder_that_cannot_be_written_is_a_message(tmp_path: Path, db_url: str) -> None:
    (tmp_path / "bin").write_text("a file where the backups folder should go\n")
    result = cli("db", "backup", "--project-dir", str(tmp_path), "--database-url", db_url, code=2)
    assert f"{tmp_path / 'bin'}" in result.stderr
