"""The command line as people meet it: one option set, --json on every command with its
documented keys, hints that are true, retention, a picture of the change, no stray servers."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from nself_py.cli import GLOBAL_OPTIONS, NotLoaded, app

ROOT = Path(__file__).resolve().parents[1]
BLOG = """
Table users {
  id int [pk]
  name text [not null]
}
"""
BOOKMARKS = (
    BLOG
    + """
Table bookmarks {
  id int [pk]
  user_id int [ref: > users.id]
  url text
}
"""
)


def nself(
    cwd: Path, *args: str, env: dict[str, str] | None = None, code: int | None = 0
) -> subprocess.CompletedProcess[str]:
    """`python -m nself_py ARGS` in `cwd`, DATABASE_URL only when given."""
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "NO_COLOR")}
    result = subprocess.run(
        [sys.executable, "-m", "nself_py", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**clean, **(env or {})},
        timeout=300,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    if code is not None:
        assert result.returncode == code, result.stdout + result.stderr
    return result


def as_json(cwd: Path, url: str, *args: str, code: int = 0) -> dict:
    out = nself(cwd, *args, "--json", "--database-url", url, code=code).stdout
    return json.loads(out)


def make_project(root: Path, dbml: str = BLOG) -> Path:
    (root / "hasura" / "migrations" / "default").mkdir(parents=True)
    (root / "hasura" / "config.yaml").write_text("version: 3\n")
    (root / "schema.dbml").write_text(textwrap.dedent(dbml))
    return root


def _commands() -> dict[str, Any]:
    """Every leaf command by its full name (`db status`, `db server start`, `schema check`)."""
    found: dict[str, Any] = {}

    def walk(command: Any, path: str) -> None:
        if isinstance(command, NotLoaded):  # listed by name until its module is imported
            command = command.load()
        if hasattr(command, "commands"):  # a group (typer bundles its own click)
            for name, sub in command.commands.items():
                walk(sub, f"{path} {name}".strip())
        else:
            found[path] = command

    walk(typer.main.get_command(app), "")
    return found


def test_every_command_accepts_every_global_option_the_readme_lists() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("Options every command takes:", 1)[1].split("\n\n", 1)[0]
    documented = set(re.findall(r"`(--[a-z-]+)", section))
    assert documented == set(GLOBAL_OPTIONS), documented ^ set(GLOBAL_OPTIONS)
    commands = _commands()
    assert {"db run", "db status", "db update", "db diagram", "db server stop"} <= set(commands)
    runner = CliRunner()
    for name, command in commands.items():
        names = {opt for param in command.params for opt in param.opts}
        assert documented <= names, (name, documented - names)
        shown = runner.invoke(app, [*name.split(), "--help"], env={"COLUMNS": "200"})
        assert shown.exit_code == 0, (name, shown.output)
        for option in documented:
            assert option in shown.output, (name, option)
        assert "<bool>" not in shown.output.replace("--help", ""), (name, shown.output)
        assert "Example: nself-py " in shown.output, name


def test_global_options_mean_the_same_everywhere(tmp_path: Path) -> None:
    """--yes and --json after any command; --quiet silences; usage errors exit 2."""
    make_project(tmp_path)
    created = nself(tmp_path, "db", "migrate:create", "hand", "--yes", "--quiet")
    assert created.stdout == ""
    document = json.loads(nself(tmp_path, "schema", "check", "--json").stdout)
    assert document["command"] == "schema check" and document["ok"] is True
    assert document["messages"] == ["✓ schema.dbml: 1 table, 0 enums, 0 refs"]
    assert nself(tmp_path, "db", "status", "--no-such-flag", code=2).returncode == 2
    completion = nself(tmp_path, "--show-completion", "bash", env={"SHELL": "/bin/bash"})
    assert "complete" in completion.stdout


def test_version_names_client_and_configured_server(tmp_path: Path, db_url: str) -> None:
    bare = nself(tmp_path, "--version").stdout.splitlines()
    assert bare[0].startswith("nself-py ") and bare[1].startswith("client: pg_dump (PostgreSQL)")
    assert bare[2].startswith("server: no database configured")
    assert not (tmp_path / ".nself").exists()  # asking for versions starts nothing
    lines = nself(tmp_path, "--version", env={"DATABASE_URL": db_url}).stdout.splitlines()
    assert re.match(r"server: PostgreSQL \d+", lines[2]), lines


def test_status_in_an_empty_folder_says_how_to_get_a_database(tmp_path: Path) -> None:
    result = nself(tmp_path, "db", "status", code=2)
    assert "no database configured" in result.stderr
    assert "nself-py db server start" in result.stderr and "DATABASE_URL" in result.stderr
    document = json.loads(nself(tmp_path, "db", "status", "--json", code=2).stdout)
    assert document["ok"] is False and "no database configured" in document["error"]
    assert list(tmp_path.iterdir()) == []  # no cluster, no folder, no server


def test_json_on_every_command_has_its_documented_keys(tmp_path: Path, db_url: str) -> None:
    project = make_project(tmp_path, BOOKMARKS)
    envelope = {"command", "ok", "exit_code", "error", "messages"}

    run = as_json(project, db_url, "db", "run", "--dry-run")
    assert envelope | {"changed", "summary", "operations", "hazards", "migrations"} <= set(run)
    assert run["up_sql"].count("CREATE TABLE") == 2 and run["migrations"] == []
    run = as_json(project, db_url, "db", "run", "--diagram")
    (folder,) = run["migrations"]
    assert Path(folder).is_absolute() and folder.endswith("_add_bookmarks_users")
    assert run["summary"] == "2 tables added, 1 foreign key added" and run["next"]
    assert "erDiagram" in run["diagram"] and "%% added: bookmarks" in run["diagram"]
    assert re.search(r"class (users,bookmarks|bookmarks,users) added", run["diagram"])

    status = as_json(project, db_url, "db", "status")
    assert [m["status"] for m in status["migrations"]] == ["pending"]
    update = as_json(project, db_url, "db", "update")
    assert [m["name"] for m in update["applied"]] == ["add_bookmarks_users"]
    assert Path(update["backup"]).is_dir() and update["verification"]["drift"] is False

    backup = as_json(project, db_url, "db", "backup")
    assert Path(backup["backup"]).is_absolute() and Path(backup["backup"]).is_dir()
    listed = as_json(project, db_url, "db", "backups")
    assert [set(b) >= {"name", "path", "created_at", "size", "complete"} for b in listed]
    assert len(listed) == 2 and all(b["complete"] for b in listed)
    reverted = as_json(project, db_url, "db", "revert", "--yes")
    assert reverted["restored"] == listed[-1]["name"] and reverted["schema_hash_matches"]
    assert reverted["row_counts"] == {"bookmarks": 0, "users": 0}

    down = as_json(project, db_url, "db", "migrate:down")
    assert down["ok"] and any("rolled back 1 migration" in m for m in down["messages"])
    up = as_json(project, db_url, "db", "migrate:up")
    assert up["exit_code"] == 0 and any("applied 1 migration" in m for m in up["messages"])
    assert [(s["direction"], s["name"]) for s in up["steps"]] == [("up", "add_bookmarks_users")]
    picture = as_json(project, db_url, "db", "diagram")
    assert picture["mermaid"].startswith("erDiagram") and picture["changes"] == {}
    server = nself(project, "db", "server", "status", "--json", code=1)
    assert json.loads(server.stdout)["exit_code"] == 1


def test_status_hints_are_true_for_each_kind_of_row(tmp_path: Path, db_url: str) -> None:
    project = make_project(tmp_path)
    nself(project, "db", "run", "--database-url", db_url)
    nself(project, "db", "migrate:up", "--database-url", db_url)
    clean = nself(project, "db", "status", "--database-url", db_url).stdout
    assert "1 migration: 1 applied" in clean and "hint" not in clean and "migrate:up" not in clean

    migrations = project / "hasura" / "migrations" / "default"
    (migrations / "1990000000000_needs_ghost").mkdir()
    (migrations / "1990000000000_needs_ghost" / "up.sql").write_text(
        "-- depends_on: 1980000000000\nSELECT 1;\n"
    )
    (applied,) = [f for f in migrations.iterdir() if f.name.endswith("_add_users")]
    (applied / "up.sql").write_text((applied / "up.sql").read_text() + "\nSELECT 1;\n")
    result = nself(project, "db", "status", "--database-url", db_url, code=1)
    assert "Blocked: needs 1980000000000" in result.stdout
    assert "run `nself-py db migrate:up`" not in result.stdout  # the only pending one is blocked
    assert "changed after being applied" in result.stdout
    document = as_json(project, db_url, "db", "status", code=1)
    blocked = next(m for m in document["migrations"] if m["version"] == "1990000000000")
    assert blocked == {
        "version": "1990000000000",
        "name": "needs_ghost",
        "status": "pending",
        "needs": ["1980000000000"],
    }


def test_backups_are_kept_to_the_configured_number_and_partial_ones_say_why(
    tmp_path: Path, db_url: str
) -> None:
    project = make_project(tmp_path)
    (project / ".env").write_text("NSELF_BACKUP_KEEP=2\n")
    for _ in range(3):
        nself(project, "db", "backup", "--database-url", db_url)
    root = project / "bin" / "dbsyncs"
    assert len(list(root.iterdir())) == 2
    partial = root / "2000-01-01_00-00-00"
    partial.mkdir()
    (partial / "manifest.json").write_text("{}")
    listed = nself(project, "db", "backups").stdout
    [row] = [line for line in listed.splitlines() if partial.name in line]
    assert "incomplete:" in row and "2 backups," in listed
    refused = nself(project, "db", "revert", "--backup", partial.name, "--yes", code=2)
    assert f"backup {partial.name} cannot be restored" in refused.stderr
    nself(project, "db", "backups", "--keep", "2")
    assert not partial.exists()  # older than the newest complete one: cleaned


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Rows of RGB(A) bytes from an 8-bit non-interlaced PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        header = body if kind == b"IHDR" else header
        chunks += body if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6)
    step = 3 if colour == 2 else 4
    raw, stride, rows, previous = zlib.decompress(chunks), width * step, [], bytes(width * step)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - step] if i >= step else 0
            up, corner = previous[i], previous[i - step] if i >= step else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                near = min((abs(p - left), left), (abs(p - up), up), (abs(p - corner), corner))
                line[i] = (line[i] + near[1]) & 255
        rows.append(bytes(line))
        previous = bytes(line)
    return width, step, rows


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_diagram_draws_the_change_in_a_real_browser(tmp_path: Path, db_url: str) -> None:
    project = make_project(tmp_path / "p")
    nself(project, "db", "run", "--database-url", db_url)
    nself(project, "db", "migrate:up", "--database-url", db_url)
    (project / "schema.dbml").write_text(
        BOOKMARKS.replace("name text [not null]", "name text [not null]\n  email text")
    )
    page = tmp_path / "change.html"
    nself(project, "db", "diagram", "--changes", "-o", str(page), "--database-url", db_url)
    text = page.read_text()
    assert 'class="table added" data-table="bookmarks"' in text
    assert 'class="table altered" data-table="users"' in text
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            "chromium", "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--no-first-run",
            f"--user-data-dir={tmp_path / 'chrome'}", f"--screenshot={shot}",
            "--window-size=900,700", page.as_uri(),
        ],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    width, step, rows = _png_pixels(shot.read_bytes())

    def count(rgb: tuple[int, int, int]) -> int:
        wanted = bytes(rgb)
        return sum(row[x * step : x * step + 3] == wanted for row in rows for x in range(width))

    assert count((0xD8, 0xF5, 0xD8)) > 1000  # the added table's green header is drawn
    assert count((0xFF, 0xEC, 0xC2)) > 1000  # the altered table's amber header
    assert count((0xFB, 0xD9, 0xD9)) > 50  # the legend's red swatch (nothing dropped)
