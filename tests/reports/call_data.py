"""A hand-built set of calls (and the phone cases filed from them) for the call figures and the call
log, and every figure worked out from these lists in plain Python (never with the report's SQL).

Times are written on Shanghai's wall clock (UTC+8).  Call 1 arrives at 23:59:30 on 1 December,
call 2 at 00:00:10 on 2 December: they fall in different days and hours.  Waits of exactly 15 s
(in time) and 15.5 s (late).  The period is December 2026; the one before it November.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from bridge.accounts.service import add_user
from bridge.db.models import Call, CallDisposition, Case, CaseChannel, Department, Honorific, Role
from bridge.departments.service import ensure_shipped_units
from bridge.site.periods import Period

ZONE = ZoneInfo("Asia/Shanghai")
PASSWORD = "correct horse battery"
DECEMBER = Period(date(2026, 12, 1), date(2027, 1, 1))
NOVEMBER = Period(date(2026, 11, 1), date(2026, 12, 1))
TODAY = date(2026, 12, 3)
USERS = {"operator": "8001", "operator2": "8003", "supervisor": "8002", "admin": None, "spokesperson": None}


def local(month: int, day: int, hour: int, minute: int = 0, second: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=ZONE).astimezone(timezone.utc)


@dataclass
class Made:
    at: datetime
    disposition: str
    operator: str | None = None
    wait: float | None = None
    talk: float | None = None
    number: str = "13912345678"
    cause: tuple[int, str] | None = None
    recording: str | None = None
    message: str | None = None
    case: str | None = None  # the number of the phone case filed from it
    menu: float = 6.0  # seconds before the queue


CALLS = [
    Made(local(12, 1, 23, 59, 30), "answered", "operator", 15.0, 120, case="2026000101"),
    Made(local(12, 2, 0, 0, 10), "answered", "operator", 15.5, 60, number="13800138000"),
    Made(local(12, 2, 9, 10), "answered", "operator2", 3.0, 200, case="2026000102"),
    Made(local(12, 2, 9, 40), "abandoned", wait=40.0),
    Made(local(12, 2, 10, 5), "hung_up_in_menu"),
    Made(local(12, 2, 10, 20), "status_line"),
    Made(local(12, 2, 11, 0), "failed", cause=(34, "Circuit/channel congestion")),
    Made(local(12, 2, 19, 30), "after_hours_message", number="13700137000", message="msg-1764.wav"),
    Made(local(12, 3, 11, 30), "failed", cause=(34, "Circuit/channel congestion")),
    Made(local(12, 3, 14, 0), "failed", cause=(38, "Network out of order")),
    Made(local(12, 3, 15, 0), "answered", "operator2", 8.25, 90, recording="rec-1764.wav"),
    Made(local(12, 3, 16, 0), "answered", "operator", 30.0, 45, case="2026000103"),
    Made(local(12, 3, 16, 30), "abandoned", wait=12.0),
    # November (the period before) and just after December
    Made(local(11, 30, 23, 59, 59), "answered", "operator", 5.0, 30, case="2026000090"),
    Made(local(11, 15, 10), "abandoned", wait=70.0),
    Made(local(1, 1, 0, 0, 0, year=2027), "answered", "operator", 1.0, 10),
]
WALK_IN_CASE_AT = local(12, 2, 12)  # filed by operator2: a case, but not from the phone


def build(session) -> dict[str, int]:
    """Units, a user per role (two operators), the calls and their cases; {username: id}."""
    ensure_shipped_units(session, local(11, 1, 0))
    users = {}
    for name, extension in USERS.items():
        role = Role.OPERATOR if name.startswith("operator") else Role(name)
        user = add_user(session, name, role, PASSWORD, extension=extension, display_name=f"{name} person",
                        department_code="CITY-LJQ" if role is Role.SPOKESPERSON else None, now=local(11, 1, 0))
        users[name] = user.id
    unit = session.query(Department).order_by(Department.code).first()
    for index, made in enumerate(CALLS):
        call = _call(made, index, users)
        session.add(call)
        session.flush()
        if made.case:
            session.add(_case(made.case, unit, users[made.operator], made.at + timedelta(minutes=3), call.id))
    session.add(_case("2026000104", unit, users["operator2"], WALK_IN_CASE_AT, None, CaseChannel.WALK_IN))
    session.flush()
    return users


def _call(made: Made, index: int, users: dict[str, int]) -> Call:
    queued = made.at + timedelta(seconds=made.menu)
    answered = queued + timedelta(seconds=made.wait) if made.disposition == "answered" else None
    ended = (answered + timedelta(seconds=made.talk) if answered else
             queued + timedelta(seconds=made.wait or 0))
    return Call(linkedid=f"1764700000.{index}", caller_number=made.number, caller_name="王先生" if index == 0 else "",
                dialled_number="96811", arrived_at=made.at, queue_wait_s=made.wait, answered_at=answered,
                ended_at=ended, talk_s=made.talk, operator_id=users[made.operator] if made.operator else None,
                extension=USERS[made.operator] if made.operator else None,
                hangup_cause=made.cause[0] if made.cause else 16,
                hangup_cause_text=made.cause[1] if made.cause else "Normal Clearing",
                disposition=CallDisposition(made.disposition), recording=made.recording, message_file=made.message)


def _case(number, unit, by: int, at: datetime, call_id, channel=CaseChannel.PHONE) -> Case:
    return Case(number=number, call_id=call_id, channel=channel, department_id=unit.id, caller_surname="王",
                caller_honorific=Honorific.MR, title="路灯不亮", description="路灯不亮", caller_phone="13912345678",
                created_by_id=by, created_at=at, updated_at=at)


# ---------------------------------------------------------------- what the figures must say


def in_period(period: Period, at: datetime) -> bool:
    return period.start <= at.astimezone(ZONE).date() < period.end


def p90(values: list[float]) -> float | None:
    """The linear interpolation percentile_cont makes (statistics' "inclusive" method)."""
    values = sorted(values)
    if len(values) < 2:
        return values[0] if values else None
    return statistics.quantiles(values, n=10, method="inclusive")[8]


def chosen(period: Period, operator: str | None = None) -> list[Made]:
    return [c for c in CALLS if in_period(period, c.at) and (operator is None or c.operator == operator)]


def cases_filed(period: Period, operator: str | None = None) -> int:
    return sum(1 for c in CALLS if c.case and in_period(period, c.at + timedelta(minutes=3))
               and (operator is None or c.operator == operator))


def expected(period: Period, operator: str | None = None) -> dict:
    calls = chosen(period, operator)
    of = lambda kind: [c for c in calls if c.disposition == kind]  # noqa: E731
    answered, abandoned = of("answered"), of("abandoned")
    queue = len(answered) + len(abandoned)
    menu = queue + len(of("hung_up_in_menu")) + len(of("status_line"))
    within = [c for c in answered if c.wait <= 15]
    waits = [c.wait for c in answered]
    cases = cases_filed(period, operator)
    return {
        "calls": len(calls), "reached_queue": queue, "reached_menu": menu, "answered_within_15s": len(within),
        "answered_within_15s_rate": len(within) / queue if queue else None,
        "abandoned_in_queue_rate": len(abandoned) / queue if queue else None,
        "hung_up_in_menu_rate": len(of("hung_up_in_menu")) / menu if menu else None,
        "mean_queue_wait_s": statistics.fmean(waits) if waits else None, "p90_queue_wait_s": p90(waits),
        "after_hours_messages": len(of("after_hours_message")), "status_line_calls": len(of("status_line")),
        "failed_calls": len(of("failed")), "cases_filed": cases,
        "calls_per_case": len(answered) / cases if cases else None,
    }


def by_hour(period: Period) -> list[int]:
    counts = [0] * 24
    for c in chosen(period):
        counts[c.at.astimezone(ZONE).hour] += 1
    return counts


def by_day(period: Period) -> dict[date, int]:
    counts = {day: 0 for day in period.days()}
    for c in chosen(period):
        counts[c.at.astimezone(ZONE).date()] += 1
    return counts


def per_operator(period: Period, name: str) -> dict:
    answered = [c for c in chosen(period, name) if c.disposition == "answered"]
    waits = [c.wait for c in answered]
    return {"answered": len(answered), "mean_queue_wait_s": statistics.fmean(waits), "p90_queue_wait_s": p90(waits),
            "mean_talk_s": statistics.fmean(c.talk for c in answered), "cases_filed": cases_filed(period, name),
            "answered_within_15s_rate": sum(w <= 15 for w in waits) / len(waits)}
