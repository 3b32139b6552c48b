"""Every operation kind declares everything it needs in one place: its class and its template.

Adding a kind means one class (in the module of its object kind) plus one template; this test
fails, naming the kind and what is missing, when anything else would be needed.
"""

from __future__ import annotations

import jinja2
import pytest

from nself_py.plan.operations.base import DECLARED, FAMILIES, KINDS, Operation
from nself_py.render import _environment


def _all_subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _all_subclasses(sub)
    return found


def test_every_subclass_is_a_registered_kind():
    named = {c for c in _all_subclasses(Operation) if not c.__name__.startswith("_")}
    assert set(KINDS) == named - set(FAMILIES)
    assert not set(KINDS) & set(FAMILIES)
    assert len(KINDS) >= 27


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_kind_declares_everything_it_needs(kind: type[Operation]):
    missing = []
    for name in DECLARED:
        value = getattr(kind, name, None)
        if value is None or value is getattr(Operation, name, None):
            missing.append(name)
    for name in ("reverse", "describe"):
        if getattr(kind, name) is getattr(Operation, name):
            missing.append(name)
    if not (kind.changes is not Operation.changes or kind.needs_old is not Operation.needs_old):
        missing.append("changes or needs_old")
    assert not missing, f"{kind.__name__} does not declare: {', '.join(missing)}"
    assert isinstance(kind.noun, str) and kind.noun and isinstance(kind.verb, str) and kind.verb


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_kind_has_its_template(kind: type[Operation]):
    try:
        _environment().get_template(kind.template())
    except jinja2.TemplateNotFound:
        pytest.fail(f"{kind.__name__} has no template render/templates/{kind.template()}")


def test_a_missing_declaration_fails_loudly():
    """A kind that forgot a declaration fails at the first use, naming what it lacks."""

    class _Forgetful(Operation):
        pass

    with pytest.raises(NotImplementedError, match="_Forgetful does not declare drift"):
        _Forgetful().drift("schema.dbml")
    assert _Forgetful not in KINDS
