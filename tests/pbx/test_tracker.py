"""The call tracker: recorded AMI event sequences replayed, plus property tests."""
from __future__ import annotations

import random
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.pbx.ami import _as_event, parse_message
from bridge.pbx.events import CallRecord, CallUpdate
from bridge.pbx.tracker import CallTracker, extension_of

RECORDED = Path(__file__).parent / "recorded"
T0 = datetime(2026, 11, 26, 4, 30, tzinfo=timezone.utc)


def load(name: str) -> list[dict[str, str]]:
    """A recorded AMI stream (wire format) -> events, parsed by the client's own parser."""
    text = (RECORDED / name).read_text(encoding="utf-8")
    events = [_as_event(parse_message(block)) for block in re.split(r"\r?\n\r?\n", text) if block.strip()]
    return [e for e in events if "Event" in e]          # the leading "# ..." block describes the file


def at(event: dict[str, str]) -> datetime:
    return datetime.fromtimestamp(float(event["Timestamp"]), timezone.utc)


def replay(tracker: CallTracker, events) -> list[CallUpdate]:
    updates: list[CallUpdate] = []
    for event in events:
        updates += tracker.feed(event, at(event))
    return updates


def ended(updates) -> list[CallRecord]:
    return [u.record for u in updates if u.kind == "ended"]


def find(events, name: str, **fields) -> list[dict[str, str]]:
    """The recorded events ``name`` whose fields have these values, in order."""
    return [e for e in events if e["Event"] == name and all(e.get(k) == v for k, v in fields.items())]


def arrival(events, caller_name: str | None = None) -> dict[str, str]:
    """The Newchannel of a call's first channel (Uniqueid == Linkedid) to the hotline."""
    return next(e for e in find(events, "Newchannel", Exten="96811")
                if e["Uniqueid"] == e["Linkedid"] and caller_name in (None, e["CallerIDName"]))


def of_call(events, linkedid: str) -> list[dict[str, str]]:
    return [e for e in events if e.get("Linkedid") == linkedid]


@pytest.fixture
def tracker() -> CallTracker:
    return CallTracker(["96811"], "hotline")


# ------------------------------------------------------------ recorded calls
# tests/pbx/recorded/*.txt are real captures from the Asterisk 22 test bed
# (tests/pbx/record_sequences.py), so expected times are read from the events themselves.


def test_recordings_are_real_captures():
    for path in sorted(RECORDED.glob("*.txt")):
        head = path.read_text(encoding="utf-8").split("\n", 1)[0]
        assert head.startswith("# RECORDED (not hand-written) from the real Asterisk test bed"), path.name


def test_answered_call(tracker):
    events = load("answered.txt")
    updates = replay(tracker, events)
    kinds = [(u.kind, u.extension) for u in updates]
    assert kinds == [("arrived", None), ("queued", None), ("ringing", "8001"), ("connected", "8001"), ("ended", None)]
    (record,) = ended(updates)
    new = arrival(events)
    lid = new["Linkedid"]
    assert record.linkedid == lid
    assert (record.caller_number, record.caller_name, record.dialled_number) == (new["CallerIDNum"], "王小明", "96811")
    assert record.arrived_at == at(new)
    assert record.queue_joined_at == at(find(events, "QueueCallerJoin", Linkedid=lid)[0])
    # Answered at DialEnd ANSWER, which comes just before AgentConnect.
    (answer,) = find(events, "DialEnd", DialStatus="ANSWER")
    (connect,) = find(events, "AgentConnect")
    assert events.index(answer) < events.index(connect)
    assert record.answered_at == at(answer)
    assert record.queue_wait_s == pytest.approx((at(answer) - record.queue_joined_at).total_seconds(), abs=1e-3)
    # Real Asterisk: MemberName is the queues.conf member name, here the extension itself.
    assert (record.extension, record.member_name) == ("8001", "8001")
    (complete,) = find(events, "AgentComplete")
    assert record.talk_s == pytest.approx((at(complete) - at(answer)).total_seconds(), abs=1e-3)   # to AgentComplete
    assert 1 < record.talk_s < 4
    assert record.ended_at == at(find(events, "Hangup")[-1])
    assert (record.hangup_cause, record.hangup_cause_text) == (16, "Normal Clearing")
    assert record.disposition == "answered"
    (recording,) = [e["Value"] for e in find(events, "VarSet", Variable="HOTLINE_RECORDING")]
    assert record.recording == recording and recording.endswith(f"-{lid}.wav")
    assert record.message_file is None and record.complete and not record.adopted
    assert tracker.open_calls() == [] and tracker.internal_errors == 0


def test_recording_variable_beats_mixmonitor_filename(tracker):
    """Asterisk 22 sets HOTLINE_RECORDING (unprefixed) and MixMonitor's MIXMONITOR_FILENAME to the
    same file; its MixMonitorStart event carries no file name at all.  HOTLINE_RECORDING wins."""
    events = [dict(e) for e in load("answered.txt")]
    assert all("Filename" not in e and "File" not in e for e in find(events, "MixMonitorStart"))
    (recording,) = [e["Value"] for e in find(events, "VarSet", Variable="HOTLINE_RECORDING")]
    for e in find(events, "VarSet", Variable="MIXMONITOR_FILENAME"):
        e["Value"] = "/elsewhere/other.wav"
    (record,) = ended(replay(tracker, events))
    assert record.recording == recording
    # Without HOTLINE_RECORDING, MixMonitor's own file name is used.
    events = [e for e in events if e.get("Variable") != "HOTLINE_RECORDING"]
    (record,) = ended(replay(CallTracker(["96811"], "hotline"), events))
    assert record.recording == "/elsewhere/other.wav"


def test_live_updates_carry_snapshots(tracker):
    updates = replay(tracker, load("answered.txt"))
    ringing = next(u for u in updates if u.kind == "ringing")
    assert ringing.record.disposition == "abandoned" and ringing.record.ended_at is None
    connected = next(u for u in updates if u.kind == "connected")
    assert connected.record.answered_at is not None and connected.extension == "8001"


def test_abandoned_in_queue(tracker):
    events = load("abandoned.txt")
    updates = replay(tracker, events)
    kinds = [(u.kind, u.extension) for u in updates]
    # Real Asterisk (strategy rrmemory, 3 s per member, retry 1 s): one phone at a time, X, Y, X
    # again, X being whichever rrmemory picks first (the hand-written guess had both ringing at once).
    first = kinds[2][1]
    other = ({"8001", "8002"} - {first}).pop()
    assert kinds == [("arrived", None), ("queued", None), ("ringing", first), ("ring_stopped", first),
                     ("ringing", other), ("ring_stopped", other), ("ringing", first), ("ring_stopped", first),
                     ("ended", None)]
    (record,) = ended(updates)
    assert record.disposition == "abandoned"
    assert record.caller_name == "钱先生"
    assert record.answered_at is None and record.extension is None and record.talk_s is None
    (join,), (abandon,) = find(events, "QueueCallerJoin"), find(events, "QueueCallerAbandon")
    assert record.queue_wait_s == pytest.approx((at(abandon) - at(join)).total_seconds(), abs=1e-3)
    assert 8 < record.queue_wait_s < 10 and abandon["HoldTime"] == "9"
    # Real Asterisk: a caller who hangs up in Queue() gets Hangup "Cause: 0 / Cause-txt: Unknown"
    # (CEL hangupcause 0 too); only SoftHangupRequest says 16.  The guess was 16.
    assert (record.hangup_cause, record.hangup_cause_text) == (0, None)
    assert record.recording and record.recording.endswith(f"-{record.linkedid}.wav")


def test_unknown_caller_name_is_none(tracker):
    events = [dict(e) for e in load("abandoned.txt")]
    for e in events:
        if "CallerIDName" in e and e.get("Uniqueid") == e.get("Linkedid"):
            e["CallerIDName"] = "<unknown>"
    (record,) = ended(replay(tracker, events))
    assert record.caller_name is None and record.disposition == "abandoned"


def test_after_hours_message(tracker):
    events = load("after_hours_message.txt")
    (record,) = ended(replay(tracker, events))
    assert record.disposition == "after_hours_message"
    (message,) = [e["Value"] for e in find(events, "VarSet", Variable="HOTLINE_MESSAGE")]
    assert record.message_file == message and message.endswith(f"-{record.linkedid}.wav")
    assert record.caller_name == "张伟" and record.queue_wait_s is None and record.recording is None
    assert record.queue_joined_at is None and record.answered_at is None


def test_status_line(tracker):
    events = load("status_line.txt")
    (record,) = ended(replay(tracker, events))
    assert record.disposition == "status_line" and record.caller_number == arrival(events)["CallerIDNum"]
    assert find(events, "VarSet", Variable="HOTLINE_CASE_STATUS")[0]["Value"] == "filed"
    assert record.queue_joined_at is None and record.recording is None
    assert (record.hangup_cause, record.hangup_cause_text) == (16, "Normal Clearing")


def test_status_line_with_the_agi_server_down_goes_to_the_operator_queue(tracker):
    """Keyed 2, but AGI() failed: the dialplan relabels the call "operator" and queues it; the
    caller hung up there.  An abandoned operator call, not a status-line call."""
    events = load("status_line_agi_down.txt")
    labels = [e["Value"] for e in find(events, "VarSet", Variable="HOTLINE_DISPOSITION")]
    assert labels == ["menu", "status_line", "operator"]
    assert [e["Value"] for e in find(events, "VarSet", Variable="AGISTATUS")] == ["FAILURE"]
    (record,) = ended(replay(tracker, events))
    assert record.disposition == "abandoned" and record.caller_name == "陈静"
    assert record.queue_joined_at is not None and record.answered_at is None


def test_caller_hanging_up_in_the_menu_is_not_a_failure(tracker):
    """The caller keyed nothing and hung up (BYE) during the greeting / menu: its own
    disposition, not the technical ``failed``."""
    events = load("hung_up_in_menu.txt")
    assert [e["Value"] for e in find(events, "VarSet", Variable="HOTLINE_DISPOSITION")] == ["menu"]
    assert find(events, "HangupRequest")             # the caller's side asked for the hangup
    (record,) = ended(replay(tracker, events))
    assert record.disposition == "hung_up_in_menu" and record.caller_name == "孙阿姨"
    # Asterisk 22 reports a PJSIP caller's BYE as cause 0 (CEL hangupcause 0 too).
    assert (record.hangup_cause, record.hangup_cause_text) == (0, None)
    assert record.queue_joined_at is None and record.answered_at is None and record.recording is None


def test_network_failure_in_the_menu_stays_failed_with_its_cause(tracker):
    """The call dropped in the menu with cause 38 (network out of order): a real failure."""
    events = load("failed_in_menu.txt")
    assert [e["Value"] for e in find(events, "VarSet", Variable="HOTLINE_DISPOSITION")] == ["menu"]
    (record,) = ended(replay(tracker, events))
    assert record.disposition == "failed"
    assert (record.hangup_cause, record.hangup_cause_text) == (38, "Network out of order")


def _menu_call(lid: str, *, cause: str | None, label: str | None = "menu") -> list[dict[str, str]]:
    events = [{"Event": "Newchannel", "Uniqueid": lid, "Linkedid": lid, "Exten": "96811", "CallerIDNum": "1"}]
    if label:
        events.append({"Event": "VarSet", "Uniqueid": lid, "Linkedid": lid, "Variable": "HOTLINE_DISPOSITION",
                       "Value": label})
    hangup = {"Event": "Hangup", "Uniqueid": lid, "Linkedid": lid}
    if cause is not None:
        hangup["Cause"] = cause
    return [*events, hangup]


@pytest.mark.parametrize(("cause", "label", "disposition"), [
    ("16", "menu", "hung_up_in_menu"),          # normal clearing (a carrier that says so)
    ("31", "menu", "hung_up_in_menu"),          # normal, unspecified
    (None, "menu", "hung_up_in_menu"),          # no cause given
    ("41", "menu", "failed"),                   # temporary failure
    ("127", "menu", "failed"),                  # interworking
    ("16", None, "failed"),                     # never reached the menu
    ("16", "operator", "failed"),               # left the menu but never joined the queue
])
def test_menu_hangup_by_cause_and_label(tracker, cause, label, disposition):
    updates = []
    for i, event in enumerate(_menu_call("9.1", cause=cause, label=label)):
        updates += tracker.feed(event, T0 + timedelta(seconds=i))
    (record,) = ended(updates)
    assert record.disposition == disposition


def test_menu_call_whose_end_was_not_seen_is_not_called_a_hang_up(tracker):
    """Ended while the link was down (reconciled by a channel list): nobody saw the caller
    hang up, so no claim that they did (recovery from CEL settles it)."""
    replay(tracker, [e for e in load("hung_up_in_menu.txt") if e["Event"] != "Hangup"])
    (update,) = tracker.adopt([], T0 + timedelta(minutes=5))
    assert not update.record.complete and update.record.disposition == "failed"


def test_two_calls_in_the_same_second_stay_separate(tracker):
    events = load("same_second.txt")
    firsts = [e for e in find(events, "Newchannel") if e["Uniqueid"] == e["Linkedid"]]
    assert len(firsts) == 2 and len({e["Timestamp"][:10] for e in firsts}) == 1
    records = {r.linkedid: r for r in ended(replay(tracker, events))}
    assert set(records) == {e["Linkedid"] for e in firsts}
    a, b = records[arrival(events, "刘洋")["Linkedid"]], records[arrival(events, "赵磊")["Linkedid"]]
    assert (a.caller_name, a.disposition, a.extension) == ("刘洋", "answered", "8002")
    assert (b.caller_name, b.disposition, b.extension) == ("赵磊", "abandoned", None)
    assert a.recording != b.recording and b.linkedid in b.recording


def test_chinese_caller_name(tracker):
    raw = (RECORDED / "chinese_name.txt").read_bytes()
    assert "CallerIDName: 张三".encode("utf-8") in raw        # UTF-8 on the wire, as Asterisk sent it
    (record,) = ended(replay(tracker, load("chinese_name.txt")))
    assert record.caller_name == "张三" and record.disposition == "answered" and record.extension == "8001"


def test_calls_to_other_numbers_are_not_tracked(tracker):
    events = [dict(e) for e in load("answered.txt")]
    for e in events:
        if e.get("Exten") == "96811":
            e["Exten"] = "8001"
    assert replay(tracker, events) == []
    assert tracker.open_calls() == [] and tracker._calls == {}     # nothing left behind


def test_queue_member_behind_a_local_channel():
    tracker = CallTracker(["96811"], "hotline")
    lid = "5.1"
    caller = {"Channel": "PJSIP/carrier-00000009", "Uniqueid": lid, "Linkedid": lid}
    local1 = {"Channel": "Local/8003@hotline-agents-00000001;1", "Uniqueid": "5.2", "Linkedid": lid}
    local2 = {"Channel": "Local/8003@hotline-agents-00000001;2", "Uniqueid": "5.3", "Linkedid": lid}
    phone = {"Channel": "PJSIP/8003-0000000a", "Uniqueid": "5.4", "Linkedid": lid}
    dest = {"DestChannel": local1["Channel"], "DestUniqueid": "5.2", "DestLinkedid": lid}
    seq = [
        {"Event": "Newchannel", **caller, "Exten": "96811", "CallerIDNum": "139"},
        {"Event": "QueueCallerJoin", **caller, "Queue": "hotline"},
        {"Event": "Newchannel", **local1}, {"Event": "Newchannel", **local2},
        {"Event": "AgentCalled", **caller, **dest, "Queue": "hotline", "Interface": "Local/8003@hotline-agents/n"},
        {"Event": "Newchannel", **phone},
        {"Event": "DialBegin", **local2, "DestChannel": phone["Channel"], "DestUniqueid": "5.4"},
        {"Event": "DialEnd", **local2, "DestChannel": phone["Channel"], "DestUniqueid": "5.4", "DialStatus": "ANSWER"},
        {"Event": "AgentConnect", **caller, **dest, "Queue": "hotline", "Interface": "Local/8003@hotline-agents/n",
         "MemberName": "王芳", "HoldTime": "3"},
        {"Event": "Hangup", **phone, "Cause": "16"}, {"Event": "Hangup", **local2, "Cause": "16"},
        {"Event": "Hangup", **local1, "Cause": "16"},
        {"Event": "Hangup", **caller, "Cause": "16", "Cause-txt": "Normal Clearing"},
    ]
    updates = [u for i, e in enumerate(seq) for u in tracker.feed(e, T0 + timedelta(seconds=i))]
    assert [(u.kind, u.extension) for u in updates] == [
        ("arrived", None), ("queued", None), ("ringing", "8003"), ("connected", "8003"), ("ended", None)]
    record = updates[-1].record
    assert record.disposition == "answered" and record.member_name == "王芳"
    assert record.answered_at == T0 + timedelta(seconds=7)       # DialEnd ANSWER came first


def test_fifty_interleaved_calls_give_fifty_records(tracker):
    rng = random.Random(96811)
    answered, abandoned = load("answered.txt"), load("abandoned.txt")
    streams = []
    for n in range(50):
        template = answered if n % 2 == 0 else abandoned
        base = float(template[0]["Timestamp"])
        offset = rng.uniform(0, 30)
        stream = []
        for e in template:
            e = dict(e)
            for key in ("Uniqueid", "Linkedid", "DestUniqueid", "DestLinkedid"):
                if key in e:
                    e[key] = f"{n}-{e[key]}"
            e["CallerIDNum"] = f"1390000{n:04d}"
            e["Timestamp"] = f"{float(e['Timestamp']) - base + 1764131400 + offset:.6f}"
            stream.append(e)
        streams.append(stream)
    merged = sorted((e for s in streams for e in s), key=lambda e: float(e["Timestamp"]))
    records = ended(replay(tracker, merged))
    assert len(records) == 50 and len({r.linkedid for r in records}) == 50
    by_disposition = {d: sum(r.disposition == d for r in records) for d in ("answered", "abandoned")}
    assert by_disposition == {"answered": 25, "abandoned": 25}
    caller_of = {r.linkedid.split("-")[0]: r.caller_number for r in records}
    assert all(caller_of[str(n)] == f"1390000{n:04d}" for n in range(50))
    assert tracker.open_calls() == [] and tracker.internal_errors == 0


# ------------------------------------------------------------------- adoption


def _show(channel, uid, lid, *, exten="96811", app="Queue", data="hotline,,,,300", duration="00:00:42",
          bridge="", num="13912345678", name="王小明", context="hotline-inbound"):
    return {"Event": "CoreShowChannel", "Channel": channel, "Uniqueid": uid, "Linkedid": lid,
            "Context": context, "Exten": exten, "Priority": "7", "ChannelState": "6",
            "ChannelStateDesc": "Up", "Application": app, "ApplicationData": data,
            "CallerIDNum": num, "CallerIDName": name, "ConnectedLineNum": "", "ConnectedLineName": "",
            "Duration": duration, "AccountCode": "", "BridgeId": bridge}


def test_adoption_of_calls_in_progress(tracker):
    now = T0 + timedelta(hours=1)
    channels = [
        # answered: caller and operator in one bridge
        _show("PJSIP/carrier-00000001", "1.1", "1.1", duration="00:01:40", bridge="br-1"),
        _show("PJSIP/8001-00000002", "1.2", "1.1", exten="s", app="AppQueue", data="(Outgoing Line)",
              duration="00:01:10", bridge="br-1", context="hotline-agents"),
        # waiting in the queue; its Exten has moved on
        _show("PJSIP/carrier-00000003", "2.1", "2.1", exten="s", duration="00:00:20", num="13800138000", name="张伟"),
        # an internal call: not ours
        _show("PJSIP/8002-00000004", "3.1", "3.1", exten="8003", app="Dial", data="PJSIP/8003"),
    ]
    updates = tracker.adopt(channels, now)
    assert [(u.kind, u.linkedid, u.extension) for u in updates] == [("adopted", "1.1", "8001"), ("adopted", "2.1", None)]
    one, two = (u.record for u in updates)
    assert one.adopted and one.arrived_at == now - timedelta(seconds=100)
    assert one.answered_at == now - timedelta(seconds=70) and one.disposition == "answered"
    assert two.caller_name == "张伟" and two.dialled_number == "96811" and two.disposition == "abandoned"
    assert {r.linkedid for r in tracker.open_calls()} == {"1.1", "2.1"}
    # The adopted call then ends normally, once.
    later = now + timedelta(seconds=30)
    out = tracker.feed({"Event": "Hangup", "Uniqueid": "1.2", "Linkedid": "1.1"}, later)
    out += tracker.feed({"Event": "Hangup", "Uniqueid": "1.1", "Linkedid": "1.1", "Cause": "16"}, later)
    out += tracker.feed({"Event": "Hangup", "Uniqueid": "1.1", "Linkedid": "1.1", "Cause": "16"}, later)
    (record,) = ended(out)
    assert record.talk_s == 100 and record.hangup_cause == 16 and record.complete
    # The internal call's channel left no hotline record.
    assert tracker.feed({"Event": "Hangup", "Uniqueid": "3.1", "Linkedid": "3.1"}, later) == []


def test_adoption_reconciles_calls_that_ended_while_disconnected(tracker):
    events = load("answered.txt")
    cut = next(i for i, e in enumerate(events) if e["Event"] == "AgentConnect") + 1
    replay(tracker, events[:cut])             # ... the link drops here, the call ends unseen
    assert len(tracker.open_calls()) == 1
    now = T0 + timedelta(minutes=10)
    (update,) = tracker.adopt([], now)
    assert update.kind == "ended" and not update.record.complete
    assert update.record.ended_at == now and update.record.disposition == "answered"
    assert update.record.talk_s is None          # unknown, not "10 minutes": recover it from CDR
    # Events of that call arriving afterwards change nothing.
    assert replay(tracker, events[cut:]) == []


def test_adoption_does_not_duplicate_known_calls(tracker):
    events = load("answered.txt")
    cut = next(i for i, e in enumerate(events) if e["Event"] == "AgentConnect") + 1
    replay(tracker, events[:cut])
    lid = arrival(events)["Linkedid"]
    (phone,) = [e for e in find(events, "Newchannel", Linkedid=lid) if e["Uniqueid"] != lid]
    channels = [_show(arrival(events)["Channel"], lid, lid, bridge="b"),
                _show(phone["Channel"], phone["Uniqueid"], lid, exten="s", bridge="b")]
    assert tracker.adopt(channels, T0 + timedelta(minutes=1)) == []
    assert len(ended(replay(tracker, events[cut:]))) == 1


def test_core_show_channel_events_through_feed(tracker):
    event = _show("PJSIP/carrier-00000003", "2.1", "2.1")
    assert [u.kind for u in tracker.feed(event, T0)] == ["adopted"]
    assert tracker.feed(event, T0) == []


def test_out_of_order_hangup_before_newchannel(tracker):
    lid = "8.1"
    hangup = {"Event": "Hangup", "Uniqueid": lid, "Linkedid": lid, "Cause": "16"}
    new = {"Event": "Newchannel", "Uniqueid": lid, "Linkedid": lid, "Exten": "96811", "CallerIDNum": "1"}
    assert tracker.feed(hangup, T0) == []
    updates = tracker.feed(new, T0)
    assert [u.kind for u in updates] == ["arrived", "ended"]
    assert tracker.open_calls() == []


def test_extension_of():
    assert extension_of("PJSIP/8001-0000002a") == "8001"
    assert extension_of("PJSIP/8001") == "8001"
    assert extension_of("Local/8001@agents-00000001;1") == "8001"
    assert extension_of("Local/8001@from-queue/n") == "8001"
    assert extension_of("SIP/desk-8001-0000002a") == "desk-8001"
    assert extension_of("") is None and extension_of(None) is None


# ----------------------------------------------------------- property tests

EVENT_NAMES = ["Newchannel", "Newstate", "VarSet", "QueueCallerJoin", "QueueCallerAbandon", "QueueCallerLeave",
               "AgentCalled", "AgentConnect", "AgentComplete", "AgentRingNoAnswer", "BridgeEnter", "BridgeLeave",
               "DialBegin", "DialEnd", "Hangup", "MixMonitorStart", "CoreShowChannel", "NewCallerid", "Bogus"]
IDS = ["1.1", "1.2", "1.3", "2.1", "2.2", "", " ", "garbage", "1.1 "]
VALUES = st.one_of(
    st.sampled_from(["96811", "8001", "PJSIP/8001-00000001", "Local/8001@x-1;1", "hotline", "ANSWER", "NOANSWER",
                     "HOTLINE_DISPOSITION", "__HOTLINE_RECORDING", "HOTLINE_MESSAGE", "status_line",
                     "after_hours_message", "16", "-1", "99999999999", "00:01:02", "<unknown>", "王小明", "b1", ""]),
    st.text(max_size=12),
)
KEYS = ["Event", "Uniqueid", "Linkedid", "DestUniqueid", "DestLinkedid", "Channel", "DestChannel", "Exten", "DNID",
        "CallerIDNum", "CallerIDName", "Queue", "Interface", "MemberName", "HoldTime", "TalkTime", "Cause",
        "Cause-txt", "Variable", "Value", "DialStatus", "BridgeUniqueid", "BridgeId", "Application",
        "ApplicationData", "Duration", "Context", "cause-TXT", "EVENT"]


@st.composite
def chaos_event(draw):
    event: dict = {"Event": draw(st.sampled_from(EVENT_NAMES))}
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=10)):
        if key in ("Uniqueid", "Linkedid", "DestUniqueid", "DestLinkedid"):
            event[key] = draw(st.sampled_from(IDS))
        else:
            event[key] = draw(VALUES)
    return event


@st.composite
def plausible_event(draw):
    """Consistent ids and mostly sensible fields, so that calls really get tracked and ended."""
    call = draw(st.sampled_from(["1", "2", "3"]))
    leg = draw(st.sampled_from(["1", "1", "2", "3"]))
    name = draw(st.sampled_from(["Newchannel"] * 5 + ["Hangup"] * 5 + EVENT_NAMES[:-1]))
    event = {"Event": name, "Uniqueid": f"{call}.{leg}",
             "Linkedid": f"{call}.1", "Channel": draw(st.sampled_from(
                 ["PJSIP/carrier-00000001", f"PJSIP/800{leg}-0000000{leg}", f"Local/800{leg}@q-00000001;1"])),
             "Exten": draw(st.sampled_from(["96811", "96811", "s", "8001"])),
             "Queue": draw(st.sampled_from(["hotline", "hotline", "other"])),
             "Interface": f"PJSIP/800{leg}", "DestChannel": f"PJSIP/800{leg}-0000000{leg}",
             "DestUniqueid": f"{call}.{leg}", "BridgeUniqueid": "b1", "BridgeId": "b1",
             "DialStatus": draw(st.sampled_from(["ANSWER", "NOANSWER", "CANCEL"])),
             "Variable": draw(st.sampled_from(["HOTLINE_DISPOSITION", "__HOTLINE_RECORDING", "HOTLINE_MESSAGE"])),
             "Value": draw(VALUES), "Cause": draw(VALUES), "HoldTime": draw(VALUES), "Duration": draw(VALUES)}
    for key in draw(st.lists(st.sampled_from(list(event)[3:]), max_size=3)):
        event.pop(key, None)       # missing fields (chaos_event also drops ids)
    return event


def ami_event():
    return st.one_of(plausible_event(), plausible_event(), plausible_event(), chaos_event())


GARBAGE = st.one_of(
    st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.one_of(st.text(max_size=8), st.integers()),
                    st.one_of(st.text(max_size=8), st.integers(), st.none(), st.floats(), st.booleans(),
                              st.lists(st.text(max_size=3), max_size=2)), max_size=6),
)


def _check_invariants(tracker, updates):
    assert tracker.internal_errors == 0
    ends = [u.linkedid for u in updates if u.kind == "ended"]
    assert len(ends) == len(set(ends)), "a call ended twice"
    for u in updates:
        assert isinstance(u.record, CallRecord) and u.record.linkedid == u.linkedid
    open_ids = {r.linkedid for r in tracker.open_calls()}
    assert not open_ids & set(ends), "an ended call is still open"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(ami_event(), GARBAGE), max_size=80), st.lists(st.integers(0, 3600), max_size=80))
def test_random_and_malformed_events_never_raise(events, offsets):
    tracker = CallTracker(["96811"], "hotline")
    updates = []
    for i, event in enumerate(events):
        now = T0 + timedelta(seconds=offsets[i] if i < len(offsets) else i)
        updates += tracker.feed(event, now)
    updates += tracker.adopt([e for e in events if isinstance(e, dict)], T0 + timedelta(hours=2))
    _check_invariants(tracker, updates)
    updates += tracker.adopt([], T0 + timedelta(hours=3))       # everything reconciled away
    _check_invariants(tracker, updates)
    assert tracker.open_calls() == [] and tracker._calls == {} and tracker._chan_link == {}


RECORDINGS = {path.name: load(path.name) for path in sorted(RECORDED.glob("*.txt"))}


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(RECORDINGS)), st.randoms(use_true_random=False),
       st.integers(0, 3), st.integers(0, 5))
def test_shuffled_duplicated_and_truncated_recordings_never_raise(name, rnd, duplicates, drops):
    events = list(RECORDINGS[name])
    for _ in range(duplicates):
        events.insert(rnd.randrange(len(events) + 1), rnd.choice(events))
    for _ in range(drops):
        events.pop(rnd.randrange(len(events)))
    rnd.shuffle(events)
    tracker = CallTracker(["96811"], "hotline")
    updates = replay(tracker, events)
    _check_invariants(tracker, updates)
    updates += tracker.adopt([], T0 + timedelta(days=1))
    _check_invariants(tracker, updates)


INTERLEAVED = {"answered.txt": "answered", "abandoned.txt": "abandoned",
               "after_hours_message.txt": "after_hours_message", "status_line.txt": "status_line",
               "status_line_agi_down.txt": "abandoned", "chinese_name.txt": "answered",
               "hung_up_in_menu.txt": "hung_up_in_menu", "failed_in_menu.txt": "failed"}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(sorted(INTERLEAVED)), min_size=1, max_size=12),
       st.randoms(use_true_random=False))
def test_interleaved_calls_keep_their_own_outcome(templates, rnd):
    """Any interleaving that keeps each call's own order gives one right record per call."""
    expected = INTERLEAVED
    streams = []
    for n, name in enumerate(templates):
        stream = []
        for e in RECORDINGS[name]:
            e = dict(e)
            for key in ("Uniqueid", "Linkedid", "DestUniqueid", "DestLinkedid"):
                if key in e:
                    e[key] = f"c{n}-{e[key]}"
            stream.append(e)
        streams.append(stream)
    merged, cursors = [], [0] * len(streams)
    while any(c < len(s) for c, s in zip(cursors, streams)):
        n = rnd.choice([i for i, s in enumerate(streams) if cursors[i] < len(s)])
        merged.append(streams[n][cursors[n]])
        cursors[n] += 1
    tracker = CallTracker(["96811"], "hotline")
    updates = []
    for i, event in enumerate(merged):
        updates += tracker.feed(event, T0 + timedelta(seconds=i))
    records = {r.linkedid.split("-")[0]: r for r in ended(updates)}
    assert {k: r.disposition for k, r in records.items()} == {f"c{n}": expected[t] for n, t in enumerate(templates)}
    _check_invariants(tracker, updates)
    assert tracker.open_calls() == []
