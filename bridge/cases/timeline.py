"""A case's timeline as people read it: each entry's kind and actor in the reader's language, the
units it names, and the text the forum carried (an answer, a forward note, a follow-up).

:func:`timeline_view` is pure: it takes the timeline of :func:`bridge.cases.service.case_view`,
the names of the units it names (:func:`unit_names`, one query) and a catalogue
(:func:`bridge.i18n.translations`).  The desk's case page and the cases API show it.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge.db.models import Department
from bridge.forum.service import LATE_EVENT
from bridge.i18n import NC_

# Every kind of case event written today (bridge.cases.service, bridge.forum.service, and the
# callbacks capability's callbacks.tasks); another kind is shown as it is stored.
KIND_LABELS = {
    "filed": NC_("timeline", "filed"),
    "posted": NC_("timeline", "posted to the forum"),
    "forum_post_failed": NC_("timeline", "posting to the forum failed"),
    "overdue": NC_("timeline", "overdue"),
    "accepted": NC_("timeline", "accepted"),
    "forwarded": NC_("timeline", "forwarded"),
    "answered": NC_("timeline", "answered"),
    "follow_up_asked": NC_("timeline", "follow-up asked"),
    "follow_up_answered": NC_("timeline", "follow-up answered"),
    "callback_scheduled": NC_("timeline", "callback scheduled"),
    "callback_not_placed": NC_("timeline", "no callback placed"),
    "callback_outcome": NC_("timeline", "called back"),
    "callback_unreachable": NC_("timeline", "caller not reached"),
    "answer_heard": NC_("timeline", "answer heard by phone, without an operator"),
}
# What a callback entry's detail says (the values callbacks.tasks writes: outcome, why, reason).
CALLBACK_NOTES = {
    "informed": NC_("timeline", "informed"),
    "follow_up": NC_("timeline", "asked a further question"),
    "wrong_number": NC_("timeline", "wrong number"),
    "do_not_call": NC_("timeline", "asked not to be called again"),
    "voicemail": NC_("timeline", "voicemail or someone else answered"),
    "check_number": NC_("timeline", "the number needs checking"),
    "max_attempts": NC_("timeline", "every attempt made"),
    "ladder_exhausted": NC_("timeline", "every retry made"),
    "no_opening": NC_("timeline", "no calling window left"),
    "handled": NC_("timeline", "dealt with (a case filed, or a note says how)"),
    "superseded": NC_("timeline", "replaced by the callback of a newer answer"),
}
GRADE_NOTE = NC_("timeline", "satisfaction %(grade)s of 5")
HEARD_VIA_NOTE = NC_("timeline", "heard the answer by phone without a person")
LATE_LABEL = NC_("timeline", "%(kind)s (arrived late, changed nothing)")
# System actors; a user's actor is their username, shown as it is.
ACTOR_LABELS = {
    "forum": NC_("timeline actor", "forum"),
    "scheduler": NC_("timeline actor", "deadline watch"),
    "system": NC_("timeline actor", "system"),
    "callbacks": NC_("timeline actor", "callbacks"),
    "pbx": NC_("timeline actor", "phone system"),
}
STEP_LABELS = {  # the step an overdue unit owes (bridge.forum.service.STEP_OWED)
    "post": NC_("timeline", "posting"),
    "accept": NC_("timeline", "acceptance"),
    "answer": NC_("timeline", "answer"),
}
STEP_OWED_LABEL = NC_("timeline", "owes: %(step)s")
# How an answer was heard without an operator (answer_heard's "via").
HEARD_VIA_LABELS = {
    "status_line": NC_("timeline", "on the status line"),
    "voice_callback": NC_("timeline", "on an automated callback"),
}
# Where an entry's detail names a unit: the unit that acted, the one a forward went to.
UNIT_KEYS = ("unit", "department")
TO_UNIT_KEY = "to_unit"


def unit_codes(timeline: Iterable[Mapping[str, Any]]) -> set[str]:
    codes = set()
    for entry in timeline:
        detail = entry.get("detail") or {}
        codes.update(str(detail[key]) for key in (*UNIT_KEYS, TO_UNIT_KEY) if detail.get(key))
    return codes


def unit_names(session: Session, codes: Iterable[str]) -> dict[str, str]:
    """Unit code -> name (retired units too: an old entry still names them)."""
    codes = sorted(set(codes))
    if not codes:
        return {}
    return dict(session.execute(select(Department.code, Department.name).where(Department.code.in_(codes))).all())


def _label(table: Mapping[str, tuple[str, str]], key: str, tr) -> str:
    entry = table.get(key)
    return tr.pgettext(*entry) if entry else key


def timeline_view(timeline: Iterable[Mapping[str, Any]], names: Mapping[str, str], tr) -> list[dict[str, Any]]:
    """Each entry with ``label`` (its kind), ``actor`` (translated when a system's), ``unit`` /
    ``to_unit`` (names), ``person`` (the spokesperson), ``text`` and ``note`` (an owed step, an error)."""
    return [_entry(entry, names, tr) for entry in timeline]


def _entry(entry: Mapping[str, Any], names: Mapping[str, str], tr) -> dict[str, Any]:
    detail = dict(entry.get("detail") or {})
    kind = str(entry["kind"])
    if kind == LATE_EVENT:
        label = tr.pgettext(*LATE_LABEL) % {"kind": _label(KIND_LABELS, str(detail.get("forum_event", "")), tr)}
    else:
        label = _label(KIND_LABELS, kind, tr)
    unit_code = next((str(detail[key]) for key in UNIT_KEYS if detail.get(key)), None)
    to_code = detail.get(TO_UNIT_KEY)
    note = ""
    if kind == "overdue" and detail.get("step"):
        note = tr.pgettext(*STEP_OWED_LABEL) % {"step": _label(STEP_LABELS, str(detail["step"]), tr)}
    elif kind == "forum_post_failed":
        note = str(detail.get("error") or "")
    elif kind.startswith("callback_"):
        note = _callback_note(detail, tr)
    elif kind == "answer_heard" and detail.get("via"):
        note = _label(HEARD_VIA_LABELS, str(detail["via"]), tr)
    return {
        "at": entry["at"],
        "kind": kind,
        "label": label,
        "actor": _label(ACTOR_LABELS, str(entry.get("actor") or ""), tr),
        "unit": names.get(unit_code, unit_code) if unit_code else None,
        "to_unit": names.get(str(to_code), str(to_code)) if to_code else None,
        "person": str(detail.get("actor") or "") or None,
        "text": str(detail.get("text") or "") or None,
        "note": note or None,
    }


def _callback_note(detail: Mapping[str, Any], tr) -> str:
    """A callback entry's outcome (with its grade), or why the caller was not reached or called."""
    what = detail.get("outcome") or detail.get("why") or detail.get("reason")
    parts = [_label(CALLBACK_NOTES, str(what), tr)] if what else []
    if detail.get("satisfaction"):
        parts.append(tr.pgettext(*GRADE_NOTE) % {"grade": detail["satisfaction"]})
    if detail.get("via") in HEARD_VIA_LABELS:  # (a missed call's "case_filed" is no answer heard)
        parts.append(tr.pgettext(*HEARD_VIA_NOTE))
    return " · ".join(parts)


__all__ = ["ACTOR_LABELS", "KIND_LABELS", "timeline_view", "unit_codes", "unit_names"]
