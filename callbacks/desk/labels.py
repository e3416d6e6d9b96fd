"""The words of the callback queue: states, results, outcomes, grades, and why a call is refused
or an outcome cannot be recorded, as message ids (``N_``) translated where they are shown."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bridge.i18n import N_
from callbacks.tasks import OutcomeError, Refusal

Gettext = Callable[[str], str]
LocalTime = Callable[[datetime | str | None], str]

REASON_LABELS = {"answer": N_("Tell the answer"), "missed_call": N_("Missed call")}
STATE_LABELS = {"scheduled": N_("Scheduled"), "due": N_("Due"), "in_progress": N_("Under way"),
                "done": N_("Done"), "unreachable": N_("Not reached")}
RESULT_LABELS = {"answered": N_("Answered"), "busy": N_("Busy"), "no_answer": N_("No answer"),
                 "failed": N_("Failed"), "operator_no_answer": N_("The operator's phone did not answer"),
                 "unknown": N_("Result lost: to check"), "dialling": N_("Dialling")}
OUTCOME_LABELS = {"informed": N_("Informed"), "follow_up": N_("Further question"),
                  "wrong_number": N_("Wrong number"), "do_not_call": N_("Do not call again"),
                  "voicemail": N_("Voicemail or someone else answered"),
                  "superseded": N_("Replaced by a newer answer"), "handled": N_("Done without a case")}
# The five grades of the 12345 hotlines, best first (as the form offers them).
GRADE_LABELS = {5: N_("Very satisfied"), 4: N_("Satisfied"), 3: N_("Fairly satisfied"), 2: N_("Dissatisfied"),
                1: N_("Very dissatisfied")}
CHECK_LABELS = {"check_number": N_("the number may be wrong"),
                "check_attempt": N_("the result of the last call was lost")}
MOVED_LABELS = {"forwarded": N_("The case was forwarded to another unit since this answer."),
                "follow_up_asked": N_("The caller asked a further question since: the case was reopened.")}
NEWER_ANSWER = N_("The unit answered again since: tell the caller the newest answer, shown here.")
PBX_DOWN = N_("The PBX is down: no call can be placed now.")

_REFUSALS = {
    Refusal.NOT_FOUND: N_("This callback task does not exist."),
    Refusal.CLOSED: N_("This callback is already finished."),
    Refusal.OUTSIDE_WINDOWS: N_("It is outside this caller's calling hours: the next opening is %(time)s."),
    Refusal.DO_NOT_CALL: N_("This number is on the do-not-call list: only a supervisor can lift it."),
    Refusal.ATTEMPT_LIVE: N_("A call for this task is already under way."),
    Refusal.OUTCOME_PENDING: N_("Record the outcome of the answered call first."),
    Refusal.NO_EXTENSION: N_("Your account has no desk phone extension: an administrator can add one."),
    Refusal.DEVICE_UNREGISTERED: N_("Your desk phone is not registered with the PBX: check that it is on "
                                    "and connected."),
    Refusal.DEVICE_BUSY: N_("Your desk phone is in use: finish that call first."),
    Refusal.PBX_DOWN: PBX_DOWN,
}
NOT_DUE_UNTIL = N_("This callback is not due yet: it is scheduled for %(time)s.")
NO_ANSWERED_CALL = N_("There is no answered call to record an outcome for: place the call first.")
HELD_BY = N_("%(name)s is working on this callback.")
OWNERS_TURN = N_("It is still the turn of %(name)s, who filed the case, until %(time)s.")
NEEDS_CHECK = N_("A supervisor must check this task first: %(what)s.")


def _moment(detail: str) -> datetime | None:
    try:
        return datetime.fromisoformat(detail.removeprefix("until ").strip())
    except ValueError:
        return None


def refusal_text(refusal: Refusal, detail: str, holder: str | None, _: Gettext, localtime: LocalTime) -> str:
    """Why the call (or the take, the outcome) was refused, in plain words."""
    if refusal is Refusal.NOT_DUE:
        when = _moment(detail)
        return _(NOT_DUE_UNTIL) % {"time": localtime(when)} if when else _(NO_ANSWERED_CALL)
    if refusal is Refusal.HELD_BY_OTHER:
        return _(HELD_BY) % {"name": holder or "–"}
    if refusal is Refusal.OWNERS_TURN:
        return _(OWNERS_TURN) % {"name": holder or "–", "time": localtime(_moment(detail))}
    if refusal is Refusal.NEEDS_CHECK:
        return _(NEEDS_CHECK) % {"what": _(CHECK_LABELS.get(detail, detail))}
    if refusal is Refusal.OUTSIDE_WINDOWS:
        return _(_REFUSALS[refusal]) % {"time": localtime(_moment(detail))}
    return _(_REFUSALS[refusal])


OUTCOME_ERRORS = {
    "choose": N_("Choose what happened on the call."),
    "no_case": N_("A further question needs a case: file one from this call first."),
    "grade_missing": N_("Choose how satisfied the caller is with the answer."),
    "grade_not_here": N_("A satisfaction grade goes only with “informed”."),
    "text_missing": N_("Write down the caller's further question."),
    "text_not_here": N_("The further question goes only with “further question”: use the note."),
    "text_long": N_("The question is too long: at most 2000 characters."),
    "text_private": N_("Leave the caller's phone number and full name out of the question: it is posted "
                       "on the forum."),
    "note_missing": N_("Say how the call was handled: the note is required."),
    "note_long": N_("The note is too long: at most 2000 characters."),
    "phone": N_("Not a phone number: type it as the caller gave it, e.g. 13912345678."),
    "not_missed_call": N_("Only a missed call is done without a case: record the call's outcome instead."),
}


def outcome_error_key(error: OutcomeError) -> str:
    """Which of :data:`OUTCOME_ERRORS` an :class:`OutcomeError` of ``callbacks.tasks`` (or of
    ``callbacks.missed_calls.close_without_case``) is."""
    message = str(error)
    if error.field == "note":
        return "note_long" if "longer" in message else "note_missing"
    if error.field == "task":
        return "not_missed_call"
    if error.field == "outcome":
        return "no_case" if "needs a case" in message else "choose"
    if error.field == "satisfaction":
        return "grade_missing" if "needs" in message else "grade_not_here"
    if "needs" in message:
        return "text_missing"
    if "goes only" in message:
        return "text_not_here"
    return "text_long" if "longer" in message else "text_private"
