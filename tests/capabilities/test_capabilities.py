"""The shipped capabilities (bridge/capability.py): found through the entry points, in their
order, and the daemon built from them the same as when it named each one."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from bridge.capability import AmiSubscription, Capability, CapabilityError, check_no_clashes, load_capabilities
from bridge.config import validate
from bridge.daemon import Daemon
from bridge.pbx.subscription import TRACKER

SECRETS = {"HOTLINE_BRIDGE_SESSION_SECRET": "s", "HOTLINE_BRIDGE_AMI_SECRET": "a"}
BRIDGE = Path(__file__).resolve().parents[2] / "bridge"


def daemon(tmp_path, **pbx) -> Daemon:
    site = {"database": {"url": f"sqlite:///{tmp_path}/d.sqlite3"}, "pbx": pbx, "sandbox": {"enabled": False}}
    if pbx.get("backend") == "none":  # callbacks then need Twilio
        site |= {"callbacks": {"dialler": "twilio"}, "twilio": {"enabled": True, "account_sid": "AC" + "0" * 32}}
    return Daemon(validate(site, environ={**SECRETS, "HOTLINE_BRIDGE_TWILIO_AUTH_TOKEN": "t"}))


def test_the_shipped_capabilities_load_in_their_order():
    assert [c.name for c in load_capabilities()] == [
        "db", "departments", "accounts", "pbx", "cases", "desk", "presence", "forum", "transparency", "callbacks",
        "reports"]


def test_health_lists_the_components_it_always_did(tmp_path):
    components = daemon(tmp_path).health.snapshot()["components"]
    assert list(components) == ["database", "pbx", "forum", "scheduler"]
    assert {c["state"] for c in components.values()} == {"not configured"}


def test_links_are_built_in_capability_order_and_pbx_none_has_no_link(tmp_path):
    full = daemon(tmp_path)
    full._build_links()
    # callbacks' attempt recovery rides on the PBX link (none without it)
    assert list(full.links) == ["pbx", "presence", "forum", "callbacks", "missed-calls", "callback-attempt-recovery"]
    assert full.links["pbx"].ami._listeners[0] == full.links["pbx"]._on_event  # the tracker first
    bare = daemon(tmp_path, backend="none")
    bare._build_links()
    assert list(bare.links) == ["presence", "forum", "callbacks", "missed-calls"]   # presence: the sessions sweep
    assert bare.health.get("pbx") == "not configured"


def test_every_ami_listener_is_handed_to_the_pbx_link_after_the_tracker(tmp_path):
    class Listening(Capability):
        name = "listening"
        order = 85

        def ami_listeners(self, runtime):
            return (self.hear,)

        def hear(self, event):
            pass

    extra = Listening()
    built = Daemon(daemon(tmp_path).config, capabilities=(*load_capabilities(), extra))
    built._build_links()
    callbacks = next(c for c in built.capabilities if c.name == "callbacks")  # order 80: before this one
    listeners = built.links["pbx"].ami._listeners[1:]
    assert listeners == built.runtime.ami_listeners   # presence's, the dialler's, the attempt recovery's, then this one
    assert listeners[1] == callbacks.asterisk_dialler(built.runtime).on_event and listeners[-1] == extra.hear
    assert len(listeners) == 4


def test_originate_response_is_the_callbacks_part_of_the_subscription():
    from callbacks.capability import CallbacksCapability

    assert "OriginateResponse" not in TRACKER.events
    assert "OriginateResponse" in CallbacksCapability.ami.events
    # The dialler's own variables, read from VarSet (the tracker's stay the tracker's).
    assert {"HOTLINE_CALLBACK_ATTEMPT", "HOTLINE_CALLBACK_STATUS"} <= set(CallbacksCapability.ami.variables)
    assert not {"HOTLINE_CALLBACK_ATTEMPT", "HOTLINE_CALLBACK_STATUS"} & set(TRACKER.variables)


def test_the_union_adds_varset_for_variables_and_keeps_the_first_order():
    union = AmiSubscription(("Hangup",)) | AmiSubscription(("Newchannel", "Hangup"), ("SURVEY_SCORE",))
    assert union == AmiSubscription(("Hangup", "Newchannel", "VarSet"), ("SURVEY_SCORE",))


def test_two_capabilities_may_not_claim_one_health_component():
    class One(Capability):
        name = "one"
        health_components = ("pbx",)

    class Two(Capability):
        name = "two"
        health_components = ("pbx",)

    with pytest.raises(CapabilityError, match="'one' and 'two' both declare the health component 'pbx'"):
        check_no_clashes([One(), Two()])


def test_every_live_topic_published_in_bridge_is_declared_by_a_capability():
    published = set()
    for path in BRIDGE.rglob("*.py"):
        published |= set(re.findall(r'LiveEvent\(\s*"(\w+)"', path.read_text(encoding="utf-8")))
    declared = {topic for capability in load_capabilities() for topic in capability.live_topics}
    assert published and published <= declared, published - declared
