"""The case-status phone line's decisions (the FastAGI exchange itself is tested on the real Asterisk)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bridge.cases.service import file_case
from bridge.config import validate
from bridge.db.models import CallbackReason, CallbackState, CallbackTask, CaseState
from bridge.departments.service import ensure_shipped_units
from bridge.health import Health
from bridge.live import LiveEvents
from bridge.pbx.agi import StatusAnswer, case_number_from_digits, look_up, phone_status, prompts_for
from bridge.pbx.service import PbxService
from tests.cases.conftest import valid_form
from tests.site.host_clock import host_clock

SECRETS = {"HOTLINE_BRIDGE_AMI_SECRET": "x", "HOTLINE_BRIDGE_SESSION_SECRET": "y"}
# 00:30 on 1 January 2027 in Beijing (the site's zone); still 2026 on a UTC host.
NEW_YEARS_NIGHT = datetime(2026, 12, 31, 16, 30, tzinfo=timezone.utc)
CALLER = "13912345678"


@pytest.mark.parametrize(("digits", "number"), [
    ("2026000123", "96811-2026-000123"),
    ("123", "96811-2026-000123"),
    ("000123", "96811-2026-000123"),
    ("", None),
    ("12345678", None),
    ("1999000001", None),
])
def test_keyed_digits_to_case_number(digits, number):
    assert case_number_from_digits(digits, 2026) == number


@pytest.mark.parametrize(("state", "pending", "heard"), [
    (CaseState.QUEUED, False, "filed"),
    (CaseState.POSTED, False, "filed"),
    (CaseState.ACCEPTED, False, "accepted"),
    (CaseState.FORWARDED, False, "accepted"),
    (CaseState.REOPENED, False, "accepted"),
    (CaseState.ANSWERED, True, "callback_pending"),
    (CaseState.ANSWERED, False, "answered"),
    (CaseState.CLOSED, False, "answered"),
])
def test_what_the_caller_hears(state, pending, heard):
    assert phone_status(state, pending) == heard


def test_prompts_say_the_sequence_then_the_status():
    assert prompts_for(StatusAnswer("callback_pending", "96811-2026-000120")) == [
        "case-number-is", "digits/1", "digits/2", "digits/0", "status-callback-pending"]
    assert prompts_for(StatusAnswer("answered", "96811-2026-000007", offered=True))[0] == "case-offered"
    assert prompts_for(StatusAnswer("not_found")) == ["case-not-found"]


def _file(session, config, now, **form):
    ensure_shipped_units(session)
    return file_case(session, valid_form(call_linkedid=None, **form), user=None, now=now,
                     zone=config.site.zone)


def test_a_keyed_123_on_new_years_night_is_this_years_case_on_a_utc_host(db):
    """Defect 1 of issue 9: case numbers took the site's year, the status line the host's."""
    config = validate({}, environ=SECRETS)
    with db.session() as session:
        number = _file(session, config, NEW_YEARS_NIGHT).number
    assert number == "96811-2027-000001"
    with host_clock(NEW_YEARS_NIGHT, "UTC"):
        server = PbxService(config, db, Health(), LiveEvents()).agi   # as the daemon builds it
        assert server._look_up("1", "") == StatusAnswer("filed", "96811-2027-000001")


def _callback(session, case, state):
    session.add(CallbackTask(case_id=case.id, reason=CallbackReason.ANSWER, phone=CALLER, state=state,
                             due_at=NEW_YEARS_NIGHT, waiting_since=NEW_YEARS_NIGHT, assigned_at=NEW_YEARS_NIGHT))


def test_the_caller_is_offered_the_one_case_still_under_way(db):
    """Open for its unit, or answered with the hotline's callback still to make; an answered case
    whose caller was called back is done (the unit's view: bridge.cases.service.OPEN_STATES)."""
    config = validate({}, environ=SECRETS)
    with db.session() as session:
        called_back = _file(session, config, NEW_YEARS_NIGHT)
        called_back.state = CaseState.ANSWERED
        _callback(session, called_back, CallbackState.DONE)
        session.flush()
        assert look_up(session, "", CALLER, 2027) == StatusAnswer("not_found")

        waiting = _file(session, config, NEW_YEARS_NIGHT + timedelta(days=1))
        waiting.state = CaseState.ANSWERED
        _callback(session, waiting, CallbackState.DUE)
        session.flush()
        assert look_up(session, "", CALLER, 2027) == StatusAnswer("callback_pending", waiting.number, offered=True)

        waiting.state = CaseState.ACCEPTED
        session.flush()
        assert look_up(session, "", CALLER, 2027) == StatusAnswer("accepted", waiting.number, offered=True)

        _file(session, config, NEW_YEARS_NIGHT + timedelta(days=2))       # two under way: ask for the number
        assert look_up(session, "", CALLER, 2027) == StatusAnswer("not_found")
        # Keyed, every case is found, done or not.
        assert look_up(session, "1", CALLER, 2027) == StatusAnswer("answered", called_back.number)
