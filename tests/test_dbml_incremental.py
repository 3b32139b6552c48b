"""The incremental DBML reads give exactly what a whole-file read gives: by blocks, tables kept
built (`read.dbml.fragments`), and with records or block comments, blocks kept lexed
(`read.dbml.blocks`).

Over the DBML corpus, a cache warmed on each file is used to read edits of it (a block edited,
moved, deleted, added): model (table, foreign key and enum order included), record offsets and
errors must equal a full read of the same text.
"""

from __future__ import annotations

import marshal
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import make_project, nself

from nself_py.errors import DbmlError, DbmlProblem
from nself_py.read import model_codec
from nself_py.read.dbml import blocks, fragments, parse_dbml

CORPUS = Path(__file__).parent / "corpus" / "dbml"
FILES = sorted(CORPUS.rglob("*.dbml"))
ADDED = "Table incr_added {\n  id bigint [pk]\n  label text [default: `lower('x')`]\n}\n"


def outcome(text: str, cache: Path | None = None) -> object:
    """The model with its records' offsets (not part of model equality), or the problems."""
    try:
        schema = parse_dbml(text, cache=cache)
    except DbmlError as error:
        return error.problems
    return schema, [r.offsets for r in schema.records]


def edits(text: str) -> dict[str, str]:
    """The file with one block edited (a table, an enum), moved, deleted, or one added."""
    cut = blocks.split_blocks(text)
    variants = {"added": text + ("" if text.endswith("\n") else "\n") + ADDED}
    for kind, line in (("table ", "  incr_extra int\n"), ("enum ", "  incr_value\n")):
        first = next((i for i, b in enumerate(cut) if b.lower().startswith(kind)), None)
        if first is not None:
            head, newline, rest = cut[first].partition("\n")
            edited = [*cut[:first], head + newline + line + rest, *cut[first + 1 :]]
            variants[f"{kind.strip()} edited"] = "".join(edited)
    if len(cut) > 2:
        variants["moved"] = "".join([cut[0], *cut[2:-1], cut[1], cut[-1]])
        variants["deleted"] = "".join(cut[:1] + cut[2:])
    return variants


def by_blocks(text: str, cache: Path) -> bool:
    """Whether the cache lets `text` be read by blocks, kept tables not parsed (else whole)."""
    return fragments.applies(text) and (
        fragments.read(blocks.load(cache), text, postgres=True) is not None
    )


def kept(cache: Path) -> set[str]:
    """The keys of the blocks the cache keeps, lexed or built."""
    known = blocks.load(cache)
    return set(known.blocks) | set(known.built)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(CORPUS)))
def test_incremental_read_equals_full_read(path: Path, tmp_path: Path) -> None:
    text = path.read_bytes().decode("utf-8")
    cache = tmp_path / "lexed.marshal"
    assert outcome(text, cache) == outcome(text)  # cold: every block lexed alone
    for name, variant in edits(text).items():
        full = outcome(variant)
        assert outcome(variant, cache) == full, name
        if not isinstance(full, list):  # a clean read: the cache now holds it
            assert outcome(variant, cache) == full, name


def test_fragment_read_serves_most_of_the_corpus(tmp_path: Path) -> None:
    """The comparison above covers the read by blocks: with the cache of a clean read, most
    files' edits take it (those with records, block comments or a token a cut splits are
    read otherwise, as is a file with a problem)."""
    served = {}
    for path in FILES:
        text = path.read_text()
        cache = tmp_path / f"{len(served)}.marshal"
        if isinstance(outcome(text, cache), list):
            continue
        served[str(path.relative_to(CORPUS))] = by_blocks(edits(text)["added"], cache)
    assert len(served) > len(FILES) // 2
    assert sum(served.values()) >= len(served) * 9 // 10, served


def test_corpus_has_cuttable_files() -> None:
    """The comparison above means something: most files have several blocks to move."""
    several = [p for p in FILES if len(blocks.split_blocks(p.read_text())) > 2]
    assert len(several) > len(FILES) // 2


V1 = """Table users {
  id bigint [pk]
  name text
}

Table posts {
  id bigint [pk]
  author bigint [ref: > users.id]
}
"""


def test_error_in_a_changed_block_is_reported_at_its_new_place(tmp_path: Path) -> None:
    cache = tmp_path / "lexed.marshal"
    parse_dbml(V1, cache=cache)
    moved = V1.replace("Table posts {\n", "Table tags {\n  id int\n}\n\nTable posts {\n", 1)
    broken = moved.replace("author bigint [ref: > users.id]", "author bigint [ref: > users.nope]")
    with pytest.raises(DbmlError) as raised:
        parse_dbml(broken, "schema.dbml", cache=cache)
    at = broken.index("nope")
    line, col = broken[:at].count("\n") + 1, at - broken.rindex("\n", 0, at)
    assert [(p.line, p.col, p.message) for p in raised.value.problems] == [
        (line, col, "reference to unknown column 'nope' of table users")
    ]
    assert raised.value.problems == outcome(broken)


def test_injection_in_a_changed_block_is_refused(tmp_path: Path) -> None:
    """Type names and expressions of a new block are checked by PostgreSQL's parser even when
    every other block comes from the cache."""
    cache = tmp_path / "lexed.marshal"
    parse_dbml(V1, cache=cache)
    injected = V1.replace("name text", "name text [default: `1); DROP TABLE users; --`]")
    with pytest.raises(DbmlError) as raised:
        parse_dbml(injected, cache=cache)
    first: DbmlProblem = raised.value.problems[0]
    assert (first.line, first.message.split(":")[0]) == (3, "default")
    bad_type = V1.replace("name text", "name text); DROP TABLE users; --")
    with pytest.raises(DbmlError):
        parse_dbml(bad_type, cache=cache)


def test_cache_keeps_only_the_blocks_of_the_last_clean_read(tmp_path: Path) -> None:
    cache = tmp_path / "lexed.marshal"
    parse_dbml(V1, cache=cache)
    v1_keys = {blocks.block_key(b) for b in blocks.split_blocks(V1)}
    assert set(blocks.load(cache).built) == v1_keys  # plain tables: kept built, not lexed
    assert blocks.load(cache).blocks == {}
    with pytest.raises(DbmlError):
        parse_dbml(V1 + "Table bad {\n  id nosuchtype(\n}\n", cache=cache)
    assert kept(cache) == v1_keys
    parse_dbml(V1, cache=cache, save=False)
    parse_dbml(V1 + ADDED, cache=cache, save=False)  # not written: the old cache stays
    assert kept(cache) == v1_keys


@pytest.mark.parametrize(
    "content",
    [
        b"not a cache at all",
        b"0" * 64 + b"\n" + marshal.dumps(({}, [], [], {})),  # another code's key
        None,  # this code's key, a payload of another shape
        None,  # this code's key, damaged marshal data
    ],
    ids=["garbage", "foreign key", "wrong shape", "damaged"],
)
def test_a_corrupt_or_foreign_cache_is_ignored(
    tmp_path: Path, content: bytes | None, request: pytest.FixtureRequest
) -> None:
    cache = tmp_path / "lexed.marshal"
    parse_dbml(V1, cache=cache)
    key = cache.read_bytes().split(b"\n", 1)[0] + b"\n"
    if content is None:
        shape = request.node.callspec.id == "wrong shape"
        content = key + (marshal.dumps({"a": 1}) if shape else b"\xff\x00garbage")
    cache.write_bytes(content)
    assert kept(cache) == set()
    schema = parse_dbml(V1, cache=cache)
    assert [t.name.name for t in schema.tables] == ["users", "posts"]
    assert kept(cache)  # rewritten after the clean read


@pytest.mark.parametrize(
    "damaged",
    [("not", "a table"), ((99, ["no such class"]), None, ()), ((8, ["too few fields"]), None, ())],
    ids=["shape", "class", "fields"],
)
def test_a_kept_table_that_does_not_decode_is_parsed_again(tmp_path: Path, damaged: tuple) -> None:
    cache = tmp_path / "lexed.marshal"
    parse_dbml(V1, cache=cache)
    known = blocks.load(cache)
    known.built = {key: (context, damaged) for key, (context, _) in known.built.items()}
    blocks.store(cache, known)
    edited = V1 + ADDED
    assert outcome(edited, cache) == outcome(edited)
    assert by_blocks(edited, cache)  # the clean read stored decodable tables again


def test_block_comments_are_read_whole(tmp_path: Path) -> None:
    """A cut inside `/* ... */` would lex `/*` as two operators: such files are read whole."""
    text = "/*\nTable hidden {\n  id int\n}\n*/\n" + V1
    cache = tmp_path / "lexed.marshal"
    assert outcome(text, cache) == outcome(text)
    assert [t.name.name for t in parse_dbml(text, cache=cache).tables] == ["users", "posts"]


def test_a_multi_line_string_across_a_cut_is_read_whole(tmp_path: Path) -> None:
    """A line of a `'''` note that starts like a block is no block start: the cut there leaves
    an unterminated string in its block, so the file is read whole."""
    text = "Table a {\n  id int\n  Note: '''\nTable inside the note\n'''\n}\n" + V1
    cache = tmp_path / "lexed.marshal"
    assert outcome(text, cache) == outcome(text)
    schema = parse_dbml(text, cache=cache)
    assert schema.tables[0].comment == "Table inside the note\n"


@pytest.mark.db
def test_db_run_reads_an_edit_incrementally(db_url: str, tmp_path: Path) -> None:
    """`db run` keeps the lexed blocks (a dry run leaves them as they were), and an error in
    a block moved by the edit is reported at its new line and column."""
    project = make_project(tmp_path, V1)
    lexed = project / blocks.CACHE
    assert nself(project, db_url, "db", "run", "--no-backup").returncode == 0
    assert nself(project, db_url, "db", "migrate:up").returncode == 0
    first = kept(lexed)
    assert first == {blocks.block_key(b) for b in blocks.split_blocks(V1)}
    edited = V1.replace("Table posts {\n", ADDED + "\nTable posts {\n", 1)
    (project / "schema.dbml").write_text(edited)
    dry = nself(project, db_url, "db", "run", "--dry-run")
    assert dry.returncode == 0 and "CREATE TABLE public.incr_added" in dry.stdout, dry.stderr
    assert kept(lexed) == first
    broken = edited.replace("users.id]", "users.nope]")
    (project / "schema.dbml").write_text(broken)
    failed = nself(project, db_url, "db", "run", "--no-backup")
    line = broken[: broken.index("nope")].count("\n") + 1
    col = broken.index("nope") - broken.rindex("\n", 0, broken.index("nope"))
    assert failed.returncode == 1
    assert f"schema.dbml:{line}:{col}: reference to unknown column 'nope'" in failed.stderr
    assert "Traceback" not in failed.stderr


ENUMS = """Enum status {
  active
  gone
}

Table users {
  id bigint [pk]
  state status [default: 'active']
  kind mood
}

Table posts as P {
  id bigint [pk]
  author bigint [ref: > users.id]
}

Table tags {
  id int [pk]
  post bigint [ref: <> P.id]
}

TableGroup content {
  posts
  tags
}

Table app.jobs {
  state status [default: status.gone]
  owner bigint [ref: > users.id]
}
"""
"""A schema whose tables depend on other blocks: an enum type and default, an inline ref, an
alias, a `<>` join table and a TableGroup."""


def block(text: str, head: str) -> str:
    """The block of `text` that starts with `head`."""
    return next(b for b in blocks.split_blocks(text) if b.startswith(head))


USERS = block(ENUMS, "Table users")
CROSS_BLOCK_EDITS = {
    "enum value removed: the kept table's default is no value": ENUMS.replace("  active\n", ""),
    "enum renamed: the kept column's type is no enum": ENUMS.replace("Enum status", "Enum mood"),
    "enum added that a kept column's type names": "Enum mood {\n  a\n}\n\n" + ENUMS,
    "enum added in a kept table's schema": ENUMS + "Enum app.status {\n  gone\n}\n",
    "enum value a kept default names removed": ENUMS.replace("  gone\n", ""),
    "referenced table renamed": ENUMS.replace("Table users {", "Table people {"),
    "referenced table removed": ENUMS.replace(USERS, ""),
    "referenced column retyped": ENUMS.replace(USERS, USERS.replace("bigint", "int")),
    "join table end retyped": ENUMS.replace("P {\n  id bigint", "P {\n  id uuid"),
    "join table's other end retyped": ENUMS.replace("post bigint [ref: <>", "post uuid [ref: <>"),
    "alias used by a new table's ref": ENUMS + "Table likes {\n  post bigint [ref: > P.id]\n}\n",
    "alias taken by a new table": ENUMS + "Table other as P {\n  id int\n}\n",
    "alias removed": ENUMS.replace("Table posts as P {", "Table posts {"),
    "table name repeated in a new block": ENUMS + "Table users {\n  id int\n}\n",
    "table name taken by a new block first": "Table users {\n  id int\n}\n\n" + ENUMS,
    "grouped table renamed": ENUMS.replace("Table tags {", "Table labels {"),
    "table added to the group": ENUMS.replace("  tags\n}", "  tags\n  users\n}"),
    "table grouped twice": ENUMS + "TableGroup again {\n  users\n  tags\n}\n",
    "tables reordered": ENUMS.replace(USERS, "") + USERS,
    "join table's ends reordered": ENUMS.replace(block(ENUMS, "Table tags"), "").replace(
        "Table posts", block(ENUMS, "Table tags") + "Table posts"
    ),
}


PARTIALS = """TablePartial stamps [note: 'stamped'] {
  created_at timestamptz [default: `now()`]
  state status [default: 'a']
  indexes {
    created_at
  }
}

Enum status {
  a
  b
}

Table users {
  id bigint [pk]
  ~stamps
}

Table posts {
  id bigint [pk]
  ~stamps
  state text
  author bigint [ref: > users.id]
}
"""
"""Tables that inject a TablePartial: kept built too, they depend on its text."""

STAMPS = block(PARTIALS, "TablePartial stamps")
PARTIAL_EDITS = {
    "partial column added": PARTIALS.replace("  indexes {", "  updated_at date\n  indexes {"),
    "partial note changed": PARTIALS.replace("'stamped'", "'stamped again'"),
    "partial index changed": PARTIALS.replace("    created_at\n  }", "    (state, id)\n  }"),
    "partial removed": PARTIALS.replace(STAMPS, ""),
    "partial moved after its tables": PARTIALS.replace(STAMPS, "") + STAMPS,
    "enum of a partial's column edited": PARTIALS.replace("  a\n  b\n", "  b\n"),
    "injected table edited": PARTIALS.replace("  ~stamps\n}", "  ~stamps\n  name text\n}"),
    "second partial of the same name": PARTIALS + "TablePartial stamps {\n  x int\n}\n",
}  # fmt: skip
EDITS = [(ENUMS, name, text) for name, text in CROSS_BLOCK_EDITS.items()] + [
    (PARTIALS, name, text) for name, text in PARTIAL_EDITS.items()
]


@pytest.mark.parametrize(("base", "edit", "variant"), EDITS, ids=[e[1] for e in EDITS])
def test_kept_tables_follow_the_blocks_they_depend_on(
    base: str, edit: str, variant: str, tmp_path: Path
) -> None:
    """Tables kept built from the first read are joined to the edited blocks as a full read
    joins them: same model (tables, foreign keys, join tables, enums, in order), same errors."""
    cache = tmp_path / "lexed.marshal"
    assert outcome(base, cache) == outcome(base)
    full = outcome(variant)
    if not isinstance(full, list):
        assert by_blocks(variant, cache)  # the kept tables are used, not read again
    assert outcome(variant, cache) == full


def test_an_enum_edit_changes_the_kept_tables_that_use_it(tmp_path: Path) -> None:
    """A kept table's column types and defaults were resolved through the enums: an edited enum
    makes it invalid or different, though its own block did not change."""
    cache = tmp_path / "lexed.marshal"
    schema = parse_dbml(ENUMS, cache=cache)
    names = ["users", "posts", "tags", "jobs", "posts_tags"]
    assert [t.name.name for t in schema.tables] == names
    assert by_blocks(ENUMS + ADDED, cache)
    removed = CROSS_BLOCK_EDITS["enum value removed: the kept table's default is no value"]
    with pytest.raises(DbmlError) as raised:
        parse_dbml(removed, cache=cache)
    assert [p.message for p in raised.value.problems] == [
        "default 'active' is not a value of enum status (gone)"
    ]
    renamed = CROSS_BLOCK_EDITS["enum renamed: the kept column's type is no enum"]
    with pytest.raises(DbmlError) as raised:
        parse_dbml(renamed, cache=cache)
    assert [p.message for p in raised.value.problems] == [
        "'status.gone' is not a value of the column's enum"
    ]
    added = CROSS_BLOCK_EDITS["enum added in a kept table's schema"]
    tables = parse_dbml(added, cache=cache).tables
    assert [c.type for c in tables[0].columns] == ["bigint", "public.status", "mood"]
    assert [c.type for c in tables[3].columns] == ["app.status", "bigint"]


def test_an_unchanged_table_block_is_not_built_again(tmp_path: Path) -> None:
    """The read takes an unchanged table's model from the cache, in a new process as well (the
    cache file is all it shares): a model changed in the cache shows in the read."""
    cache = tmp_path / "lexed.marshal"
    parse_dbml(ENUMS, cache=cache)
    known = blocks.load(cache)
    users = blocks.block_key(USERS)
    digest, (lookups, table, alias, refs) = known.built[users]
    assert lookups  # its type and default name the enum
    marked = replace(model_codec.decode(table), comment="from the cache")
    known.built[users] = (digest, (lookups, model_codec.encode(marked), alias, refs))
    blocks.store(cache, known)
    read = parse_dbml(ENUMS + ADDED, cache=cache)
    assert read.tables[0].comment == "from the cache"
    assert read.tables[0].foreign_keys == parse_dbml(ENUMS).tables[0].foreign_keys


def test_a_table_injecting_a_partial_is_kept_until_the_partial_changes(tmp_path: Path) -> None:
    cache = tmp_path / "lexed.marshal"
    parse_dbml(PARTIALS, cache=cache)
    known = blocks.load(cache)
    users = blocks.block_key(block(PARTIALS, "Table users"))
    digest, (depends_on, table, alias, refs) = known.built[users]
    assert "stamps" in depends_on
    marked = replace(model_codec.decode(table), comment="from the cache")
    known.built[users] = (digest, (depends_on, model_codec.encode(marked), alias, refs))
    blocks.store(cache, known)
    assert parse_dbml(PARTIALS + ADDED, cache=cache).tables[0].comment == "from the cache"
    edited = PARTIAL_EDITS["partial note changed"]
    assert parse_dbml(edited, cache=cache).tables[0].comment == "stamped again"


def test_tables_kept_in_one_mode_are_built_again_in_the_other(tmp_path: Path) -> None:
    """`postgres=False` accepts types PostgreSQL would not: a table kept from such a read is
    checked again by a PostgreSQL read."""
    text = V1.replace("name text", "name varchar(MAX)")
    cache = tmp_path / "lexed.marshal"
    parse_dbml(text, cache=cache, postgres=False)
    with pytest.raises(DbmlError) as raised:
        parse_dbml(text, cache=cache)
    assert raised.value.problems == outcome(text)
