"""The case-status phone line's decisions (the FastAGI exchange itself is tested on the real Asterisk)."""
from __future__ import annotations

import pytest

from bridge.db.models import CaseState
from bridge.pbx.agi import StatusAnswer, case_number_from_digits, phone_status, prompts_for


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
