"""Issue 11: no mistaken command, empty file or cast loses data without a named hazard and a
refusal. Each test reproduces one reported case through the real CLI on real PostgreSQL and
checks the data (row counts and values) before and after, and the refusal text."""

from __future__ import annotations

from pathlib import Path

import psycopg
from helpers import make_project, mdir, migration_dirs, nself
from test_cli_migrate import opts, run

from nself_py.migrations.folders import write_migration

BASE = 1700000000000


def _users_project(project: Path) -> list[int]:
    """Three applied migrations over 5 users: the table, a bio column filled in, an index."""
    migrations = [
        (
            "initial_schema",
            "CREATE TABLE users (id int PRIMARY KEY, title text NOT NULL);\n"
            "INSERT INTO users SELECT i, repeat('x', i * 50) FROM generate_series(1, 5) i;",
            "DROP TABLE users;",
        ),
        (
            "add_bio",
            "ALTER TABLE users ADD COLUMN bio text;\nUPDATE users SET bio = 'bio ' || id;",
            "ALTER TABLE users DROP COLUMN bio;",
        ),
        (
            "add_index",
            "CREATE INDEX users_title_idx ON users (title);",
            "DROP INDEX users_title_idx;",
        ),
    ]
    versions = []
    for i, (name, up, down) in enumerate(migrations):
        write_migration(mdir(project), name, up, down, version=BASE + i)
        versions.append(BASE + i)
    return versions


def _users(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("SELECT * FROM users ORDER BY id").fetchall()


def _backups(project: Path) -> list[Path]:
    root = project / "bin" / "dbsyncs"
    return sorted(root.iterdir()) if root.is_dir() else []


def test_down_to_an_unknown_version_is_refused(db_url: str, conn, tmp_path: Path):
    """Case 1: `migrate:down --to-version 42` rolled back everything; now it is an error."""
    _users_project(tmp_path)
    run("db", "migrate:up", *opts(tmp_path, db_url))
    before = _users(conn)
    refused = run("db", "migrate:down", "--to-version", "42", *opts(tmp_path, db_url), check_code=2)
    assert "--to-version 42: no such migration" in refused.stderr
    assert _users(conn) == before and len(before) == 5
    assert "bio" in {
        r[0]
        for r in conn.execute("SELECT attname FROM pg_attribute WHERE attrelid = 'users'::regclass")
    }


def test_down_more_than_applied_is_refused(db_url: str, conn, tmp_path: Path):
    """Case 2: `migrate:down 100` with 3 applied rolled back all; now it says how many."""
    _users_project(tmp_path)
    run("db", "migrate:up", *opts(tmp_path, db_url))
    before = _users(conn)
    refused = run("db", "migrate:down", "100", *opts(tmp_path, db_url), check_code=2)
    assert "cannot roll back 100 migration(s): only 3 applied" in refused.stderr
    assert _users(conn) == before
    assert conn.execute("SELECT count(*) FROM hdb_catalog.schema_migrations").fetchone()[0] == 3


def test_rolling_back_a_column_with_data_is_refused_then_backed_up(
    db_url: str, conn, tmp_path: Path
):
    """Case 9: `migrate:down 2` dropped a column with its data, quietly and without a backup."""
    _users_project(tmp_path)
    run("db", "migrate:up", *opts(tmp_path, db_url))
    before = _users(conn)
    refused = run("db", "migrate:down", "2", *opts(tmp_path, db_url), check_code=1)
    assert "would destroy data" in refused.stderr
    assert "drops column public.users.bio holding 5 non-null values" in refused.stderr
    assert "--allow-data-loss" in refused.stderr
    assert _users(conn) == before and not _backups(tmp_path)
    dry = run("db", "migrate:down", "2", "--dry-run", *opts(tmp_path, db_url))
    assert "needs --allow-data-loss" in dry.stderr + dry.stdout
    assert _users(conn) == before

    done = run("db", "migrate:down", "2", "--allow-data-loss", *opts(tmp_path, db_url))
    assert "backed up the database to" in done.stdout
    assert len(_backups(tmp_path)) == 1
    assert _users(conn) == [row[:2] for row in before]


def test_goto_measures_its_rollbacks(db_url: str, conn, tmp_path: Path):
    """goto rolls back through down.sql: measured and refused like migrate:down."""
    versions = _users_project(tmp_path)
    run("db", "migrate:up", *opts(tmp_path, db_url))
    before = _users(conn)
    refused = run("db", "migrate:goto", str(versions[0]), *opts(tmp_path, db_url), check_code=1)
    assert "drops column public.users.bio holding 5 non-null values" in refused.stderr
    assert _users(conn) == before
    unknown = run("db", "migrate:goto", "42", *opts(tmp_path, db_url), check_code=1)
    assert "no migration with version 42" in unknown.stderr
    assert _users(conn) == before


def test_migrate_up_refuses_a_truncating_cast(db_url: str, conn, tmp_path: Path):
    """Case 3: an explicit cast to varchar(200) silently cut a 250-character value."""
    _users_project(tmp_path)
    run("db", "migrate:up", *opts(tmp_path, db_url))
    before = _users(conn)
    write_migration(
        mdir(tmp_path),
        "narrow_title",
        "ALTER TABLE users ALTER COLUMN title TYPE varchar(200) "
        "USING title::character varying(200);",
        "ALTER TABLE users ALTER COLUMN title TYPE text;",
        version=BASE + 10,
    )
    for extra in ([], ["--env", "production", "--confirm"]):
        refused = run("db", "migrate:up", *extra, *opts(tmp_path, db_url), check_code=1)
        assert "changes column public.users.title to" in refused.stderr
        assert "1 value would not survive" in refused.stderr
        assert _users(conn) == before


NARROW_BEFORE = """
Table posts {
  id int [pk]
  title text
  price numeric(10,2)
  at timestamptz
}
"""
NARROW_AFTER = (
    NARROW_BEFORE.replace("title text", "title varchar(200)")
    .replace("numeric(10,2)", "numeric(10,1)")
    .replace("at timestamptz", "at date")
)


def _posts(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("SELECT id, title, price::text, at::text FROM posts ORDER BY id").fetchall()


def test_generated_narrowing_casts_fail_instead_of_cutting(db_url: str, conn, tmp_path: Path):
    """Case 3, generated: text -> varchar(200), numeric scale down and timestamptz -> date
    render without a cast that cuts or rounds, and the live check counts the victims."""
    project = make_project(tmp_path, NARROW_BEFORE)
    assert nself(project, db_url, "db", "run", "--no-backup").returncode == 0
    run("db", "migrate:up", *opts(project, db_url))
    conn.execute(
        "INSERT INTO posts VALUES (1, repeat('a', 250), 1.25, '2024-01-01 10:30+00'), "
        "(2, 'short', 2.50, '2024-01-02 00:00+00'), (3, NULL, NULL, NULL)"
    )
    conn.execute("SET TIME ZONE 'UTC'")
    before = _posts(conn)
    (project / "schema.dbml").write_text(NARROW_AFTER)
    written = nself(project, db_url, "db", "run", "--no-backup")
    assert written.returncode == 0, written.stderr
    up = (migration_dirs(project)[-1] / "up.sql").read_text()
    title_line = next(
        line for line in up.splitlines() if '"title" TYPE' in line or "title TYPE" in line
    )
    assert "USING" not in title_line, up
    assert "CASE WHEN" in up and "IS DISTINCT FROM" in up, up

    refused = run("db", "migrate:up", *opts(project, db_url), check_code=1)
    lines = refused.stderr.splitlines()
    for column in ("title", "price", "at"):
        assert any(f"public.posts.{column} to" in line for line in lines), refused.stderr
    assert refused.stderr.count("1 value would not survive") == 3, refused.stderr
    assert _posts(conn) == before
    forced = run("db", "migrate:up", "--allow-data-loss", *opts(project, db_url), check_code=1)
    assert "value too long" in forced.stderr or "would change" in forced.stderr
    assert _posts(conn) == before


BLOG = """
Enum post_status {
  draft
  published
  archived
}
Table users {
  id int [pk]
  name text [not null]
}
Table posts {
  id int [pk]
  author_id int [not null, ref: > users.id]
  status post_status [not null, default: 'draft']
}
"""


def _blog(db_url: str, conn: psycopg.Connection, tmp_path: Path) -> Path:
    """The blog applied through db run + migrate:up, with 5 users and 21 posts (7 archived)."""
    project = make_project(tmp_path, BLOG)
    assert nself(project, db_url, "db", "run", "--no-backup").returncode == 0
    run("db", "migrate:up", *opts(project, db_url))
    conn.execute("INSERT INTO users SELECT i, 'user ' || i FROM generate_series(1, 5) i")
    conn.execute(
        "INSERT INTO posts SELECT i, 1 + i % 5, (ARRAY['draft', 'published', 'archived'])"
        "[1 + i % 3]::post_status FROM generate_series(1, 21) i"
    )
    return project


def _blog_data(conn: psycopg.Connection) -> tuple[list[tuple], list[tuple]]:
    users = conn.execute("SELECT * FROM users ORDER BY id").fetchall()
    posts = conn.execute("SELECT id, author_id, status::text FROM posts ORDER BY id").fetchall()
    return users, posts


def test_an_empty_schema_file_is_refused(db_url: str, conn, tmp_path: Path):
    """Case 4: an empty schema.dbml wrote a migration dropping every table, exit 0."""
    project = _blog(db_url, conn, tmp_path)
    before = _blog_data(conn)
    folders = migration_dirs(project)
    (project / "schema.dbml").write_text("")
    refused = nself(project, db_url, "db", "run", "--no-backup")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "would drop 2 of the 2 managed table(s)" in refused.stderr
    assert "holding 26 row(s)" in refused.stderr and "--allow-data-loss" in refused.stderr
    assert migration_dirs(project) == folders
    assert _blog_data(conn) == before
    meant = nself(project, db_url, "db", "run", "--no-backup", "--allow-data-loss")
    assert meant.returncode == 0, meant.stderr
    assert len(migration_dirs(project)) == len(folders) + 1
    down = (migration_dirs(project)[-1] / "down.sql").read_text()
    assert "NOT_RESTORED: re-creates table public.posts empty" in down
    assert "triggers, views and policies" in down
    refused_up = run("db", "migrate:up", *opts(project, db_url), check_code=1)
    assert "drops table public.posts holding 21 rows" in refused_up.stderr
    assert _blog_data(conn) == before


def test_a_removed_enum_value_in_use_is_refused_with_its_count(db_url: str, conn, tmp_path):
    """Case 5: removing an enum value 7 rows hold: no count, and a failure mid-apply."""
    project = _blog(db_url, conn, tmp_path)
    before = _blog_data(conn)
    folders = migration_dirs(project)
    (project / "schema.dbml").write_text(BLOG.replace("  archived\n", ""))
    refused = nself(project, db_url, "db", "run", "--no-backup")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "7 rows of posts.status hold 'archived'" in refused.stderr
    assert "UPDATE t SET c = 'kept' WHERE c = 'removed'" in refused.stderr
    assert "migrate:create" in refused.stderr
    assert migration_dirs(project) == folders and _blog_data(conn) == before


def test_not_null_without_default_over_rows_is_refused_before_writing(db_url: str, conn, tmp_path):
    """Case 6: NOT NULL without a default on 5 rows was written anyway, then could not apply."""
    project = _blog(db_url, conn, tmp_path)
    before = _blog_data(conn)
    folders = migration_dirs(project)
    (project / "schema.dbml").write_text(
        BLOG.replace("name text [not null]", "name text [not null]\n  born int [not null]")
    )
    refused = nself(project, db_url, "db", "run", "--no-backup")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "the table has 5 rows" in refused.stderr
    assert "give born a default" in refused.stderr and "--force" in refused.stderr
    assert migration_dirs(project) == folders and _blog_data(conn) == before
    forced = nself(project, db_url, "db", "run", "--no-backup", "--force")
    assert forced.returncode == 0, forced.stderr
    stuck = nself(project, db_url, "db", "run", "--no-backup")
    assert stuck.returncode == 1 and "migrate:delete --version" in stuck.stderr
    assert _blog_data(conn) == before


def _columns(conn: psycopg.Connection, table: str) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
            "AND NOT attisdropped ORDER BY attnum",
            (table,),
        )
    ]


def test_run_after_a_teammates_pending_migration_does_not_repeat_it(db_url, conn, tmp_path):
    """Case 7: `db run --force` after a merge repeated the teammate's pending ADD COLUMN bio."""
    project = _blog(db_url, conn, tmp_path)
    teammate = BLOG.replace("name text [not null]", "name text [not null]\n  bio text")
    (project / "schema.dbml").write_text(teammate)
    assert nself(project, db_url, "db", "run", "--no-backup").returncode == 0  # pending
    merged = teammate.replace("bio text", "bio text\n  phone text")
    (project / "schema.dbml").write_text(merged)
    refused = nself(project, db_url, "db", "run", "--no-backup")
    assert refused.returncode == 1 and "migrate:delete --version" in refused.stderr
    forced = nself(project, db_url, "db", "run", "--no-backup", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "1 pending migration(s) applied" in forced.stdout
    up = (migration_dirs(project)[-1] / "up.sql").read_text()
    assert "phone" in up and "bio" not in up, up
    before = _blog_data(conn)
    applied = run("db", "update", *opts(project, db_url))
    assert "applied 2 migrations" in applied.stdout
    assert _columns(conn, "users") == ["id", "name", "bio", "phone"]
    assert [row[:2] for row in conn.execute("SELECT id, name FROM users ORDER BY id")] == before[0]


def test_update_refuses_a_merge_conflict_and_says_how_to_regenerate(db_url, conn, tmp_path):
    """Case 7: `db update` said "likely a merge conflict", went ahead, and failed."""
    project = _blog(db_url, conn, tmp_path)
    (project / "schema.dbml").write_text(
        BLOG.replace("name text [not null]", "name text [not null]\n  bio text")
    )
    assert nself(project, db_url, "db", "run", "--no-backup").returncode == 0
    mine = migration_dirs(project)[-1]
    header = "\n".join((mine / "up.sql").read_text().splitlines()[:3])
    theirs = write_migration(
        mdir(project),
        "add_users_bio_too",
        header + "\nALTER TABLE public.users ADD COLUMN bio text;\n",
        "ALTER TABLE public.users DROP COLUMN bio;",
    )
    before = _blog_data(conn)
    refused = run("db", "update", *opts(project, db_url), check_code=1)
    assert "likely merge conflict" in refused.stderr
    later = max(int(mine.name.split("_")[0]), int(theirs.name.split("_")[0]))
    assert f"migrate:delete --version {later}" in refused.stderr
    assert _columns(conn, "users") == ["id", "name"] and _blog_data(conn) == before


def test_update_exits_0_when_only_schema_dbml_is_ahead(db_url, conn, tmp_path):
    """Case 10: `db update` exited 1 after a successful commit because schema.dbml held an
    edit not generated yet."""
    project = _blog(db_url, conn, tmp_path)
    (project / "schema.dbml").write_text(
        BLOG.replace("name text [not null]", "name text [not null]\n  bio text")
    )
    assert nself(project, db_url, "db", "run", "--no-backup").returncode == 0
    (project / "schema.dbml").write_text(
        BLOG.replace("name text [not null]", "name text [not null]\n  bio text\n  phone text")
    )
    done = run("db", "update", *opts(project, db_url))
    assert "applied 1 migration\n" in done.stdout
    assert "run `nself-py db run`" in done.stderr
    assert _columns(conn, "users") == ["id", "name", "bio"]


def test_an_index_from_a_hand_written_migration_is_not_dropped_silently(db_url, conn, tmp_path):
    """Case 8: nself's own `migrate:create add_user_indexes` example was undone by the next
    `db run` (DROP INDEX, no hazard, no hint)."""
    project = _blog(db_url, conn, tmp_path)
    run(
        "db",
        "migrate:create",
        "add_user_indexes",
        "--project-dir",
        str(project),
        "--up-sql",
        "CREATE INDEX users_name_idx ON users (name);",
        "--down-sql",
        "DROP INDEX users_name_idx;",
    )
    run("db", "migrate:up", *opts(project, db_url))
    folders = migration_dirs(project)
    with_bio = BLOG.replace("name text [not null]", "name text [not null]\n  bio text")
    (project / "schema.dbml").write_text(with_bio)
    refused = nself(project, db_url, "db", "run", "--no-backup")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "index users_name_idx on users is not in schema.dbml" in refused.stderr
    assert "name [name: 'users_name_idx']" in refused.stderr
    assert migration_dirs(project) == folders
    declared = with_bio.replace(
        "  bio text\n}", "  bio text\n  indexes {\n    name [name: 'users_name_idx']\n  }\n}"
    )
    (project / "schema.dbml").write_text(declared)
    written = nself(project, db_url, "db", "run", "--no-backup")
    assert written.returncode == 0, written.stderr
    up = (migration_dirs(project)[-1] / "up.sql").read_text()
    assert "bio" in up and "DROP INDEX" not in up, up
    assert conn.execute("SELECT to_regclass('users_name_idx')").fetchone()[0] is not None


def test_a_rollback_says_what_it_cannot_bring_back(db_url, conn, tmp_path):
    """Case 9, generated: the down.sql re-adding a dropped column said nothing about its
    values; the drop itself ran without a backup."""
    project = _blog(db_url, conn, tmp_path)
    with_bio = BLOG.replace("name text [not null]", "name text [not null]\n  bio text")
    (project / "schema.dbml").write_text(with_bio)
    assert nself(project, db_url, "db", "run", "--no-backup").returncode == 0
    run("db", "migrate:up", *opts(project, db_url))
    conn.execute("UPDATE users SET bio = 'bio ' || id")
    (project / "schema.dbml").write_text(BLOG)
    assert nself(project, db_url, "db", "run", "--no-backup").returncode == 0
    refused = run("db", "migrate:up", *opts(project, db_url), check_code=1)
    assert "drops column public.users.bio holding 5 non-null values" in refused.stderr
    assert _columns(conn, "users") == ["id", "name", "bio"]
    dropped = run("db", "migrate:up", "--allow-data-loss", *opts(project, db_url))
    assert "backed up the database to" in dropped.stdout and _backups(project)
    back = run("db", "migrate:down", *opts(project, db_url))
    said = back.stdout + back.stderr
    assert "re-adds column users.bio: the values up.sql dropped do not come back" in said
    assert _columns(conn, "users") == ["id", "name", "bio"]
    assert conn.execute("SELECT count(bio) FROM users").fetchone()[0] == 0
