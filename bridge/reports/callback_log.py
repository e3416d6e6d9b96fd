"""The callback completion log: one line per case with its path (call, filed, posted, accepted,
forwarded, answered, each callback attempt, the caller informed or not, the grade), its filters and
its summary figures, all computed in SQL.

A case's callback outcome is that of its latest answer callback task (the newest answer's: a
follow-up answered makes a new task, a superseded task is replaced by it):

* ``informed`` / ``follow_up`` / ``do_not_call`` / ``wrong_number``: what the operator recorded;
* ``unreachable``: every attempt made, or the number needs checking;
* ``pending``: the task is still open (scheduled, due, being called);
* ``none``: no answer callback (not answered yet, or the caller wanted none).

Figures (over the filtered cases):

* ``completion_rate``: cases informed / cases with an answer callback (null when none);
* ``median_answer_to_informed_s``, ``p90_answer_to_informed_s``: seconds from the answer the
  informing callback served to that callback's completion (``percentile_cont`` on PostgreSQL; the
  same linear interpolation between ranked rows on SQLite);
* ``satisfaction``: grade (1..5) -> cases;
* ``attempts_per_completed``: the attempts made on the tasks that informed the caller / those tasks;
* ``satisfaction_rate`` (满意率): cases graded 满意 (4) or 非常满意 (5) / cases graded;
* ``attempted``, ``informed``, ``graded``: cases whose callback was dialled, that informed the
  caller, that were graded;
* ``per_operator``: the same per operator who filed the cases (with an answer callback); the
  totals are the sums of these groups (one pass over the log, and one for the percentiles).

Periods are half-open ``[from, to)`` days in the site's zone, on the case's filing time.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Float, and_, case, func, literal, select, true, tuple_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.expression import FunctionElement

from bridge.db.models import (CallbackAttempt, CallbackReason, CallbackState, CallbackTask, Call, Case, CaseEvent,
                              Department, Role, User)
from bridge.i18n import N_
from bridge.site.clock import midnight
from bridge.site.periods import FilterError, parse_days

OUTCOMES = ("informed", "follow_up", "unreachable", "do_not_call", "wrong_number", "pending", "none")
RECORDED = ("informed", "follow_up", "do_not_call", "wrong_number")
OPEN_STATES = (CallbackState.SCHEDULED.value, CallbackState.DUE.value, CallbackState.IN_PROGRESS.value)
GRADES = (1, 2, 3, 4, 5)
SATISFIED = 4  # 满意 (4) and 非常满意 (5) count towards 满意率
CHUNK = 500  # rows fetched (and their attempts and forwards looked up) at a time
MAX_WAIT_HOURS = 24 * 366
BAD_GRADE = N_("must be a grade 1 to 5, or 'none'")


@dataclass(frozen=True)
class LogFilter:
    start: date | None = None  # the first day (site zone), inclusive
    end: date | None = None  # the day after the last (exclusive)
    operator: int | None = None  # the user who filed the case
    unit: str | None = None  # the unit the case is at now (department code)
    outcome: str | None = None  # one of OUTCOMES
    satisfaction: int | str | None = None  # a grade, or "none" (not graded)
    overdue: bool = False  # a unit's deadline has passed now
    waiting_hours: float | None = None  # answered, caller not informed for more than this long
    own_cases_of: int | None = None  # an operator sees their own cases only (not a filter, a limit)

    def query(self) -> dict[str, str]:
        """The filter as URL query parameters (what a link or an export repeats)."""
        values = {"from": self.start, "to": self.end, "operator": self.operator, "unit": self.unit,
                  "outcome": self.outcome, "satisfaction": self.satisfaction,
                  "overdue": "1" if self.overdue else None,
                  "waiting_hours": _number(self.waiting_hours) if self.waiting_hours is not None else None}
        return {key: str(value) for key, value in values.items() if value not in (None, "")}


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def parse_filter(params: Mapping[str, str]) -> LogFilter:
    """The filter of a query string (empty values are no filter); :class:`FilterError` names the
    first parameter that cannot be used."""
    def text(name: str) -> str:
        return (params.get(name) or "").strip()

    start, end = parse_days(text("from"), text("to"))
    operator = _integer(text("operator"), "operator", N_("must be a user id (a whole number)")) if text("operator") else None
    outcome = text("outcome") or None
    if outcome is not None and outcome not in OUTCOMES:
        raise FilterError("outcome", N_("must be one of %(choices)s"), choices=", ".join(OUTCOMES))
    satisfaction: int | str | None = text("satisfaction") or None
    if satisfaction is not None and satisfaction != "none":
        grade = _integer(str(satisfaction), "satisfaction", BAD_GRADE)
        if grade not in GRADES:
            raise FilterError("satisfaction", BAD_GRADE)
        satisfaction = grade
    overdue = text("overdue")
    if overdue not in ("", "0", "1", "true", "false"):
        raise FilterError("overdue", N_("must be 1 (only cases overdue now) or 0"))
    waiting = text("waiting_hours")
    hours = None
    if waiting:
        try:
            hours = float(waiting)
        except ValueError:
            raise FilterError("waiting_hours", N_("must be a number of hours, e.g. 24")) from None
        if not 0 <= hours <= MAX_WAIT_HOURS:
            raise FilterError("waiting_hours", N_("must be between 0 and %(max)d hours"), max=MAX_WAIT_HOURS)
    return LogFilter(start=start, end=end, operator=operator, unit=text("unit") or None, outcome=outcome,
                     satisfaction=satisfaction, overdue=overdue in ("1", "true"), waiting_hours=hours)


def _integer(value: str, name: str, what: str) -> int:
    """``value`` as a row id; else ``what`` (a message id) is what to send."""
    try:
        number = int(value)
    except ValueError:
        raise FilterError(name, what) from None
    if not 0 < number < 2**31:
        raise FilterError(name, what)
    return number


# ------------------------------------------------------------------ seconds in SQL


class SecondsBetween(FunctionElement):
    """``later - earlier`` in seconds, on either backend."""

    type = Float()
    inherit_cache = True


@compiles(SecondsBetween)
def _seconds_sqlite(element, compiler, **kw):
    later, earlier = list(element.clauses)
    return f"((julianday({compiler.process(later, **kw)}) - julianday({compiler.process(earlier, **kw)})) * 86400.0)"


@compiles(SecondsBetween, "postgresql")
def _seconds_postgresql(element, compiler, **kw):
    later, earlier = list(element.clauses)
    return f"EXTRACT(EPOCH FROM ({compiler.process(later, **kw)} - {compiler.process(earlier, **kw)}))"


# ------------------------------------------------------------------ the query


def _first(kind: str):
    """The case's first timeline entry of ``kind`` (one index probe per case, correlated)."""
    return select(func.min(CaseEvent.at)).where(CaseEvent.case_id == Case.id, CaseEvent.kind == kind) \
        .scalar_subquery()


def _latest_task(lateral: bool):
    """The case's latest answer task (newest id): a LATERAL row on PostgreSQL, one backward probe
    of ``ix_callback_tasks_case_reason`` per case (a join on the correlated ``max(id)`` is planned
    there as a hash join over every task); SQLite, which has no LATERAL, joins on that ``max(id)``
    and looks it up per case anyway.  Returns what to join, its columns and the join condition."""
    if lateral:
        found = (select(CallbackTask.id, CallbackTask.state, CallbackTask.outcome, CallbackTask.satisfaction,
                        CallbackTask.completed_at, CallbackTask.answer_event_id)
                 .where(CallbackTask.case_id == Case.id, CallbackTask.reason == CallbackReason.ANSWER)
                 .order_by(CallbackTask.id.desc()).limit(1).lateral("task"))
        return found, found.c, true()
    task = aliased(CallbackTask, name="task")
    latest = (select(func.max(CallbackTask.id))
              .where(CallbackTask.case_id == Case.id, CallbackTask.reason == CallbackReason.ANSWER).scalar_subquery())
    return task, task, task.id == latest


def log_select(flt: LogFilter, zone: ZoneInfo, now: datetime, *, lateral: bool = False):
    """The log's SELECT (one row per case, oldest filing first) with ``flt`` applied; ``lateral``
    on PostgreSQL (:func:`_latest_task`).

    Each case's first steps, its forwards and its latest answer task are looked up per case (index
    probes correlated with the case) rather than aggregated over the period's whole timeline: a page
    of 500 rows then reads 500 cases' entries, not a month's, and the database still walks the
    cases in filing order (``ix_cases_created_at``) for the files."""
    period = []
    if flt.start:
        period.append(Case.created_at >= midnight(flt.start, zone))
    if flt.end:
        period.append(Case.created_at < midnight(flt.end, zone))
    forwards = select(func.count()).select_from(CaseEvent) \
        .where(CaseEvent.case_id == Case.id, CaseEvent.kind == "forwarded").scalar_subquery()
    joined, task, task_join = _latest_task(lateral)
    answer = aliased(CaseEvent, name="answer")
    filer = aliased(User, name="filer")
    outcome = case((task.id.is_(None), literal("none")),
                   (task.state == CallbackState.UNREACHABLE, literal("unreachable")),
                   (task.outcome.in_(RECORDED), task.outcome),
                   (task.state.in_(OPEN_STATES), literal("pending")),
                   else_=func.coalesce(task.outcome, literal("none"))).label("outcome")
    to_informed = case((task.outcome == "informed", SecondsBetween(task.completed_at, answer.at)))
    query = (select(Case.id.label("case_id"), Case.number, Case.title, Case.state.label("case_state"),
                    Case.created_at.label("filed_at"), Case.deadline_at, Case.created_by_id.label("operator_id"),
                    func.coalesce(func.nullif(filer.display_name, ""), filer.username).label("operator"),
                    Department.code.label("unit_code"), Department.name.label("unit"),
                    Call.arrived_at.label("call_at"), Call.linkedid, Call.recording.label("call_recording"),
                    _first("posted").label("posted_at"), _first("accepted").label("accepted_at"),
                    _first("answered").label("first_answered_at"), forwards.label("forwards"),
                    answer.at.label("answered_at"), task.id.label("task_id"), task.state.label("task_state"),
                    outcome, task.satisfaction, task.completed_at.label("informed_at"),
                    to_informed.label("answer_to_informed_s"))
             .select_from(Case)
             # outer, though every case has its unit: the summary, which reads no unit, then skips the join
             .outerjoin(Department, Department.id == Case.department_id)
             .outerjoin(filer, filer.id == Case.created_by_id)
             .outerjoin(Call, Call.id == Case.call_id)
             .outerjoin(joined, task_join)
             .outerjoin(answer, answer.id == task.answer_event_id)
             .where(*period))
    query = query.where(*_conditions(flt, now, outcome, task, answer))
    return query.order_by(Case.created_at, Case.id)


def _conditions(flt: LogFilter, now: datetime, outcome, task, answer) -> list:
    found: list = []
    for operator in (flt.operator, flt.own_cases_of):
        if operator is not None:
            found.append(Case.created_by_id == operator)
    if flt.unit:
        found.append(Department.code == flt.unit)
    if flt.outcome:
        found.append(outcome == flt.outcome)
    if flt.satisfaction == "none":
        found.append(task.satisfaction.is_(None))
    elif flt.satisfaction is not None:
        found.append(task.satisfaction == flt.satisfaction)
    if flt.overdue:
        found.append(Case.deadline_at < now)
    if flt.waiting_hours is not None:
        found.append(and_(task.state.in_(OPEN_STATES), answer.at < now - timedelta(hours=flt.waiting_hours)))
    return found


# ------------------------------------------------------------------ rows


@dataclass
class LogRow:
    values: dict[str, Any]
    forwarded_to: list[str] = field(default_factory=list)  # unit names, in order
    attempts: list[dict[str, Any]] = field(default_factory=list)  # at, operator, result, outcome

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None


def _lateral(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def rows(session: Session, flt: LogFilter, zone: ZoneInfo, now: datetime, limit: int | None = None) -> Iterator[LogRow]:
    """The log's rows, fetched ``CHUNK`` at a time (never the whole set in memory), each with its
    forwards and attempts (two queries per chunk)."""
    query = log_select(flt, zone, now, lateral=_lateral(session))
    if limit is not None:
        query = query.limit(limit)
    result = session.execute(query.execution_options(yield_per=CHUNK))
    for chunk in result.mappings().partitions():
        found = [LogRow(dict(row)) for row in chunk]
        _add_paths(session, found)
        yield from found


def _add_paths(session: Session, found: list[LogRow]) -> None:
    by_case = {row.case_id: row for row in found}
    ids = list(by_case)
    target = CaseEvent.detail["to_unit"].as_string()
    forwards = session.execute(
        select(CaseEvent.case_id, func.coalesce(Department.name, target))
        .outerjoin(Department, Department.code == target)
        .where(CaseEvent.case_id.in_(ids), CaseEvent.kind == "forwarded").order_by(CaseEvent.case_id, CaseEvent.id))
    for case_id, unit in forwards:
        by_case[case_id].forwarded_to.append(unit or "")
    attempts = session.execute(
        select(CallbackTask.case_id, CallbackTask.id, CallbackAttempt.id, CallbackAttempt.started_at,
               func.coalesce(func.nullif(User.display_name, ""), User.username), CallbackAttempt.dialler,
               CallbackAttempt.result, CallbackAttempt.outcome, CallbackAttempt.recording)
        .join(CallbackTask, CallbackTask.id == CallbackAttempt.task_id)
        .outerjoin(User, User.id == CallbackAttempt.operator_id)
        .where(CallbackTask.case_id.in_(ids), CallbackTask.reason == CallbackReason.ANSWER)
        .order_by(CallbackTask.case_id, CallbackAttempt.started_at, CallbackAttempt.id))
    for case_id, task_id, attempt_id, at, operator, dialler, result, outcome, recording in attempts:
        by_case[case_id].attempts.append({
            "task_id": task_id, "id": attempt_id, "at": at, "operator": operator or dialler,
            "result": _value(result), "outcome": _value(outcome), "recording": bool(recording)})


def _value(member: Any) -> str | None:
    return getattr(member, "value", member)


# ------------------------------------------------------------------ figures


def summary(session: Session, flt: LogFilter, zone: ZoneInfo, now: datetime) -> dict[str, Any]:
    """The figures of the filtered log (see the module docstring), aggregated in SQL: counted per
    operator (the one who filed the case: its callback is theirs first) and in all, in one pass over
    the log on PostgreSQL (``GROUPING SETS``, the percentiles with the counts); on SQLite the totals
    are the sums of the operators' groups and the percentiles a second pass."""
    postgresql = _lateral(session)
    log = log_select(flt, zone, now, lateral=postgresql).order_by(None).subquery("log")
    columns = [*_figure_columns(log), *(_count(log.c.satisfaction == grade).label(f"grade_{grade}")
                                        for grade in GRADES)]
    if postgresql:
        grouped, totals, (median, p90) = _one_pass(session, log, columns)
    else:
        grouped = session.execute(select(log.c.operator_id, log.c.operator, *columns)
                                  .group_by(log.c.operator_id, log.c.operator)
                                  .order_by(log.c.operator, log.c.operator_id)).mappings().all()
        totals = {column.name: sum(int(row[column.name]) for row in grouped) for column in columns}
        median, p90 = percentiles(session, log.c.answer_to_informed_s, (0.5, 0.9))
    return {
        "cases": totals["cases"], **_rates(totals),
        "outcomes": {name: totals[name] for name in OUTCOMES if name != "none"},
        "median_answer_to_informed_s": median, "p90_answer_to_informed_s": p90,
        "satisfaction": {str(grade): totals[f"grade_{grade}"] for grade in GRADES},
        "per_operator": [{"operator_id": row["operator_id"], "operator": row["operator"], **_rates(row),
                          "unreachable": int(row["unreachable"])} for row in grouped if row["with_callback"]],
    }


def _one_pass(session: Session, log, columns: list) -> tuple[list, dict[str, int], list[float | None]]:
    """PostgreSQL: the operators' groups and the total row (``grouping() = 1``) of one scan, the
    total's percentiles computed in the same scan."""
    wanted = [func.percentile_cont(fraction).within_group(log.c.answer_to_informed_s).label(name)
              for name, fraction in (("median", 0.5), ("p90", 0.9))]
    found = session.execute(
        select(log.c.operator_id, log.c.operator, func.grouping(log.c.operator_id).label("is_total"), *columns, *wanted)
        .group_by(func.grouping_sets(tuple_(log.c.operator_id, log.c.operator), tuple_()))
        .order_by(log.c.operator, log.c.operator_id)).mappings().all()
    total = next(row for row in found if row["is_total"])
    grouped = [row for row in found if not row["is_total"]]
    figures = [float(total[name]) if total[name] is not None else None for name in ("median", "p90")]
    return grouped, {column.name: int(total[column.name]) for column in columns}, figures


def _count(condition) -> Any:
    """The rows where ``condition`` holds (0, not null, over no rows)."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _figure_columns(log) -> list:
    """Counts over the log's rows: cases, outcomes, attempts on the informing tasks, grades."""
    attempts = select(func.count(CallbackAttempt.id)).where(CallbackAttempt.task_id == log.c.task_id) \
        .correlate(log).scalar_subquery()
    return [func.count().label("cases"), _count(log.c.outcome != "none").label("with_callback"),
            *(_count(log.c.outcome == name).label(name) for name in OUTCOMES if name != "none"),
            _count(attempts > 0).label("attempted"),
            func.coalesce(func.sum(case((log.c.outcome == "informed", attempts), else_=0)), 0).label("informed_attempts"),
            _count(log.c.satisfaction.is_not(None)).label("graded"),
            _count(log.c.satisfaction >= SATISFIED).label("satisfied")]


def _rates(counts: Mapping[str, Any]) -> dict[str, Any]:
    """The shares of :func:`_figure_columns`' counts (null where nothing to share)."""
    with_callback, informed, graded = (int(counts[name]) for name in ("with_callback", "informed", "graded"))
    return {"with_callback": with_callback, "attempted": int(counts["attempted"]), "informed": informed,
            "completion_rate": informed / with_callback if with_callback else None,
            "attempts_per_completed": int(counts["informed_attempts"]) / informed if informed else None,
            "graded": graded, "satisfaction_rate": int(counts["satisfied"]) / graded if graded else None}


def percentiles(session: Session, column, fractions: Iterable[float]) -> list[float | None]:
    """The continuous percentiles (linear interpolation, as PostgreSQL's ``percentile_cont``) of
    ``column`` over its non-null values."""
    fractions = list(fractions)
    if session.get_bind().dialect.name == "postgresql":
        values = session.execute(select(*(func.percentile_cont(f).within_group(column) for f in fractions))
                                 .where(column.is_not(None))).one()
        return [float(v) if v is not None else None for v in values]
    # SQLite has no percentile_cont: rank the values, then interpolate between the two ranks around
    # 1 + f * (n - 1) (the same definition), reading only those rows.
    n = session.scalar(select(func.count(column)))
    if not n:
        return [None for _ in fractions]
    ranked = select(column.label("v"), func.row_number().over(order_by=column).label("rank")) \
        .where(column.is_not(None)).subquery("ranked")
    positions = [1 + f * (n - 1) for f in fractions]
    wanted = sorted({int(p) for p in positions} | {min(int(p) + 1, n) for p in positions})
    at_rank = dict(session.execute(select(ranked.c.rank, ranked.c.v).where(ranked.c.rank.in_(wanted))).all())
    found: list[float | None] = []
    for position in positions:
        low = int(position)
        below, above = float(at_rank[low]), float(at_rank[min(low + 1, n)])
        found.append(below + (position - low) * (above - below))
    return found


def operators(session: Session) -> list[tuple[int, str]]:
    """The people who file cases (id, name), for the operator filter."""
    return [(uid, name) for uid, name in session.execute(
        select(User.id, func.coalesce(func.nullif(User.display_name, ""), User.username))
        .where(User.role.in_((Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN))).order_by(User.username))]


def units(session: Session) -> list[tuple[str, str]]:
    return list(session.execute(select(Department.code, Department.name).where(Department.retired_at.is_(None))
                                .order_by(Department.code)).all())


def case_timeline(session: Session, number: str, own_cases_of: int | None = None) -> dict[str, Any] | None:
    """A case's whole timeline and the recordings of its calls (the call, each callback attempt)."""
    found = session.execute(select(Case.id, Case.created_by_id, Call.linkedid, Call.recording, Call.message_file)
                            .outerjoin(Call, Call.id == Case.call_id).where(Case.number == number)).one_or_none()
    if found is None or (own_cases_of is not None and found.created_by_id != own_cases_of):
        return None
    events = [{"at": at, "kind": kind, "actor": actor, "detail": detail} for at, kind, actor, detail in session.execute(
        select(CaseEvent.at, CaseEvent.kind, CaseEvent.actor, CaseEvent.detail)
        .where(CaseEvent.case_id == found.id).order_by(CaseEvent.at, CaseEvent.id))]
    attempts = session.execute(
        select(CallbackAttempt.task_id, CallbackAttempt.id, CallbackAttempt.started_at)
        .join(CallbackTask, CallbackTask.id == CallbackAttempt.task_id)
        .where(CallbackTask.case_id == found.id, CallbackAttempt.recording.is_not(None))
        .order_by(CallbackAttempt.started_at)).all()
    return {"events": events, "linkedid": found.linkedid, "recording": found.recording,
            "message_file": found.message_file,
            "attempts": [{"task_id": t, "id": a, "at": at} for t, a, at in attempts]}


__all__ = ["OUTCOMES", "FilterError", "LogFilter", "LogRow", "case_timeline", "log_select", "operators",
           "parse_filter", "percentiles", "rows", "summary", "units"]

