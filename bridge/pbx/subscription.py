"""Which AMI events the daemon needs from Asterisk, in one place.

Asterisk sends an AMI session every event of its read classes; on a hotline that is
mostly ``Newexten`` and ``VarSet`` (a dozen per dialplan step), which the call tracker
ignores.  Reading and dropping them cost the daemon more CPU than everything else
(docs/performance.md), so the daemon's AMI account asks Asterisk to filter them out
before they are written to the socket (``manager.conf`` *advanced* ``eventfilter``
lines, Asterisk 20.10 / 21.5 / 22 and later), and the AMI client drops the same set
itself (for a site whose account has no filter).

* ``EVENTS``: the events the call tracker acts on (``CallTracker.event_names``, checked
  by a test) plus ``OriginateResponse`` for the callbacks' Originate.
* ``VARSET_NAMES``: of ``VarSet`` events, only the variables the tracker reads; a
  leading ``_`` or ``__`` (inherited variables) is allowed.  The dialplan's other
  ``HOTLINE_*`` variables (menu choice, day type, status-line details) stay on Asterisk.

Responses to actions (``CoreShowChannels``'s list included) are not events and are never
filtered.
"""
from __future__ import annotations

EVENTS: tuple[str, ...] = (
    "Newchannel", "Newcallerid", "Hangup", "VarSet",
    "QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon",
    "AgentCalled", "AgentRingNoAnswer", "AgentConnect", "AgentComplete",
    "DialBegin", "DialEnd", "BridgeEnter", "BridgeLeave", "MixMonitorStart",
    "CoreShowChannel", "OriginateResponse",
)

VARSET_NAMES: tuple[str, ...] = ("HOTLINE_DISPOSITION", "HOTLINE_RECORDING", "HOTLINE_MESSAGE",
                                  "MIXMONITOR_FILENAME")


def manager_eventfilters() -> list[str]:
    """The ``eventfilter`` lines for the daemon's account in ``manager.conf``.

    Include filters only: with any include filter, Asterisk sends an event only when one
    matches.  Event names are matched by hash; the VarSet filter also checks the
    ``Variable`` header with a regular expression.
    """
    lines = [f"eventfilter(action(include),name({name}))=" for name in EVENTS if name != "VarSet"]
    names = "|".join(VARSET_NAMES)
    lines.append(f"eventfilter(action(include),name(VarSet),header(Variable),method(regex))=^_{{0,2}}({names})$")
    return lines
