"""The units (departments) that have a board on the forum: load, import, list.

The shipped list, ``data/quzhou-units.csv``, holds the 108 units of Quzhou's
Tongqu platform (70 city-level departments, 6 county/district governments and
32 communities of the main urban area).  A site edits a copy and imports it with
``hotline-bridge departments import FILE``.

The file is UTF-8 CSV with the header ``code,name,kind,keywords,synonyms``:

- ``code``: the unit's stable identifier (upper-case ASCII letters, digits and
  ``-``, at most 32).  The shipped codes read as ``CITY-<initials>`` for city
  departments (``CITY-GAJ`` = 市公安局), ``GOV-<county>`` for county/district
  governments (``GOV-KC`` = 柯城区人民政府) and ``COM-<street>-<community>`` for
  communities (``COM-FS-FMJ`` = 府山街道坊门街社区).  Cases, spokespeople and the
  Discourse category map refer to units by code: never reuse a code for another unit.
- ``name``: the unit's name, as shown to operators and on the forum.
- ``kind``: ``city_department``, ``county_government`` or ``community``.
- ``keywords``: space-separated words that suggest the unit from a complaint.
- ``synonyms``: space-separated everyday names the desk's unit picker finds the unit by
  (``城管 综合执法`` for 市综合行政执法局), 2 to 16 characters each, each claimed by one unit
  only and never another unit's name.  A file without the column leaves the units' synonyms
  as they are.

Importing is all-or-nothing: the whole file is checked before anything is
written, and the caller's transaction holds every change.  Units missing from
an imported file are *retired* (``retired_at`` set), never deleted, so old cases
keep their unit; a retired unit that appears again is reinstated.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bridge.config import UNIT_CODE_PATTERN
from bridge.db.models import Department, DepartmentKind, utcnow
from bridge.departments.pinyin import initials

SHIPPED_UNITS_FILE = Path(__file__).parent / "data" / "quzhou-units.csv"

REQUIRED_COLUMNS = ("code", "name", "kind")
OPTIONAL_COLUMNS = ("keywords", "synonyms")
HEADER_TEXT = "code,name,kind,keywords,synonyms"
CODE_PATTERN = UNIT_CODE_PATTERN
NAME_MAX = 120  # Department.name is String(120)
KIND_ORDER = {kind: i for i, kind in enumerate(DepartmentKind)}
SYNONYM_MIN, SYNONYM_MAX = 2, 16  # one character finds too much; a long one is a name, not a synonym
SYNONYMS_PER_UNIT = 20
# Chinese characters, letters and digits (and the middle dot of transliterated names).
_SYNONYM_TEXT = re.compile(r"^[^\W_]+(?:·[^\W_]+)*$")
_SYNONYM_SEPARATORS = re.compile(r"[\s\u3000、]")


class UnitsFileError(Exception):
    """A units file that cannot be imported; ``problems`` lists every reason, each naming line and field."""

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"units file {self.path} has {len(self.problems)} problem(s); nothing was imported:"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


@dataclass(frozen=True)
class UnitRow:
    """One checked line of a units file."""

    code: str
    name: str
    kind: DepartmentKind
    keywords: str = ""
    line: int = 0
    synonyms: str | None = None  # space separated; None: the file has no synonyms column (keep them)


@dataclass
class ImportReport:
    """What an import changed (unit codes, in file order; ``retired`` in code order)."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)  # name, kind, keywords or synonyms changed
    reinstated: list[str] = field(default_factory=list)  # was retired, is in the file again
    retired: list[str] = field(default_factory=list)  # in service, absent from the file
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.reinstated or self.retired)

    def summary(self) -> str:
        return (f"{len(self.added)} added, {len(self.updated)} updated, {len(self.reinstated)} reinstated, "
                f"{len(self.retired)} retired, {self.unchanged} unchanged")


# ---------------------------------------------------------------------- loading


def _normalise_keywords(value: str) -> str:
    # Split on any whitespace, the ideographic space included; keep the first of duplicates.
    return " ".join(dict.fromkeys(value.replace("\u3000", " ").split()))


def _check_synonyms(value: str, name: str) -> tuple[list[str], list[str]]:
    """The synonyms of one line (duplicates and the unit's own name dropped), and what is wrong with them."""
    entries = _SYNONYM_SEPARATORS.split(value.strip()) if value.strip() else []
    problems: list[str] = []
    if "、" in value and any(not part.strip() for part in value.strip().split("、")):
        problems.append("synonyms has an empty entry (two separators in a row, or one at an end); "
                        "separate the names with one space or one 、")
    synonyms: list[str] = []
    for entry in filter(None, entries):
        if len(entry) > SYNONYM_MAX:
            problems.append(f"synonym {entry!r} is {len(entry)} characters long; at most {SYNONYM_MAX}")
        elif len(entry) < SYNONYM_MIN:
            problems.append(f"synonym {entry!r} is too short; at least {SYNONYM_MIN} characters "
                            "(one character would find too many units)")
        elif not _SYNONYM_TEXT.match(entry):
            problems.append(f"synonym {entry!r} may hold only Chinese characters, letters and digits")
        elif entry != name and entry not in synonyms:
            synonyms.append(entry)
    if len(synonyms) > SYNONYMS_PER_UNIT:
        problems.append(f"{len(synonyms)} synonyms; at most {SYNONYMS_PER_UNIT} a unit")
    return synonyms, problems


def _shared_synonyms(rows: list[UnitRow]) -> list[str]:
    """A synonym must lead to one unit: claimed by two, or another unit's name, is a problem."""
    problems: list[str] = []
    names = {row.name: row for row in rows}
    owners: dict[str, UnitRow] = {}
    for row in rows:
        for synonym in (row.synonyms or "").split():
            other = names.get(synonym)
            if other is not None and other is not row:
                problems.append(f"line {row.line}: synonym {synonym!r} is the name of {other.code} (line "
                                f"{other.line}); remove it")
            elif synonym in owners:
                first = owners[synonym]
                problems.append(f"line {row.line}: synonym {synonym!r} of {row.code} is claimed by {first.code} "
                                f"(line {first.line}) too; give it to one unit")
            else:
                owners[synonym] = row
    return problems


def parse_units(text: str, *, source: str = "<units>") -> list[UnitRow]:
    """Check the CSV ``text`` of a units file; raise UnitsFileError listing every problem."""
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None:
        raise UnitsFileError(source, ["line 1: the file is empty; expected the header " + HEADER_TEXT])
    columns = [h.strip().lower() for h in header]
    problems: list[str] = []
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        problems.append(f"line 1: missing column(s) {', '.join(missing)}; expected the header " + HEADER_TEXT)
    unknown = [c for c in columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        problems.append(f"line 1: unknown column(s) {', '.join(repr(c) for c in unknown)}; "
                        "expected " + HEADER_TEXT)
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        problems.append(f"line 1: column(s) {', '.join(repeated)} appear more than once")
    if problems:
        raise UnitsFileError(source, problems)

    index = {c: i for i, c in enumerate(columns)}
    kinds = ", ".join(k.value for k in DepartmentKind)
    rows: list[UnitRow] = []
    codes: dict[str, int] = {}
    names: dict[str, int] = {}
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue  # blank line
        if len(values) != len(columns):
            problems.append(f"line {line}: {len(values)} field(s), expected {len(columns)} "
                            f"({','.join(columns)}); quote a value that contains a comma")
            continue
        get = lambda col: values[index[col]].strip() if col in index else ""  # noqa: E731
        code, name, kind_text, keywords = get("code"), get("name"), get("kind"), get("keywords")
        synonyms, synonym_problems = _check_synonyms(get("synonyms"), name)
        problems += [f"line {line}: {p}" for p in synonym_problems]
        ok = not synonym_problems
        if not code:
            problems.append(f"line {line}: code is empty")
            ok = False
        elif not CODE_PATTERN.match(code):
            problems.append(f"line {line}: code {code!r} is not valid; expected upper-case letters, digits "
                            "and '-', at most 32 characters, like CITY-GAJ")
            ok = False
        elif code in codes:
            problems.append(f"line {line}: code {code!r} duplicates line {codes[code]}")
            ok = False
        else:
            codes[code] = line
        if not name:
            problems.append(f"line {line}: name is empty")
            ok = False
        elif len(name) > NAME_MAX:
            problems.append(f"line {line}: name is {len(name)} characters long; at most {NAME_MAX}")
            ok = False
        elif name in names:
            problems.append(f"line {line}: name {name!r} duplicates line {names[name]}")
            ok = False
        else:
            names[name] = line
        try:
            kind = DepartmentKind(kind_text)
        except ValueError:
            problems.append(f"line {line}: kind {kind_text!r} is unknown; expected one of {kinds}")
            ok = False
        if ok:
            rows.append(UnitRow(code=code, name=name, kind=kind, keywords=_normalise_keywords(keywords), line=line,
                                synonyms=" ".join(synonyms) if "synonyms" in index else None))
    problems += _shared_synonyms(rows)
    if not problems and not rows:
        problems.append("the file lists no units (importing it would retire every unit)")
    if problems:
        raise UnitsFileError(source, problems)
    return rows


def load_units_file(path: str | Path) -> list[UnitRow]:
    """Read and check a units file; raise UnitsFileError naming the line and field of every problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UnitsFileError(str(path), [f"cannot read the file: {exc.strerror or exc}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UnitsFileError(str(path), [f"line {line}: the file is not UTF-8 text (save it as UTF-8)"]) from None
    return parse_units(text, source=str(path))


# ---------------------------------------------------------------------- storing


def import_units(session: Session, rows: list[UnitRow], now: datetime) -> ImportReport:
    """Make the departments table match ``rows``; nothing is committed here.

    New codes are added; a known code takes the row's name, kind, keywords and synonyms
    (pinyin initials recomputed; synonyms kept when the file had no such column); a retired unit in ``rows`` is reinstated; a unit
    in service that is not in ``rows`` is retired at ``now``.  Nothing is deleted.
    """
    if now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")
    seen: set[str] = set()
    for row in rows:
        if row.code in seen:
            raise UnitsFileError("<rows>", [f"line {row.line}: code {row.code!r} appears twice"])
        seen.add(row.code)
    if not rows:
        raise UnitsFileError("<rows>", ["no units given (importing them would retire every unit)"])

    report = ImportReport()
    existing = {d.code: d for d in session.scalars(select(Department))}
    for row in rows:
        unit = existing.get(row.code)
        pinyin = initials(row.name)
        if unit is None:
            session.add(Department(code=row.code, name=row.name, kind=row.kind, keywords=row.keywords,
                                   synonyms=row.synonyms or "", pinyin_initials=pinyin, created_at=now))
            report.added.append(row.code)
            continue
        synonyms = unit.synonyms if row.synonyms is None else row.synonyms
        wanted = (row.name, row.kind, row.keywords, pinyin, synonyms)
        changed = (unit.name, unit.kind, unit.keywords, unit.pinyin_initials, unit.synonyms) != wanted
        if changed:
            unit.name, unit.kind, unit.keywords, unit.pinyin_initials, unit.synonyms = wanted
            report.updated.append(row.code)
        if unit.retired_at is not None:
            unit.retired_at = None
            report.reinstated.append(row.code)
        if not changed and row.code not in report.reinstated:
            report.unchanged += 1
    for code in sorted(set(existing) - seen):
        unit = existing[code]
        if unit.retired_at is None:
            unit.retired_at = now
            report.retired.append(code)
    session.flush()
    return report


def ensure_shipped_units(session: Session, now: datetime | None = None) -> ImportReport | None:
    """Import the shipped units file if the departments table is empty (the daemon calls this on start)."""
    if session.scalar(select(func.count()).select_from(Department)):
        return None
    return import_units(session, load_units_file(SHIPPED_UNITS_FILE), now or utcnow())


def list_units(session: Session, include_retired: bool = False) -> list[Department]:
    """Units by kind (city departments, county governments, communities), then code."""
    query = select(Department)
    if not include_retired:
        query = query.where(Department.retired_at.is_(None))
    units = list(session.scalars(query))
    units.sort(key=lambda d: (KIND_ORDER.get(d.kind, len(KIND_ORDER)), d.code))
    return units


def unit_by_code(session: Session, code: str) -> Department | None:
    return session.scalar(select(Department).where(Department.code == code))
