"""The shipped dialplan in a real Asterisk 22: calls placed with SIPp, observed over AMI.

Needs the test bed (tests/asterisk_testbed.py): root, sipp, espeak-ng, sox.  Never skipped.
"""
from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.asterisk, pytest.mark.timeout(120)]


def _host_path(asterisk, chroot_path: str) -> Path:
    """A file Asterisk names (inside its root) as the daemon sees it on the host."""
    return asterisk.sandbox.root / chroot_path.lstrip("/")


async def _wait_file(path: Path, timeout: float = 10, min_size: int = 44) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.stat().st_size >= min_size:
            return path.stat().st_size
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} was not written")


async def _wait_exit(run, timeout: float = 60) -> int:
    return await asyncio.to_thread(run.wait, timeout)


def _cdr_rows(asterisk, linkedid: str, table: str = "cdr") -> list[dict]:
    # CDR rows are in log/master.db, CEL rows in their own log/cel.db beside it.
    path = asterisk.cel_db if table == "cel" else asterisk.cdr_db
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute(f"select * from {table} where linkedid = ?", (linkedid,))]
    finally:
        db.close()


async def test_office_hours_call_reaches_desk_phone_through_queue_and_is_recorded(asterisk, sipp_cleanup):
    with asterisk.desk_phone("8001"), asterisk.desk_phone("8002"):
        async with asterisk.ami_events() as ami:
            call = asterisk.place_calls(1, caller_number="13800001111", caller_name="朱女士",
                                        digits="1", hold_ms=2500)
            join = await ami.wait_for("QueueCallerJoin", Queue="hotline", timeout=20)
            linkedid = join["Linkedid"]
            connect = await ami.wait_for("AgentConnect", Queue="hotline", Linkedid=linkedid, timeout=20)
            assert connect["MemberName"] in ("8001", "8002")
            assert connect["Interface"] in ("PJSIP/8001", "PJSIP/8002")
            assert await _wait_exit(call) == 0, call.report()
            await ami.wait_for("AgentComplete", Linkedid=linkedid, timeout=10)
            recording = ami.varset("HOTLINE_RECORDING", Linkedid=linkedid)
            assert ami.varset("HOTLINE_DISPOSITION", Linkedid=linkedid)[-1] == "operator"
    assert len(recording) == 1 and linkedid in recording[0] and recording[0].endswith(".wav")
    host_file = _host_path(asterisk, recording[0])
    assert host_file.parent == asterisk.recordings_dir
    # Both sides stream audio (tests/sipp voice.al): the conversation is really recorded.
    assert await _wait_file(host_file, min_size=44 + 8000) > 44 + 8000
    # The CDR database (sqlite3) has the call, tied together by linkedid.
    deadline = time.monotonic() + 5
    rows = []
    while time.monotonic() < deadline and not rows:
        rows = _cdr_rows(asterisk, linkedid)
        await asyncio.sleep(0.1)
    assert rows, "no CDR row for the call"
    assert any(r["hotline_recording"] == recording[0] for r in rows)
    assert any(r["src"] == "13800001111" for r in rows)
    cel = _cdr_rows(asterisk, linkedid, "cel")
    assert {"CHAN_START", "ANSWER", "BRIDGE_ENTER", "HANGUP"} <= {r["eventtype"] for r in cel}
    assert {r["uniqueid"] for r in cel} >= {linkedid}


async def test_no_key_goes_to_the_operator(asterisk, sipp_cleanup):
    with asterisk.desk_phone("8001"), asterisk.desk_phone("8002"):
        async with asterisk.ami_events() as ami:
            # The caller stays on the line; the hotline hangs up once the operator answered.
            call = asterisk.place_calls(1, caller_number="13800002222", caller_name="老人", digits=None,
                                        hold_ms=60000)
            join = await ami.wait_for("QueueCallerJoin", Queue="hotline", CallerIDNum="13800002222", timeout=30)
            await ami.wait_for("AgentConnect", Linkedid=join["Linkedid"], timeout=20)
            asterisk.hangup(join["Channel"])
            assert await _wait_exit(call) == 0, call.report()


async def test_caller_hanging_up_in_the_queue_is_an_abandon(asterisk, sipp_cleanup):
    with asterisk.desk_phone("8001", "noanswer"), asterisk.desk_phone("8002", "noanswer"):
        async with asterisk.ami_events() as ami:
            call = asterisk.place_calls(1, caller_number="13800003333", caller_name="王先生",
                                        digits="1", hold_ms=2500)
            join = await ami.wait_for("QueueCallerJoin", Queue="hotline", CallerIDNum="13800003333", timeout=20)
            abandon = await ami.wait_for("QueueCallerAbandon", Linkedid=join["Linkedid"], timeout=20)
            assert abandon["Queue"] == "hotline"
            assert await _wait_exit(call) == 0, call.report()
            assert not ami.find("AgentConnect", Linkedid=join["Linkedid"])
            assert ami.varset("HOTLINE_DISPOSITION", Linkedid=join["Linkedid"])[-1] == "operator"


async def test_after_hours_caller_leaves_a_message(office_closed, sipp_cleanup):
    asterisk = office_closed
    async with asterisk.ami_events() as ami:
        call = asterisk.place_calls(1, caller_number="13800004444", caller_name="李女士", hold_ms=60000)
        first = await ami.wait_for("Newchannel", CallerIDNum="13800004444", timeout=10)
        linkedid = first["Linkedid"]
        await ami.wait_for("VarSet", Variable="HOTLINE_MESSAGE", Linkedid=linkedid, timeout=10)
        await ami.wait_for("Newexten", Application="Record", Linkedid=linkedid, timeout=20)
        await asyncio.sleep(1.5)
        asterisk.hangup(first["Channel"])     # the caller's message ends with the call
        assert await _wait_exit(call) == 0, call.report()
        await ami.wait_for("Hangup", Linkedid=linkedid, timeout=10)
        assert ami.varset("HOTLINE_DISPOSITION", Linkedid=linkedid) == ["after_hours_message"]
        assert ami.varset("HOTLINE_DAYTYPE", Linkedid=linkedid)[-1] == "workday"
        assert not ami.find("QueueCallerJoin", Linkedid=linkedid)
        message = ami.varset("HOTLINE_MESSAGE", Linkedid=linkedid)[0]
    assert linkedid in message
    # About a second of the caller's voice (8 kHz, 16 bit): not an empty file.
    assert await _wait_file(_host_path(asterisk, message), min_size=44 + 8000) > 44 + 8000


async def test_chinese_caller_name_arrives_intact(asterisk, sipp_cleanup):
    name = "张三丰·欧阳娜娜"
    async with asterisk.ami_events() as ami:
        call = asterisk.place_calls(1, caller_number="13800005555", caller_name=name, hold_ms=800)
        event = await ami.wait_for("Newchannel", CallerIDNum="13800005555", timeout=10)
        assert event["CallerIDName"] == name
        assert await _wait_exit(call) == 0, call.report()


async def test_status_line_copes_when_the_agi_server_is_down(asterisk, sipp_cleanup):
    # Nothing listens on [pbx] agi_port in the test bed: the first AGI() (the offer of the
    # caller's own open case) fails, the caller is told so and put through to an operator,
    # without being asked for a case number that cannot be looked up.
    with asterisk.desk_phone("8001"), asterisk.desk_phone("8002"):
        async with asterisk.ami_events() as ami:
            call = asterisk.place_calls(1, caller_number="13800006666", caller_name="赵先生",
                                        digits="2", hold_ms=60000)
            first = await ami.wait_for("Newchannel", CallerIDNum="13800006666", timeout=10)
            linkedid = first["Linkedid"]
            await ami.wait_for("VarSet", Variable="HOTLINE_STATUS_ERROR", Linkedid=linkedid, timeout=20)
            await ami.wait_for("QueueCallerJoin", Linkedid=linkedid, timeout=20)
            asterisk.hangup(first["Channel"])
            assert await _wait_exit(call) == 0, call.report()
            assert ami.varset("HOTLINE_CASE", Linkedid=linkedid) == []
            dispositions = ami.varset("HOTLINE_DISPOSITION", Linkedid=linkedid)
            assert dispositions[:2] == ["menu", "status_line"] and dispositions[-1] == "operator"
            assert ami.varset("AGISTATUS", Linkedid=linkedid)[-1] == "FAILURE"


async def test_callback_rings_the_operator_then_the_carrier(asterisk, sipp_cleanup):
    with asterisk.desk_phone("8001") as phone, asterisk.carrier() as carrier:
        async with asterisk.ami_events() as ami, asterisk.ami_events(daemon_account=True) as daemon:
            # The daemon's own account may Originate (manager.conf write=originate).
            response = await daemon.action({
                "Action": "Originate", "Channel": "PJSIP/8001", "Context": "hotline-callback",
                "Exten": "13900007777", "Priority": "1", "CallerID": "96811 回访 <96811>",
                "Timeout": "10000", "Async": "true", "Variable": "HOTLINE_CASE=C-1"})
            responses = response if isinstance(response, list) else [response]
            assert responses[0]["Response"] == "Success", responses
            begin = await ami.wait_for("DialBegin", timeout=15,
                                       where=lambda e: e.get("DestChannel", "").startswith("PJSIP/carrier-"))
            linkedid = begin["Linkedid"]
            operator = ami.find("Newchannel", where=lambda e: e.get("Channel", "").startswith("PJSIP/8001-"))
            assert operator and operator[0]["Linkedid"] == linkedid
            # The operator leg was answered before the carrier was dialled.
            answered = ami.find("Newstate", ChannelStateDesc="Up",
                                where=lambda e: e.get("Channel", "").startswith("PJSIP/8001-"))
            assert answered and ami.events.index(answered[0]) < ami.events.index(begin)
            await ami.wait_for("DialEnd", DialStatus="ANSWER", Linkedid=linkedid, timeout=15)
            assert ami.varset("HOTLINE_DISPOSITION", Linkedid=linkedid) == ["callback"]
            asterisk.cli("channel request hangup all")
            await ami.wait_for("Hangup", where=lambda e: e.get("Channel", "").startswith("PJSIP/carrier-"),
                               timeout=10)
    invites = carrier.received("INVITE")
    assert len(invites) == 1
    assert invites[0].startswith("INVITE sip:13900007777@")
    from_header = next(line for line in invites[0].splitlines() if line.lower().startswith("from:"))
    assert "sip:96811@" in from_header
    assert phone.received("INVITE")


async def test_ami_account_may_read_state_but_not_run_commands(asterisk):
    async with asterisk.ami_events() as ami:
        response = await ami.action({"Action": "Command", "Command": "core show version"})
        responses = response if isinstance(response, list) else [response]
        assert responses[0]["Response"] == "Error"
        assert "ermission" in responses[0].get("Message", "")
        # What the daemon needs after a reconnect is allowed.
        for action in ({"Action": "CoreShowChannels"}, {"Action": "QueueStatus", "Queue": "hotline"}):
            response = await ami.action(action)
            responses = response if isinstance(response, list) else [response]
            assert responses[0]["Response"] == "Success", (action, responses[0])


async def test_several_callers_at_once(asterisk, sipp_cleanup):
    with asterisk.desk_phone("8001"), asterisk.desk_phone("8002"):
        async with asterisk.ami_events() as ami:
            numbers = ["13700000001", "13700000002", "13700000003"]
            call = asterisk.place_calls(3, rate=5, caller_number=numbers, caller_name=["甲", "乙", "丙"],
                                        digits="1", hold_ms=2000)
            assert await _wait_exit(call, 90) == 0, call.report()
            joined = {e["CallerIDNum"] for e in ami.find("QueueCallerJoin")}
            assert set(numbers) <= joined
            names = {e["CallerIDNum"]: e["CallerIDName"] for e in ami.find("Newchannel")}
            assert [names[n] for n in numbers] == ["甲", "乙", "丙"]


async def test_the_daemons_account_gets_only_the_events_it_acts_on(asterisk, sipp_cleanup):
    """manager.conf's eventfilter lines, in the real Asterisk: the observer sees the whole
    dialplan (Newexten, every VarSet); the daemon's account only bridge/pbx/subscription.py's."""
    from bridge.pbx import subscription

    with asterisk.desk_phone("8001"):
        async with asterisk.ami_events() as everything, asterisk.ami_events(daemon_account=True) as daemon:
            await _wait_exit(asterisk.place_calls(1, caller_number="13800009191", digits="1", hold_ms=1500))
            first = await everything.wait_for("Newchannel", CallerIDNum="13800009191", timeout=10)
            linkedid = first["Linkedid"]
            await daemon.wait_for("Hangup", Linkedid=linkedid, Uniqueid=linkedid, timeout=15)
    seen = [e for e in daemon.events if e.get("Linkedid") == linkedid]
    assert {"Newchannel", "QueueCallerJoin", "AgentConnect", "Hangup"} <= {e["Event"] for e in seen}
    assert {e["Event"] for e in seen} <= set(subscription.EVENTS)
    variables = {e["Variable"] for e in seen if e["Event"] == "VarSet"}
    assert "HOTLINE_RECORDING" in variables
    assert variables and variables <= set(subscription.VARSET_NAMES), variables
    # What the filter kept away: the observer saw it for the same call.
    observed = [e for e in everything.events if e.get("Linkedid") == linkedid]
    assert any(e["Event"] == "Newexten" for e in observed)
    assert any(e["Event"] == "VarSet" and e["Variable"] == "BRIDGEPEER" for e in observed)
    assert any(e["Event"] == "VarSet" and e["Variable"] == "HOTLINE_CHOICE" for e in observed)
    assert len(seen) * 3 < len(observed)


def _log_from(path: Path, offset: int) -> list[str]:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", errors="replace").splitlines()


async def _wait_log(path: Path, offset: int, needle: str, timeout: float = 15) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = _log_from(path, offset)
        if any(needle in line for line in lines):
            return lines
        await asyncio.sleep(0.2)
    raise AssertionError(f"no {needle!r} in {path} within {timeout} s")


async def test_waiting_callers_hear_their_position_in_mandarin(asterisk, sipp_cleanup):
    """announce-position: no desk phone runs (every member paused), two callers wait.  Each
    hears its position at once on joining, from the queue's own Mandarin prompts; Asterisk
    says the number with digits/N in the channel's language (zh), which the instance's data
    dir maps to the generated Mandarin numbers (no 'does not exist' warning)."""
    # The prompts folder as Asterisk (in the chroot) names it.
    sounds = "/" + str(asterisk.sandbox.paths()["sounds"].relative_to(asterisk.sandbox.root))
    offset = asterisk.full_log.stat().st_size
    async with asterisk.ami_events() as ami:
        call = asterisk.place_calls(2, rate=2, caller_number=["13800008801", "13800008802"],
                                    caller_name=["钱女士", "孙先生"], digits="1", hold_ms=60000)
        first = await ami.wait_for("QueueCallerJoin", Queue="hotline", CallerIDNum="13800008801", timeout=20)
        second = await ami.wait_for("QueueCallerJoin", Queue="hotline", CallerIDNum="13800008802", timeout=20)
        assert (first["Position"], second["Position"]) == ("1", "2")
        # Within seconds of joining, not after announce-frequency (60 s).
        for join, position in ((first, 1), (second, 2)):
            await _wait_log(asterisk.full_log, offset,
                            f"Told {join['Channel']} in hotline their queue position (which was {position})")
            await _wait_log(asterisk.full_log, offset, f"<{join['Channel']}> Playing '{sounds}/queue-thankyou.")
        for join in (first, second):
            asterisk.hangup(join["Channel"])
        assert await _wait_exit(call) == 0, call.report()
        assert not ami.find("AgentCalled", Linkedid=second["Linkedid"])
    lines = _log_from(asterisk.full_log, offset)

    def played(channel: str) -> list[str]:
        marker = f"<{channel}> Playing '"
        return [line.split(marker, 1)[1].rsplit(".", 1)[0] for line in lines if marker in line]

    # "您现在排在第" 2 "位。" "请不要挂机，…"; the first in line: "您现在排在第一位。" "请不要挂机，…"
    assert played(second["Channel"])[-4:] == [f"{sounds}/queue-thereare", "digits/2",
                                              f"{sounds}/queue-callswaiting", f"{sounds}/queue-thankyou"]
    assert played(first["Channel"])[-2:] == [f"{sounds}/queue-youarenext", f"{sounds}/queue-thankyou"]
    assert "(language 'zh')" in next(line for line in lines if "Playing 'digits/2." in line)
    missing = [line for line in lines if "does not exist" in line or "Unable to open" in line]
    assert not missing, missing
    # digits/2 is the generated Mandarin prompt (the status line's too), through data/sounds/zh.
    data_digit = asterisk.sandbox.instance_dir / "data" / "sounds" / "zh" / "digits" / "2.wav"
    assert data_digit.resolve() == (asterisk.sandbox.paths()["sounds"] / "digits" / "2.wav").resolve()


async def test_the_instances_data_dir_keeps_the_documentation_and_the_shared_root_untouched(asterisk):
    # astdatadir is the instance's data/ folder: Asterisk's XML documentation is still found
    # through its links, and nothing was written into the root's /usr/share/asterisk.
    help_text = asterisk.cli("core show application Queue")
    assert "Queue a call for a call queue." in help_text, help_text
    option = asterisk.cli("config show help res_pjsip endpoint language")
    assert "Set the default language" in option, option
    assert "/sounds/moh/tone" in asterisk.cli("moh show files")   # hold music: the instance's sounds/moh
    share = asterisk.sandbox.root / "usr/share/asterisk/sounds"
    assert not (share / "zh").exists()     # the root has no Mandarin sounds; none were put there
    data = asterisk.sandbox.instance_dir / "data"
    assert (data / "documentation").is_symlink()
    assert sorted(p.name for p in (data / "sounds").iterdir()) == sorted(
        [p.name for p in share.iterdir()] + ["zh"])
