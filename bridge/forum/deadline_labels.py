"""Deadlines as people read them: which step (受理 / 答复 / 追问的答复), when (site's zone, with the
weekday), and the countdown in the deadline's own measure (office time, working days, clock).

Shared by the desk's case page and the builtin board's pages.  Pure apart from the catalogue
(:func:`bridge.i18n.translations`, passed in as ``tr``); the time is passed in.

:func:`case_steps` reads a case's timeline into the steps its units owed one after the other
(each with its due time and whether it was met in time); :func:`deadline_view` labels one.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from bridge.forum.deadlines import Deadline
from bridge.i18n import NC_

STEP_LABELS = {
    "accept": NC_("deadline", "Accept by"),
    "answer": NC_("deadline", "Answer by"),
    "follow_up": NC_("deadline", "Answer the follow-up by"),
}
MEASURE_NOTES = {
    "office": NC_("deadline", "office time"),
    "working_days": NC_("deadline", "working days"),
    "clock": NC_("deadline", "clock time"),
}
WEEKDAYS = (NC_("weekday", "Mon"), NC_("weekday", "Tue"), NC_("weekday", "Wed"), NC_("weekday", "Thu"),
            NC_("weekday", "Fri"), NC_("weekday", "Sat"), NC_("weekday", "Sun"))
LEFT = NC_("deadline", "%(time)s left (%(measure)s)")
PAUSED = NC_("deadline", "the count stops outside office hours; it is stopped now")
PAUSED_DAYS = NC_("deadline", "rest days do not count; today does not")
OVERDUE = NC_("deadline", "overdue by %(time)s")
MET = NC_("deadline", "done %(time)s, in time")
MET_LATE = NC_("deadline", "done %(time)s, %(late)s late")
UNKNOWN = NC_("deadline", "deadline unknown (the working calendar does not cover it yet)")

# Case state -> the timeline entry (kind) whose time started the step owed in it.
CLOCK_STARTS = {"posted": "posted", "forwarded": "forwarded", "accepted": "accepted", "reopened": "follow_up_asked"}
# A timeline entry that starts a step -> (the step, the state that owes it).
_STARTS = {"posted": ("accept", "posted"), "forwarded": ("accept", "forwarded"),
           "accepted": ("answer", "accepted"), "follow_up_asked": ("follow_up", "reopened")}
# Entries that end the step owed: the unit acted.  A follow-up asked while a step is owed
# replaces that step (the answer to the follow-up is what is owed now).
_ENDS = ("accepted", "forwarded", "answered", "follow_up_answered")


def duration_text(delta: timedelta, tr) -> str:
    """``2 d 3 h`` / ``1 h 05 min`` / ``7 min`` (absolute), in the catalogue's words."""
    minutes = int(abs(delta).total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    if hours >= 24:
        return tr.gettext("%(days)d d %(hours)d h") % {"days": hours // 24, "hours": hours % 24}
    if hours:
        return tr.gettext("%(hours)d h %(minutes)d min") % {"hours": hours, "minutes": minutes}
    return tr.gettext("%(minutes)d min") % {"minutes": minutes}


def when_text(moment: datetime, zone, tr) -> str:
    """``2026-11-30 周一 10:00``: the date, weekday and time in the site's zone."""
    local = moment.astimezone(zone)
    return f"{local:%Y-%m-%d} {tr.pgettext(*WEEKDAYS[local.weekday()])} {local:%H:%M}"


@dataclass(frozen=True)
class OwedStep:
    """A step a unit owed on a case: the deadline (None: unknown), since when, and when it was done."""

    step: str  # accept, answer, follow_up
    unit_code: str
    since: datetime
    deadline: Deadline | None
    done_at: datetime | None = None


def deadline_view(step: OwedStep, now: datetime, *, policy, zone, tr, names: Mapping[str, str] | None = None
                  ) -> dict[str, Any]:
    """One step for a page: ``label``, ``unit``, ``due_text`` / ``due_iso`` (site's zone), ``status``
    (the countdown, overdue, or done in time / late), ``overdue`` (still owed and late), ``late``."""
    view: dict[str, Any] = {"step": step.step, "label": tr.pgettext(*STEP_LABELS[step.step]),
                            "unit_code": step.unit_code, "unit": (names or {}).get(step.unit_code, step.unit_code),
                            "measure": None, "due_text": "", "due_iso": "", "overdue": False, "late": False,
                            "done": step.done_at is not None, "paused": False}
    deadline = step.deadline
    if deadline is None:
        view["status"] = tr.pgettext(*UNKNOWN)
        return view
    view.update(measure=deadline.measure, due_text=when_text(deadline.due_at, zone, tr),
                due_iso=deadline.due_at.astimezone(zone).isoformat(),
                due_iso_utc=deadline.due_at.astimezone(timezone.utc).isoformat())
    if step.done_at is not None:
        late = step.done_at - deadline.due_at
        done = when_text(step.done_at, zone, tr)
        view["late"] = late > timedelta(0)
        view["status"] = (tr.pgettext(*MET_LATE) % {"time": done, "late": duration_text(late, tr)} if view["late"]
                          else tr.pgettext(*MET) % {"time": done})
        return view
    if deadline.is_overdue(now):
        view.update(overdue=True, late=True, status=tr.pgettext(*OVERDUE) % {
            "time": duration_text(now - deadline.due_at, tr)})
        return view
    left = policy.left(deadline, now)
    if left is None:
        view["status"] = tr.pgettext(*UNKNOWN)
        return view
    view["status"] = tr.pgettext(*LEFT) % {"time": duration_text(left, tr),
                                           "measure": tr.pgettext(*MEASURE_NOTES[deadline.measure])}
    if deadline.measure != "clock" and not policy.counting(deadline, now):
        view["paused"] = True
        view["status"] += " · " + tr.pgettext(*(PAUSED if deadline.measure == "office" else PAUSED_DAYS))
    return view


def case_steps(timeline: Iterable[Mapping[str, Any]], *, state: str, unit_code: str,
               deadline_at: datetime | None, policy) -> list[OwedStep]:
    """The steps a case's units owed, oldest first, from its timeline (``case_view``'s entries,
    in the order written).  Late thread events (``late_event``) changed nothing and are skipped.
    The step still owed takes the case's stored deadline (``deadline_at``: the one the
    overdue watch uses); the others are computed again with ``policy``."""
    steps: list[OwedStep] = []
    for entry in timeline:
        kind = str(entry["kind"])
        detail = entry.get("detail") or {}
        at = entry["at"]
        if kind == "posted" and steps:  # the post seen after a thread event: it started nothing
            continue
        if steps and steps[-1].done_at is None:
            if kind in _ENDS:
                steps[-1] = replace(steps[-1], done_at=at)
            elif kind in _STARTS:
                steps.pop()
        if kind in _STARTS:
            step, owing_state = _STARTS[kind]
            unit = str(detail.get("to_unit") or detail.get("unit") or detail.get("department") or unit_code)
            steps.append(OwedStep(step, unit, at, policy.owed(owing_state, unit, at)))
    if state in CLOCK_STARTS and steps and steps[-1].done_at is None:
        last = steps[-1]
        deadline = None
        if deadline_at is not None:
            deadline = (replace(last.deadline, due_at=deadline_at, unit_code=unit_code) if last.deadline
                        else Deadline("accept" if last.step == "accept" else "answer", unit_code, deadline_at))
        steps[-1] = replace(last, unit_code=unit_code, deadline=deadline)
    elif steps and steps[-1].done_at is None:  # closed or queued: nothing is owed any more
        steps.pop()
    return steps


def stored_step(state: str, unit_code: str, deadline_at: datetime | None) -> OwedStep | None:
    """The step owed in ``state`` when the entry that started it is not at hand: the stored
    deadline, counted in clock time."""
    kind = CLOCK_STARTS.get(state)
    if kind is None or deadline_at is None:
        return None
    step = _STARTS[kind][0]
    return OwedStep(step, unit_code, deadline_at, Deadline("accept" if step == "accept" else "answer", unit_code,
                                                          deadline_at))


__all__ = ["CLOCK_STARTS", "OwedStep", "case_steps", "deadline_view", "duration_text", "stored_step", "when_text"]
