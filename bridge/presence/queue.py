"""The operator queue as Asterisk has it, and what to do to make it what the sessions call for.
Pure: no I/O (the AMI adapter, :mod:`bridge.presence.ami`, reads and acts).

* :func:`plan`: desired members (:func:`bridge.presence.service.desired_members`) against the
  members Asterisk reports -> the AMI actions to send (``QueueAdd`` / ``QueueRemove`` of dynamic
  members only / ``QueuePause`` with the reason).  A static member (``member =>`` in a site's
  queues.conf) is never removed; it is only paused or resumed like the sessions say.
* :class:`QueueBoard`: members and waiting callers, loaded from ``QueueStatus`` and kept up to
  date from the queue's events, for the supervisors' page.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

# Asterisk's device states (AST_DEVICE_*), as QueueMember / QueueMemberStatus report them.
DEVICE_STATES = {"0": "unknown", "1": "free", "2": "in_call", "3": "busy", "4": "invalid", "5": "unavailable",
                 "6": "ringing", "7": "ringing_in_call", "8": "on_hold"}
IDLE_STATES = frozenset({"free", "unknown", "unavailable", "invalid"})


def _truthy(value: str | None) -> bool:
    return str(value or "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class Member:
    interface: str
    name: str = ""
    dynamic: bool = True
    paused: bool = False
    reason: str = ""
    state: str = "unknown"
    in_call: bool = False

    @classmethod
    def of(cls, event: Mapping[str, str]) -> Member:
        """From a QueueMember, QueueMemberAdded or QueueMemberStatus event."""
        interface = event.get("Interface") or event.get("Location") or ""
        return cls(interface=interface, name=event.get("MemberName") or event.get("Name") or "",
                   dynamic=(event.get("Membership") or "dynamic").lower() != "static",
                   paused=_truthy(event.get("Paused")), reason=event.get("PausedReason") or "",
                   state=DEVICE_STATES.get(str(event.get("Status", "0")), "unknown"),
                   in_call=_truthy(event.get("InCall")))


@dataclass(frozen=True)
class Caller:
    uniqueid: str
    channel: str
    number: str
    name: str
    joined_at: datetime
    position: int = 0


def plan(queue: str, desired: Iterable, actual: Mapping[str, Member]) -> list[dict[str, str]]:
    """The actions that turn ``actual`` (interface -> Member) into ``desired``
    (:class:`bridge.presence.service.DesiredMember`), removals first."""
    wanted = {d.interface: d for d in desired}
    actions: list[dict[str, str]] = []
    for interface, member in sorted(actual.items()):
        if member.dynamic and (interface not in wanted or (member.name and member.name != wanted[interface].name)):
            actions.append({"Action": "QueueRemove", "Queue": queue, "Interface": interface})
    for interface, want in sorted(wanted.items()):
        member = actual.get(interface)
        renamed = member is not None and member.dynamic and member.name and member.name != want.name
        if member is None or renamed:
            actions.append({"Action": "QueueAdd", "Queue": queue, "Interface": interface, "Penalty": "0",
                            "Paused": "true" if want.paused else "false", "MemberName": want.name,
                            "StateInterface": interface, **({"Reason": want.reason} if want.paused else {})})
            if want.paused:   # QueueAdd of an older Asterisk drops the reason: say it again
                actions.append(_pause(queue, interface, True, want.reason))
        elif member.paused != want.paused or (want.paused and member.reason != want.reason):
            actions.append(_pause(queue, interface, want.paused, want.reason))
    return actions


def _pause(queue: str, interface: str, paused: bool, reason: str) -> dict[str, str]:
    action = {"Action": "QueuePause", "Queue": queue, "Interface": interface, "Paused": "true" if paused else "false"}
    if paused:
        action["Reason"] = reason
    return action


@dataclass
class QueueBoard:
    """The queue's members and waiting callers, as the last QueueStatus and the events since say."""

    queue: str
    members: dict[str, Member] = field(default_factory=dict)
    callers: dict[str, Caller] = field(default_factory=dict)
    loaded: bool = False

    def load(self, events: Iterable[Mapping[str, str]], now: datetime) -> None:
        """Replace everything with a QueueStatus answer (its QueueMember and QueueEntry events)."""
        members, callers = {}, {}
        for event in events:
            if event.get("Queue") != self.queue:
                continue
            name = event.get("Event")
            if name == "QueueMember":
                member = Member.of(event)
                members[member.interface] = member
            elif name == "QueueEntry":
                wait = float(event.get("Wait") or 0)
                caller = Caller(event.get("Uniqueid", ""), event.get("Channel", ""), event.get("CallerIDNum", ""),
                                event.get("CallerIDName", ""), now - timedelta(seconds=wait),
                                int(event.get("Position") or 0))
                callers[caller.uniqueid or caller.channel] = caller
        self.members, self.callers, self.loaded = members, callers, True

    def feed(self, event: Mapping[str, str], now: datetime) -> bool:
        """Apply one AMI event; True when the board changed."""
        if event.get("Queue") != self.queue:
            return False
        name = event.get("Event")
        if name in ("QueueMemberAdded", "QueueMemberStatus", "QueueMemberPause", "QueueMemberPenalty",
                    "QueueMemberRinginuse"):
            member = Member.of(event)
            self.members[member.interface] = member
            return True
        if name == "QueueMemberRemoved":
            return self.members.pop(event.get("Interface", ""), None) is not None
        if name == "QueueCallerJoin":
            key = event.get("Uniqueid") or event.get("Channel", "")
            self.callers[key] = Caller(key, event.get("Channel", ""), event.get("CallerIDNum", ""),
                                       event.get("CallerIDName", ""), now, int(event.get("Position") or 0))
            return True
        if name in ("QueueCallerLeave", "QueueCallerAbandon"):
            return self.callers.pop(event.get("Uniqueid") or event.get("Channel", ""), None) is not None
        return False

    def state_of(self, interface: str) -> str | None:
        member = self.members.get(interface)
        return member.state if member is not None else None

    def waiting(self) -> list[Caller]:
        return sorted(self.callers.values(), key=lambda c: c.joined_at)

    def forget(self) -> None:
        """The AMI link is down: nothing is known any more."""
        self.members, self.callers, self.loaded = {}, {}, False

    def with_paused(self, interface: str, paused: bool, reason: str) -> None:
        member = self.members.get(interface)
        if member is not None:
            self.members[interface] = replace(member, paused=paused, reason=reason)


# The events the board and the reconciliation read (the presence capability's AMI subscription).
EVENTS = ("QueueMemberAdded", "QueueMemberRemoved", "QueueMemberStatus", "QueueMemberPause",
          "QueueMemberPenalty", "QueueMemberRinginuse", "QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon")
