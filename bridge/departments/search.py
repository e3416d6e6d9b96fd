"""How the desk's unit picker finds a unit from what an operator types (no I/O).

A unit is found by its name, its code, its synonyms (城管 for 市综合行政执法局) and the pinyin
initials of the name and of each synonym (``zhzf``, ``cg``), each matched as a substring of the
lower-cased query.  ``bridge/desk/static/desk.js`` matches the same terms in the browser; the
server uses :func:`finds` to refuse a case whose unit the search box no longer shows.
"""
from __future__ import annotations

from functools import lru_cache

from bridge.departments.pinyin import initials


@lru_cache(maxsize=4096)
def synonym_initials(synonym: str) -> str:
    return initials(synonym)


def search_terms(code: str, name: str, name_initials: str, synonyms: str) -> list[str]:
    """Every lower-case text a query may be a part of to find this unit."""
    words = synonyms.split()
    terms = [name, code, name_initials, *words, *(synonym_initials(w) for w in words)]
    return [t.lower() for t in terms if t]


def finds(query: str, terms: list[str]) -> bool:
    """Whether typing ``query`` lists the unit with these ``terms`` (an empty query lists every unit)."""
    q = query.strip().lower()
    return not q or any(q in term for term in terms)
