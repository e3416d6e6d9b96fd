"""`hotline-bridge sandbox phones`: SIPp desk phones and the carrier's far end answer what the
sandbox Asterisk sends them (the README's newcomer hears a callback ring through them)."""
from __future__ import annotations

import pytest

from bridge.pbx import sandbox_phones
from bridge.pbx.sandbox import TRUNK_ENDPOINT
from tests.waiting import wait_until

pytestmark = [pytest.mark.asterisk, pytest.mark.timeout(120)]


def up_channels(asterisk, prefix: str) -> list[str]:
    """Channels of ``prefix`` that are answered ("Up"), from `core show channels concise`."""
    lines = asterisk.cli("core show channels concise").splitlines()
    return [line for line in lines if line.startswith(prefix) and "!Up!" in line]


def test_every_desk_phone_and_the_carrier_answer_a_call_from_asterisk(asterisk, tmp_path):
    phones = sandbox_phones.phones_of(asterisk.sandbox.status()["addresses"])
    assert {p.name for p in phones} == {"carrier", *(f"phone.{ext}" for ext in asterisk.phones)}
    running = sandbox_phones.start(phones, tmp_path)
    try:
        for ext in asterisk.phones:
            asterisk.cli(f"channel originate PJSIP/{ext} application Wait 3")
            assert wait_until(lambda: up_channels(asterisk, f"PJSIP/{ext}-"), timeout=10), f"desk phone {ext}"
        asterisk.cli(f"channel originate PJSIP/13800002222@{TRUNK_ENDPOINT} application Wait 3")
        assert wait_until(lambda: up_channels(asterisk, f"PJSIP/{TRUNK_ENDPOINT}-"), timeout=10), "the carrier"
    finally:
        sandbox_phones.stop(running)
    assert all(process.poll() is not None for process in running)


def test_a_phone_that_cannot_start_is_named_and_the_others_are_stopped(asterisk, tmp_path):
    phones = sandbox_phones.phones_of(asterisk.sandbox.status()["addresses"])
    first = sandbox_phones.start(phones[:1], tmp_path)  # holds the first port
    try:
        with pytest.raises(sandbox_phones.PhonesError, match=phones[0].name):
            sandbox_phones.start(phones, tmp_path)
    finally:
        sandbox_phones.stop(first)
