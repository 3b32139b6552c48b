"""Text from schema.dbml never executes: every hostile expression is refused with file:line:col
by every command, before any connection is used, and the database is left exactly as it was."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from nself_py import model
from nself_py.read.canonical import ProbeRefused, _guarded, canonicalize

ROOT = Path(__file__).resolve().parent.parent

PAYLOADS = {
    "comment-quote": "0 /* ' */);COMMIT;DROP TABLE other.victim;SELECT (1 /* ' */",
    "e-string": "E'\\'');COMMIT;DROP TABLE other.victim;SELECT (E'\\''",
    "dollar-quote": "$$x$$);COMMIT;DROP TABLE other.victim;SELECT ($$x$$",
    "tagged-dollar": "$q$ ' $q$);COMMIT;DROP TABLE other.victim;SELECT ($q$ ' $q$",
    "nested-comment": "0 /* /* */ );COMMIT;DROP TABLE other.victim;SELECT (1 /* */ */",
    "unicode-escape": "U&'\\0027');COMMIT;DROP TABLE other.victim;SELECT (U&'\\0027'",
    "plain-semicolon": "1; DROP TABLE other.victim",
    "line-comment": "0)); DROP TABLE other.victim; --",
}

PLACES = {
    "default": "Table app {{\n  id int [pk]\n  n int [default: `{p}`]\n}}\n",
    "column check": "Table app {{\n  id int [pk]\n  n int [check: `{p}`]\n}}\n",
    "table check": "Table app {{\n  id int [pk]\n  n int\n  checks {{\n    `{p}`\n  }}\n}}\n",
    "index": "Table app {{\n  id int [pk]\n  n int\n  indexes {{\n    `{p}`\n  }}\n}}\n",
}
"""Each place puts the payload on the DBML's line 3 (default, check) or 5 (checks, indexes)."""


def _where(place: str) -> tuple[int, int]:
    """Line and column of the payload's first character in the file for `place`."""
    text = PLACES[place].format(p="\0")
    before = text[: text.index("\0")]
    return before.count("\n") + 1, len(before) - before.rfind("\n")


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    return subprocess.run(
        [sys.executable, "-m", "nself_py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def snapshot(conn: psycopg.Connection) -> tuple:
    """Schemas, relations and types outside the system catalogs, and the victim's rows."""
    system = "('pg_catalog', 'information_schema', 'pg_toast')"
    schemas = conn.execute(
        f"SELECT nspname FROM pg_namespace WHERE nspname NOT IN {system} ORDER BY 1"
    ).fetchall()
    relations = conn.execute(
        f"""SELECT n.nspname, c.relname, c.relkind FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname NOT IN {system} ORDER BY 1, 2"""
    ).fetchall()
    types = conn.execute(
        f"""SELECT n.nspname, t.typname FROM pg_type t
            JOIN pg_namespace n ON n.oid = t.typnamespace
            WHERE n.nspname NOT IN {system} ORDER BY 1, 2"""
    ).fetchall()
    rows = conn.execute("SELECT id, note FROM other.victim ORDER BY id").fetchall()
    return schemas, relations, types, rows


@pytest.fixture
def victim(conn: psycopg.Connection) -> psycopg.Connection:
    conn.execute("CREATE SCHEMA other")
    conn.execute("CREATE TABLE other.victim (id int PRIMARY KEY, note text)")
    conn.execute("INSERT INTO other.victim VALUES (1, 'keep'), (2, 'me')")
    return conn


def _commands(project: Path, url: str) -> list[tuple[str, ...]]:
    where = ("--project-dir", str(project), "--database-url", url)
    return [
        ("schema", "check", str(project / "schema.dbml")),
        ("db", "run", "--dry-run", *where),
        ("db", "run", "--yes", *where),
        ("db", "status", "--check-drift", *where),
        ("db", "update", "--yes", *where),
    ]


def corpus() -> tuple[str, list[tuple[int, int, str, str]]]:
    """One schema.dbml with every payload in every place (a table each), and where each is."""
    blocks: list[str] = []
    expected: list[tuple[int, int, str, str]] = []
    first_line = 1
    for n, (payload, text) in enumerate(PAYLOADS.items()):
        for m, place in enumerate(PLACES):
            block = PLACES[place].format(p=text).replace("Table app", f"Table t{n}_{m}")
            line, col = _where(place)
            expected.append((first_line + line - 1, col, payload, place))
            blocks.append(block)
            first_line += block.count("\n")
    return "".join(blocks), expected


def reported(output: str, path: Path) -> dict[int, int]:
    """line → column of each `path:line:col:` problem in a command's output."""
    found = {}
    for text in output.splitlines():
        text = text.removeprefix("✗ ")
        if text.startswith(f"{path}:"):
            line, col = text[len(str(path)) + 1 :].split(":")[:2]
            found[int(line)] = int(col)
    return found


@pytest.mark.parametrize(
    "command", ["schema check", "db run --dry-run", "db run", "drift", "db update"]
)
def test_every_payload_is_refused_at_its_place_and_changes_nothing(
    command: str, victim: psycopg.Connection, db_url: str, tmp_path: Path
) -> None:
    text, expected = corpus()
    path = tmp_path / "schema.dbml"
    path.write_text(text)
    before = snapshot(victim)
    args = dict(
        zip(
            ["schema check", "db run --dry-run", "db run", "drift", "db update"],
            _commands(tmp_path, db_url),
            strict=True,
        )
    )[command]
    result = cli(*args)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Traceback" not in out
    found = reported(out, path)
    for line, col, payload, place in expected:
        assert line in found, (payload, place, out[:2000])
        # Inside the backticks, where PostgreSQL's parser stopped reading one expression.
        assert col <= found[line] <= col + len(PAYLOADS[payload]), (payload, place)
    assert snapshot(victim) == before
    assert victim.execute("SELECT count(*) FROM other.victim").fetchone() == (2,)


def test_type_arguments_cannot_carry_sql(tmp_path: Path) -> None:
    (tmp_path / "schema.dbml").write_text(
        "Table app {\n  id int [pk]\n  n varchar('1); DROP TABLE other.victim; --')\n}\n"
    )
    result = cli("schema", "check", str(tmp_path / "schema.dbml"))
    assert result.returncode == 1
    assert "schema.dbml:3:5: type 'varchar(1); DROP TABLE other.victim; --)'" in result.stdout + (
        result.stderr
    )


def test_the_probe_refuses_statements_the_reader_would_have_stopped(
    victim: psycopg.Connection,
) -> None:
    """A model built without the DBML reader still cannot make the probe commit or drop."""
    before = snapshot(victim)
    for text in PAYLOADS.values():
        raw = model.Schema(
            ("public",),
            (),
            (
                model.Table(
                    model.Name("public", "app"),
                    (model.Column("n", "integer", True, text),),
                    None,
                ),
            ),
        )
        if text == PAYLOADS["nested-comment"]:
            # PostgreSQL nests comments: all after `0` is one comment, so the default is 0
            # (the DBML reader refuses comments in expressions anyway).
            [table] = canonicalize(victim, raw, None, save=False).tables
            assert table.columns[0].default == "0"
        else:
            with pytest.raises(ProbeRefused):
                canonicalize(victim, raw, None, save=False)
        assert snapshot(victim) == before


@pytest.mark.parametrize(
    ("sql", "accepted"),
    [
        ("SET LOCAL search_path = pg_catalog", True),
        ("SET search_path = pg_catalog", False),  # outlives the rolled-back probe
        ("SELECT a FROM probe.t", True),
        ("WITH gone AS (DELETE FROM public.t RETURNING 1) SELECT 1", False),
        ("SELECT 1 INTO public.copy", False),
        ("SELECT a FROM public.t FOR UPDATE", False),
        ("CREATE TABLE probe.t (a int)", True),
        ("CREATE TABLE public.t (a int)", False),
        ("CREATE TABLE t (a int)", False),  # unqualified: wherever search_path points
        ("CREATE INDEX ON probe.t (a)", True),
        ("CREATE INDEX ON public.t (a)", False),
        ("ALTER TABLE public.t ADD COLUMN b int", False),
        ("DROP TABLE probe.t", False),
        ("COMMIT", False),
        ("CREATE TABLE probe.t (a int); DROP SCHEMA public CASCADE", False),
    ],
)
def test_probe_guard_accepts_only_the_probes_own_statements(sql: str, accepted: bool) -> None:
    """The guard reads PostgreSQL's parse of the probe: any statement the probe does not write,
    or one aimed outside its scratch schema, refuses the whole probe before it is sent."""
    if accepted:
        assert _guarded(sql, "probe") == sql
    else:
        with pytest.raises(ProbeRefused):
            _guarded(sql, "probe")
