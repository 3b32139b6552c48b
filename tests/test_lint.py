"""`db lint`: each statement's locks and risks, the findings on hand-written and generated
migrations, the hooks in migrate:up / db update / db run, and squawk on the same files."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from nself_py.migrations import lint
from nself_py.migrations.folders import local_migrations, read_script, write_migration

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).parent / "corpus" / "migrations"
CLI = [sys.executable, "-m", "nself_py"]
V1, V2 = 1700000000001, 1700000000002


def run(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([*CLI, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def reviews_of(path: Path) -> list[lint.Review]:
    return lint.review([lint.Migration(path.stem, (read_script(path),))])


def counted(reviews: list[lint.Review]) -> set[str]:
    return {f"{f.rule}@{r.line}" for r, f in lint.findings(reviews)}


def expected(path: Path) -> set[str]:
    found: set[str] = set()
    for line in path.read_text().splitlines():
        if line.startswith("-- expect:"):
            words = line.removeprefix("-- expect:").replace(",", " ").split()
            found.update(w for w in words if w != "none")
    return found


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.sql")), ids=lambda p: p.stem)
def test_hand_written_corpus_gives_the_expected_findings(path: Path) -> None:
    assert counted(reviews_of(path)) == expected(path)


def test_allow_comment_accepts_one_rule_and_keeps_it_visible() -> None:
    reviews = reviews_of(CORPUS / "allowed.sql")
    allowed = [(r.line, f.rule) for r in reviews for f in r.findings if f.allowed]
    assert allowed == [(5, "drop-table"), (6, "drop-table")]
    assert lint.worst(reviews) is lint.Severity.WARNING  # the lock-timeout finding still counts


def test_every_rule_has_advice_or_is_about_data_and_squawk_rules_map_to_ours() -> None:
    assert {r for ours in lint.SQUAWK_RULES.values() for r in ours} <= set(lint.RULES)
    for rule in lint.RULES.values():
        assert rule.summary and rule.severity in lint.Severity


def test_facts_name_the_lock_what_it_blocks_and_the_rewrite(tmp_path: Path) -> None:
    script = tmp_path / "up.sql"
    script.write_text(
        "ALTER TABLE public.orders ALTER COLUMN total TYPE numeric(12, 2);\n"
        "CREATE INDEX CONCURRENTLY o_c ON orders (c);\n"
        "ALTER TABLE orders VALIDATE CONSTRAINT fk;\n"
    )
    first, second, third = reviews_of(script)
    assert first.facts() == (
        "ACCESS EXCLUSIVE on public.orders: blocks reads, writes and DDL; may rewrite the table; "
        "may scan the table; can lose data; can fail on existing data"
    )
    assert second.facts() == "SHARE UPDATE EXCLUSIVE on orders: blocks DDL; scans the table"
    assert third.facts().startswith("SHARE UPDATE EXCLUSIVE on orders: blocks DDL; scans")


SETUP = """
CREATE TABLE orders (id int PRIMARY KEY, total int, note text);
INSERT INTO orders SELECT g, g, repeat('x', 200) FROM generate_series(1, 20000) g;
ANALYZE orders;
CREATE TABLE empty (id int);
"""


def test_live_sizes_are_shown_and_empty_tables_lowered(conn: psycopg.Connection, tmp_path) -> None:
    conn.execute(SETUP)
    script = tmp_path / "up.sql"
    script.write_text(
        "ALTER TABLE orders ALTER COLUMN total TYPE bigint;\nCREATE INDEX empty_id ON empty (id);\n"
    )
    retype, index = lint.review_live(conn, [lint.Migration("m", (read_script(script),))])
    assert re.fullmatch(
        r"ACCESS EXCLUSIVE on orders \(20\.0 k rows, \d\.\d MB\): blocks reads, writes and DDL; "
        r"may rewrite the table; .*",
        retype.facts(),
    )
    rules = {(f.rule, f.severity) for f in retype.findings}
    assert ("change-column-type", lint.Severity.WARNING) in rules
    assert "(20.0 k rows" in next(
        f.message for f in retype.findings if f.rule == "change-column-type"
    )
    assert [(f.rule, f.severity) for f in index.findings] == [
        ("create-index-blocking", lint.Severity.INFO)
    ]


def _project(tmp_path: Path) -> Path:
    (tmp_path / "hasura" / "migrations" / "default").mkdir(parents=True)
    return tmp_path


def _mdir(project: Path) -> Path:
    return project / "hasura" / "migrations" / "default"


def _applied(conn: psycopg.Connection) -> set[int]:
    if conn.execute("SELECT to_regclass('hdb_catalog.schema_migrations')").fetchone()[0] is None:
        return set()
    return {r[0] for r in conn.execute("SELECT version FROM hdb_catalog.schema_migrations")}


def test_db_lint_prints_every_statement_and_strict_fails_on_warnings(db_url, conn, tmp_path):
    conn.execute(SETUP)
    project = _project(tmp_path)
    write_migration(
        _mdir(project), "retype", "ALTER TABLE orders ALTER total TYPE bigint;", "", version=V1
    )
    opts = ["--project-dir", str(project), "--database-url", db_url]
    plain = run("db", "lint", *opts)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert f"{V1}_retype/up.sql:" in plain.stdout
    assert "ACCESS EXCLUSIVE on orders (20.0 k rows" in plain.stdout
    assert "warning change-column-type" in plain.stdout and "safer:" in plain.stdout
    assert run("db", "lint", "--strict", *opts).returncode == 1
    as_json = run("db", "lint", "--json", str(V1), *opts)
    [statement] = [s for s in json.loads(as_json.stdout) if s["file"] == "up.sql"]
    assert statement["lock"] == "ACCESS EXCLUSIVE" and statement["tables"][0]["rows"] == 20000
    assert statement["blocks"] == {"reads": True, "writes": True, "ddl": True}
    assert [f["rule"] for f in statement["findings"]] == ["lock-timeout", "change-column-type"]
    offline = run("db", "lint", "--offline", "--project-dir", str(project))
    assert offline.returncode == 0 and "(20.0 k rows" not in offline.stdout


@pytest.mark.parametrize(
    ("up", "message"),
    [
        ("CREATE TABLE a (id int);\nCREATE TABLE b (id int,);", r"up\.sql:2:24: syntax error"),
        ("CREATE TABLE a (id int);\n\\connect other\n", r"up\.sql:2:1: \\connect is a psql"),
    ],
)
def test_a_file_the_parser_rejects_stops_migrate_up_before_anything_runs(
    db_url, conn, tmp_path, up, message
):
    project = _project(tmp_path)
    write_migration(_mdir(project), "fine", "CREATE TABLE first (id int);", "", version=V1)
    write_migration(_mdir(project), "broken", up, "", version=V2)
    for command in (["migrate:up"], ["update", "--yes"]):
        result = run("db", *command, "--project-dir", str(project), "--database-url", db_url)
        assert result.returncode != 0
        assert re.search(message, result.stderr), result.stderr
        assert f"{V2}_broken" in result.stderr and "nothing was run" in result.stderr
        assert conn.execute("SELECT to_regclass('first')").fetchone()[0] is None
        assert _applied(conn) == set()


def test_concurrently_in_a_transaction_is_refused_before_anything_runs(db_url, conn, tmp_path):
    project = _project(tmp_path)
    write_migration(_mdir(project), "t", "CREATE TABLE t (id int);", "DROP TABLE t;", version=V1)
    write_migration(
        _mdir(project), "idx", "CREATE INDEX CONCURRENTLY t_id ON t (id);", "", version=V2
    )
    result = run("db", "migrate:up", "--project-dir", str(project), "--database-url", db_url)
    assert result.returncode == 1
    assert (
        "error concurrently-in-transaction" in result.stderr and "nothing was run" in result.stderr
    )
    assert conn.execute("SELECT to_regclass('t')").fetchone()[0] is None
    assert _applied(conn) == set()


def test_migrate_up_reports_warnings_and_applies(db_url, conn, tmp_path):
    conn.execute(SETUP)
    project = _project(tmp_path)
    write_migration(
        _mdir(project), "idx", "CREATE INDEX o_total ON orders (total);", "", version=V1
    )
    result = run("db", "migrate:up", "--project-dir", str(project), "--database-url", db_url)
    assert result.returncode == 0, result.stderr
    assert "warning: lint warning create-index-blocking" in result.stdout + result.stderr
    assert _applied(conn) == {V1}
    assert len(local_migrations(_mdir(project))) == 1


def test_a_guarded_migrate_up_reviews_its_plan_once(db_url, conn, tmp_path, monkeypatch):
    """The check before the production gate reviews the plan and reports its findings; the
    run under the same lock does not review the same plan again."""
    from nself_py.commands.gate import Guard
    from nself_py.commands.safety import guarded_migrate
    from nself_py.database import apply

    conn.execute(SETUP)
    project = _project(tmp_path)
    write_migration(
        _mdir(project), "idx", "CREATE INDEX o_total ON orders (total);", "", version=V1
    )
    reviews = []
    review = apply.lint_pending
    monkeypatch.setattr(apply, "lint_pending", lambda *a: reviews.append(1) or review(*a))
    lines: list[str] = []
    with psycopg.connect(db_url, autocommit=True) as auto:
        guarded_migrate(
            auto, db_url, project, "default", _mdir(project), apply.plan_up, Guard(False),
            report=lines.append,
        )  # fmt: skip
    assert len(reviews) == 1
    assert sum("lint warning create-index-blocking" in line for line in lines) == 1
    assert _applied(conn) == {V1}


# --- squawk -------------------------------------------------------------------------------------

SQUAWK = shutil.which("squawk")


def squawk_findings(path: Path, *, assume_transaction: bool = False) -> set[str]:
    """squawk's locking and data-loss findings on `path`, as `rule@line` (1-based lines)."""
    args = [str(SQUAWK), "--reporter", "json", str(path)]
    if assume_transaction:
        args.insert(1, "--assume-in-transaction")
    out = subprocess.run(args, capture_output=True, text=True, timeout=60).stdout
    return {
        f"{f['rule_name']}@{f['line'] + 1}"
        for f in json.loads(out or "[]")
        if f["rule_name"] in lint.SQUAWK_RULES
    }


def ours_cover(ours: set[str], theirs: set[str]) -> set[str]:
    """squawk findings that no finding of ours on the same line stands for."""
    missed = set()
    for item in theirs:
        rule, line = item.rsplit("@", 1)
        if not any(f"{mine}@{line}" in ours for mine in lint.SQUAWK_RULES[rule]):
            missed.add(item)
    return missed


SQUAWK_CASES = {
    # statement → the squawk rules that flag it (their locking and data-loss rules), and ours
    "ALTER TABLE t ADD COLUMN a int NOT NULL;": (
        {"adding-required-field"},
        {"add-column-required"},
    ),
    "ALTER TABLE t ADD COLUMN b int DEFAULT random();": (
        {"adding-field-with-default"},
        {"add-column-rewrite"},
    ),
    "ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (x) REFERENCES u (id);": (
        {"adding-foreign-key-constraint", "constraint-missing-not-valid"},
        {"constraint-not-valid"},
    ),
    "ALTER TABLE t ALTER COLUMN c SET NOT NULL;": ({"adding-not-nullable-field"}, {"set-not-null"}),
    "ALTER TABLE t ADD COLUMN d serial PRIMARY KEY;": (
        {"adding-serial-primary-key-field"},
        {"add-column-rewrite", "add-unique-blocking"},
    ),
    "ALTER TABLE t DROP COLUMN e;": ({"ban-drop-column"}, {"drop-column"}),
    "DROP TABLE z;": ({"ban-drop-table"}, {"drop-table"}),
    "DROP DATABASE q;": ({"ban-drop-database"}, {"drop-database"}),
    "TRUNCATE t CASCADE;": ({"ban-truncate-cascade"}, {"truncate", "truncate-cascade"}),
    "ALTER TABLE t ALTER COLUMN c TYPE bigint;": ({"changing-column-type"}, {"change-column-type"}),
    "ALTER TABLE t ADD CONSTRAINT ck CHECK (c > 0);": (
        {"constraint-missing-not-valid"},
        {"constraint-not-valid"},
    ),
    "ALTER TABLE t ADD CONSTRAINT uq UNIQUE (c);": (
        {"constraint-missing-not-valid", "disallowed-unique-constraint"},
        {"add-unique-blocking"},
    ),
    "ALTER TABLE t RENAME COLUMN c TO f;": ({"renaming-column"}, {"rename"}),
    "ALTER TABLE t RENAME TO t2;": ({"renaming-table"}, {"rename"}),
    "CREATE INDEX i ON t (c);": ({"require-concurrent-index-creation"}, {"create-index-blocking"}),
    "DROP INDEX i;": ({"require-concurrent-index-deletion"}, {"drop-index-blocking"}),
    "ALTER DOMAIN dd ADD CONSTRAINT x CHECK (VALUE > 0);": (
        {"ban-alter-domain-with-add-constraint"},
        {"domain-constraint"},
    ),
}


@pytest.mark.skipif(SQUAWK is None, reason="squawk (squawk-cli, the test extra) is not installed")
def test_squawk_comparison_per_rule(tmp_path: Path) -> None:
    """Each statement alone after SET lock_timeout: which squawk rules flag it, and ours."""
    for number, (statement, (theirs, ours)) in enumerate(SQUAWK_CASES.items()):
        path = tmp_path / f"{number}.sql"
        path.write_text(f"SET lock_timeout = '1s';\nSET statement_timeout = '1s';\n{statement}\n")
        assert {r.split("@")[0] for r in squawk_findings(path)} == theirs, statement
        assert {r.split("@")[0] for r in counted(reviews_of(path))} == ours, statement


SQUAWK_OVERCAUTIOUS = {
    "seed_data": {"require-lock-timeout@4"},
    # CREATE TABLE grants … REFERENCES roles locks roles, which this same migration created:
    # no other session can see it, so there is nothing to wait for.
}
"""squawk findings we deliberately do not repeat, with why."""


@pytest.mark.skipif(SQUAWK is None, reason="squawk (squawk-cli, the test extra) is not installed")
@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.sql")), ids=lambda p: p.stem)
def test_we_catch_whatever_squawk_catches_on_the_corpus(path: Path) -> None:
    no_transaction = path.read_text().startswith("-- hasura:no-transaction")
    theirs = squawk_findings(path, assume_transaction=not no_transaction)
    allowed = {f"{f.rule}@{r.line}" for r in reviews_of(path) for f in r.findings if f.allowed}
    ours = counted(reviews_of(path)) | allowed
    assert ours_cover(ours, theirs) == SQUAWK_OVERCAUTIOUS.get(path.stem, set())


# --- generated --online plans -------------------------------------------------------------------


def test_online_plans_pass_our_linter_and_squawks_locking_rules(db_url, tmp_path) -> None:
    from helpers import make_project, migration_dirs, nself
    from test_online import LIVE, TARGET

    with psycopg.connect(db_url, autocommit=True) as connection:
        connection.execute(LIVE)
    project = make_project(tmp_path, TARGET)
    result = nself(project, db_url, "db", "run", "--online", "--no-backup")
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stdout and "error" not in result.stdout  # the db run hook
    folders = migration_dirs(project)
    assert len(folders) == 4
    for folder in folders:
        up = reviews_of(folder / "up.sql")
        assert lint.findings(up) == [], folder.name
        assert any(r.lock is not None for r in up)
        down = counted(reviews_of(folder / "down.sql"))
        # the reverse of ADD COLUMN bio is the one data loss, and only on rollback
        assert {f.split("@")[0] for f in down} <= {"drop-column"}, (folder.name, down)
        if SQUAWK is not None:
            assert squawk_findings(folder / "up.sql") == set(), folder.name


def test_db_run_prints_the_findings_on_what_it_wrote(db_url, tmp_path) -> None:
    from helpers import make_project, nself

    with psycopg.connect(db_url, autocommit=True) as connection:
        connection.execute(SETUP)
    dbml = """
    Table orders {
      id int [pk]
      total bigint
      note text
      indexes { note }
    }
    Table empty {
      id int
    }
    """
    project = make_project(tmp_path, dbml)
    result = nself(project, db_url, "db", "run", "--no-backup")
    assert result.returncode == 0, result.stderr
    assert "warning change-column-type: ACCESS EXCLUSIVE on public.orders (20.0 k rows" in (
        result.stdout
    )
    assert (
        "warning create-index-blocking" in result.stdout
        and "safer: CREATE INDEX CONCURRENTLY" in (result.stdout)
    )
