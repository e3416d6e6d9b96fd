"""Call tracking: AMI events in, one ``CallRecord`` per hotline call out.  Pure.

No I/O and no clock: every event comes with the time it was received (``now``), so
tests replay recorded event sequences with a controlled clock.

How a call is followed
----------------------
Asterisk gives every channel of a call the same ``Linkedid`` (the ``Uniqueid`` of the
call's first channel).  The tracker keeps one state per Linkedid:

* it is a *hotline call* when its first channel (``Uniqueid == Linkedid``) dialled one
  of the hotline numbers (``Exten`` or ``DNID`` of its ``Newchannel``), or when it was
  *adopted* from a CoreShowChannels listing after a (re)connect;
* it *ends* when the last channel of the Linkedid hangs up; the ``ended`` update then
  carries the final record; a Linkedid ends at most once (late or duplicate events for
  a finished Linkedid are ignored);
* the dialplan labels calls with channel variables, seen as ``VarSet`` events:
  ``HOTLINE_DISPOSITION`` (``after_hours_message`` / ``status_line``),
  ``HOTLINE_RECORDING`` (falls back to MixMonitor's own ``MIXMONITOR_FILENAME``) and
  ``HOTLINE_MESSAGE``.  Inherited forms (``__HOTLINE_...``) count too.

Disposition of an ended call: ``answered`` if an operator answered (``AgentConnect``,
``DialEnd`` ANSWER to an extension, or the caller bridged with an operator channel);
else the dialplan's last ``HOTLINE_DISPOSITION`` if it is ``after_hours_message`` or
``status_line``; else ``abandoned`` if the caller joined the queue; else
``hung_up_in_menu`` if the dialplan's last label is ``menu`` (greeting and menu) and the
caller's own channel ended with a normal clearing cause (:data:`CALLER_CLEARING_CAUSES`);
else ``failed``: a technical failure (the hangup cause says which, e.g. 38 network out of
order), or a call that never reached the menu, or whose end was not seen.

Robustness: events are untrusted text.  Missing fields, garbage values, duplicates and
out-of-order events (a ``Hangup`` before its ``Newchannel``, an ``AgentConnect``
before ``QueueCallerJoin``) are absorbed; ``feed`` never raises (a bug would be counted
in ``internal_errors`` rather than stop the call log — the property tests check it
stays 0).
"""
from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bridge.pbx.events import CallRecord, CallUpdate

__all__ = ["CALLER_CLEARING_CAUSES", "CallRecord", "CallTracker", "CallUpdate", "extension_of"]

_FINISHED_MEMORY = 20_000   # Linkedids remembered as ended (ignore their late events)
_DEAD_MEMORY = 50_000       # Uniqueids remembered as hung up (ignore late Newchannels)
_UNKNOWN = {"", "<unknown>", "unknown", "(null)"}
_HEX_SUFFIX = re.compile(r"^(.+)-[0-9a-fA-F]{6,}$")
_DURATION = re.compile(r"^(\d{1,6}):([0-5]?\d):([0-5]?\d)$")
# Q.850 causes of a caller who simply hung up: 16 normal clearing, 31 normal unspecified, and
# 0 (none given), which is what Asterisk 22 reports for a PJSIP caller's BYE without a Reason.
CALLER_CLEARING_CAUSES = frozenset({0, 16, 31})


def extension_of(name: Any) -> str | None:
    """The extension in a channel name or queue interface.

    ``PJSIP/8001-0000002a`` -> ``8001``; ``PJSIP/8001`` -> ``8001``;
    ``Local/8001@agents-00000001;1`` -> ``8001``; ``Local/8001@from-queue/n`` -> ``8001``.
    """
    if not isinstance(name, str):
        return None
    s = name.strip()
    if not s:
        return None
    if "/" in s:
        s = s.split("/", 1)[1]
    if "@" in s:
        s = s.split("@", 1)[0]
    else:
        s = s.split(";", 1)[0]
        m = _HEX_SUFFIX.match(s)
        if m:
            s = m.group(1)
    s = s.split("/", 1)[0].strip()
    return s or None


def _clean(value: str) -> str | None:
    value = value.strip()
    return None if value.lower() in _UNKNOWN else value


def _number(value: str) -> str:
    """Digits with an optional leading +, for comparing dialled numbers."""
    value = value.strip()
    plus = value.startswith("+")
    digits = "".join(c for c in value if c.isascii() and c.isdigit())
    return ("+" if plus else "") + digits if digits else ""


def _int(value: str) -> int | None:
    value = value.strip()
    if value.isascii() and value.isdigit() and len(value) <= 6:
        return int(value)
    return None


def _seconds(value: str) -> float | None:
    n = _int(value)
    return float(n) if n is not None else None


def _duration(value: str) -> float | None:
    """CoreShowChannel Duration ``HH:MM:SS`` (or plain seconds) -> seconds."""
    value = value.strip()
    m = _DURATION.match(value)
    if m:
        h, mi, s = (int(g) for g in m.groups())
        return float(h * 3600 + mi * 60 + s)
    return _seconds(value)


def _diff(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    try:
        return max(0.0, round((later - earlier).total_seconds(), 3))
    except (TypeError, ValueError, OverflowError):   # naive vs aware, garbage
        return None


def _normalise(event: Any) -> dict[str, str] | None:
    """Lower-cased keys, string values; None if this is not an event at all."""
    if not isinstance(event, Mapping):
        return None
    out: dict[str, str] = {}
    for key, value in event.items():
        if not isinstance(key, str):
            continue
        if isinstance(value, str):
            out.setdefault(key.lower(), value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out.setdefault(key.lower(), str(value))
        elif isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
            out.setdefault(key.lower(), value[0])
    return out


@dataclass(eq=False)
class _Call:
    linkedid: str
    created_at: datetime
    tracked: bool = False
    adopted: bool = False
    first_seen: bool = False
    uids: set[str] = field(default_factory=set)      # every Uniqueid linked to this call
    live: set[str] = field(default_factory=set)
    dead: set[str] = field(default_factory=set)
    names: dict[str, str] = field(default_factory=dict)
    bridges: dict[str, set[str]] = field(default_factory=dict)
    caller_number: str | None = None
    caller_name: str | None = None
    dialled_number: str | None = None
    arrived_at: datetime | None = None
    queued: bool = False
    queue_joined_at: datetime | None = None
    queue_left_at: datetime | None = None
    queue_hold_s: float | None = None
    answered_at: datetime | None = None
    extension: str | None = None
    member_name: str | None = None
    agent_done_at: datetime | None = None
    talk_time_s: float | None = None
    ended_at: datetime | None = None
    cause: int | None = None
    cause_text: str | None = None
    caller_cause_seen: bool = False
    caller_hung_up: bool = False     # the Hangup of the caller's own channel was seen
    hint: str | None = None
    recording: str | None = None
    recording_explicit: bool = False
    message_file: str | None = None
    ringing: set[str] = field(default_factory=set)
    connected_sent: bool = False
    complete: bool = True


class CallTracker:
    """Follows calls per Linkedid; ``feed`` one AMI event at a time.

    ``hotline_numbers``: the numbers callers dial (``pbx.hotline_numbers``).
    ``queue_name``: the operator queue (``pbx.queue``); queue events of other queues are
    ignored.  ``hotline_contexts``: optional dialplan contexts whose channels count as
    hotline calls when adopting calls in progress (their Exten may have moved on).
    """

    def __init__(self, hotline_numbers: Iterable[str], queue_name: str | None = "hotline",
                 *, hotline_contexts: Iterable[str] = ()):
        self.hotline_numbers = frozenset(n for n in (_number(x) for x in hotline_numbers) if n)
        self.queue_name = queue_name
        self.hotline_contexts = frozenset(hotline_contexts)
        self._calls: dict[str, _Call] = {}
        self._chan_link: dict[str, str] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._dead_uids: OrderedDict[str, None] = OrderedDict()
        self.internal_errors = 0
        self._handlers = {
            "newchannel": self._on_newchannel,
            "newcallerid": self._on_newcallerid,
            "hangup": self._on_hangup,
            "varset": self._on_varset,
            "queuecallerjoin": self._on_queue_join,
            "queuecallerleave": self._on_queue_leave,
            "queuecallerabandon": self._on_queue_abandon,
            "agentcalled": self._on_agent_called,
            "agentringnoanswer": self._on_agent_ring_no_answer,
            "agentconnect": self._on_agent_connect,
            "agentcomplete": self._on_agent_complete,
            "dialbegin": self._on_dial_begin,
            "dialend": self._on_dial_end,
            "bridgeenter": self._on_bridge_enter,
            "bridgeleave": self._on_bridge_leave,
            "mixmonitorstart": self._on_mixmonitor_start,
            "coreshowchannel": self._on_core_show_channel,
        }

    # ------------------------------------------------------------------ public API

    @property
    def event_names(self) -> frozenset[str]:
        """The AMI event names (lower case) that ``feed`` acts on; every other event is ignored."""
        return frozenset(self._handlers)

    def feed(self, event: Mapping[str, Any], now: datetime) -> list[CallUpdate]:
        """Apply one AMI event received at ``now``; return the live updates it causes."""
        try:
            ev = _normalise(event)
            if ev is None:
                return []
            handler = self._handlers.get(ev.get("event", "").strip().lower())
            if handler is None:
                return []
            out: list[CallUpdate] = []
            handler(ev, now, out)
            return out
        except Exception:  # noqa: BLE001 - the call log must outlive a tracker bug
            self.internal_errors += 1
            return []

    def adopt(self, channels: Iterable[Mapping[str, Any]], now: datetime, *,
              reconcile: bool = True) -> list[CallUpdate]:
        """Take the channels up now (CoreShowChannel events of one CoreShowChannels listing).

        Hotline calls in progress that the tracker did not know are adopted ("adopted"
        updates).  With ``reconcile`` (a complete listing), calls the tracker thought open
        but absent from the listing ended while the link was down: they end now with
        ``complete=False`` (recover their real end from CDR/CEL).
        """
        try:
            out: list[CallUpdate] = []
            listed = self._adopt(channels, now, out)
            if reconcile:
                for linkedid in [lid for lid in self._calls if lid not in listed]:
                    call = self._calls[linkedid]
                    call.complete = False
                    self._finish(call, now, out)
            return out
        except Exception:  # noqa: BLE001
            self.internal_errors += 1
            return []

    def open_calls(self) -> list[CallRecord]:
        """Snapshots of the hotline calls in progress, oldest first."""
        calls = [c for c in self._calls.values() if c.tracked]
        return [self._record(c, None) for c in calls]

    def get(self, linkedid: str) -> CallRecord | None:
        call = self._calls.get(linkedid)
        return self._record(call, None) if call is not None and call.tracked else None

    # --------------------------------------------------------------- bookkeeping

    def _call_for(self, ev: dict[str, str], now: datetime, *, create: bool = True,
                  prefix: str = "") -> _Call | None:
        uid = ev.get(prefix + "uniqueid", "").strip()
        linkedid = ev.get(prefix + "linkedid", "").strip() or self._chan_link.get(uid, "") or uid
        if not linkedid or linkedid in self._finished:
            return None
        call = self._calls.get(linkedid)
        if call is None and create:
            call = self._calls[linkedid] = _Call(linkedid=linkedid, created_at=now)
        if call is not None and uid:
            if self._chan_link.setdefault(uid, linkedid) == linkedid:
                call.uids.add(uid)
            channel = ev.get(prefix + "channel", "").strip()
            if channel:
                call.names.setdefault(uid, channel)
        return call

    def _is_hotline(self, *numbers: str) -> bool:
        return any(_number(n) in self.hotline_numbers for n in numbers if n)

    @staticmethod
    def _remember(memory: OrderedDict[str, None], key: str, limit: int) -> None:
        memory[key] = None
        memory.move_to_end(key)
        while len(memory) > limit:
            memory.popitem(last=False)

    def _emit(self, out: list[CallUpdate], kind: str, call: _Call, now: datetime,
              extension: str | None = None) -> None:
        if call.tracked:
            out.append(CallUpdate(kind=kind, linkedid=call.linkedid, at=now,
                                  record=self._record(call, None), extension=extension))

    def _finish(self, call: _Call, now: datetime, out: list[CallUpdate]) -> None:
        self._calls.pop(call.linkedid, None)
        self._remember(self._finished, call.linkedid, _FINISHED_MEMORY)
        for uid in call.uids:
            if self._chan_link.get(uid) == call.linkedid:
                del self._chan_link[uid]
        call.ended_at = now
        if call.tracked:
            out.append(CallUpdate(kind="ended", linkedid=call.linkedid, at=now,
                                  record=self._record(call, now)))

    def _record(self, call: _Call, ended_at: datetime | None) -> CallRecord:
        answered = call.answered_at is not None
        if answered:
            disposition = "answered"
        elif call.hint in ("after_hours_message", "status_line"):
            disposition = call.hint
        elif call.queued:
            disposition = "abandoned"
        elif call.hint == "menu" and self._caller_cleared(call):
            disposition = "hung_up_in_menu"
        else:
            disposition = "failed"
        # An end inferred after a disconnection is only an upper bound: no durations from it.
        end = ended_at if call.complete else None
        wait = None
        if call.queue_joined_at is not None:
            wait = _diff(call.answered_at or call.queue_left_at or end, call.queue_joined_at)
        if wait is None:
            wait = call.queue_hold_s
        talk = None
        if call.answered_at is not None:
            talk = _diff(call.agent_done_at or end, call.answered_at)
        if talk is None and answered:
            talk = call.talk_time_s
        return CallRecord(
            linkedid=call.linkedid,
            caller_number=call.caller_number,
            caller_name=call.caller_name,
            dialled_number=call.dialled_number,
            arrived_at=call.arrived_at or call.created_at,
            queue_joined_at=call.queue_joined_at,
            queue_wait_s=wait,
            answered_at=call.answered_at,
            extension=call.extension,
            member_name=call.member_name,
            talk_s=talk,
            ended_at=ended_at,
            hangup_cause=call.cause,
            hangup_cause_text=call.cause_text,
            disposition=disposition,
            recording=call.recording,
            message_file=call.message_file,
            adopted=call.adopted,
            complete=call.complete,
        )

    @staticmethod
    def _caller_cleared(call: _Call) -> bool:
        """The caller's channel ended normally (the caller hung up), as far as the events say."""
        return (call.complete and call.caller_hung_up
                and (call.cause is None or call.cause in CALLER_CLEARING_CAUSES))

    # ------------------------------------------------------------ call progress

    def _ring(self, call: _Call, ext: str | None, now: datetime, out: list[CallUpdate]) -> None:
        if ext and ext not in call.ringing and not (call.connected_sent and ext == call.extension):
            call.ringing.add(ext)
            self._emit(out, "ringing", call, now, ext)

    def _ring_stop(self, call: _Call, ext: str | None, now: datetime, out: list[CallUpdate]) -> None:
        if ext and ext in call.ringing:
            call.ringing.discard(ext)
            self._emit(out, "ring_stopped", call, now, ext)

    def _answer(self, call: _Call, ext: str | None, now: datetime, out: list[CallUpdate], *,
                member: str | None = None, hold_s: float | None = None) -> None:
        if call.answered_at is None:
            call.answered_at = now
        if ext and call.extension is None:
            call.extension = ext
        if member and call.member_name is None:
            call.member_name = member
        if hold_s is not None and call.queue_hold_s is None:
            call.queue_hold_s = hold_s
        if call.connected_sent:
            return
        call.connected_sent = True
        call.ringing.discard(call.extension or "")
        for other in sorted(call.ringing):
            self._emit(out, "ring_stopped", call, now, other)
        call.ringing.clear()
        self._emit(out, "connected", call, now, call.extension)

    def _queue_matches(self, ev: dict[str, str]) -> bool:
        return self.queue_name is None or ev.get("queue", "").strip() == self.queue_name

    # ----------------------------------------------------------------- handlers

    def _on_newchannel(self, ev: dict[str, str], now: datetime, out: list[CallUpdate]) -> None:
        call = self._call_for(ev, now)
        if call is None:
            return
        uid = ev.get("uniqueid", "").strip()
        if uid and uid not in call.dead and uid not in self._dead_uids:
            call.live.add(uid)
        elif uid:
            call.dead.add(uid)
        if uid == call.linkedid and not call.first_seen:
            call.first_seen = True
            call.caller_number = call.caller_number or _clean(ev.get("calleridnum", ""))
            call.caller_name = call.caller_name or _clean(ev.get("calleridname", ""))
            exten, dnid = ev.get("exten", "").strip(), ev.get("dnid", "").strip()
            if call.arrived_at is None:
                call.arrived_at = now
            if not call.tracked and self._is_hotline(exten, dnid):
                call.tracked = True
                call.dialled_number = exten if self._is_hotline(exten) else dnid
                self._emit(out, "arrived", call, now)
        if not call.live and call.dead:
            self._finish(call, now, out)     # its channels hung up before we heard of them

    def _on_newcallerid(self, ev: dict[str, str], now: datetime, out: list[CallUpdate]) -> None:
        call = self._call_for(ev, now, create=False)
        if call is not None and ev.get("uniqueid", "").strip() == call.linkedid:
            call.caller_number = _clean(ev.get("calleridnum", "")) or call.caller_number
            call.caller_name = _clean(ev.get("calleridname", "")) or call.caller_name

    def _on_hangup(self, ev: dict[str, str], now: datetime, out: list[CallUpdate]) -> None:
        uid = ev.get("uniqueid", "").strip()
        if uid:
            self._remember(self._dead_uids, uid, _DEAD_MEMORY)
        call = self._call_for(ev, now, create=False)
        if call is None:
            return
        if uid:
            call.live.discard(uid)
            call.dead.add(uid)
        is_caller = uid == call.linkedid
        call.caller_hung_up = call.caller_hung_up or is_caller
        if is_caller or not call.caller_cause_seen:
            cause = _int(ev.get("cause", ""))
            text = _clean(ev.get("cause-txt", ""))
            if cause is not None or text:
                call.cause, call.cause_text = cause, text
                call.caller_cause_seen = call.caller_cause_seen or is_caller
        ext = extension_of(ev.get("channel", ""))
        if ext and ext in call.ringing:
            self._ring_stop(call, ext, now, out)
        if not call.live:
            self._finish(call, now, out)

    def _on_varset(self, ev: dict[str, str], now: datetime, out: list[CallUpdate]) -> None:
        name = ev.get("variable", "").strip().lstrip("_").upper()
        if name not in ("HOTLINE_DISPOSITION", "HOTLINE_RECORDING", "HOTLINE_MESSAGE", "MIXMONITOR_FILENAME"):
            return
        value = ev.get("value", "").strip()
        if not value:
            return
        call = self._call_for(ev, now)
        if call is None:
            return
        if name == "HOTLINE_DISPOSITION":
            # The dialplan's latest label wins, whatever it is: "status_line" then "operator"
            # (the FastAGI server was down, or the caller asked for an operator after the
            # status) is an operator call, not a status-line one.
            call.hint = value.lower()
        elif name == "HOTLINE_RECORDING":
            call.recording, call.recording_explicit = value, True
        elif name == "MIXMONITOR_FILENAME":
            if not call.recording_explicit:
                call.recording = value
        else:
            call.message_file = value

    def _on_mixmonitor_start(self, ev: dict[str, str], now: datetime, out: list[CallUpdate]) -> None:
        filename = ev.get("filename", "").strip() or ev.get("file", "").strip()
        call = self._call_for(ev, now, create=False)
        if call is not None and filename and not call.recording_explicit:
            call.recording = filename

    def _on_queue_join(self, ev: dict[str, str], now: datetime, out: list[CallUpdate]) -> None:
        if not self._queue_matches(ev):
            return
        call = self._call_for(ev, now)
        if call is None or call.queued:
            return
        call.queued = True
        call.queue_joined_at = now
        self._emit(out, "queued", call, now)

    def _on_queue_leave(self, ev: dict[str, str], now: datetime, out: list[CallUpdate]) -> None:
        if not self._queue_matches(ev):
            return
        call = self._call_for(ev, now, create=False)
        if call is not None and call.queue_left_at is None:
            call.queued = True
            call.queue_left_at = now

    def _on_queue_abandon(self, ev: dict[str, str], now: datetime, out: list[CallUpdate]) -> None:
        if not self._queue_matches(ev):
            return
        call = self._call_for(ev, now)
        if call is None:
            return
        call.queued = True
        if call.queue_left_at is None:
            call.queue_left_at = now
        if call.queue_hold_s is None:
            call.queue_hold_s = _seconds(ev.get("holdtime", ""))

    @staticmethod
    def _agent_ext(ev: dict[str, str]) -> str | None:
        return (extension_of(ev.get("interface", "")) or extension_of(ev.get("destchannel", ""))
                or _clean(ev.get("membername", "")))

    def _on_agent_called(self, ev: dict[str, str], now: datetime, out: list[CallUpdate]) -> None:
        if not self._queue_matches(ev):
            return
        call = self._call_for(ev, now)
        if call is not None:
            self._ring(call, self._agent_ext(ev), now, out)

    def _on_agent_ring_no_answer(self, ev: dict[str, str], now: datetime, out: list[CallUpdate]) -> None:
        if not self._queue_matches(ev):
            return
        call = self._call_for(ev, now, create=False)
        if call is not None:
            self._ring_stop(call, self._agent_ext(ev), now, out)

    def _on_agent_connect(self, ev: dict[str, str], now: datetime, out: list[CallUpdate]) -> None:
        if not self._queue_matches(ev):
            return
        call = self._call_for(ev, now)
        if call is None:
            return
        call.queued = True
        self._answer(call, self._agent_ext(ev), now, out, member=_clean(ev.get("membername", "")),
                     hold_s=_seconds(ev.get("holdtime", "")))

    def _on_agent_complete(self, ev: dict[str, str], now: datetime, out: list[CallUpdate]) -> None:
        if not self._queue_matches(ev):
            return
        call = self._call_for(ev, now, create=False)
        if call is None:
            return
        if call.agent_done_at is None and call.answered_at is not None:
            call.agent_done_at = now
        if call.talk_time_s is None:
            call.talk_time_s = _seconds(ev.get("talktime", ""))
        if call.queue_hold_s is None:
            call.queue_hold_s = _seconds(ev.get("holdtime", ""))

    def _dial_call(self, ev: dict[str, str], now: datetime) -> _Call | None:
        if ev.get("uniqueid", "").strip() or ev.get("linkedid", "").strip():
            return self._call_for(ev, now, create=False)
        return self._call_for(ev, now, create=False, prefix="dest")

    @staticmethod
    def _operator_ext(channel: str) -> str | None:
        """Only digit extensions count as operator phones (never the carrier trunk)."""
        ext = extension_of(channel)
        return ext if ext and ext.isascii() and ext.isdigit() else None

    def _on_dial_begin(self, ev: dict[str, str], now: datetime, out: list[CallUpdate]) -> None:
        call = self._dial_call(ev, now)
        if call is not None:
            self._ring(call, self._operator_ext(ev.get("destchannel", "")), now, out)

    def _on_dial_end(self, ev: dict[str, str], now: datetime, out: list[CallUpdate]) -> None:
        call = self._dial_call(ev, now)
        if call is None:
            return
        ext = self._operator_ext(ev.get("destchannel", ""))
        if ev.get("dialstatus", "").strip().upper() == "ANSWER":
            if ext:
                self._answer(call, ext, now, out)
        else:
            self._ring_stop(call, ext, now, out)

    def _on_bridge_enter(self, ev: dict[str, str], now: datetime, out: list[CallUpdate]) -> None:
        bridge = ev.get("bridgeuniqueid", "").strip()
        uid = ev.get("uniqueid", "").strip()
        call = self._call_for(ev, now, create=False)
        if call is None or not bridge or not uid:
            return
        members = call.bridges.setdefault(bridge, set())
        members.add(uid)
        if call.linkedid in members and call.answered_at is None:
            for other in members - {call.linkedid}:
                ext = self._operator_ext(call.names.get(other, ""))
                if ext:
                    self._answer(call, ext, now, out)
                    break

    def _on_bridge_leave(self, ev: dict[str, str], now: datetime, out: list[CallUpdate]) -> None:
        call = self._call_for(ev, now, create=False)
        bridge = ev.get("bridgeuniqueid", "").strip()
        if call is not None and bridge in call.bridges:
            call.bridges[bridge].discard(ev.get("uniqueid", "").strip())

    def _on_core_show_channel(self, ev: dict[str, str], now: datetime, out: list[CallUpdate]) -> None:
        self._adopt([ev], now, out)

    # ------------------------------------------------------------------ adoption

    def _qualifies(self, ch: dict[str, str]) -> bool:
        if self._is_hotline(ch.get("exten", ""), ch.get("dnid", "")):
            return True
        if ch.get("context", "").strip() in self.hotline_contexts:
            return True
        if ch.get("application", "").strip().lower() == "queue" and self.queue_name:
            args = ch.get("applicationdata", "").split(",", 1)[0].strip()
            return args == self.queue_name
        return False

    def _adopt(self, channels: Iterable[Mapping[str, Any]], now: datetime, out: list[CallUpdate]) -> set[str]:
        groups: dict[str, list[dict[str, str]]] = {}
        for raw in channels:
            ch = _normalise(raw)
            if ch is None:
                continue
            uid = ch.get("uniqueid", "").strip()
            linkedid = ch.get("linkedid", "").strip() or self._chan_link.get(uid, "") or uid
            if linkedid:
                groups.setdefault(linkedid, []).append(ch)
        for linkedid, chans in groups.items():
            if linkedid in self._finished:
                continue
            call = self._calls.get(linkedid)
            if call is None:
                call = self._calls[linkedid] = _Call(linkedid=linkedid, created_at=now)
            for ch in chans:
                uid = ch.get("uniqueid", "").strip()
                if uid and uid not in call.dead and uid not in self._dead_uids:
                    call.live.add(uid)
                    if self._chan_link.setdefault(uid, linkedid) == linkedid:
                        call.uids.add(uid)
                    name = ch.get("channel", "").strip()
                    if name:
                        call.names.setdefault(uid, name)
            if call.tracked or not any(self._qualifies(ch) for ch in chans):
                continue
            first = next((ch for ch in chans if ch.get("uniqueid", "").strip() == linkedid), None)
            call.tracked = call.adopted = True
            if first is not None:
                call.caller_number = call.caller_number or _clean(first.get("calleridnum", ""))
                call.caller_name = call.caller_name or _clean(first.get("calleridname", ""))
            exten = (first or chans[0]).get("exten", "")
            if self._is_hotline(exten):
                call.dialled_number = exten.strip()
            elif len(self.hotline_numbers) == 1:
                call.dialled_number = next(iter(self.hotline_numbers))
            durations = [d for d in (_duration(ch.get("duration", "")) for ch in chans) if d is not None]
            if call.arrived_at is None:
                age = _duration((first or {}).get("duration", "")) if first else None
                age = age if age is not None else (max(durations) if durations else None)
                call.arrived_at = now - timedelta(seconds=age) if age is not None else now
            if first is not None and first.get("application", "").strip().lower() == "queue":
                call.queued = True
            bridge = (first or {}).get("bridgeid", "").strip()
            if first is not None and bridge and call.answered_at is None:
                for ch in chans:
                    if ch is first or ch.get("bridgeid", "").strip() != bridge:
                        continue
                    ext = self._operator_ext(ch.get("channel", ""))
                    if ext:
                        age = _duration(ch.get("duration", ""))
                        call.answered_at = now - timedelta(seconds=age) if age is not None else now
                        call.extension = ext
                        call.connected_sent = True
                        break
            self._emit(out, "adopted", call, now, call.extension)
        return set(groups)
