"""Tokens → syntax tree, by recursive descent (one method per construct).

A syntax error inside a block skips to the end of its line, and one in an element header skips
the whole element, so one run reports every independent mistake.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable

from nself_py.read.dbml.lexer import (
    COLOR,
    EOF,
    EXPR,
    IDENT,
    KIND_NAMES,
    NEWLINE,
    NUMBER,
    QUOTED,
    STRING,
    Tokens,
)
from nself_py.read.dbml.syntax import (
    CheckDef,
    ColumnDef,
    Document,
    Endpoint,
    EnumDef,
    GroupDef,
    IndexDef,
    Injection,
    RecordsDef,
    RefDef,
    Setting,
    TableDef,
    Value,
)
from nself_py.sql.parse import SqlSyntaxError, check_type_name

ELEMENTS = ("table", "tablepartial", "enum", "ref", "project", "tablegroup", "note", "records",
            "diagramview")  # fmt: skip
_NESTED_ELEMENTS = {"table": "Table", "tablepartial": "TablePartial", "enum": "Enum",
                    "ref": "Ref", "tablegroup": "TableGroup", "project": "Project"}  # fmt: skip
_RELATIONS = frozenset((">", "<", "-", "<>"))
_NAME_KINDS = frozenset((IDENT, QUOTED))
_OPENERS, _CLOSERS = frozenset("{[("), frozenset("}])")
_VALUE_KINDS: dict[int | str, str] = {
    STRING: "string",
    EXPR: "expr",
    NUMBER: "number",
    COLOR: "color",
}
# Multi-word PostgreSQL type names: first word → words that may follow it.
_TYPE_CONTINUATIONS = {
    "double": (("precision",),),
    "character": (("varying",),),
    "bit": (("varying",),),
    "timestamp": (("with", "time", "zone"), ("without", "time", "zone")),
    "time": (("with", "time", "zone"), ("without", "time", "zone")),
}
_ARRAY_INSIDE = frozenset(("]", NUMBER))
_SUB_ELEMENT_FOLLOWERS = frozenset(("{", ":", "("))
# A quoted type that spells a built-in type with spaces (`"character varying(32)"`) is that type.
_SPACED_BUILTIN = re.compile(
    r"(?:character varying|bit varying|double precision"
    r"|(?:timestamp|time)(?: ?\(\d+\))? with(?:out)? time zone)(?: ?\(\d+\))?",
    re.IGNORECASE,
)


def _quoted(name: str) -> str:
    """A name written in double quotes stays quoted in SQL text."""
    return '"' + name.replace('"', '""') + '"'


_WORD = re.compile(r"[^\W\d]\w*")


def _quoted_type(text: str, alone: bool) -> str:
    """A type written in double quotes means what dbml2sql emits for it, the text as written,
    read as a type (`"text[]"`, `"timestamp with time zone"`, `"character varying(20)[]"`);
    text that is no type name (`"My Type"`) or a qualified name's part stays a quoted name, and
    so does a single word: `"char"` is PostgreSQL's one-byte type, not `char` (`character(1)`),
    and `"MyType"` keeps its case. An enum of the DBML with that name wins later
    (`Builder.column_type`)."""
    spaced = " ".join(text.split())
    if _SPACED_BUILTIN.fullmatch(spaced):
        return spaced
    if alone and text.strip() == text and not _WORD.fullmatch(text):
        try:
            check_type_name(text)
        except SqlSyntaxError:
            return _quoted(text)
        return text
    return _quoted(text)


class ParseError(Exception):
    def __init__(self, offset: int, message: str):
        super().__init__(message)
        self.offset, self.message = offset, message


def suggest(word: str, choices: tuple[str, ...] | frozenset[str]) -> str:
    """` (did you mean 'x'?)` when a close known word exists."""
    close = difflib.get_close_matches(word.lower(), sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Parser:
    def __init__(self, toks: Tokens):
        self.kinds, self.values = toks.kinds, toks.values
        self.i = 0
        self.problems: list[tuple[int, str]] = []
        self.doc = Document()

    # -- token helpers -------------------------------------------------------------------------

    def kind(self, ahead: int = 0) -> int | str:
        """The kind of a token: a lexer constant, or a symbol's own text (`"["`)."""
        return self.kinds[self.i + ahead]

    def value(self, ahead: int = 0) -> str:
        return self.values[self.i + ahead]

    def offset(self) -> int:
        """Where the current token is, for messages: its index (see Tokens.offset_of)."""
        return self.i

    def is_op(self, op: str, ahead: int = 0) -> bool:
        return self.kinds[self.i + ahead] == op

    def is_word(self, word: str, ahead: int = 0) -> bool:
        return self.kinds[self.i + ahead] == IDENT and self.values[self.i + ahead].lower() == word

    def describe(self) -> str:
        kind = self.kinds[self.i]
        if kind in (NEWLINE, EOF):
            return KIND_NAMES[kind]
        if isinstance(kind, str):
            return f"'{kind}'"
        text = self.values[self.i]
        shown = text if len(text) <= 30 and "\n" not in text else text[:30].split("\n")[0] + "..."
        return f"{KIND_NAMES[kind]} '{shown}'"

    def fail(self, expected: str) -> ParseError:
        return ParseError(self.offset(), f"expected {expected}, found {self.describe()}")

    def expect_op(self, op: str) -> int:
        if not self.is_op(op):
            raise self.fail(f"'{op}'")
        self.i += 1
        return self.i - 1

    def skip_newlines(self) -> None:
        while self.kinds[self.i] == NEWLINE:
            self.i += 1

    def end_of_line(self) -> None:
        """A line inside a block ends at a newline or right before the block's `}`."""
        kind = self.kinds[self.i]
        if kind == NEWLINE:
            self.i += 1
        elif kind != "}" and kind != EOF:
            raise self.fail("end of line")

    def recover_line(self) -> None:
        """Skip to the end of the current line (outside brackets) or the enclosing `}`."""
        depth = 0
        while True:
            kind = self.kinds[self.i]
            if kind == EOF:
                return
            if kind == NEWLINE and depth == 0:
                self.i += 1
                return
            if kind in _OPENERS:
                depth += 1
            elif kind in _CLOSERS:
                if depth == 0 and kind == "}":
                    return
                depth = max(0, depth - 1)
            self.i += 1

    def skip_element(self) -> None:
        """Skip the rest of an element: its header line and its `{ ... }` block if any."""
        depth = braces = 0
        while True:
            kind = self.kinds[self.i]
            if kind == EOF:
                return
            if kind == NEWLINE and depth == 0:
                if not self.is_op("{", 1):
                    self.i += 1
                    return
            elif kind == "{":
                depth += 1
                braces += 1
            elif kind == "}":
                depth -= 1
                braces -= 1
                if braces <= 0 or depth <= 0:
                    self.i += 1
                    return
            elif kind in _OPENERS:
                depth += 1
            elif kind in _CLOSERS:
                depth = max(0, depth - 1)
            self.i += 1

    # -- document ------------------------------------------------------------------------------

    def parse(self) -> Document:
        while True:
            self.skip_newlines()
            if self.kinds[self.i] == EOF:
                return self.doc
            start = self.i
            try:
                self.element()
            except ParseError as e:
                self.problems.append((e.offset, e.message))
                if self.i == start:
                    self.i += 1
                self.skip_element()

    def element(self) -> None:
        if self.kinds[self.i] != IDENT:
            raise self.fail("an element (Table, Enum, Ref, TablePartial, ...)")
        word = self.values[self.i].lower()
        if word == "table" or word == "tablepartial":
            self.doc.tables.append(self.table(word == "tablepartial"))
        elif word == "enum":
            self.doc.enums.append(self.enum())
        elif word == "ref":
            self.ref_element()
        elif word == "records":
            self.doc.records.append(self.records(top_level=True))
        elif word == "tablegroup":
            self.doc.groups.append(self.table_group())
        elif word == "project":
            self.project()
        elif word == "note":
            self.sticky_note()
        elif word == "diagramview":
            self.i += 1
            self.skip_element()
        else:
            raise ParseError(
                self.offset(), f"unknown element '{self.values[self.i]}'{suggest(word, ELEMENTS)}"
            )

    def block(self, item: Callable[[], object]) -> None:
        """`{ item* }` with one item per line; a bad line is reported and skipped."""
        self.skip_newlines()  # the `{` may start the next line
        self.expect_op("{")
        while True:
            self.skip_newlines()
            kind = self.kinds[self.i]
            if kind == "}":
                self.i += 1
                return
            if kind == EOF:
                raise self.fail("'}'")
            try:
                item()
            except ParseError as e:
                self.problems.append((e.offset, e.message))
                self.recover_line()

    # -- names, values, settings ---------------------------------------------------------------

    def name(self, what: str) -> str:
        if self.kinds[self.i] not in _NAME_KINDS:
            raise self.fail(what)
        self.i += 1
        return self.values[self.i - 1]

    def path(self, what: str) -> tuple[str, ...]:
        parts = [self.name(what)]
        while self.is_op(".") and self.kind(1) in _NAME_KINDS:
            self.i += 1
            parts.append(self.name(what))
        return tuple(parts)

    def settings(self) -> list[Setting]:
        """`[a, b: value, not null]` (may span lines), or nothing.

        The hottest loop of the parser: it keeps the position in a local and handles flags and
        one-token values itself."""
        kinds, i = self.kinds, self.i
        if kinds[i] != "[":
            return []
        values = self.values
        i += 1
        result: list[Setting] = []
        while True:
            while kinds[i] == NEWLINE:
                i += 1
            kind = kinds[i]
            if kind == "]":
                self.i = i + 1
                return result
            if kind != IDENT:
                self.i = i
                raise self.fail("a setting name")
            offset, name = i, values[i].lower()
            i += 1
            while kinds[i] == IDENT:
                name += " " + values[i].lower()
                i += 1
            value = None
            if kinds[i] == ":":
                i += 1
                while kinds[i] == NEWLINE:
                    i += 1
                if kinds[i] in _VALUE_KINDS and name != "ref":
                    value = Value(_VALUE_KINDS[kinds[i]], values[i], i)
                    i += 1
                else:
                    self.i = i
                    value = self.relation() if name == "ref" else self.setting_value()
                    i = self.i
            result.append(Setting(name, value, offset))
            while kinds[i] == NEWLINE:
                i += 1
            kind = kinds[i]
            if kind == ",":
                i += 1
            elif kind != "]":
                self.i = i
                raise self.fail("',' or ']' in the setting list")

    def setting(self) -> Setting:
        kinds, values, i = self.kinds, self.values, self.i
        offset = i
        if kinds[i] != IDENT:
            raise self.fail("a setting name")
        name = values[i].lower()
        i += 1
        while kinds[i] == IDENT:
            name += " " + values[i].lower()
            i += 1
        self.i = i
        if kinds[i] != ":":
            return Setting(name, None, offset)
        self.i = i = i + 1
        while kinds[i] == NEWLINE:
            self.i = i = i + 1
        value = self.relation() if name == "ref" else self.setting_value()
        return Setting(name, value, offset)

    def relation(self) -> Value:
        offset = self.offset()
        op = self.kinds[self.i]
        if op not in _RELATIONS:
            raise self.fail("a relation ('>', '<', '-' or '<>')")
        self.i += 1
        return Value("ref", op, offset, op=op, endpoint=self.endpoint())

    def setting_value(self) -> Value:
        offset, kind, text = self.offset(), self.kinds[self.i], self.values[self.i]
        if kind in _VALUE_KINDS:
            self.i += 1
            return Value(_VALUE_KINDS[kind], text, offset)
        if kind == "-" or kind == "+":
            return Value("number", self.signed_number(), offset)
        if kind == QUOTED and not self.is_op(".", 1):
            self.i += 1  # old syntax: a double-quoted string value
            return Value("string", text, offset)
        if kind in _NAME_KINDS:
            parts = self.path("a value")
            if len(parts) > 1:
                return Value("path", ".".join(parts), offset, parts=parts)
            words = [parts[0]]
            while self.kinds[self.i] == IDENT:
                words.append(self.values[self.i])
                self.i += 1
            return Value("word", " ".join(words), offset, parts=parts)
        raise self.fail("a value")

    def signed_number(self) -> str:
        """`-2`, `+-2`, `--++7.2` (signs before a number, as dbml-parse allows) → `-2`, `7.2`."""
        negative = False
        while self.kinds[self.i] == "-" or self.kinds[self.i] == "+":
            negative ^= self.kinds[self.i] == "-"
            self.i += 1
        if self.kinds[self.i] != NUMBER:
            raise self.fail("a number after the sign")
        self.i += 1
        return ("-" if negative else "") + self.values[self.i - 1]

    def endpoint(self) -> Endpoint:
        offset = self.offset()
        if self.is_op("("):
            columns, offsets = self.column_list()
            return Endpoint((), columns, offset, offsets)
        parts = [self.name("a table or column name")]
        while self.is_op("."):
            self.i += 1
            if self.is_op("("):
                columns, offsets = self.column_list()
                return Endpoint(tuple(parts), columns, offset, offsets)
            parts.append(self.name("a table or column name"))
        return Endpoint(tuple(parts[:-1]), (parts[-1],), offset, (self.i - 1,))

    def column_list(self) -> tuple[tuple[str, ...], tuple[int, ...]]:
        """`(a, b)`: the names and their offsets."""
        self.expect_op("(")
        columns, offsets = [], []
        while True:
            offsets.append(self.offset())
            columns.append(self.name("a column name"))
            if not self.is_op(","):
                break
            self.i += 1
        self.expect_op(")")
        return tuple(columns), tuple(offsets)

    def note_value(self) -> Value:
        """After `Note`: `: 'text'` or `{ 'text' }`; positioned at the `Note` keyword."""
        keyword = self.i - 1
        if self.is_op(":"):
            self.i += 1
            self.skip_newlines()
            value = self.string_value()
        else:
            self.expect_op("{")
            self.skip_newlines()
            value = self.string_value()
            self.skip_newlines()
            self.expect_op("}")
        value.offset = keyword
        return value

    def string_value(self) -> Value:
        if self.kinds[self.i] not in (STRING, QUOTED):
            raise self.fail("a string")
        self.i += 1
        return Value("string", self.values[self.i - 1], self.i - 1)

    # -- tables --------------------------------------------------------------------------------

    def table(self, partial: bool) -> TableDef:
        offset = self.offset()
        self.i += 1
        table = TableDef(partial, self.path("a table name"), offset)
        if self.is_word("as"):
            self.i += 1
            table.alias = self.name("an alias")
        table.settings = self.settings()
        self.block(lambda: self.table_item(table))
        self.single_note(table.notes)
        return table

    def single_note(self, notes: list[Value]) -> None:
        """An element body holds at most one Note (dbml-parse flags each of them)."""
        if len(notes) > 1:
            for note in notes:
                self.problems.append((note.offset, "more than one Note in the same element"))

    def table_item(self, table: TableDef) -> None:
        kind = self.kinds[self.i]
        # A sub-element is a keyword followed by `{`, `:` or `(`; anything else is a column.
        word = ""
        if kind == IDENT and self.kinds[self.i + 1] in _SUB_ELEMENT_FOLLOWERS:
            word = self.values[self.i].lower()
        if kind == "~":
            offset = self.offset()
            self.i += 1
            table.items.append(Injection(self.name("a TablePartial name"), offset))
        elif word == "indexes" and self.is_op("{", 1):
            self.i += 1
            self.block(lambda: table.indexes.append(self.index()))
            return
        elif word == "checks" and self.is_op("{", 1):
            self.i += 1
            self.block(lambda: table.checks.append(self.check()))
            return
        elif word == "note" and not self.is_op("(", 1):
            self.i += 1
            table.notes.append(self.note_value())
        elif word == "records" and not self.is_op(":", 1):
            table.records.append(self.records(top_level=False))
            return
        elif word == "ref" and not self.is_op("(", 1):
            raise ParseError(
                self.offset(), "a Ref must be written at the top level, not in a table"
            )
        else:
            table.items.append(self.column())
        self.end_of_line()

    def column(self) -> ColumnDef:
        kinds, values, i = self.kinds, self.values, self.i
        offset = i
        if kinds[i] not in _NAME_KINDS:
            raise self.fail("a column name")
        name = values[i]
        self.i = i = i + 1
        type_offset = i
        follower = kinds[i + 1]
        if (
            kinds[i] == IDENT
            and follower != "."
            and follower != "("
            and not (follower == "[" and kinds[i + 2] in _ARRAY_INSIDE)
            and values[i].lower() not in _TYPE_CONTINUATIONS
        ):  # the common case, a one-word type: `int`, `text`
            type_text = values[i]
            type_def: tuple[str, tuple[str, ...], bool] = (type_text, (type_text,), False)
            self.i = i = i + 1
        else:
            if kinds[i] not in _NAME_KINDS:
                raise ParseError(  # at the name, as dbml-parse does
                    offset, f"column '{name}' needs a type, found {self.describe()}"
                )
            type_def = self.column_type()
            i = self.i
        settings: list[Setting] = []
        while kinds[i] == IDENT:  # legacy inline settings: `id int pk unique`
            word = values[i].lower()
            if word not in ("pk", "unique"):
                raise ParseError(
                    i,
                    f"unexpected '{values[i]}' after the type of column '{name}' "
                    "(settings go in [brackets])",
                )
            settings.append(Setting(word, None, i))
            self.i = i = i + 1
        if kinds[i] == "[":
            settings.extend(self.settings())
        return ColumnDef(name, offset, type_def[0], type_def[1], type_offset, type_def[2], settings)

    def column_type(self) -> tuple[str, tuple[str, ...], bool]:
        start = self.i
        path = self.path("a type")
        quoted = [self.kinds[start + 2 * k] == QUOTED for k in range(len(path))]
        text = path[-1]
        if quoted[-1]:
            text = _quoted_type(text, len(path) == 1)
            words = [text]
        else:
            words = [text]
            self.type_words(words)  # `double precision`, `timestamp with time zone`
        if self.is_op("("):
            args = f"({self.type_args()})"
            if len(words) > 1:  # `character varying(20)`
                words[-1] += args
            else:
                if not quoted[-1]:
                    self.type_words(words)  # `timestamp(3) with time zone`
                words[0] += args
        suffix = ""
        while self.is_op("[") and (
            self.is_op("]", 1) or (self.kind(1) == NUMBER and self.is_op("]", 2))
        ):
            suffix += "[]" if self.is_op("]", 1) else f"[{self.value(1)}]"
            self.i += 2 if self.is_op("]", 1) else 3
        prefix = "".join(
            (_quoted(p) if q else p) + "." for p, q in zip(path[:-1], quoted, strict=False)
        )
        return prefix + " ".join(words) + suffix, path, bool(suffix)

    def type_words(self, words: list[str]) -> None:
        for tail in _TYPE_CONTINUATIONS.get(words[0].lower(), ()):
            n = len(tail)
            if len(words) == 1 and all(self.is_word(w, k) for k, w in enumerate(tail)):
                words.extend(self.values[self.i : self.i + n])
                self.i += n
                return

    def type_args(self) -> str:
        self.expect_op("(")
        args: list[str] = []
        while not self.is_op(")"):
            kind, text = self.kinds[self.i], self.values[self.i]
            if kind in (NUMBER, IDENT, STRING, QUOTED):
                args.append(text)
            elif kind == "-" or kind == "+":
                start = self.i
                self.signed_number()
                self.i -= 1
                args.append("".join(self.values[start : self.i + 1]))
            else:
                raise self.fail("a type argument")
            self.i += 1
            if self.is_op(","):
                self.i += 1
            elif not self.is_op(")"):
                raise self.fail("',' or ')' in the type arguments")
        self.i += 1
        return ", ".join(args)

    def index(self) -> IndexDef:
        offset = self.offset()
        keys: list[tuple[bool, str, int]] = []
        if self.is_op("("):
            self.i += 1
            while True:
                keys.append(self.index_key())
                if self.is_op(","):
                    self.i += 1
                    continue
                self.expect_op(")")
                break
        else:
            keys.append(self.index_key())
            while self.kinds[self.i] in (IDENT, QUOTED, EXPR):  # legacy `id name`
                keys.append(self.index_key())
        index = IndexDef(keys, self.settings(), offset)
        self.end_of_line()
        return index

    def index_key(self) -> tuple[bool, str, int]:
        kind, offset = self.kinds[self.i], self.offset()
        if kind == EXPR:
            self.i += 1
            return True, self.values[self.i - 1], offset
        return False, self.name("a column name or `expression`"), offset

    def check(self) -> CheckDef:
        offset = self.offset()
        if self.kinds[self.i] != EXPR:
            raise self.fail("a check `expression`")
        self.i += 1
        check = CheckDef(self.values[self.i - 1], self.settings(), offset)
        self.end_of_line()
        return check

    # -- enums, refs, records ------------------------------------------------------------------

    def enum(self) -> EnumDef:
        offset = self.offset()
        self.i += 1
        enum = EnumDef(self.path("an enum name"), offset)
        enum.notes += [x.value for x in self.settings() if x.name == "note" and x.value]
        self.block(lambda: self.enum_item(enum))
        if not enum.values:
            self.problems.append((offset, f"enum '{'.'.join(enum.path)}' has no values"))
        return enum

    def enum_item(self, enum: EnumDef) -> None:
        kind = self.kinds[self.i]
        if kind == IDENT and self.values[self.i].lower() == "note" and self.is_op(":", 1):
            self.i += 1
            enum.notes.append(self.note_value())
        elif kind in (IDENT, QUOTED, STRING):
            enum.values.append((self.values[self.i], self.offset()))
            self.i += 1
            for s in self.settings():
                if s.name != "note":
                    self.problems.append((s.offset, f"unknown enum value setting '{s.name}'"))
        else:
            raise self.fail("an enum value")
        self.end_of_line()

    def ref_element(self) -> None:
        offset = self.offset()
        self.i += 1
        name = None
        if self.kinds[self.i] in _NAME_KINDS:
            name = self.name("a ref name")
        if self.is_op("["):
            raise ParseError(
                self.offset(), "a Ref takes its settings after the relation, not after its name"
            )
        if self.is_op(":"):
            self.i += 1
            self.doc.refs.append(self.ref_body(name, offset))
            if self.kinds[self.i] not in (NEWLINE, EOF):
                raise self.fail("end of line")
            return
        self.block(lambda: self.ref_line(name, offset))

    def ref_line(self, name: str | None, offset: int) -> None:
        self.doc.refs.append(self.ref_body(name, offset))
        self.end_of_line()

    def ref_body(self, name: str | None, offset: int) -> RefDef:
        left = self.endpoint()
        op = self.kinds[self.i]
        if op not in _RELATIONS:
            raise self.fail("a relation ('>', '<', '-' or '<>')")
        self.i += 1
        right = self.endpoint()
        return RefDef(name, left, op, right, self.settings(), offset)

    def table_group(self) -> GroupDef:
        offset = self.offset()
        self.i += 1
        group = GroupDef(self.path("a TableGroup name"), offset)
        group.settings = self.settings()
        self.block(lambda: self.group_item(group))
        self.single_note(group.notes)
        return group

    def group_item(self, group: GroupDef) -> None:
        if self.is_word("note") and (self.is_op(":", 1) or self.is_op("{", 1)):
            self.i += 1
            group.notes.append(self.note_value())
        else:
            offset = self.offset()
            group.tables.append((self.path("a table name"), offset))
        self.end_of_line()

    def project(self) -> None:
        """`Project name { database_type: 'PostgreSQL' ... }`: checked, then ignored."""
        self.i += 1
        if self.kinds[self.i] in _NAME_KINDS:
            self.i += 1
        self.settings()
        self.block(self.project_item)

    def project_item(self) -> None:
        word = self.values[self.i].lower() if self.kinds[self.i] == IDENT else ""
        if word in _NESTED_ELEMENTS and not self.is_op(":", 1):
            raise ParseError(
                self.offset(), f"{_NESTED_ELEMENTS[word]} must be written at the top level"
            )
        if word == "note" and self.is_op("{", 1):
            self.i += 1
            self.note_value()
        else:
            self.setting()
        self.end_of_line()

    def sticky_note(self) -> None:
        """`Note name { 'text' }`: a diagram's sticky note, checked then ignored."""
        offset = self.offset()
        self.i += 1
        if self.kinds[self.i] not in _NAME_KINDS:
            raise ParseError(offset, "a sticky Note needs a name: Note name { '...' }")
        self.i += 1
        self.settings()
        self.expect_op("{")
        self.skip_newlines()
        self.string_value()
        self.skip_newlines()
        self.expect_op("}")

    def records(self, top_level: bool) -> RecordsDef:
        offset = self.offset()
        self.i += 1
        table = self.path("a table name") if top_level else ()
        columns: list[tuple[str, int]] = []
        if self.is_op("("):
            self.i += 1
            while True:
                at = self.offset()  # the name's own token, before name() moves past it
                columns.append((self.name("a column name"), at))
                if self.is_op(","):
                    self.i += 1
                    continue
                self.expect_op(")")
                break
        records = RecordsDef(table, columns, [], offset)
        self.block(lambda: self.record_row(records))
        return records

    def record_row(self, records: RecordsDef) -> None:
        row = [self.setting_value()]
        while self.is_op(","):
            self.i += 1
            row.append(self.setting_value())
        records.rows.append(row)
        self.end_of_line()


def parse(toks: Tokens) -> tuple[Document, list[tuple[int, str]]]:
    """The syntax tree and the syntax problems as (offset, message)."""
    parser = Parser(toks)
    return parser.parse(), parser.problems
