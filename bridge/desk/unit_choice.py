"""The case form's unit must be one the operator chose and can see (issue 11).

The form posts the chosen unit (``department``, set only by clicking a unit or pressing Enter on
it) and what the search box still holds (``unit_search``, emptied by a choice).  A form whose
unit was never chosen, or whose search box no longer finds the chosen unit (the operator was
looking for another one), is refused with a message beside the unit; nothing is stored.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge.cases.validation import FieldError
from bridge.db.models import Department
from bridge.departments.search import finds, search_terms

SEARCH_MAX = 64  # what is quoted back of the search box


def unit_choice_errors(session: Session, code: str, search: str) -> list[FieldError]:
    """Why the unit of this form was not explicitly chosen; [] when it was (or the rules will say)."""
    search = search.strip()[:SEARCH_MAX]
    code = code.strip().upper()
    if not code:
        if search:
            return [FieldError("department", "department_only_typed", {"query": search})]
        return [FieldError("department", "department_not_chosen")]
    if not search:
        return []
    unit = session.scalar(select(Department).where(Department.code == code))
    if unit is None:
        return []  # the rules name the unknown code
    if finds(search, search_terms(unit.code, unit.name, unit.pinyin_initials, unit.synonyms)):
        return []
    return [FieldError("department", "department_not_shown", {"query": search, "name": unit.name})]


def merged(choice: list[FieldError], rules: list[FieldError]) -> list[FieldError]:
    """The rules' problems with the choice's in place of theirs about the unit."""
    if not choice:
        return rules
    return choice + [e for e in rules if e.field != "department"]
