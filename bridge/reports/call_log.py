"""The supervisors' call log: one row per call of a period, newest first, with its filters, the
case filed from it, and its file (CSV of exactly what is filtered).

Filters (the URL's query): ``from``/``to`` (days of the site's zone, [from, to), on the arrival;
default this month), ``operator`` (the user who answered), ``disposition``, ``caller`` (a part of
the caller's number; ``exact=1``: the whole number as stored).  An operator sees only the calls
they answered (``own_calls_of``, a limit, not a filter).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bridge.db.models import Call, CallDisposition, Case, User
from bridge.i18n import N_, translations
from bridge.pbx.waits import menu_and_queue
from bridge.reports.callback_log import CHUNK, _integer
from bridge.reports.exports import EXPORT_LOCALE, csv_file, local_naive
from bridge.reports.labels import DISPOSITION_LABELS
from bridge.site.periods import FilterError, Period, parse_period

DISPOSITIONS = tuple(DISPOSITION_LABELS)
MAX_CALLER = 32


@dataclass(frozen=True)
class CallFilter:
    period: Period
    operator: int | None = None  # the user who answered
    disposition: str | None = None  # one of DISPOSITIONS
    caller: str | None = None  # part of the caller's number (or all of it: exact)
    exact: bool = False
    own_calls_of: int | None = None  # an operator's log: the calls they answered

    def query(self, given: Mapping[str, str]) -> dict[str, str]:
        """The filter as URL query parameters (``from``/``to`` only where given)."""
        values = {"from": given.get("from") and self.period.start, "to": given.get("to") and self.period.end,
                  "operator": self.operator, "disposition": self.disposition, "caller": self.caller,
                  "exact": "1" if self.exact and self.caller else None}
        return {key: str(value) for key, value in values.items() if value not in (None, "")}

    def limited_to(self, user_id: int) -> CallFilter:
        return replace(self, own_calls_of=user_id)


def parse_call_filter(params: Mapping[str, str], default: Period) -> CallFilter:
    """The filter of a query string (empty values are no filter); :class:`FilterError` names the
    first parameter that cannot be used."""
    def text(name: str) -> str:
        return (params.get(name) or "").strip()

    period = parse_period(text("from"), text("to"), default)
    operator = _integer(text("operator"), "operator", N_("must be a user id (a whole number)")) \
        if text("operator") else None
    disposition = text("disposition") or None
    if disposition is not None and disposition not in DISPOSITIONS:
        raise FilterError("disposition", N_("must be one of %(choices)s"), choices=", ".join(DISPOSITIONS))
    caller = text("caller") or None
    if caller is not None and len(caller) > MAX_CALLER:
        raise FilterError("caller", N_("must be at most %(max)d characters"), max=MAX_CALLER)
    if text("exact") not in ("", "0", "1"):
        raise FilterError("exact", N_("must be 1 (the whole number) or 0 (a part of it)"))
    return CallFilter(period, operator, disposition, caller, text("exact") == "1")


def log_select(flt: CallFilter, zone: ZoneInfo):
    """One row per call of the filter, newest first."""
    begin, end = flt.period.instants(zone)
    filed = select(func.min(Case.number)).where(Case.call_id == Call.id).scalar_subquery()
    query = (select(Call.id, Call.linkedid, Call.arrived_at, Call.caller_number, Call.caller_name,
                    Call.dialled_number, Call.queue_wait_s, Call.answered_at, Call.ended_at, Call.talk_s,
                    Call.disposition, Call.hangup_cause, Call.hangup_cause_text, Call.recording, Call.message_file,
                    func.coalesce(func.nullif(User.display_name, ""), User.username).label("operator"),
                    filed.label("case_number"))
             .outerjoin(User, User.id == Call.operator_id)
             .where(Call.arrived_at >= begin, Call.arrived_at < end))
    for operator in (flt.operator, flt.own_calls_of):
        if operator is not None:
            query = query.where(Call.operator_id == operator)
    if flt.disposition:
        query = query.where(Call.disposition == CallDisposition(flt.disposition))
    if flt.caller:
        query = query.where(Call.caller_number == flt.caller if flt.exact
                            else Call.caller_number.contains(flt.caller, autoescape=True))
    return query.order_by(Call.arrived_at.desc(), Call.id.desc())


def _row(values: Mapping[str, Any]) -> dict[str, Any]:
    row = dict(values)
    row["disposition"] = getattr(row["disposition"], "value", row["disposition"])
    row["menu_s"] = menu_and_queue(row["arrived_at"], row["queue_wait_s"], row["answered_at"], row["ended_at"])[0]
    return row


def rows(session: Session, flt: CallFilter, zone: ZoneInfo, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """The log's rows, ``CHUNK`` at a time, each with its menu seconds."""
    query = log_select(flt, zone)
    if limit is not None:
        query = query.limit(limit)
    for row in session.execute(query.execution_options(yield_per=CHUNK)).mappings():
        yield _row(row)


def count(session: Session, flt: CallFilter, zone: ZoneInfo) -> int:
    return session.scalar(select(func.count()).select_from(log_select(flt, zone).order_by(None).subquery()))


def csv_columns(zone: ZoneInfo):
    """(header, width, kind, value of a row): the log's CSV, in Chinese (exports.EXPORT_LOCALE)."""
    local = local_naive(zone)
    _ = translations(EXPORT_LOCALE).gettext
    return (
        (_("Arrived"), 17, "date", lambda r: local(r["arrived_at"])),
        (_("Caller number"), 14, "text", lambda r: r["caller_number"]),
        (_("Caller name"), 12, "text", lambda r: r["caller_name"]),
        (_("Dialled number"), 10, "text", lambda r: r["dialled_number"]),
        (_("Menu (s)"), 8, "number", lambda r: r["menu_s"]),
        (_("Queue wait (s)"), 8, "number", lambda r: r["queue_wait_s"]),
        (_("Operator"), 12, "text", lambda r: r["operator"] or ""),
        (_("Talk (s)"), 8, "number", lambda r: r["talk_s"]),
        (_("Disposition"), 12, "text", lambda r: _(DISPOSITION_LABELS.get(r["disposition"], r["disposition"]))),
        (_("Hangup cause"), 20, "text", lambda r: cause_text(r) if r["disposition"] == "failed" else ""),
        (_("Case"), 14, "text", lambda r: r["case_number"] or ""),
    )


def cause_text(row: Mapping[str, Any]) -> str:
    """"34 Circuit/channel congestion": Asterisk's cause code and its text."""
    return " ".join(str(part) for part in (row["hangup_cause"], row["hangup_cause_text"]) if part not in (None, ""))


def csv_chunks(db, flt: CallFilter, zone: ZoneInfo) -> Iterator[bytes]:
    """The filtered log as CSV (BOM, Chinese headers), streamed a chunk at a time."""
    with db.session(readonly=True) as session:
        yield from csv_file(csv_columns(zone), rows(session, flt, zone))

