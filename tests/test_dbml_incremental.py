"""The incremental DBML read (`read.dbml.blocks`) gives exactly what a whole-file read gives.

Over the DBML corpus, a cache warmed on each file is used to read edits of it (a block edited,
moved, deleted, added): model, record offsets and errors must equal a full read of the same text.
"""

from __future__ import annotations

import marshal
from pathlib import Path

import pytest
from helpers import make_project, nself

from nself_py.errors import DbmlError, DbmlProblem
from nself_py.read.dbml import blocks, parse_dbml

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
    """The file with one block edited, moved, deleted, or one added."""
    cut = blocks.split_blocks(text)
    tables = [i for i, b in enumerate(cut) if b.lower().startswith("table ")]
    variants = {"added": text + ("" if text.endswith("\n") else "\n") + ADDED}
    if tables:
        first = tables[0]
        head, newline, rest = cut[first].partition("\n")
        edited = [*cut[:first], head + newline + "  incr_extra int\n" + rest, *cut[first + 1 :]]
        variants["edited"] = "".join(edited)
    if len(cut) > 2:
        variants["moved"] = "".join([cut[0], *cut[2:-1], cut[1], cut[-1]])
        variants["deleted"] = "".join(cut[:1] + cut[2:])
    return variants


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
    assert set(blocks.load(cache).blocks) == {blocks.block_key(b) for b in blocks.split_blocks(V1)}
    with pytest.raises(DbmlError):
        parse_dbml(V1 + "Table bad {\n  id nosuchtype(\n}\n", cache=cache)
    assert set(blocks.load(cache).blocks) == {blocks.block_key(b) for b in blocks.split_blocks(V1)}
    parse_dbml(V1, cache=cache, save=False)
    parse_dbml(V1 + ADDED, cache=cache, save=False)  # not written: the old cache stays
    assert len(blocks.load(cache).blocks) == 2


@pytest.mark.parametrize(
    "content",
    [
        b"not a cache at all",
        b"0" * 64 + b"\n" + marshal.dumps(({}, [], [])),  # another code's key
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
    assert blocks.load(cache).blocks == {}
    schema = parse_dbml(V1, cache=cache)
    assert [t.name.name for t in schema.tables] == ["users", "posts"]
    assert blocks.load(cache).blocks  # rewritten after the clean read


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
    first = blocks.load(lexed).blocks
    assert set(first) == {blocks.block_key(b) for b in blocks.split_blocks(V1)}
    edited = V1.replace("Table posts {\n", ADDED + "\nTable posts {\n", 1)
    (project / "schema.dbml").write_text(edited)
    dry = nself(project, db_url, "db", "run", "--dry-run")
    assert dry.returncode == 0 and "CREATE TABLE public.incr_added" in dry.stdout, dry.stderr
    assert blocks.load(lexed).blocks == first
    broken = edited.replace("users.id]", "users.nope]")
    (project / "schema.dbml").write_text(broken)
    failed = nself(project, db_url, "db", "run", "--no-backup")
    line = broken[: broken.index("nope")].count("\n") + 1
    col = broken.index("nope") - broken.rindex("\n", 0, broken.index("nope"))
    assert failed.returncode == 1
    assert f"schema.dbml:{line}:{col}: reference to unknown column 'nope'" in failed.stderr
    assert "Traceback" not in failed.stderr
