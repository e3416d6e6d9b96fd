"""The hotline's call figures for a period [from, to) (days of the site's zone, on the call's
arrival), all aggregated in SQL (SQLite and PostgreSQL).  Definitions (also on the page and in the
API's descriptions):

* **reached the queue**: answered + abandoned in the queue (the calls an operator could take);
* **answered within 15 s** (GB/T 33358): answered calls whose queue wait was at most 15.0 s, as a
  share of the calls that reached the queue;
* **abandoned in the queue**: abandoned / reached the queue;
* **hung up in the menu**: hung_up_in_menu / the calls that reached the menu in office hours
  (answered + abandoned + hung up in the menu + status line);
* **queue wait** of answered calls: the mean and the 90th percentile (``percentile_cont`` on
  PostgreSQL, in the same scan as the counts; the same interpolation on SQLite);
* **calls per filed case**: calls answered / cases filed from the phone channel, both in the period;
* **per operator**: their answered calls, mean and 90th percentile of those calls' waits, mean talk
  time, phone cases they filed, and the share of their answered calls answered within 15 s.

An operator's figures (``operator``) count only the calls they answered and the cases they filed,
so their "reached the queue" is their answered calls.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from bridge.db.models import Call, CallDisposition, Case, CaseChannel, User
from bridge.reports.callback_log import percentiles
from bridge.reports.grouped_percentile import inline_percentile, percentile_by_group
from bridge.reports.site_clock_sql import day_index, hour_of_day
from bridge.site.periods import Period

ANSWER_WITHIN_S = 15.0  # GB/T 33358-2016
DISPOSITIONS = tuple(d.value for d in CallDisposition)
QUEUE = (CallDisposition.ANSWERED, CallDisposition.ABANDONED)
MENU = (*QUEUE, CallDisposition.HUNG_UP_IN_MENU, CallDisposition.STATUS_LINE)


@dataclass(frozen=True)
class Scope:
    """The calls a figure counts: a period's instants, and at most one operator's."""

    begin: datetime
    end: datetime
    operator: int | None = None

    def calls(self) -> list:
        found = [Call.arrived_at >= self.begin, Call.arrived_at < self.end]
        return found + ([Call.operator_id == self.operator] if self.operator is not None else [])

    def cases(self) -> list:
        found = [Case.channel == CaseChannel.PHONE, Case.created_at >= self.begin, Case.created_at < self.end]
        return found + ([Case.created_by_id == self.operator] if self.operator is not None else [])


def _count(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _answered_in_time():
    return and_(Call.disposition == CallDisposition.ANSWERED, Call.queue_wait_s <= ANSWER_WITHIN_S)


def headline(session: Session, scope: Scope) -> dict[str, Any]:
    """The period's main figures (module docstring)."""
    answered = Call.disposition == CallDisposition.ANSWERED
    inline = inline_percentile(session, 0.9, Call.queue_wait_s)
    counts = session.execute(select(
        *(_count(Call.disposition == d).label(d.value) for d in CallDisposition),
        _count(_answered_in_time()).label("within"),
        func.avg(case((answered, Call.queue_wait_s))).label("mean_wait"),
        *([inline.filter(answered).label("p90")] if inline is not None else []),
    ).where(*scope.calls())).mappings().one()
    if inline is not None:
        p90 = _float(counts["p90"])
    else:
        waits = select(Call.queue_wait_s.label("wait")).where(*scope.calls(), answered).subquery("answered_waits")
        (p90,) = percentiles(session, waits.c.wait, (0.9,))
    cases = session.scalar(select(func.count(Case.id)).where(*scope.cases()))
    by = {d: int(counts[d]) for d in DISPOSITIONS}
    queue = sum(by[d.value] for d in QUEUE)
    menu = sum(by[d.value] for d in MENU)
    return {
        "calls": sum(by.values()), "by_disposition": by, "reached_queue": queue, "reached_menu": menu,
        "answered_within_15s": int(counts["within"]), "answered_within_15s_rate": _share(int(counts["within"]), queue),
        "abandoned_in_queue_rate": _share(by["abandoned"], queue),
        "hung_up_in_menu_rate": _share(by["hung_up_in_menu"], menu),
        "mean_queue_wait_s": _float(counts["mean_wait"]),
        "p90_queue_wait_s": p90, "after_hours_messages": by["after_hours_message"],
        "status_line_calls": by["status_line"], "failed_calls": by["failed"], "cases_filed": int(cases),
        "calls_per_case": _share(by["answered"], int(cases)),
    }


def volumes(session: Session, scope: Scope, period: Period, zone: ZoneInfo) -> tuple[list, list]:
    """(by hour: index 0..23 of the site's day, by day: one entry per day of ``period``): the calls
    that arrived then, per disposition.  One grouped scan gives the (day, hour, disposition)
    counts; each list adds up those few hundred counts."""
    day = day_index(Call.arrived_at, period.start, scope.begin, scope.end, zone)
    hour = hour_of_day(Call.arrived_at, scope.begin, scope.end, zone)
    # grouped outside a subquery: PostgreSQL would not match an expression's bound constants
    inner = select(day.label("day"), hour.label("hour"), Call.disposition.label("disposition")) \
        .where(*scope.calls()).subquery()
    found = session.execute(select(inner.c.day, inner.c.hour, inner.c.disposition, func.count())
                            .group_by(inner.c.day, inner.c.hour, inner.c.disposition))
    by_hour = [dict.fromkeys(DISPOSITIONS, 0) for _ in range(24)]
    by_day = [dict.fromkeys(DISPOSITIONS, 0) for _ in period.days()]
    for day_n, hour_n, disposition, count in found:
        name = getattr(disposition, "value", disposition)
        by_hour[int(hour_n)][name] += int(count)
        if 0 <= day_n < len(by_day):
            by_day[int(day_n)][name] += int(count)
    return by_hour, by_day


def failures(session: Session, scope: Scope) -> list[dict[str, Any]]:
    """Failed calls by Asterisk's hangup cause (its code and text), the most frequent first."""
    found = session.execute(
        select(Call.hangup_cause, Call.hangup_cause_text, func.count().label("calls"))
        .where(*scope.calls(), Call.disposition == CallDisposition.FAILED)
        .group_by(Call.hangup_cause, Call.hangup_cause_text)
        .order_by(func.count().desc(), Call.hangup_cause))
    return [{"cause": cause, "text": text or "", "calls": int(calls)} for cause, text, calls in found]


def per_operator(session: Session, scope: Scope) -> list[dict[str, Any]]:
    """Each operator who answered a call or filed a phone case in the scope (by name)."""
    answered = (*scope.calls(), Call.disposition == CallDisposition.ANSWERED, Call.operator_id.is_not(None))
    inline = inline_percentile(session, 0.9, Call.queue_wait_s)
    calls = {row.operator_id: row for row in session.execute(
        select(Call.operator_id, func.count().label("answered"), func.avg(Call.queue_wait_s).label("mean_wait"),
               func.avg(Call.talk_s).label("mean_talk"), _count(Call.queue_wait_s <= ANSWER_WITHIN_S).label("within"),
               *([inline.label("p90")] if inline is not None else []))
        .where(*answered).group_by(Call.operator_id))}
    p90 = ({uid: _float(row.p90) for uid, row in calls.items()} if inline is not None
           else percentile_by_group(session, Call.operator_id, Call.queue_wait_s, 0.9, *answered))
    cases = dict(session.execute(select(Case.created_by_id, func.count()).where(
        *scope.cases(), Case.created_by_id.is_not(None)).group_by(Case.created_by_id)).all())
    ids = set(calls) | set(cases)
    names = dict(session.execute(select(User.id, func.coalesce(func.nullif(User.display_name, ""), User.username))
                                 .where(User.id.in_(ids))).all()) if ids else {}
    found = []
    for uid in ids:
        row = calls.get(uid)
        answered_n = int(row.answered) if row else 0
        found.append({
            "operator_id": uid, "operator": names.get(uid, str(uid)), "answered": answered_n,
            "mean_queue_wait_s": _float(row.mean_wait if row else None), "p90_queue_wait_s": p90.get(uid),
            "mean_talk_s": _float(row.mean_talk if row else None), "cases_filed": int(cases.get(uid, 0)),
            "answered_within_15s_rate": _share(int(row.within) if row else 0, answered_n)})
    return sorted(found, key=lambda r: (-r["answered"], r["operator"]))


def _float(value) -> float | None:
    return float(value) if value is not None else None


def call_report(session: Session, period: Period, zone: ZoneInfo, operator: int | None = None) -> dict[str, Any]:
    """Every figure of ``period`` and the headline figures of the period before it; for one
    ``operator``, their headline figures and their own row only (no volumes, no failures)."""
    begin, end = period.instants(zone)
    scope = Scope(begin, end, operator)
    before = Scope(*period.before().instants(zone), operator)
    found = {"headline": headline(session, scope), "before": headline(session, before),
             "operators": per_operator(session, scope), "by_hour": [], "by_day": [], "failures": []}
    if operator is None:
        found["by_hour"], found["by_day"] = volumes(session, scope, period, zone)
        found["failures"] = failures(session, scope)
    return found
