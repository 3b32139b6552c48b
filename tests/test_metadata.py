"""The metadata stage: tracked tables and relationships written as Hasura writes them, user edits
kept byte for byte, drops and renames cleaned up everywhere, idempotent, and `check`."""

from __future__ import annotations

from pathlib import Path

import pytest

from nself_py.errors import ConfigError
from nself_py.metadata import (
    BROKEN_RELATIONSHIP,
    MISSING_TABLE,
    UNTRACKED_REMOTE,
    UNTRACKED_TABLE,
    apply,
    check,
    composite_form,
    plan_metadata,
)
from nself_py.metadata.inflect import camelize, pluralize, singularize
from nself_py.model import Column, ForeignKey, Name, PrimaryKey, Schema, Table, Unique

P = "public"
INVOICES = Name("billing", "invoices")


def col(*names: str) -> tuple[Column, ...]:
    return tuple(Column(n, "integer") for n in names)


def users() -> Table:
    return Table(Name(P, "users"), col("id", "email"), PrimaryKey(("id",)))


def blog() -> Schema:
    """One-to-many, one-to-one, many-to-many, self-reference, two FKs to one table, a second
    schema and a composite key."""
    fk = ForeignKey
    return Schema(
        ("billing", P),
        tables=(
            users(),
            Table(
                Name(P, "profiles"), col("id", "user_id"), PrimaryKey(("id",)),
                uniques=(Unique(("user_id",)),),
                foreign_keys=(fk(("user_id",), Name(P, "users"), ("id",)),),
            ),
            Table(
                Name(P, "posts"), col("id", "author_id"), PrimaryKey(("id",)),
                foreign_keys=(fk(("author_id",), Name(P, "users"), ("id",)),),
            ),
            Table(Name(P, "tags"), col("id"), PrimaryKey(("id",))),
            Table(
                Name(P, "post_tags"), col("post_id", "tag_id"), PrimaryKey(("post_id", "tag_id")),
                foreign_keys=(
                    fk(("post_id",), Name(P, "posts"), ("id",)),
                    fk(("tag_id",), Name(P, "tags"), ("id",)),
                ),
            ),
            Table(
                Name(P, "employees"), col("id", "manager_id"), PrimaryKey(("id",)),
                foreign_keys=(fk(("manager_id",), Name(P, "employees"), ("id",)),),
            ),
            Table(
                Name(P, "messages"), col("id", "sender_id", "recipient_id"), PrimaryKey(("id",)),
                foreign_keys=(
                    fk(("sender_id",), Name(P, "users"), ("id",)),
                    fk(("recipient_id",), Name(P, "users"), ("id",)),
                ),
            ),
            Table(
                Name("billing", "invoices"), col("id", "tenant_id", "user_id"),
                PrimaryKey(("id", "tenant_id")),
                foreign_keys=(fk(("user_id",), Name(P, "users"), ("id",)),),
            ),
            Table(
                Name("billing", "invoice_lines"), col("id", "invoice_id", "tenant_id"),
                PrimaryKey(("id",)),
                foreign_keys=(
                    fk(("invoice_id", "tenant_id"), INVOICES, ("id", "tenant_id")),
                ),
            ),
        ),
    )  # fmt: skip


MANAGED = ("public", "billing")


def project(tmp_path: Path, version: int = 3) -> Path:
    hasura = tmp_path / "hasura"
    hasura.mkdir()
    (hasura / "config.yaml").write_text(f"version: {version}\nmetadata_directory: metadata\n")
    return hasura


def run(hasura: Path, target: Schema, **kw: object) -> object:
    plan = plan_metadata(target, hasura, MANAGED, **kw)  # type: ignore[arg-type]
    apply(plan)
    return plan


def tables_dir(hasura: Path) -> Path:
    return hasura / "metadata" / "databases" / "default" / "tables"


def read(hasura: Path, name: str) -> str:
    return (tables_dir(hasura) / name).read_text()


def test_inflection_matches_the_console() -> None:
    assert [singularize(w) for w in ("users", "profiles", "user_data", "media")] == [
        "user", "profile", "user_datum", "medium",
    ]  # fmt: skip
    assert [pluralize(w) for w in ("post_tags", "status", "people", "employees")] == [
        "post_tags", "statuses", "people", "employees",
    ]  # fmt: skip
    assert camelize("user_by_recipient_id_1") == "userByRecipientId1"


def test_composite_form_by_version() -> None:
    assert composite_form("v2.36.0") == "foreign_key"
    assert composite_form("2.44.0-ce") == "foreign_key"
    assert composite_form("v2.0.0-alpha.11") == "foreign_key"
    assert composite_form("v2.0.0-beta.1") == "foreign_key"
    assert composite_form("v2.0.0-alpha.10") == "single_column"
    assert composite_form("v1.4.0-alpha.2") == "single_column"
    assert composite_form("v1.4.0-alpha.1") == "manual"
    assert composite_form("v1.3.3") == "manual"
    # unknown: the form every version takes
    assert composite_form(None) == "manual"
    assert composite_form("latest") == "manual"


CURRENT = "v2.44.0"


def test_first_run_writes_the_export_format(tmp_path: Path) -> None:
    hasura = project(tmp_path)
    plan = plan_metadata(blog(), hasura, MANAGED, hasura_version=CURRENT)
    assert not any(p.exists() for p in plan.writes)  # planning writes nothing
    apply(plan)
    assert read(hasura, "tables.yaml") == (
        '- "!include billing_invoice_lines.yaml"\n'
        '- "!include billing_invoices.yaml"\n'
        '- "!include public_employees.yaml"\n'
        '- "!include public_messages.yaml"\n'
        '- "!include public_post_tags.yaml"\n'
        '- "!include public_posts.yaml"\n'
        '- "!include public_profiles.yaml"\n'
        '- "!include public_tags.yaml"\n'
        '- "!include public_users.yaml"\n'
    )
    assert read(hasura, "public_users.yaml") == (
        "table:\n"
        "  name: users\n"
        "  schema: public\n"
        "object_relationships:\n"
        "  - name: profile\n"
        "    using:\n"
        "      foreign_key_constraint_on:\n"
        "        column: user_id\n"
        "        table:\n"
        "          name: profiles\n"
        "          schema: public\n"
        "array_relationships:\n"
        "  - name: invoices\n"
        "    using:\n"
        "      foreign_key_constraint_on:\n"
        "        column: user_id\n"
        "        table:\n"
        "          name: invoices\n"
        "          schema: billing\n"
        "  - name: messages\n"
        "    using:\n"
        "      foreign_key_constraint_on:\n"
        "        column: sender_id\n"
        "        table:\n"
        "          name: messages\n"
        "          schema: public\n"
        "  - name: messagesByRecipientId\n"
        "    using:\n"
        "      foreign_key_constraint_on:\n"
        "        column: recipient_id\n"
        "        table:\n"
        "          name: messages\n"
        "          schema: public\n"
        "  - name: posts\n"
        "    using:\n"
        "      foreign_key_constraint_on:\n"
        "        column: author_id\n"
        "        table:\n"
        "          name: posts\n"
        "          schema: public\n"
    )
    assert read(hasura, "public_messages.yaml") == (
        "table:\n  name: messages\n  schema: public\nobject_relationships:\n"
        "  - name: user\n    using:\n      foreign_key_constraint_on: sender_id\n"
        "  - name: userByRecipientId\n    using:\n      foreign_key_constraint_on: recipient_id\n"
    )
    assert read(hasura, "public_employees.yaml") == (
        "table:\n  name: employees\n  schema: public\n"
        "object_relationships:\n"
        "  - name: employee\n    using:\n      foreign_key_constraint_on: manager_id\n"
        "array_relationships:\n"
        "  - name: employees\n    using:\n      foreign_key_constraint_on:\n"
        "        column: manager_id\n        table:\n          name: employees\n"
        "          schema: public\n"
    )
    assert read(hasura, "public_post_tags.yaml") == (
        "table:\n  name: post_tags\n  schema: public\nobject_relationships:\n"
        "  - name: post\n    using:\n      foreign_key_constraint_on: post_id\n"
        "  - name: tag\n    using:\n      foreign_key_constraint_on: tag_id\n"
    )
    assert "  - name: post_tags\n" in read(hasura, "public_tags.yaml")
    assert "  - name: post_tags\n" in read(hasura, "public_posts.yaml")
    assert read(hasura, "public_profiles.yaml").endswith(
        "  - name: user\n    using:\n      foreign_key_constraint_on: user_id\n"
    )
    assert read(hasura, "billing_invoice_lines.yaml") == (
        "table:\n  name: invoice_lines\n  schema: billing\nobject_relationships:\n"
        "  - name: invoice\n    using:\n      foreign_key_constraint_on:\n"
        "        - invoice_id\n        - tenant_id\n"
    )
    assert read(hasura, "billing_invoices.yaml").endswith(
        "array_relationships:\n"
        "  - name: invoice_lines\n    using:\n      foreign_key_constraint_on:\n"
        "        columns:\n          - invoice_id\n          - tenant_id\n"
        "        table:\n          name: invoice_lines\n          schema: billing\n"
    )
    assert (hasura / "metadata" / "version.yaml").read_text() == "version: 3\n"
    assert (hasura / "metadata" / "databases" / "databases.yaml").read_text() == (
        "- name: default\n"
        "  kind: postgres\n"
        "  configuration:\n"
        "    connection_info:\n"
        "      database_url:\n"
        "        from_env: HASURA_GRAPHQL_DATABASE_URL\n"
        "      isolation_level: read-committed\n"
        "      pool_settings:\n"
        "        connection_lifetime: 600\n"
        "        idle_timeout: 180\n"
        "        max_connections: 50\n"
        "        retries: 1\n"
        "      use_prepared_statements: true\n"
        '  tables: "!include default/tables/tables.yaml"\n'
    )
    assert plan.summary.startswith(  # type: ignore[attr-defined]
        "tracks billing.invoice_lines, billing.invoices, public.employees"
    )
    assert "users.messagesByRecipientId" in plan.summary  # type: ignore[attr-defined]


def test_second_run_plans_nothing(tmp_path: Path) -> None:
    hasura = project(tmp_path)
    run(hasura, blog())
    again = plan_metadata(blog(), hasura, MANAGED)
    assert again.empty, again.summary


COMPOSITE_MANUAL = (
    "  - name: invoice\n    using:\n      manual_configuration:\n        column_mapping:\n"
    "          invoice_id: id\n          tenant_id: tenant_id\n        insertion_order: null\n"
    "        remote_table:\n          name: invoices\n          schema: billing\n"
)
PROFILE_MANUAL = (
    "  - name: profile\n    using:\n      manual_configuration:\n        column_mapping:\n"
    "          id: user_id\n        insertion_order: null\n        remote_table:\n"
    "          name: profiles\n          schema: public\n"
)
PROFILE_FK = (
    "  - name: profile\n    using:\n      foreign_key_constraint_on:\n        column: user_id\n"
    "        table:\n          name: profiles\n          schema: public\n"
)


@pytest.mark.parametrize(
    ("version", "composite_manual", "profile"),
    [
        (None, True, PROFILE_MANUAL),  # unknown: what every version takes
        ("v1.3.3", True, PROFILE_MANUAL),
        ("v2.0.0-alpha.10", True, PROFILE_FK),
        ("v2.0.0-alpha.11", False, PROFILE_FK),
        (CURRENT, False, PROFILE_FK),
    ],
)
def test_relationship_forms_follow_the_hasura_version(
    tmp_path: Path, version: str | None, composite_manual: bool, profile: str
) -> None:
    hasura = project(tmp_path)
    run(hasura, blog(), hasura_version=version)
    lines = read(hasura, "billing_invoice_lines.yaml")
    assert lines.endswith(COMPOSITE_MANUAL) == composite_manual
    if not composite_manual:
        assert "foreign_key_constraint_on:\n        - invoice_id\n        - tenant_id\n" in lines
    assert profile in read(hasura, "public_users.yaml")
    assert plan_metadata(blog(), hasura, MANAGED, hasura_version=version).empty
    # another version later: relationships match by shape, none is rewritten
    assert plan_metadata(blog(), hasura, MANAGED, hasura_version="v1.3.3").empty
    assert plan_metadata(blog(), hasura, MANAGED, hasura_version=CURRENT).empty


USERS_EDITED = """\
table:
  name: users
  schema: public
# the console's custom root fields
configuration:
  custom_root_fields:
    select: people
array_relationships:
  - name: writings   # renamed by hand
    using:
      foreign_key_constraint_on:
        column: author_id
        table: {name: posts, schema: public}
select_permissions:
  - role: user
    permission:
      columns: [id, email]
      filter: {id: {_eq: X-Hasura-User-Id}}
      limit: ~
"""


def test_user_edits_survive_add_drop_and_rename(tmp_path: Path) -> None:
    hasura = project(tmp_path)
    small = Schema(
        ("public",),
        tables=(
            users(),
            Table(
                Name(P, "posts"), col("id", "author_id"), PrimaryKey(("id",)),
                foreign_keys=(ForeignKey(("author_id",), Name(P, "users"), ("id",)),),
            ),
        ),
    )  # fmt: skip
    run(hasura, small)
    (tables_dir(hasura) / "public_users.yaml").write_text(USERS_EDITED)
    assert plan_metadata(small, hasura, MANAGED).empty  # the hand-renamed relationship matches

    # add a table pointing at users: only the new relationship is added, in name order
    bigger = Schema(
        small.schemas,
        tables=(
            *small.tables,
            Table(
                Name(P, "bookmarks"), col("id", "user_id"), PrimaryKey(("id",)),
                foreign_keys=(ForeignKey(("user_id",), Name(P, "users"), ("id",)),),
            ),
        ),
    )  # fmt: skip
    plan = run(hasura, bigger)
    assert plan.summary == (  # type: ignore[attr-defined]
        "tracks public.bookmarks; adds relationships bookmarks.user, users.bookmarks"
    )
    with_bookmarks = USERS_EDITED.replace(
        "  - name: writings",
        "  - name: bookmarks\n    using:\n      foreign_key_constraint_on:\n"
        "        column: user_id\n        table:\n          name: bookmarks\n"
        "          schema: public\n  - name: writings",
    )
    assert read(hasura, "public_users.yaml") == with_bookmarks
    assert read(hasura, "tables.yaml") == (
        '- "!include public_bookmarks.yaml"\n'
        '- "!include public_posts.yaml"\n'
        '- "!include public_users.yaml"\n'
    )

    # rename posts → articles and author_id → writer_id; users.id → uid
    renamed = Schema(
        small.schemas,
        tables=(
            Table(Name(P, "users"), col("uid", "email"), PrimaryKey(("uid",))),
            Table(
                Name(P, "articles"), col("id", "writer_id"), PrimaryKey(("id",)),
                foreign_keys=(ForeignKey(("writer_id",), Name(P, "users"), ("uid",)),),
            ),
            Table(
                Name(P, "bookmarks"), col("id", "user_id"), PrimaryKey(("id",)),
                foreign_keys=(ForeignKey(("user_id",), Name(P, "users"), ("uid",)),),
            ),
        ),
    )  # fmt: skip
    plan = run(
        hasura, renamed, previous=bigger,
        table_renames={Name(P, "posts"): Name(P, "articles")},
        column_renames={(Name(P, "articles"), "author_id"): "writer_id",
                        (Name(P, "users"), "id"): "uid"},
    )  # fmt: skip
    assert not (tables_dir(hasura) / "public_posts.yaml").exists()
    assert read(hasura, "public_articles.yaml") == (
        "table:\n  name: articles\n  schema: public\nobject_relationships:\n"
        "  - name: user\n    using:\n      foreign_key_constraint_on: writer_id\n"
    )
    assert read(hasura, "public_users.yaml") == with_bookmarks.replace(
        "column: author_id\n        table: {name: posts,",
        "column: writer_id\n        table: {name: articles,",
    ).replace("columns: [id, email]", "columns: [uid, email]").replace(
        "filter: {id: {", "filter: {uid: {"
    )
    assert read(hasura, "tables.yaml") == (
        '- "!include public_articles.yaml"\n'
        '- "!include public_bookmarks.yaml"\n'
        '- "!include public_users.yaml"\n'
    )
    assert plan_metadata(renamed, hasura, MANAGED).empty

    # drop bookmarks: its file, its include and users.bookmarks go; the rest stays
    (tables_dir(hasura) / "public_bookmarks.yaml").write_text(
        read(hasura, "public_bookmarks.yaml")
        + "select_permissions:\n  - role: user\n    permission:\n      columns: '*'\n"
        "      filter: {}\n"
    )
    dropped = Schema(renamed.schemas, tables=renamed.tables[:2])
    plan = run(hasura, dropped, previous=renamed)
    assert plan.summary == (  # type: ignore[attr-defined]
        "untracks public.bookmarks (its select_permissions[user] went with it); "
        "removes relationships users.bookmarks (public.bookmarks is dropped)"
    )
    assert not (tables_dir(hasura) / "public_bookmarks.yaml").exists()
    assert read(hasura, "public_users.yaml") == USERS_EDITED.replace(
        "column: author_id\n        table: {name: posts,",
        "column: writer_id\n        table: {name: articles,",
    ).replace("columns: [id, email]", "columns: [uid, email]").replace(
        "filter: {id: {", "filter: {uid: {"
    )
    assert read(hasura, "tables.yaml") == (
        '- "!include public_articles.yaml"\n- "!include public_users.yaml"\n'
    )
    assert plan_metadata(dropped, hasura, MANAGED, previous=dropped).empty


def test_other_schemas_views_and_comments_are_kept(tmp_path: Path) -> None:
    hasura = project(tmp_path)
    tdir = tables_dir(hasura)
    tdir.mkdir(parents=True)
    listing = (
        "# tracked by hand\n"
        '- "!include auth_users.yaml"\n'
        '- "!include public_active_users.yaml"  # a view\n'
    )
    (tdir / "tables.yaml").write_text(listing)
    auth = "table:\n  schema: auth\n  name: users\n# nhost's\nselect_permissions: []\n"
    view = "table:\n  name: active_users\n  schema: public\n"
    (tdir / "auth_users.yaml").write_text(auth)
    (tdir / "public_active_users.yaml").write_text(view)
    target = Schema(
        ("public",),
        tables=(
            Table(
                Name(P, "profiles"), col("id", "user_id"), PrimaryKey(("id",)),
                foreign_keys=(ForeignKey(("user_id",), Name("auth", "users"), ("id",)),),
            ),
        ),
    )  # fmt: skip
    run(hasura, target, previous=Schema(("public",)))
    assert read(hasura, "tables.yaml") == (
        "# tracked by hand\n"
        '- "!include auth_users.yaml"\n'
        '- "!include public_active_users.yaml"  # a view\n'
        '- "!include public_profiles.yaml"\n'
    )
    assert read(hasura, "auth_users.yaml") == auth  # no reverse side in a schema we don't manage
    assert read(hasura, "public_active_users.yaml") == view
    assert read(hasura, "public_profiles.yaml").endswith(
        "  - name: user\n    using:\n      foreign_key_constraint_on: user_id\n"
    )


def test_opted_out_table_is_left_untracked(tmp_path: Path) -> None:
    hasura = project(tmp_path)
    target = Schema(
        ("public",),
        tables=(
            users(),
            Table(
                Name(P, "audit"), col("id", "user_id"), PrimaryKey(("id",)),
                foreign_keys=(ForeignKey(("user_id",), Name(P, "users"), ("id",)),),
                comment="internal log. hasura: untracked",
            ),
        ),
    )  # fmt: skip
    run(hasura, target)
    assert read(hasura, "tables.yaml") == '- "!include public_users.yaml"\n'
    assert read(hasura, "public_users.yaml") == "table:\n  name: users\n  schema: public\n"
    assert check(hasura, target, ["public"]) == []


def test_file_name_collision_is_refused(tmp_path: Path) -> None:
    hasura = project(tmp_path)
    target = Schema(
        ("a", "a_b"),
        tables=(Table(Name("a_b", "c"), col("id")), Table(Name("a", "b_c"), col("id"))),
    )
    with pytest.raises(ConfigError, match=r"a_b_c\.yaml"):
        plan_metadata(target, hasura, ["a", "a_b"])


def test_config_v2_keeps_one_inline_tables_yaml(tmp_path: Path) -> None:
    hasura = project(tmp_path, version=2)
    md = hasura / "metadata"
    md.mkdir()
    (md / "tables.yaml").write_text(
        "- table:\n    schema: public\n    name: users\n"
        "  select_permissions:\n  - role: user  # keep me\n    permission:\n"
        "      columns: '*'\n      filter: {}\n"
    )
    target = Schema(
        ("public",),
        tables=(
            users(),
            Table(
                Name(P, "posts"), col("id", "author_id"), PrimaryKey(("id",)),
                foreign_keys=(ForeignKey(("author_id",), Name(P, "users"), ("id",)),),
            ),
        ),
    )  # fmt: skip
    run(hasura, target)
    assert (md / "tables.yaml").read_text() == (
        "- table:\n    name: posts\n    schema: public\n"
        "  object_relationships:\n    - name: user\n      using:\n"
        "        foreign_key_constraint_on: author_id\n"
        "- table:\n    schema: public\n    name: users\n"
        "  array_relationships:\n    - name: posts\n      using:\n"
        "        foreign_key_constraint_on:\n          column: author_id\n"
        "          table:\n            name: posts\n            schema: public\n"
        "  select_permissions:\n  - role: user  # keep me\n    permission:\n"
        "      columns: '*'\n      filter: {}\n"
    )
    assert (md / "version.yaml").read_text() == "version: 2\n"
    assert not (md / "databases").exists()
    assert plan_metadata(target, hasura, ["public"]).empty
    dropped = Schema(("public",), tables=(users(),))
    run(hasura, dropped, previous=target)
    assert (md / "tables.yaml").read_text() == (
        "- table:\n    schema: public\n    name: users\n"
        "  select_permissions:\n  - role: user  # keep me\n    permission:\n"
        "      columns: '*'\n      filter: {}\n"
    )


def test_apply_refuses_a_file_changed_since_planning(tmp_path: Path) -> None:
    hasura = project(tmp_path)
    run(hasura, Schema(("public",), tables=(users(),)))
    plan = plan_metadata(blog(), hasura, MANAGED)
    (tables_dir(hasura) / "tables.yaml").write_text("[]\n")
    with pytest.raises(ConfigError, match="changed since"):
        apply(plan)


def test_check_finds_each_inconsistency(tmp_path: Path) -> None:
    hasura = project(tmp_path)
    run(hasura, blog())
    live_tables = [t for t in blog().tables if t.name.name not in ("tags", "messages")]
    # messages is gone; posts lost its FK; a new managed table is not tracked
    live_tables = [
        Table(t.name, t.columns, t.primary_key) if t.name.name == "posts" else t
        for t in live_tables
    ] + [Table(Name(P, "drafts"), col("id"))]
    live = Schema(MANAGED, tables=tuple(live_tables))
    found = {(i.kind, str(i.table), i.relationship) for i in check(hasura, live, MANAGED)}
    assert found == {
        (MISSING_TABLE, "messages", None),
        (MISSING_TABLE, "tags", None),
        (BROKEN_RELATIONSHIP, "posts", "user"),
        (BROKEN_RELATIONSHIP, "users", "posts"),
        (BROKEN_RELATIONSHIP, "users", "messages"),
        (BROKEN_RELATIONSHIP, "users", "messagesByRecipientId"),
        (BROKEN_RELATIONSHIP, "post_tags", "tag"),
        (UNTRACKED_TABLE, "drafts", None),
    }
    assert check(hasura, blog(), MANAGED) == []
    # a relationship to a table that exists but is not tracked
    (tables_dir(hasura) / "tables.yaml").write_text(
        read(hasura, "tables.yaml").replace('- "!include public_tags.yaml"\n', "")
    )
    found = {(i.kind, str(i.table), i.relationship) for i in check(hasura, blog(), MANAGED)}
    assert found == {(UNTRACKED_REMOTE, "post_tags", "tag"), (UNTRACKED_TABLE, "tags", None)}
