"""The AMI client against a real local TCP server speaking AMI (tests/pbx/fake_ami.py)."""
from __future__ import annotations

import asyncio
import time

import pytest
import structlog

from bridge.pbx.ami import (
    AmiActionError,
    AmiActionTimeout,
    AmiClient,
    AmiConnectionLost,
    AmiNotConnected,
    parse_message,
)
from tests.pbx.fake_ami import FakeAmi, encode

FAST = dict(ping_interval=5.0, action_timeout=0.5, connect_timeout=0.5,
            reconnect_min=0.05, reconnect_max=0.2)


@pytest.fixture
async def server():
    fake = await FakeAmi().start()
    yield fake
    await fake.close()


class Recorder:
    def __init__(self):
        self.events: list[dict[str, str]] = []
        self.states: list[str] = []
        self.connected = 0

    def on_event(self, event):
        self.events.append(event)

    def on_state(self, state):
        self.states.append(state)

    def on_connected(self):
        self.connected += 1

    def named(self, name):
        return [e for e in self.events if e.get("Event") == name]


def make_client(server, rec=None, *, secret="s3cret", **overrides):
    rec = rec or Recorder()
    client = AmiClient("127.0.0.1", server.port, "hotline-bridge", secret,
                       on_event=rec.on_event, on_state=rec.on_state,
                       on_connected=rec.on_connected, **{**FAST, **overrides})
    return client, rec


async def eventually(predicate, timeout=3.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


# ------------------------------------------------------------------------ basics


async def test_logs_in_reports_up_and_delivers_events(server):
    client, rec = make_client(server)
    await client.start()
    try:
        assert await client.wait_up(2)
        assert client.state == "up" and rec.states[:2] == ["connecting", "up"]
        assert client.version == "9.0.0"
        await server.send_event({"Event": "Newchannel", "Channel": "PJSIP/carrier-00000001",
                                 "Uniqueid": "1.1", "Linkedid": "1.1", "Exten": "96811"})
        await eventually(lambda: rec.named("Newchannel"))
        assert rec.named("Newchannel")[0]["Exten"] == "96811"
        assert rec.connected == 1
        response = await client.send_action({"Action": "Ping"})
        assert response.success and response["Ping"] == "Pong"
    finally:
        await client.stop()
    assert client.state == "down: stopped"
    login = server.actions("Login")[0]
    assert login["Username"] == "hotline-bridge" and login["Events"] == "on"


async def test_list_action_collects_events(server):
    server.channels = [
        {"Channel": "PJSIP/carrier-00000001", "Uniqueid": "1.1", "Linkedid": "1.1", "Exten": "96811"},
        {"Channel": "PJSIP/8001-00000002", "Uniqueid": "1.2", "Linkedid": "1.1", "Exten": "s"},
    ]
    client, rec = make_client(server)
    await client.start()
    try:
        assert await client.wait_up(2)
        response = await client.send_action({"Action": "CoreShowChannels"}, expect_list=True)
        assert response.success
        assert [e["Uniqueid"] for e in response.events] == ["1.1", "1.2"]
        assert not rec.named("CoreShowChannel")   # list events go to the action, not to on_event
    finally:
        await client.stop()


async def test_error_response_raises_clearly(server):
    client, _ = make_client(server)
    await client.start()
    try:
        assert await client.wait_up(2)
        with pytest.raises(AmiActionError, match="Invalid/unknown command"):
            await client.send_action({"Action": "NoSuchThing"})
        response = await client.send_action({"Action": "NoSuchThing"}, check=False)
        assert not response.success
    finally:
        await client.stop()


async def test_header_injection_is_refused(server):
    client, _ = make_client(server)
    await client.start()
    try:
        assert await client.wait_up(2)
        with pytest.raises(ValueError):
            await client.send_action({"Action": "Originate", "CallerID": "x\r\nAction: Hangup"})
        assert not server.actions("Hangup")
    finally:
        await client.stop()


async def test_action_before_login_is_not_queued(server):
    client, _ = make_client(server)
    with pytest.raises(AmiNotConnected):
        await client.send_action({"Action": "Originate", "Channel": "PJSIP/8001"})
    await client.start()
    try:
        assert await client.wait_up(2)
        await asyncio.sleep(0.1)
        assert not server.actions("Originate")
    finally:
        await client.stop()


# ------------------------------------------------------------- dead link, ping


async def test_ping_timeout_aborts_a_silent_link_and_reconnects(server):
    client, rec = make_client(server, ping_interval=0.1, action_timeout=0.2)
    await client.start()
    try:
        assert await client.wait_up(2)
        server.silent = True          # the TCP connection stays open, nothing answers
        await eventually(lambda: any("Ping" in s for s in rec.states), timeout=3)
        assert any(s.startswith("down: no answer to Ping within 0.2 s") for s in rec.states)
        server.silent = False
        await server.wait_logins(2, timeout=3)
        assert await client.wait_up(2)
        assert rec.connected == 2      # on_connected again after the re-login
        assert len(server.connections) >= 2
        assert server.connections[0].writer.is_closing() or server.connections[0].writer.transport.is_closing()
    finally:
        await client.stop()


async def test_connect_timeout_and_refused_are_reported(unused_tcp_port):
    rec = Recorder()
    client = AmiClient("127.0.0.1", unused_tcp_port, "u", "p", on_state=rec.on_state, **FAST)
    await client.start()
    try:
        await eventually(lambda: any(s.startswith("down: cannot connect to 127.0.0.1") for s in rec.states))
    finally:
        await client.stop()


async def test_no_banner_times_out():
    writers = []

    async def mute(reader, writer):
        writers.append(writer)
        await reader.read()

    srv = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    rec = Recorder()
    client = AmiClient("127.0.0.1", port, "u", "p", on_state=rec.on_state, **{**FAST, "connect_timeout": 0.2})
    await client.start()
    try:
        await eventually(lambda: any("no AMI banner" in s for s in rec.states))
    finally:
        await client.stop()
        srv.close()
        for writer in writers:
            writer.transport.abort()
        await srv.wait_closed()


# ----------------------------------------------------------------- bad login


async def test_wrong_password_is_reported_and_backs_off(server):
    with structlog.testing.capture_logs() as logs:
        client, rec = make_client(server, secret="wrong", reconnect_min=0.05, reconnect_max=0.4)
        await client.start()
        try:
            await asyncio.sleep(1.5)
        finally:
            await client.stop()
    assert "down: authentication failed for user 'hotline-bridge'" in rec.states
    assert not client.is_up and rec.connected == 0
    failed = [entry for entry in logs if entry["event"] == "ami.login_failed"]
    assert failed and failed[0]["user"] == "hotline-bridge"
    assert "wrong" not in repr(logs)          # the secret is never logged
    # Back-off: delays 0.05, 0.05-0.1, 0.1-0.2, 0.2-0.4, 0.2-0.4 ... -> about 8 attempts in 1.5 s
    # (a fixed 0.05 s retry would make ~30), and the gaps grow.
    attempts = server.login_attempts
    assert 4 <= len(attempts) <= 11, attempts
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert gaps[-1] > gaps[0] * 2
    assert all(g <= 0.4 + 0.2 for g in gaps)


def test_backoff_is_exponential_jittered_and_bounded():
    client = AmiClient("127.0.0.1", 1, "u", "p", reconnect_min=1, reconnect_max=60)
    for failures, (lo, hi) in {1: (1, 1), 2: (1, 2), 3: (2, 4), 4: (4, 8), 6: (16, 32), 7: (30, 60), 50: (30, 60)}.items():
        values = [client.backoff(failures) for _ in range(200)]
        assert all(lo <= v <= hi for v in values), (failures, min(values), max(values))
    assert len({round(client.backoff(5), 6) for _ in range(20)}) > 1   # jittered


# --------------------------------------------------------------------- actions


async def test_action_timeout_raises(server):
    server.hold.add("originate")
    client, _ = make_client(server, action_timeout=0.2)
    await client.start()
    try:
        assert await client.wait_up(2)
        t0 = time.monotonic()
        with pytest.raises(AmiActionTimeout, match=r"Originate .* no answer within 0.2 s"):
            await client.send_action({"Action": "Originate", "Channel": "PJSIP/8001"})
        assert time.monotonic() - t0 < 1
        assert client.is_up                # a slow action does not drop the link
    finally:
        await client.stop()


async def test_in_flight_action_fails_on_drop_and_is_never_resent(server):
    server.hold.add("originate")
    client, rec = make_client(server, action_timeout=2.0)
    await client.start()
    try:
        assert await client.wait_up(2)
        task = asyncio.create_task(client.send_action(
            {"Action": "Originate", "Channel": "PJSIP/8001", "Exten": "13800000000"}))
        await eventually(lambda: server.actions("Originate"))
        await server.drop_all()
        with pytest.raises(AmiConnectionLost, match="not re-sent"):
            await asyncio.wait_for(task, 1.5)
        server.hold.clear()
        await server.wait_logins(2, timeout=3)
        await asyncio.sleep(0.3)           # panoramisk would re-send here, after FullyBooted
        assert len(server.actions("Originate")) == 1
        assert rec.connected == 2
    finally:
        await client.stop()


async def test_stop_fails_actions_in_flight(server):
    server.hold.add("originate")
    client, _ = make_client(server, action_timeout=5.0)
    await client.start()
    assert await client.wait_up(2)
    task = asyncio.create_task(client.send_action({"Action": "Originate"}))
    await eventually(lambda: server.actions("Originate"))
    await client.stop()
    with pytest.raises(AmiConnectionLost, match="client stopped"):
        await task


# ---------------------------------------------------------------- event path


async def test_handler_exception_keeps_link_and_order(server):
    seen: list[str] = []

    async def on_event(event):
        if event.get("Event") != "UserEvent":
            return
        n = event["N"]
        if n == "3":
            raise RuntimeError("handler bug")
        await asyncio.sleep(0.001 * (10 - int(n) % 10))   # slower early events must not be overtaken
        seen.append(n)

    rec = Recorder()
    client = AmiClient("127.0.0.1", server.port, "hotline-bridge", "s3cret", on_event=on_event,
                       on_state=rec.on_state, **FAST)
    await client.start()
    try:
        assert await client.wait_up(2)
        # All in one TCP write: panoramisk would lose the rest of the read after the failure.
        await server.live[0].send(b"".join(encode({"Event": "UserEvent", "N": str(i)}) for i in range(20)))
        await eventually(lambda: len(seen) == 19)
        assert seen == [str(i) for i in range(20) if i != 3]
        assert client.is_up and len(server.connections) == 1
    finally:
        await client.stop()


async def test_a_plain_handler_never_overtakes_an_earlier_coroutine(server):
    """Plain-function results are handled at once, but not before an earlier event whose
    handler returned a coroutine that is still running."""
    order: list[str] = []

    def on_event(event):
        if event.get("Event") != "UserEvent":
            return None
        if event["N"] in ("0", "5"):
            async def slow(n=event["N"]):
                await asyncio.sleep(0.1)
                order.append(n)
            return slow()
        order.append(event["N"])
        return None

    client = AmiClient("127.0.0.1", server.port, "hotline-bridge", "s3cret", on_event=on_event, **FAST)
    await client.start()
    try:
        assert await client.wait_up(2)
        await server.live[0].send(b"".join(encode({"Event": "UserEvent", "N": str(i)}) for i in range(5)))
        await eventually(lambda: len(order) == 5)
        for i in range(5, 8):   # one by one, the consumer idle in between
            await server.live[0].send(encode({"Event": "UserEvent", "N": str(i)}))
            await asyncio.sleep(0.02)
        await eventually(lambda: len(order) == 8)
        assert order == [str(i) for i in range(8)]
    finally:
        await client.stop()


async def test_every_listener_gets_every_event_in_order_and_a_coroutine_holds_the_next(server):
    """Listener after listener, event after event: a listener's coroutine finishes before the
    next listener sees the event, and before any listener sees a later event."""
    seen: list[str] = []

    def tracker(event):
        if event.get("Event") == "UserEvent":
            seen.append(f"tracker:{event['N']}")

    def callbacks(event):
        if event.get("Event") != "UserEvent":
            return None

        async def slow(n=event["N"]):
            await asyncio.sleep(0.02 if n == "0" else 0)
            seen.append(f"callbacks:{n}")
        return slow()

    late: list[str] = []
    client = AmiClient("127.0.0.1", server.port, "hotline-bridge", "s3cret", on_event=tracker,
                       listeners=[callbacks], **FAST)
    client.add_listener(lambda event: late.append(event["N"]) if event.get("Event") == "UserEvent" else None)
    await client.start()
    try:
        assert await client.wait_up(2)
        await server.live[0].send(b"".join(encode({"Event": "UserEvent", "N": str(i)}) for i in range(3)))
        await eventually(lambda: len(late) == 3)
        assert seen == [f"{who}:{n}" for n in "012" for who in ("tracker", "callbacks")]
        assert late == ["0", "1", "2"]
    finally:
        await client.stop()


async def test_a_failing_listener_is_logged_with_the_event_and_stops_neither_the_others_nor_the_link(server):
    tracked: list[str] = []
    after: list[str] = []

    def broken(event):
        if event.get("Event") == "UserEvent" and event["N"] == "1":
            raise RuntimeError("listener bug")

    async def broken_later(event):
        if event.get("Event") == "UserEvent" and event["N"] == "2":
            raise RuntimeError("coroutine bug")

    def tracker(event):
        if event.get("Event") == "UserEvent":
            tracked.append(event["N"])

    client = AmiClient("127.0.0.1", server.port, "hotline-bridge", "s3cret",
                       listeners=[broken, broken_later, tracker], **FAST)
    client.add_listener(lambda event: after.append(event["N"]) if event.get("Event") == "UserEvent" else None)
    await client.start()
    try:
        assert await client.wait_up(2)
        with structlog.testing.capture_logs() as logs:
            await server.live[0].send(b"".join(encode({"Event": "UserEvent", "N": str(i), "Linkedid": f"L{i}"})
                                               for i in range(4)))
            await eventually(lambda: len(after) == 4)
        assert tracked == after == ["0", "1", "2", "3"]
        failures = [entry for entry in logs if entry["event"] == "ami.event_handler_failed"]
        assert [(f["listener"].rsplit(".", 1)[-1], f["ami_event"], f["linkedid"]) for f in failures] == [
            ("broken", "UserEvent", "L1"), ("broken_later", "UserEvent", "L2")]
        assert failures[0]["ami_headers"] == {"Event": "UserEvent", "N": "1", "Linkedid": "L1"}
        assert client.is_up and len(server.connections) == 1
    finally:
        await client.stop()


async def test_on_connected_runs_before_later_events(server):
    order: list[str] = []

    async def on_connected():
        response = await client.send_action({"Action": "CoreShowChannels"}, expect_list=True)
        order.append(f"adopt:{len(response.events)}")

    def on_event(event):
        order.append(event["Event"])

    client = AmiClient("127.0.0.1", server.port, "hotline-bridge", "s3cret", on_event=on_event,
                       on_connected=on_connected, **FAST)
    await client.start()
    try:
        assert await client.wait_up(2)
        await server.send_event({"Event": "Newchannel", "Uniqueid": "9.1"})
        await eventually(lambda: "Newchannel" in order)
        assert order[0] == "adopt:0" and order.index("Newchannel") > 0
    finally:
        await client.stop()


async def test_chinese_name_split_mid_character_arrives_intact(server):
    client, rec = make_client(server)
    await client.start()
    try:
        assert await client.wait_up(2)
        data = encode({"Event": "Newchannel", "Channel": "PJSIP/carrier-00000007", "CallerIDNum": "13912345678",
                       "CallerIDName": "王小明", "Uniqueid": "7.7", "Linkedid": "7.7", "Exten": "96811"})
        start = data.index("王".encode())
        # Cut inside 王 (after its 1st byte) and inside 小 (after its 2nd byte), and inside the CRLF.
        await server.send_split(data, [start + 1, start + 5, len(data) - 3])
        await eventually(lambda: rec.named("Newchannel"))
        assert rec.named("Newchannel")[0]["CallerIDName"] == "王小明"
    finally:
        await client.stop()


def test_parse_message_keeps_empty_last_value_and_repeats():
    headers = parse_message("Event: VarSet\r\nChanVariable: A=1\r\nChanVariable: B=2\r\nValue: ")
    assert headers == [("Event", "VarSet"), ("ChanVariable", "A=1"), ("ChanVariable", "B=2"), ("Value", "")]


async def test_garbage_on_the_wire_does_not_drop_the_link(server):
    client, rec = make_client(server)
    await client.start()
    try:
        assert await client.wait_up(2)
        conn = server.live[0]
        await conn.send(b"this is not AMI\r\nno colon here\r\n\r\n")
        await conn.send(b"Event: Newchannel\r\nCallerIDName: \xff\xfe bad \xe7\x8e\r\nUniqueid: 1.1\r\n\r\n")
        await conn.send(b"Response: Success\r\nActionID: nobody-asked\r\n\r\n")   # a late answer
        await conn.send(b"Event: UserEvent\r\nN: after\r\n\r\n")
        await eventually(lambda: rec.named("UserEvent"))
        name = rec.named("Newchannel")[0]["CallerIDName"]
        assert name.startswith("\ufffd") and "bad" in name        # replaced, never silently dropped
        assert client.is_up and len(server.connections) == 1
        assert (await client.send_action({"Action": "Ping"})).success
    finally:
        await client.stop()


# ------------------------------------------------------- client-side event filter


def test_wants_matches_names_case_insensitively_and_varset_by_prefix():
    open_client = AmiClient("127.0.0.1", 1, "u", "p")
    assert open_client.wants("Newexten", "Event: Newexten\r\n")      # no filter: everything
    client = AmiClient("127.0.0.1", 1, "u", "p", wanted_events={"Newchannel", "varset"},
                       varset_prefixes=("HOTLINE_", "MIXMONITOR_FILENAME"))
    assert client.wants("NEWCHANNEL", "") and client.wants(" Newchannel\r", "")
    assert not client.wants("Newexten", "Event: Newexten\r\n")
    assert client.wants("VarSet", "Event: VarSet\r\nVariable: __HOTLINE_DISPOSITION\r\nValue: x")
    assert client.wants("VarSet", "Event: VarSet\r\nvariable: mixmonitor_filename\r\nValue: /r.wav")
    assert not client.wants("VarSet", "Event: VarSet\r\nVariable: BRIDGEPEER\r\nValue: x")
    assert not client.wants("VarSet", "Event: VarSet\r\nValue: no variable header")


async def test_unwanted_events_are_dropped_unparsed_and_wanted_ones_arrive_intact(server, monkeypatch):
    import bridge.pbx.ami as ami

    parsed: list[str] = []
    real_parse = ami.parse_message
    monkeypatch.setattr(ami, "parse_message", lambda text: parsed.append(text) or real_parse(text))
    client, rec = make_client(server, wanted_events={"newchannel", "varset", "hangup"},
                              varset_prefixes=("HOTLINE_", "MIXMONITOR_FILENAME"))
    await client.start()
    try:
        assert await client.wait_up(2)
        await eventually(lambda: client.dropped_events == 1)           # FullyBooted after login
        await server.send_event({"Event": "Newexten", "Channel": "PJSIP/carrier-00000001",
                                 "Application": "Set", "AppData": "X=1", "Linkedid": "1.1"})
        await server.send_event({"Event": "VarSet", "Variable": "BRIDGEPEER", "Value": "PJSIP/8001",
                                 "Linkedid": "1.1"})
        await server.send_event({"Event": "VarSet", "Variable": "__HOTLINE_DISPOSITION",
                                 "Value": "status_line", "Linkedid": "1.1"})
        data = encode({"Event": "Newchannel", "Channel": "PJSIP/carrier-00000007", "CallerIDNum": "13912345678",
                       "CallerIDName": "王小明", "Uniqueid": "7.7", "Linkedid": "7.7", "Exten": "96811"})
        start = data.index("王".encode())
        await server.send_split(data, [start + 1, start + 5])          # a UTF-8 name cut mid-character
        await server.send_event({"Event": "Hangup", "Uniqueid": "7.7", "Linkedid": "7.7", "Cause": "16"})
        await eventually(lambda: rec.named("Hangup"))
        assert [e["Event"] for e in rec.events] == ["VarSet", "Newchannel", "Hangup"]
        assert rec.events[0] == {"Event": "VarSet", "Variable": "__HOTLINE_DISPOSITION",
                                 "Value": "status_line", "Linkedid": "1.1"}
        assert rec.named("Newchannel")[0]["CallerIDName"] == "王小明"
        assert client.dropped_events == 3
        assert not [t for t in parsed if "Newexten" in t or "BRIDGEPEER" in t or "FullyBooted" in t]
        response = await client.send_action({"Action": "Ping"})      # responses are always parsed
        assert response.success and response["Ping"] == "Pong"
    finally:
        await client.stop()


async def test_filter_keeps_list_events_of_an_action_in_flight(server):
    server.channels = [
        {"Channel": "PJSIP/carrier-00000001", "Uniqueid": "1.1", "Linkedid": "1.1", "Exten": "96811",
         "CallerIDName": "王小明"},
        {"Channel": "PJSIP/8001-00000002", "Uniqueid": "1.2", "Linkedid": "1.1", "Exten": "s"},
    ]
    client, rec = make_client(server, wanted_events={"newchannel"}, varset_prefixes=())
    await client.start()
    try:
        assert await client.wait_up(2)
        response = await client.send_action({"Action": "CoreShowChannels"}, expect_list=True)
        assert response.success and response["Message"] == "Channels will follow"
        assert [e["Uniqueid"] for e in response.events] == ["1.1", "1.2"]
        assert response.events[0]["CallerIDName"] == "王小明"
        # Without an action waiting for them, the same list events are unwanted and dropped.
        dropped = client.dropped_events
        await server.send_event({"Event": "CoreShowChannel", "ActionID": "gone", **server.channels[1]})
        await server.send_event({"Event": "Newchannel", "Uniqueid": "2.1", "Linkedid": "2.1"})
        await eventually(lambda: rec.named("Newchannel"))
        assert client.dropped_events == dropped + 1 and not rec.named("CoreShowChannel")
    finally:
        await client.stop()


def test_parse_message_matches_a_line_by_line_reading():
    text = ("Response: Follows\r\nActionID: a-1\r\nno colon here\r\n  \r\nKey With Space: x\r\n"
            "Tab:\tv\r\nName: 王 \u2028 小\r\nEmpty:\r\nValue: ")
    assert parse_message(text) == [
        ("Response", "Follows"), ("ActionID", "a-1"), ("", "no colon here"), ("", "Key With Space: x"),
        ("Tab", "\tv"), ("Name", "王 \u2028 小"), ("Empty", ""), ("Value", "")]
