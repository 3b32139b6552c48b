"""Views that read a changed column: `db run` keeps them alive around a type change (dropped and
re-created exactly, in the same migration), and refuses changes that would break them."""

from __future__ import annotations

from pathlib import Path

import psycopg
from helpers import make_project, migration_dirs, nself

from nself_py.model import Column, Name
from nself_py.plan.dependents import keep_views
from nself_py.plan.operations import AddColumn

USERS = """
    Enum mood {
      happy
      sad
      meh
    }
    Table users {
      id int [pk]
      name text
      mood mood
    }
"""

VIEWS_QUERY = """
SELECT c.relname, c.relkind, c.relacl::text, c.reloptions, obj_description(c.oid, 'pg_class'),
    pg_get_viewdef(c.oid, true), pg_get_userbyid(c.relowner),
    ARRAY(SELECT a.attname || '=' || col_description(c.oid, a.attnum) FROM pg_attribute a
          WHERE a.attrelid = c.oid AND a.attnum > 0 AND col_description(c.oid, a.attnum) IS NOT NULL
          ORDER BY a.attnum),
    ARRAY(SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = c.oid ORDER BY 1),
    ARRAY(SELECT a.attname || a.attacl::text FROM pg_attribute a
          WHERE a.attrelid = c.oid AND a.attacl IS NOT NULL ORDER BY a.attnum)
FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('v', 'm')
ORDER BY c.relname
"""


def sql(url: str, statements: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(statements)
        return cursor.fetchall() if cursor.description else []


def views(url: str) -> list[tuple]:
    return sql(url, VIEWS_QUERY)


USERS_SQL = """
    CREATE TYPE mood AS ENUM ('happy', 'sad', 'meh');
    CREATE TABLE users (id integer PRIMARY KEY, name text, mood mood);
"""


def applied_project(tmp_path: Path, url: str, dbml: str = USERS, ddl: str = USERS_SQL) -> Path:
    """A project whose schema.dbml the database already matches (created directly, which is
    quicker than a first `db run` and `migrate:up`)."""
    sql(url, ddl)
    return make_project(tmp_path, dbml)


def change(project: Path, old: str, new: str) -> None:
    schema = project / "schema.dbml"
    text = schema.read_text()
    assert old in text
    schema.write_text(text.replace(old, new))


def run_and_apply(project: Path, url: str) -> tuple[str, str]:
    run = nself(project, url, "db", "run", "--no-backup")
    assert run.returncode == 0, run.stderr
    up = nself(project, url, "db", "migrate:up")
    assert up.returncode == 0, up.stderr + up.stdout
    folder = migration_dirs(project)[-1]
    return (folder / "up.sql").read_text(), (folder / "down.sql").read_text()


def test_view_on_retyped_column_is_kept_with_definition_grants_and_comments(
    any_db_url: str, tmp_path: Path
) -> None:
    project = applied_project(tmp_path, any_db_url)
    sql(
        any_db_url,
        """
        INSERT INTO users VALUES (1, 'ann', 'happy'), (2, 'bob', 'sad');
        CREATE VIEW named WITH (security_barrier) AS
            SELECT id, name AS shout FROM users WHERE id > 0
            WITH LOCAL CHECK OPTION;
        COMMENT ON VIEW named IS 'people with names';
        COMMENT ON COLUMN named.shout IS 'loud';
        REVOKE TRUNCATE ON named FROM CURRENT_USER;
        GRANT SELECT ON named TO PUBLIC;
        GRANT UPDATE (shout) ON named TO PUBLIC;
        """,
    )
    before = views(any_db_url)
    assert before[0][2] is not None and "=r/" in before[0][2]  # PUBLIC can read
    assert before[0][-1] and "=w/" in before[0][-1][0]  # and update one column

    change(project, "name text", "name varchar(50)")
    up, down = run_and_apply(project, any_db_url)

    assert up.index("DROP VIEW public.named") < up.index("ALTER COLUMN name TYPE")
    assert up.index("ALTER COLUMN name TYPE") < up.index("CREATE VIEW public.named")
    assert "HAZARD: MAY_FAIL: view named is re-created" in up
    assert views(any_db_url) == before
    assert sql(any_db_url, "SELECT id, shout, pg_typeof(shout)::text FROM named") == [
        (1, "ann", "character varying"),
        (2, "bob", "character varying"),
    ]

    assert down.index("DROP VIEW public.named") < down.index("TYPE text")
    rolled = nself(project, any_db_url, "db", "migrate:down")
    assert rolled.returncode == 0, rolled.stderr
    assert views(any_db_url) == before
    assert sql(any_db_url, "SELECT pg_typeof(shout)::text FROM named LIMIT 1") == [("text",)]


def test_view_on_a_view_is_dropped_first_and_created_last(db_url: str, tmp_path: Path) -> None:
    project = applied_project(tmp_path, db_url)
    sql(
        db_url,
        """
        INSERT INTO users VALUES (1, 'ann', 'happy');
        CREATE VIEW base AS SELECT id AS user_id, name FROM users;
        CREATE VIEW top AS SELECT name || '!' AS greeting FROM base WHERE user_id = 1;
        CREATE VIEW untouched AS SELECT count(*) AS n FROM users;
        """,
    )
    before = views(db_url)
    change(project, "id int [pk]", "id bigint [pk]")
    up, _ = run_and_apply(project, db_url)

    assert up.index("DROP VIEW public.top") < up.index("DROP VIEW public.base")
    assert up.index("CREATE VIEW public.base") < up.index("CREATE VIEW public.top")
    assert "untouched" not in up  # it reads the table, not the retyped column
    assert migration_dirs(project)[-1].name.endswith("_alter_users_id")  # named after the change
    assert views(db_url) == before
    assert sql(db_url, "SELECT greeting FROM top") == [("ann!",)]
    assert sql(db_url, "SELECT pg_typeof(user_id)::text FROM base") == [("bigint",)]


def test_enum_rebuild_keeps_views_on_its_columns_and_values(
    any_db_url: str, tmp_path: Path
) -> None:
    project = applied_project(tmp_path, any_db_url)
    sql(
        any_db_url,
        """
        INSERT INTO users VALUES (1, 'ann', 'happy'), (2, 'bob', 'sad');
        CREATE VIEW cheerful AS SELECT id, mood FROM users WHERE mood = 'happy';
        CREATE VIEW moods AS SELECT 'sad'::mood AS example;
        """,
    )
    before = views(any_db_url)
    change(project, "  meh\n", "")  # a removed value: the enum is rebuilt
    up, down = run_and_apply(project, any_db_url)

    assert "CREATE TYPE public.mood__new" in up
    assert up.index("DROP VIEW public.cheerful") < up.index("DROP TYPE public.mood")
    assert up.index("DROP VIEW public.moods") < up.index("DROP TYPE public.mood")
    assert views(any_db_url) == before
    assert sql(any_db_url, "SELECT id, mood::text FROM cheerful") == [(1, "happy")]
    assert "DROP VIEW public.cheerful" in down
    rolled = nself(project, any_db_url, "db", "migrate:down")
    assert rolled.returncode == 0, rolled.stderr
    assert views(any_db_url) == before


def test_enum_value_added_in_place_still_rolls_back_with_a_view(
    db_url: str, tmp_path: Path
) -> None:
    project = applied_project(tmp_path, db_url)
    sql(db_url, "CREATE VIEW moody AS SELECT id, mood FROM users")
    before = views(db_url)
    change(project, "  meh\n", "  meh\n  glad\n")
    up, down = run_and_apply(project, db_url)
    assert "ADD VALUE 'glad'" in up
    assert down.index("DROP VIEW public.moody") < down.index("DROP TYPE public.mood")
    rolled = nself(project, db_url, "db", "migrate:down")
    assert rolled.returncode == 0, rolled.stderr
    assert views(db_url) == before


def test_materialized_view_is_rebuilt_with_its_data_and_indexes(
    db_url: str, tmp_path: Path
) -> None:
    project = applied_project(tmp_path, db_url)
    sql(
        db_url,
        """
        INSERT INTO users VALUES (1, 'ann', 'happy'), (2, 'bob', 'sad');
        CREATE MATERIALIZED VIEW names WITH (fillfactor = 70) AS SELECT id, name FROM users;
        CREATE UNIQUE INDEX names_id ON names (id);
        COMMENT ON INDEX names_id IS 'one row per user';
        CREATE MATERIALIZED VIEW later AS SELECT name FROM users WITH NO DATA;
        """,
    )
    before = views(db_url)
    change(project, "name text", "name varchar(20)")
    up, _ = run_and_apply(project, db_url)

    assert "HAZARD: REWRITES_TABLE: materialized view names is re-created WITH DATA" in up
    assert "CREATE MATERIALIZED VIEW public.later AS" in up and "WITH NO DATA;" in up
    assert views(db_url) == before
    assert sql(db_url, "SELECT id, name FROM names ORDER BY id") == [(1, "ann"), (2, "bob")]
    assert sql(db_url, "SELECT obj_description('names_id'::regclass, 'pg_class')") == [
        ("one row per user",)
    ]
    assert sql(db_url, "SELECT relispopulated FROM pg_class WHERE relname = 'later'") == [(False,)]


def test_dropping_a_column_a_view_uses_is_refused(any_db_url: str, tmp_path: Path) -> None:
    project = applied_project(tmp_path, any_db_url)
    sql(any_db_url, "CREATE VIEW named AS SELECT id, name FROM users")
    change(project, "  name text\n", "")
    result = nself(project, any_db_url, "db", "run", "--no-backup")
    assert result.returncode == 1, result.stdout
    assert "view public.named uses column name of table public.users" in result.stderr
    assert "which this migration drops" in result.stderr
    assert "hand-written migration first" in result.stderr
    assert "Traceback" not in result.stderr
    assert migration_dirs(project) == []
    assert [v[0] for v in views(any_db_url)] == ["named"]


def test_dropping_a_table_a_view_reads_is_refused(db_url: str, tmp_path: Path) -> None:
    extra = "\nTable extra {\n id int\n}\n"
    project = applied_project(
        tmp_path, db_url, USERS + extra, USERS_SQL + "CREATE TABLE extra (id integer);"
    )
    sql(db_url, "CREATE VIEW counted AS SELECT count(*) AS n FROM extra")
    change(project, "\nTable extra {\n id int\n}\n", "")
    result = nself(project, db_url, "db", "run", "--no-backup")
    assert result.returncode == 1, result.stdout
    assert "view public.counted uses table public.extra, which this migration drops" in (
        result.stderr
    )
    assert migration_dirs(project) == []


def test_view_with_an_instead_of_trigger_is_refused_not_recreated(
    db_url: str, tmp_path: Path
) -> None:
    project = applied_project(tmp_path, db_url)
    sql(
        db_url,
        """
        CREATE VIEW named AS SELECT id, name FROM users;
        CREATE FUNCTION ignore_write() RETURNS trigger LANGUAGE plpgsql
            AS $$ BEGIN RETURN NULL; END $$;
        CREATE TRIGGER on_write INSTEAD OF INSERT ON named
            FOR EACH ROW EXECUTE FUNCTION ignore_write();
        """,
    )
    change(project, "name text", "name varchar(50)")
    result = nself(project, db_url, "db", "run", "--no-backup")
    assert result.returncode == 1, result.stdout
    assert "view public.named must be dropped and re-created" in result.stderr
    assert "trigger on_write on view public.named" in result.stderr
    assert migration_dirs(project) == []


def test_view_on_unchanged_columns_leaves_the_plan_untouched(db_url: str, tmp_path: Path) -> None:
    project = applied_project(tmp_path, db_url)
    sql(db_url, "CREATE VIEW ids AS SELECT id, mood FROM users; CREATE VIEW n AS SELECT 1 AS x")
    change(project, "name text", "name varchar(50)")
    up, down = run_and_apply(project, db_url)
    assert "VIEW" not in up and "VIEW" not in down
    assert "1 column altered" in up.splitlines()[0]


def test_quoted_names_and_online_plans_keep_views(db_url: str, tmp_path: Path) -> None:
    dbml = """
        Table app.orders {
          id int [pk]
          "order" text
          indexes {
            "order" [name: 'orders_order_idx']
          }
        }
    """
    ddl = """
        CREATE SCHEMA app;
        CREATE TABLE app.orders (id integer PRIMARY KEY, "order" text);
        CREATE INDEX orders_order_idx ON app.orders ("order");
        INSERT INTO app.orders VALUES (1, '42');
        CREATE VIEW app."Big View" AS SELECT "order" AS "Select" FROM app.orders;
        COMMENT ON COLUMN app."Big View"."Select" IS 'it''s quoted';
    """
    project = applied_project(tmp_path, db_url, dbml, ddl)
    query = "SELECT pg_get_viewdef('app.\"Big View\"'::regclass, true)"
    before = sql(db_url, query)
    change(project, '"order" text', '"order" integer')
    run = nself(project, db_url, "db", "run", "--no-backup", "--online")
    assert run.returncode == 0, run.stderr
    up = nself(project, db_url, "db", "migrate:up")
    assert up.returncode == 0, up.stderr + up.stdout
    texts = "\n".join((d / "up.sql").read_text() for d in migration_dirs(project))
    assert 'DROP VIEW app."Big View";' in texts
    assert sql(db_url, query) == before
    read = 'SELECT "Select", col_description(\'app."Big View"\'::regclass, 1) FROM app."Big View"'
    assert sql(db_url, read) == [(42, "it's quoted")]
    down = nself(project, db_url, "db", "migrate:down", str(len(migration_dirs(project))))
    assert down.returncode == 0, down.stderr + down.stdout
    assert sql(db_url, query) == before


def test_enum_column_made_text_and_enum_dropped_keeps_view(db_url: str, tmp_path: Path) -> None:
    project = applied_project(tmp_path, db_url)
    sql(
        db_url,
        "INSERT INTO users VALUES (1, 'ann', 'sad'); CREATE VIEW moods AS SELECT mood FROM users",
    )
    schema = project / "schema.dbml"
    schema.write_text("Table users {\n  id int [pk]\n  name text\n  mood text\n}\n")
    up, _ = run_and_apply(project, db_url)
    assert up.index("DROP VIEW public.moods") < up.index("TYPE text")
    assert up.index("DROP TYPE public.mood") < up.index("CREATE VIEW public.moods")
    assert sql(db_url, "SELECT mood, pg_typeof(mood)::text FROM moods") == [("sad", "text")]


def test_view_owned_by_another_role_keeps_owner_and_grant_options(
    db_url: str, tmp_path: Path
) -> None:
    role = f"nself_view_owner_{tmp_path.name[-12:].lower().replace('-', '_')}"
    project = applied_project(tmp_path, db_url)
    sql(db_url, f"CREATE ROLE {role}")
    try:
        sql(
            db_url,
            f"""
            CREATE VIEW named AS SELECT id, name FROM users;
            GRANT SELECT ON users TO {role};
            ALTER VIEW named OWNER TO {role};
            ALTER VIEW named ALTER COLUMN id SET DEFAULT 7;
            GRANT SELECT ON named TO CURRENT_USER WITH GRANT OPTION;
            GRANT UPDATE ON named TO PUBLIC;
            """,
        )
        before = views(db_url)
        default = (
            "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'named'::regclass"
        )
        change(project, "name text", "name varchar(50)")
        up, _ = run_and_apply(project, db_url)
        assert f"ALTER VIEW public.named OWNER TO {role};" in up
        assert views(db_url) == before
        assert sql(db_url, default) == [("7",)]
    finally:
        sql(db_url, f"DROP OWNED BY {role}; DROP ROLE {role}")


def test_rules_and_functions_on_a_view_row_type_are_refused(db_url: str, tmp_path: Path) -> None:
    project = applied_project(tmp_path, db_url)
    sql(
        db_url,
        """
        CREATE TABLE public.audit (name text);
        CREATE RULE keep_names AS ON UPDATE TO users DO ALSO INSERT INTO audit VALUES (new.name);
        CREATE VIEW named AS SELECT id, name FROM users;
        CREATE FUNCTION shout(n named) RETURNS text LANGUAGE sql AS 'SELECT upper(n.name)';
        """,
    )
    (project / "schema.dbml").write_text(
        (project / "schema.dbml").read_text().replace("name text", "name varchar(50)")
        + "Table audit {\n  name text\n}\n"
    )
    result = nself(project, db_url, "db", "run", "--no-backup")
    assert result.returncode == 1, result.stdout
    assert "rule keep_names on table public.users uses column name of table public.users" in (
        result.stderr
    )
    blocked = "view public.named must be dropped and re-created around the change, but cannot be"
    assert f"{blocked}: function public.shout(public.named)" in result.stderr
    assert migration_dirs(project) == []


def test_a_plan_that_retypes_and_drops_nothing_asks_the_catalog_nothing(db_url: str) -> None:
    conn = psycopg.connect(db_url)
    conn.close()  # any query would fail
    plan = (AddColumn(Name("public", "users"), Column("age", "integer")),)
    assert keep_views(conn, plan) == plan


def test_renaming_and_retyping_a_column_a_view_reads_is_refused(
    db_url: str, tmp_path: Path
) -> None:
    project = applied_project(tmp_path, db_url)
    sql(
        db_url,
        "CREATE VIEW named AS SELECT name FROM users; CREATE VIEW ids AS SELECT id FROM users",
    )
    change(project, "name text", "full_name varchar(50)")
    result = nself(project, db_url, "db", "run", "--no-backup", "--rename", "users.name=full_name")
    assert result.returncode == 1, result.stdout
    assert "view public.named reads a table or column this migration renames" in result.stderr
    assert "public.ids" not in result.stderr  # it reads neither
    assert migration_dirs(project) == []


def test_a_rule_reading_a_dropped_table_is_refused(db_url: str, tmp_path: Path) -> None:
    project = applied_project(tmp_path, db_url)
    sql(
        db_url,
        """
        CREATE TABLE public.audit (name text);
        CREATE RULE keep_names AS ON UPDATE TO users DO ALSO INSERT INTO audit VALUES (new.name);
        """,
    )
    result = nself(project, db_url, "db", "run", "--no-backup")  # audit is not in schema.dbml
    assert result.returncode == 1, result.stdout
    assert "rule keep_names on table public.users uses " in result.stderr
    assert "of table public.audit, which this migration drops" in result.stderr
    assert "Traceback" not in result.stderr


def test_triggers_and_policies_naming_a_changed_column_are_refused(
    any_db_url: str, tmp_path: Path
) -> None:
    project = applied_project(tmp_path, any_db_url)
    sql(
        any_db_url,
        "CREATE FUNCTION keep() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;"
        "CREATE TRIGGER named_only BEFORE UPDATE ON users FOR EACH ROW"
        "  WHEN (NEW.name IS NOT NULL) EXECUTE FUNCTION keep();"
        "ALTER TABLE users ENABLE ROW LEVEL SECURITY;"
        "CREATE POLICY happy_only ON users USING (mood = 'happy');",
    )
    change(project, "  name text\n", "  name varchar(50)\n")
    change(project, "  mood mood\n", "")
    result = nself(project, any_db_url, "db", "run", "--no-backup")
    assert result.returncode == 1, result.stdout
    assert (
        "trigger named_only on table public.users uses column name of table public.users, "
        "whose type this migration changes" in result.stderr
    )
    assert (
        "policy happy_only on table public.users uses column mood of table public.users, "
        "which this migration drops" in result.stderr
    )
    assert migration_dirs(project) == []


def test_a_trigger_that_names_no_column_does_not_stop_a_type_change(
    db_url: str, tmp_path: Path
) -> None:
    project = applied_project(tmp_path, db_url)
    sql(
        db_url,
        "CREATE FUNCTION keep() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;"
        "CREATE TRIGGER every_row BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION keep();",
    )
    change(project, "  name text\n", "  name varchar(50)\n")
    up, _ = run_and_apply(project, db_url)
    assert "TYPE character varying(50)" in up
    assert sql(db_url, "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal") == [("every_row",)]
