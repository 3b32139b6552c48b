"""English inflection as the Hasura console does it (the `inflection` npm package's rules).

The legacy console names relationships `inflection.singularize(table)` (object) and
`inflection.pluralize(table)` (array), with `inflection.camelize(..., true)` for its fallback.
These are the same rule tables (Rails' inflections), applied first match wins, so names come out
as the console would give them: users→user, post_tags→post_tags, user_data→user_datum,
status→statuses, media→medium.
"""

from __future__ import annotations

import functools
import re

UNCOUNTABLES = frozenset(
    ("equipment", "fish", "information", "jeans", "money", "rice", "series", "sheep", "species")
)

_PLURALS: list[tuple[str, str]] = [
    (r"(quiz)$", r"\1zes"),
    (r"^(oxen)$", r"\1"),
    (r"^(ox)$", r"\1en"),
    (r"(m|l)ice$", r"\1ice"),
    (r"(m|l)ouse$", r"\1ice"),
    (r"(passer)s?by$", r"\1sby"),
    (r"(matr|vert|ind)(?:ix|ex)$", r"\1ices"),
    (r"(x|ch|ss|sh)$", r"\1es"),
    (r"([^aeiouy]|qu)y$", r"\1ies"),
    (r"(hive)$", r"\1s"),
    (r"([lr])f$", r"\1ves"),
    (r"([^f])fe$", r"\1ves"),
    (r"sis$", "ses"),
    (r"([ti])a$", r"\1a"),
    (r"([ti])um$", r"\1a"),
    (r"(buffal|potat|tomat)o$", r"\1oes"),
    (r"(bu)s$", r"\1ses"),
    (r"(alias|status)$", r"\1es"),
    (r"(octop|vir)i$", r"\1i"),
    (r"(octop|vir)us$", r"\1i"),
    (r"^(ax|test)is$", r"\1es"),
    (r"s$", "s"),
    (r"$", "s"),
]

_SINGULARS: list[tuple[str, str]] = [
    (r"(database)s$", r"\1"),
    (r"(quiz)zes$", r"\1"),
    (r"(matr)ices$", r"\1ix"),
    (r"(vert|ind)ices$", r"\1ex"),
    (r"(passer)sby$", r"\1by"),
    (r"^(ox)en", r"\1"),
    (r"(alias|status)(es)?$", r"\1"),
    (r"(octop|vir)(us|i)$", r"\1us"),
    (r"^(a)x[ie]s$", r"\1xis"),
    (r"(cris|test)(is|es)$", r"\1is"),
    (r"(shoe)s$", r"\1"),
    (r"(o)es$", r"\1"),
    (r"(bus)(es)?$", r"\1"),
    (r"(m|l)ice$", r"\1ouse"),
    (r"(x|ch|ss|sh)es$", r"\1"),
    (r"(m)ovies$", r"\1ovie"),
    (r"(s)eries$", r"\1eries"),
    (r"([^aeiouy]|qu)ies$", r"\1y"),
    (r"([lr])ves$", r"\1f"),
    (r"(tive)s$", r"\1"),
    (r"(hive)s$", r"\1"),
    (r"([^f])ves$", r"\1fe"),
    (r"(t)he(sis|ses)$", r"\1hesis"),
    (r"(s)ynop(sis|ses)$", r"\1ynopsis"),
    (r"(p)rogno(sis|ses)$", r"\1rognosis"),
    (r"(p)arenthe(sis|ses)$", r"\1arenthesis"),
    (r"(d)iagno(sis|ses)$", r"\1iagnosis"),
    (r"(b)a(sis|ses)$", r"\1asis"),
    (r"(a)naly(sis|ses)$", r"\1nalysis"),
    (r"([ti])a$", r"\1um"),
    (r"(n)ews$", r"\1ews"),
    (r"(ss)$", r"\1"),
    (r"s$", ""),
]

# Irregulars, each added in front of the rules (so the last one added is tried first).
for _singular, _plural in (
    ("person", "people"),
    ("man", "men"),
    ("human", "humans"),
    ("child", "children"),
    ("sex", "sexes"),
    ("move", "moves"),
    ("cow", "kine"),
    ("zombie", "zombies"),
):
    if _singular[0] == _plural[0]:
        _PLURALS.insert(0, (f"({_singular[0]}){_singular[1:]}$", r"\1" + _plural[1:]))
        _PLURALS.insert(0, (f"({_plural[0]}){_plural[1:]}$", r"\1" + _plural[1:]))
        _SINGULARS.insert(0, (f"({_plural[0]}){_plural[1:]}$", r"\1" + _singular[1:]))
    else:
        _PLURALS.insert(0, (f"{_singular}$", _plural))
        _PLURALS.insert(0, (f"{_plural}$", _plural))
        _SINGULARS.insert(0, (f"{_plural}$", _singular))

_UNCOUNTABLE_END = re.compile(rf"(?i)\b(?:{'|'.join(UNCOUNTABLES)})$")
_PLURAL_RULES, _SINGULAR_RULES = tuple(_PLURALS), tuple(_SINGULARS)


@functools.cache  # compiled on first use: ~40 ms of patterns a run without relationships skips
def _compiled(rules: tuple[tuple[str, str], ...]) -> list[tuple[re.Pattern[str], str]]:
    return [(re.compile(p, re.IGNORECASE), r) for p, r in rules]


def _apply(word: str, rules: tuple[tuple[str, str], ...]) -> str:
    for pattern, replacement in _compiled(rules):
        if pattern.search(word):
            return pattern.sub(replacement, word, count=1)
    return word


@functools.cache  # a table's name is inflected once per relationship to it
def pluralize(word: str) -> str:
    if not word or word.lower() in UNCOUNTABLES:
        return word
    return _apply(word, _PLURAL_RULES)


@functools.cache
def singularize(word: str) -> str:
    if _UNCOUNTABLE_END.search(word):
        return word
    return _apply(word, _SINGULAR_RULES)


def camelize(word: str) -> str:
    """`inflection.camelize(word, true)`: `user_by_author_id` → `userByAuthorId`."""
    upper = re.sub(r"(?:^|_)(.)", lambda m: m.group(1).upper(), word)
    return upper[:1].lower() + upper[1:]


def lodash_camel_case(word: str) -> str:
    """lodash `camelCase`, which `naming_convention: graphql-default` applies to the name."""
    words = re.findall(r"[A-Z]{2,}(?=[A-Z][a-z]|[0-9]|\b|_)|[A-Z]?[a-z]+|[A-Z]+|[0-9]+", word)
    return "".join(w[:1].upper() + w[1:].lower() if i else w.lower() for i, w in enumerate(words))
