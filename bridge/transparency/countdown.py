"""An owed case's deadline as the supervisors' pages show it: the step's label and due time as on the
case page (:func:`bridge.forum.deadline_labels.deadline_view`), and a countdown to the second that
the page's script ticks on (``data-left-s``: seconds left in the deadline's own measure, negative
once overdue; ``data-counting``: whether that measure runs now, e.g. office time at night does not)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from bridge.forum.deadline_labels import CLOCK_STARTS, LEFT, MEASURE_NOTES, OVERDUE, case_steps, deadline_view
from bridge.i18n import N_
from bridge.transparency.owed import OwedCase

DAYS_CLOCK = N_("%(days)d d %(clock)s")
TIME = "%(time)s"  # left in the formats the script fills in


def clock_text(seconds: float, tr) -> str:
    """``1:05:09``, or ``2 d 1:05:09`` from a day on (absolute; the script writes the same)."""
    whole = int(abs(seconds))
    days, rest = divmod(whole, 86400)
    clock = f"{rest // 3600}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return tr.gettext(DAYS_CLOCK) % {"days": days, "clock": clock} if days else clock


def owed_view(case: OwedCase, now: datetime, *, policy, zone, tr) -> dict[str, Any]:
    """The case's step owed now, labelled, with its countdown (``left_s`` None: deadline unknown)."""
    timeline = [{"kind": CLOCK_STARTS[case.state], "at": case.since, "detail": {"unit": case.unit_code}}]
    steps = case_steps(timeline if case.since else [], state=case.state, unit_code=case.unit_code,
                       deadline_at=case.deadline_at, policy=policy)
    view = {"number": case.number, "title": case.title, "unit_code": case.unit_code, "unit_name": case.unit_name,
            "state": case.state, "left_s": None, "counting": False, "label": "", "due_text": "", "due_iso": ""}
    if not steps or steps[-1].deadline is None:
        return view
    step = steps[-1]
    view.update(deadline_view(step, now, policy=policy, zone=zone, tr=tr, names={case.unit_code: case.unit_name}))
    view.update(number=case.number, title=case.title, state=case.state)
    overdue_format = tr.pgettext(*OVERDUE) % {"time": TIME}
    if view["overdue"]:
        left_s = -(now - step.deadline.due_at).total_seconds()
    else:
        left = policy.left(step.deadline, now)
        if left is None:
            return view
        left_s = left.total_seconds()
    measure = tr.pgettext(*MEASURE_NOTES[step.deadline.measure])
    view.update(left_s=round(left_s), counting=view["overdue"] or not view["paused"], overdue_format=overdue_format,
                left_format=tr.pgettext(*LEFT) % {"time": TIME, "measure": measure},
                days_format=tr.gettext(DAYS_CLOCK))
    view["countdown"] = (overdue_format if left_s < 0 else view["left_format"]).replace(TIME, clock_text(left_s, tr))
    return view


__all__ = ["clock_text", "owed_view"]
