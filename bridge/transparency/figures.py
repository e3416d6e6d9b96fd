"""The units' figures over a half-open period, computed in SQL (SQLite and PostgreSQL).

A unit's *steps* come from the case timeline (``case_events``, see bridge/forum/service.py):

- an **acceptance step** begins when a post reaches the unit: ``posted`` (``detail.department``,
  the unit the hotline filed the case to) or ``forwarded`` (``detail.to_unit``);
- an **answer step** begins with ``accepted`` or ``follow_up_asked`` (``detail.unit``).

Each entry carries the deadline the step starts (``detail.due_at``, kept by the forum service when
it set the case's deadline), so nothing is recomputed here; a step without one (recorded before
the deadline was kept, or in a year the calendar did not cover) counts in no "within the limit"
share.  A step *ends* at the case's next thread event that settles it: an acceptance step at the
unit's acceptance, forward or answer; an answer step at an answer (in time or late), or at a
forward or a follow-up (which moves the answer elsewhere or restarts its clock).  A step is in
time when it ended at or before its due time (overdue means strictly after it), late when it ended
after it or is still open past it; a step still open before its due time is not decided yet and
counts in neither.  A step belongs to the period it began in ([from, to), in the site's zone).
Durations are clock time.  Nothing is loaded row by row: each query aggregates per unit.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import bindparam, case, func, select, text
from sqlalchemy.orm import Session

from bridge.cases.service import OPEN_STATES
from bridge.db.models import BoardPost, Case, CaseNumberCounter, Department, UtcDateTime
from bridge.forum.service import STEP_OWED

ACCEPT_STEP_KINDS = ("posted", "forwarded")
ANSWER_STEP_KINDS = ("accepted", "follow_up_asked")
ANSWER_KINDS = ("answered", "follow_up_answered")
# What ends each step (module doc).
ACCEPT_ENDS = ("accepted", "forwarded", "answered", "follow_up_answered")
ANSWER_ENDS = ("answered", "follow_up_answered", "forwarded", "follow_up_asked")
SATISFIED_FROM = 4  # 满意 (4) and 非常满意 (5) of the five grades


@dataclass
class UnitFigures:
    """One unit's figures for a period; ``*_rate`` is None when nothing was decided."""

    code: str
    name: str
    posts_received: int = 0
    forwards_received: int = 0
    forwards_made: int = 0
    follow_ups: int = 0
    follow_ups_answered: int = 0
    answered: int = 0
    answer_base: int = 0
    accepted_in_time: int = 0
    acceptances_decided: int = 0
    answered_in_time: int = 0
    answers_decided: int = 0
    median_acceptance_s: float | None = None
    median_answer_s: float | None = None
    overdue_now: int = 0
    graded: int = 0
    satisfied: int = 0

    @property
    def answer_rate(self) -> float | None:
        return _share(self.answered, self.answer_base)

    @property
    def response_rate(self) -> float | None:
        """响应率: the share of acceptance steps settled within the limit."""
        return _share(self.accepted_in_time, self.acceptances_decided)

    @property
    def answered_in_time_rate(self) -> float | None:
        return _share(self.answered_in_time, self.answers_decided)

    @property
    def satisfaction_rate(self) -> float | None:
        """满意率: the share of 满意 and 非常满意 among the graded answers."""
        return _share(self.satisfied, self.graded)

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values.update(answer_rate=self.answer_rate, response_rate=self.response_rate,
                      answered_in_time_rate=self.answered_in_time_rate, satisfaction_rate=self.satisfaction_rate)
        return values


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass(frozen=True)
class Deletions:
    """What a deletion would leave visible: case numbers issued without their case, and board posts
    without their case (the tables refuse deletes; this checks it from the data)."""

    numbers_issued: int
    cases_present: int
    numbers_missing: int
    board_posts_without_case: int

    @property
    def total(self) -> int:
        return self.numbers_missing + self.board_posts_without_case


@dataclass(frozen=True)
class OverdueCase:
    number: str
    unit: str
    state: str
    step: str
    deadline_at: datetime


@dataclass
class UnitReport:
    units: list[UnitFigures]
    deletions: Deletions
    overdue: list[OverdueCase] = field(default_factory=list)


# ------------------------------------------------------------------ SQL pieces per backend


class _Dialect:
    """The few expressions the backends write differently: a JSON text field, seconds since the epoch."""

    def __init__(self, name: str) -> None:
        self.pg = name == "postgresql"

    def field(self, alias: str, key: str) -> str:
        return f"({alias}.detail ->> '{key}')" if self.pg else f"json_extract({alias}.detail, '$.{key}')"

    def epoch(self, expression: str) -> str:
        return f"EXTRACT(EPOCH FROM {expression})" if self.pg else f"((julianday({expression}) - 2440587.5) * 86400.0)"

    def due(self, alias: str) -> str:
        due = self.field(alias, "due_at")
        return self.epoch(f"CAST({due} AS TIMESTAMPTZ)") if self.pg else self.epoch(due)


def _kinds(kinds: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{kind}'" for kind in kinds) + ")"


def _next_step(kinds: tuple[str, ...], column: str) -> str:
    """``column`` of the case's first event of ``kinds`` after step ``s`` (by time, then order); one
    probe of ``(case_id, at, id, kind)`` each, answered from the index (0018), cheaper than joining
    the whole timeline back."""
    return (f"(SELECT n.{column} FROM case_events n WHERE n.case_id = s.case_id AND n.kind IN {_kinds(kinds)} "
            "AND (n.at, n.id) > (s.at, s.id) ORDER BY n.at, n.id LIMIT 1)")


def _step_end(column: str) -> str:
    return (f"CASE WHEN s.step = 'accept' THEN {_next_step(ACCEPT_ENDS, column)} "
            f"ELSE {_next_step(ANSWER_ENDS, column)} END")


def _step_end_join(d: _Dialect) -> str:
    """On PostgreSQL, the step's end (time and kind) in one probe: a LATERAL row (SQLite has none:
    it probes once per column, :func:`_step_end`)."""
    if not d.pg:
        return ""
    return (" LEFT JOIN LATERAL (SELECT n.at, n.kind FROM case_events n WHERE n.case_id = s.case_id "
            f"AND ((s.step = 'accept' AND n.kind IN {_kinds(ACCEPT_ENDS)}) "
            f"OR (s.step <> 'accept' AND n.kind IN {_kinds(ANSWER_ENDS)})) "
            "AND (n.at, n.id) > (s.at, s.id) ORDER BY n.at, n.id LIMIT 1) nx ON true")


def _step_ends(d: _Dialect) -> str:
    if d.pg:
        return "nx.at AS end_at, nx.kind AS end_kind"
    return f"{_step_end('at')} AS end_at, {_step_end('kind')} AS end_kind"


def _buckets_sql(d: _Dialect, count: int) -> str:
    """``buckets``: the periods figured at once (bucket number, [b_start, b_end)), bound as :s0, :e0, ...;
    one period for the ranking, twelve months for a trend: one grouped query either way."""
    stamp = "CAST(:{0} AS TIMESTAMPTZ)" if d.pg else ":{0}"
    rows = " UNION ALL ".join(f"SELECT {i} AS bucket, {stamp.format(f's{i}')} AS b_start, "
                              f"{stamp.format(f'e{i}')} AS b_end" for i in range(count))
    return f"buckets AS ({rows})"


def _in_bucket(alias: str) -> str:
    return f"JOIN buckets b ON {alias}.at >= b.b_start AND {alias}.at < b.b_end"


def _one_unit(expression: str, one_unit: bool) -> str:
    """The condition keeping one unit's rows (:unit), for a unit's trend: only its steps are ended."""
    return f" AND {expression} = :unit" if one_unit else ""


def _steps_sql(d: _Dialect, count: int, one_unit: bool = False) -> str:
    """``timed``: each step begun in a bucket with its bucket, unit, due time, end and duration."""
    unit = (f"CASE e.kind WHEN 'posted' THEN {d.field('e', 'department')} "
            f"WHEN 'forwarded' THEN {d.field('e', 'to_unit')} ELSE {d.field('e', 'unit')} END")
    return f"""
WITH {_buckets_sql(d, count)}, steps AS (
  SELECT b.bucket, e.id, e.case_id, e.at, e.kind,
         CASE WHEN e.kind IN {_kinds(ACCEPT_STEP_KINDS)} THEN 'accept' ELSE 'answer' END AS step,
         {unit} AS unit, {d.due('e')} AS due_s
  FROM case_events e {_in_bucket('e')}
  WHERE e.kind IN {_kinds(ACCEPT_STEP_KINDS + ANSWER_STEP_KINDS)} AND e.at >= :start AND e.at < :end
        {_one_unit(unit, one_unit)}
), ended AS MATERIALIZED (  -- once: each step's end is read by many sums below
  SELECT s.*, {_step_ends(d)},
         CASE WHEN s.step = 'accept' THEN
           (SELECT n.kind FROM case_events n WHERE n.case_id = s.case_id AND n.kind IN ('answered', 'forwarded')
            AND (n.at, n.id) > (s.at, s.id) ORDER BY n.at, n.id LIMIT 1) END AS outcome
  FROM steps s{_step_end_join(d)}
), timed AS (
  SELECT x.bucket, x.unit, x.step, x.kind, x.due_s, x.outcome, x.end_kind,
         {d.epoch('x.end_at')} AS end_s, {d.epoch('x.end_at')} - {d.epoch('x.at')} AS took_s
  FROM ended x
)
"""


def _count(condition: str) -> str:
    return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"


_STEP_COUNTS = {
    "posts_received": "step = 'accept'",
    "forwards_received": "step = 'accept' AND kind = 'forwarded'",
    "answered": "step = 'accept' AND outcome = 'answered'",
    "answer_base": "step = 'accept' AND (outcome IS NULL OR outcome = 'answered')",
    "accepted_in_time": "step = 'accept' AND due_s IS NOT NULL AND end_s IS NOT NULL AND end_s <= due_s",
    "acceptances_decided": "step = 'accept' AND due_s IS NOT NULL AND (end_s IS NOT NULL OR due_s < :now_s)",
    "answered_in_time": f"step = 'answer' AND due_s IS NOT NULL AND end_kind IN {_kinds(ANSWER_KINDS)} "
                        "AND end_s <= due_s",
    "answers_decided": f"step = 'answer' AND due_s IS NOT NULL AND (end_kind IN {_kinds(ANSWER_KINDS)} "
                       "OR end_s > due_s OR (end_s IS NULL AND due_s < :now_s))",
}
# The durations whose medians are shown: acceptance steps that ended, answer steps answered.
_MEDIANS = {"median_acceptance_s": "step = 'accept' AND end_s IS NOT NULL",
            "median_answer_s": f"step = 'answer' AND end_kind IN {_kinds(ANSWER_KINDS)}"}
_DURATIONS = f"SELECT bucket, unit, step, took_s FROM timed WHERE ({') OR ('.join(_MEDIANS.values())})"


def _sqlite_medians_sql(d: _Dialect, count: int, one_unit: bool) -> str:
    """SQLite has no percentile_cont: the middle row, or the mean of the two middle rows (the same value)."""
    return (f"{_steps_sql(d, count, one_unit)}, durations AS ({_DURATIONS}), ranked AS (SELECT bucket, unit, step, took_s, "
            "ROW_NUMBER() OVER (PARTITION BY bucket, unit, step ORDER BY took_s) AS rn, "
            "COUNT(*) OVER (PARTITION BY bucket, unit, step) AS cnt FROM durations) "
            "SELECT bucket, unit, step, AVG(took_s) FROM ranked WHERE rn IN ((cnt + 1) / 2, (cnt + 2) / 2) "
            "GROUP BY bucket, unit, step")


def _bound(sql: str, periods: list[tuple[datetime, datetime]]):
    """``sql`` with the whole span (:start, :end) and each bucket's bounds (:s0, :e0, ...) bound."""
    stamps = [bindparam(name, type_=UtcDateTime()) for i in range(len(periods)) for name in (f"s{i}", f"e{i}")]
    return text(sql).bindparams(bindparam("start", type_=UtcDateTime()), bindparam("end", type_=UtcDateTime()),
                                *stamps)


def _window(periods: list[tuple[datetime, datetime]]) -> dict[str, datetime]:
    values = {"start": min(start for start, _ in periods), "end": max(end for _, end in periods)}
    for i, (start, end) in enumerate(periods):
        values[f"s{i}"], values[f"e{i}"] = start, end
    return values


def _epoch_s(at: datetime) -> float:
    return at.astimezone(timezone.utc).timestamp()


# ------------------------------------------------------------------------ the figures


def unit_figures(session: Session, start: datetime, end: datetime, now: datetime) -> list[UnitFigures]:
    """Every unit's figures for steps begun in [start, end), the open ones judged at ``now``; the
    units ranked by 响应率, then answered in time, then code (units with nothing decided last)."""
    units = {code: UnitFigures(code=code, name=name) for code, name, retired in
             session.execute(select(Department.code, Department.name, Department.retired_at)) if retired is None}
    found = figures_by_period(session, [(start, end)], now)[0]
    units.update(found)
    for code, count in session.execute(
            select(Department.code, func.count(Case.id)).join(Case, Case.department_id == Department.id)
            .where(*_overdue_conditions(now)).group_by(Department.code)):
        units.setdefault(code, UnitFigures(code=code, name=code)).overdue_now = int(count)
    names = dict(session.execute(select(Department.code, Department.name)).all())
    for figures in units.values():
        if figures.name == figures.code:
            figures.name = names.get(figures.code, figures.code)
    return sorted(units.values(), key=_rank)


def figures_by_period(session: Session, periods: list[tuple[datetime, datetime]], now: datetime,
                      unit_code: str | None = None) -> list[dict[str, UnitFigures]]:
    """Per period of ``periods`` (half-open, e.g. twelve months), the figures of each unit with a step
    in it, or of ``unit_code`` only (no ``overdue_now``: that is today's, not a period's); each figure
    one grouped query for all the periods together."""
    d = _Dialect(session.get_bind().dialect.name)
    if d.pg:  # compiling these few queries would cost PostgreSQL's JIT seconds; they run in milliseconds
        session.execute(text("SET LOCAL jit = off"))
    window, count, one = _window(periods), len(periods), unit_code is not None
    if one:
        window["unit"] = unit_code
    found: list[dict[str, UnitFigures]] = [{} for _ in periods]

    def unit(bucket: int, code: str | None) -> UnitFigures | None:
        return None if code is None else found[bucket].setdefault(code, UnitFigures(code=code, name=code))

    columns = ", ".join(f"{_count(condition)} AS {name}" for name, condition in _STEP_COUNTS.items())
    if d.pg:  # the medians in the same pass (an ordered-set aggregate takes a FILTER)
        columns += "".join(f", percentile_cont(0.5) WITHIN GROUP (ORDER BY took_s) FILTER (WHERE {condition}) AS {name}"
                           for name, condition in _MEDIANS.items())
    counts = session.execute(_bound(f"{_steps_sql(d, count, one)} SELECT bucket, unit, {columns} FROM timed "
                                    "GROUP BY bucket, unit", periods), {**window, "now_s": _epoch_s(now)})
    for row in counts.mappings():
        figures = unit(row["bucket"], row["unit"])
        if figures is not None:
            for name in _STEP_COUNTS:
                setattr(figures, name, int(row[name] or 0))
            for name in _MEDIANS if d.pg else ():
                setattr(figures, name, None if row[name] is None else round(float(row[name]), 1))

    for bucket, code, step, median in () if d.pg else session.execute(
            _bound(_sqlite_medians_sql(d, count, one), periods), window):
        figures = unit(bucket, code)
        if figures is not None and median is not None:
            setattr(figures, "median_acceptance_s" if step == "accept" else "median_answer_s", round(float(median), 1))

    events = session.execute(_bound(
        f"WITH {_buckets_sql(d, count)} SELECT b.bucket, e.kind, {d.field('e', 'unit')} AS unit, COUNT(*) "
        f"FROM case_events e {_in_bucket('e')} WHERE e.kind IN ('forwarded', 'follow_up_asked', 'follow_up_answered') "
        f"AND e.at >= :start AND e.at < :end{_one_unit(d.field('e', 'unit'), one)} GROUP BY b.bucket, e.kind, unit",
        periods), window)
    event_counts = {"forwarded": "forwards_made", "follow_up_asked": "follow_ups",
                    "follow_up_answered": "follow_ups_answered"}
    for bucket, kind, code, number in events:
        figures = unit(bucket, code)
        if figures is not None:
            setattr(figures, event_counts[kind], int(number))

    # Driven by the period's answers (``(kind, at)``; a task's answer is always one of ANSWER_KINDS,
    # callbacks/tasks.py), each one's task probed by its unique answer_event_id (a join is planned as
    # a hash of every task).
    grades = session.execute(_bound(
        f"WITH {_buckets_sql(d, count)} SELECT bucket, unit, COUNT(*), {_count(f'satisfaction >= {SATISFIED_FROM}')} "
        f"FROM (SELECT b.bucket, {d.field('a', 'unit')} AS unit, "
        "(SELECT t.satisfaction FROM callback_tasks t WHERE t.answer_event_id = a.id) AS satisfaction "
        f"FROM case_events a {_in_bucket('a')} WHERE a.kind IN {_kinds(ANSWER_KINDS)} AND a.at >= :start "
        f"AND a.at < :end{_one_unit(d.field('a', 'unit'), one)}) graded "
        "WHERE satisfaction IS NOT NULL GROUP BY bucket, unit", periods), window)
    for bucket, code, graded, satisfied in grades:
        figures = unit(bucket, code)
        if figures is not None:
            figures.graded, figures.satisfied = int(graded), int(satisfied or 0)
    return found


def _rank(figures: UnitFigures) -> tuple:
    def descending(rate: float | None) -> float:
        return 1.0 if rate is None else -rate

    return (figures.response_rate is None and figures.answered_in_time_rate is None,
            descending(figures.response_rate), descending(figures.answered_in_time_rate), figures.code)


def _overdue_conditions(now: datetime) -> tuple:
    return Case.deadline_at.is_not(None), Case.deadline_at < now, Case.state.in_(OPEN_STATES)


def overdue_now(session: Session, now: datetime, *, limit: int = 2000) -> list[OverdueCase]:
    """The cases past their deadline now, the longest overdue first (case numbers, no caller)."""
    rows = session.execute(select(Case.number, Department.code, Case.state, Case.deadline_at)
                           .join(Department, Department.id == Case.department_id)
                           .where(*_overdue_conditions(now)).order_by(Case.deadline_at, Case.id).limit(limit))
    return [OverdueCase(number, code, state.value, STEP_OWED.get(state, ""), deadline)
            for number, code, state, deadline in rows]


def deletions(session: Session) -> Deletions:
    """Deletions computed from the data (module :class:`Deletions`); one counter row per year."""
    counters = session.execute(select(CaseNumberCounter.year, CaseNumberCounter.last)).all()
    # one pass over the case numbers for every year (and the total), not one per year
    present_in = [func.coalesce(func.sum(case((Case.number.like(f"%-{year:04d}-%"), 1), else_=0)), 0)
                  for year, _last in counters]
    present, *in_years = session.execute(select(func.count(Case.id), *present_in)).one()
    issued = sum(last for _year, last in counters)
    missing = sum(max(0, last - (in_year or 0)) for (_year, last), in_year in zip(counters, in_years))
    orphans = session.scalar(select(func.count(BoardPost.id)).where(
        ~select(Case.id).where(Case.number == BoardPost.case_number).exists())) or 0
    return Deletions(numbers_issued=issued, cases_present=present, numbers_missing=missing,
                     board_posts_without_case=orphans)


def unit_report(session: Session, start: datetime, end: datetime, now: datetime, *,
                with_overdue: bool = False) -> UnitReport:
    return UnitReport(units=unit_figures(session, start, end, now), deletions=deletions(session),
                      overdue=overdue_now(session, now) if with_overdue else [])


__all__ = ["Deletions", "OverdueCase", "UnitFigures", "UnitReport", "deletions", "figures_by_period", "overdue_now",
           "unit_figures", "unit_report"]
