"""Seeds: DBML records written as a Hasura-layout seed, applied once through the real CLI on a
real PostgreSQL, re-applied with --force, every common type, bad records at line:col."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest
from test_hasura_flow import ROOT, make_project, nself, ok

TYPES = """
    Enum mood {
      happy
      sad
    }
    Table users {
      id bigint [pk, increment]
      name varchar(20) [not null]
    }
    Table samples {
      id int [pk]
      user_id bigint [ref: > users.id]
      amount numeric(10,2)
      label text
      active boolean
      born date
      seen timestamptz
    }
    Table extras {
      id int [pk, ref: - samples.id]
      key uuid
      doc jsonb
      feeling mood
      tags text[]
      scores int[]
    }
    records extras(id, key, doc, feeling, tags, scores) {
      1, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2]}', 'happy', '{x,"y z"}', '{1,2}'
      2, null, null, 'sad', null, `ARRAY[3, 4]`
    }
    records samples(id, user_id, amount, label, active, born, seen) {
      1, 1, 12.50, 'it\\'s', true, '2024-02-29', '2024-01-01T10:00:00+02:00'
      2, 2, '0.1', null, false, null, `now()`
    }
    records users(id, name) {
      1, 'ann'
      2, 'bob'
    }
"""


def create_result(project: Path, name: str) -> subprocess.CompletedProcess[str]:
    """`db seed create NAME --from-dbml`: needs no database."""
    command = [sys.executable, "-m", "nself_py", "db", "seed", "create", name, "--from-dbml"]
    return subprocess.run(
        [*command, "--project-dir", str(project)], capture_output=True, text=True, cwd=ROOT,
        timeout=120, check=False,
    )  # fmt: skip


def create(project: Path, name: str) -> str:
    result = create_result(project, name)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def seeds(project: Path) -> list[Path]:
    return sorted((project / "hasura" / "seeds" / "default").glob("*.sql"))


def test_records_seed_applied_once_then_forced(tmp_path: Path, db_url: str) -> None:
    project = make_project(tmp_path, TYPES)
    ok(project, db_url, "db", "run", "--no-backup")
    ok(project, db_url, "db", "migrate:up")
    out = create(project, "initial")
    [seed] = seeds(project)
    assert seed.name.endswith("_initial.sql") and len(seed.name.split("_")[0]) == 13
    assert "hasura/seeds/default/" in out
    text = seed.read_text()
    # foreign-key order, whatever the order written: users, then samples, then extras
    assert text.index("INSERT INTO public.users") < text.index("INSERT INTO public.samples")
    assert text.index("INSERT INTO public.samples") < text.index("INSERT INTO public.extras")

    assert "seed " + seed.name + ": pending" in ok(project, db_url, "db", "status")
    assert "applied seed " + seed.name in ok(project, db_url, "db", "seed", "apply")
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT s.id, user_id, amount::text, label, active, born::text, "
            "seen = '2024-01-01 08:00:00+00', key::text, doc, feeling::text, tags, scores "
            "FROM samples s JOIN extras USING (id) ORDER BY id"
        ).fetchall()
        assert rows[0] == (
            1, 1, "12.50", "it's", True, "2024-02-29", True,
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", {"a": [1, 2]}, "happy", ["x", "y z"], [1, 2],
        )  # fmt: skip
        assert rows[1][:6] == (2, 2, "0.10", None, False, None) and rows[1][7:] == (
            None, None, "sad", None, [3, 4],
        )  # fmt: skip
        # the identity sequence moved past the seeded ids: the next insert does not collide
        conn.execute("INSERT INTO users (name) VALUES ('cy')")
        conn.commit()
    assert "seed " + seed.name + ": applied" in ok(project, db_url, "db", "status")

    again = ok(project, db_url, "db", "seed", "apply")
    assert "already applied: " + seed.name in again and "No pending seeds" in again
    with psycopg.connect(db_url) as conn:
        conn.execute("DELETE FROM extras; DELETE FROM samples; DELETE FROM users WHERE id <= 2")
        conn.commit()
    forced = ok(project, db_url, "db", "seed", "apply", "--force", "--file", seed.name)
    assert "applied seed " + seed.name in forced
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM samples").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM nself.seed_log").fetchone() == (1,)


def test_a_failing_seed_applies_nothing(tmp_path: Path, db_url: str) -> None:
    project = make_project(tmp_path, "Table t {\n  id int [pk]\n}\n")
    ok(project, db_url, "db", "run", "--no-backup")
    ok(project, db_url, "db", "migrate:up")
    folder = project / "hasura" / "seeds" / "default"
    folder.mkdir(parents=True)
    (folder / "1700000000001_a.sql").write_text("INSERT INTO t VALUES (1);\n")
    (folder / "1700000000002_b.sql").write_text(
        "INSERT INTO t VALUES (2);\nINSERT INTO t VALUES (2);\n"
    )
    result = nself(project, db_url, "db", "seed", "apply")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "1700000000002_b.sql failed at line 2" in result.stderr
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
        assert conn.execute("SELECT to_regclass('nself.seed_log')").fetchone() == (None,)


@pytest.mark.parametrize(
    ("record", "message", "col"),
    [
        ("'x', 'ann', true, 'sad', null, 1", "'x' is not an integer for id", 7),
        (
            "1, 'a name that is far too long', true, 'sad', null, 1",
            "is longer than 20 characters",
            10,
        ),
        ("1, 'ann', 'maybe', 'sad', null, 1", "'maybe' is not a boolean for ok", 17),
        ("1, 'ann', true, 'angry', null, 1", "'angry' is not a value of enum", 23),
        ("1, 'ann', true, 'sad', '{bad', 1", "is not a valid jsonb", 30),
        ("1, 'ann', true, 'sad', null, `1; DROP TABLE users`", "expression", 38),
    ],
)
def test_bad_records_are_errors_at_their_line_and_column(
    tmp_path: Path, record: str, message: str, col: int
) -> None:
    dbml = (
        textwrap.dedent(
            """\
        Enum mood {
          sad
        }
        Table users {
          id int [pk]
          name varchar(20)
          ok boolean
          m mood
          doc jsonb
          n int
        }
        records users(id, name, ok, m, doc, n) {
        """
        )
        + f"      {record}\n}}\n"
    )
    project = make_project(tmp_path, dbml)
    result = create_result(project, "s")
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert f"schema.dbml:13:{col}: record value" in result.stderr, result.stderr
    assert message in result.stderr
    assert not (project / "hasura" / "seeds").exists()


def test_unknown_record_column_is_an_error(tmp_path: Path) -> None:
    project = make_project(
        tmp_path, "Table t {\n  id int [pk]\n}\nrecords t(id, nope) {\n  1, 2\n}\n"
    )
    result = create_result(project, "s")
    assert result.returncode != 0 and "schema.dbml:4:15: records name unknown column 'nope'" in (
        result.stderr
    ), result.stderr


def test_config_v2_seeds_have_no_source_folder(tmp_path: Path) -> None:
    project = make_project(tmp_path, "Table t {\n  id int [pk]\n}\nrecords t(id) {\n  1\n}\n", 2)
    create(project, "s")
    [seed] = (project / "hasura" / "seeds").iterdir()
    assert seed.name.endswith("_s.sql")
    assert seed.read_text().endswith("INSERT INTO public.t (id) VALUES\n  (1);\n")
