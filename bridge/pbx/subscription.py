"""Which AMI events the daemon needs from Asterisk: the union of what the capabilities declare.

Asterisk sends an AMI session every event of its read classes; on a hotline that is
mostly ``Newexten`` and ``VarSet`` (a dozen per dialplan step), which the call tracker
ignores.  Reading and dropping them cost the daemon more CPU than everything else
(docs/performance.md), so the daemon's AMI account asks Asterisk to filter them out
before they are written to the socket (``manager.conf`` *advanced* ``eventfilter``
lines, Asterisk 20.10 / 21.5 / 22 and later), and the AMI client drops the same set
itself (for a site whose account has no filter).

Each capability declares its part (``Capability.ami``, a
:class:`bridge.capability.AmiSubscription`: event names and the ``VarSet`` variables it
reads); the subscription is their union, in capability order:

* ``TRACKER``: the PBX capability's part, the events the call tracker acts on
  (``CallTracker.event_names``, checked by a test) and the ``VarSet`` variables it reads.
  The dialplan's other ``HOTLINE_*`` variables (menu choice, day type, status-line
  details) stay on Asterisk.  (``OriginateResponse`` is the callbacks capability's.)
* ``installed()``: the union over the installed capabilities; ``EVENTS`` and
  ``VARSET_NAMES`` are its events and variables.

Responses to actions (``CoreShowChannels``'s list included) are not events and are never
filtered.
"""
from __future__ import annotations

from bridge.capability import AmiSubscription, subscription_of
from bridge.capability import installed as installed_capabilities

TRACKER = AmiSubscription(
    events=("Newchannel", "Newcallerid", "Hangup", "VarSet",
            "QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon",
            "AgentCalled", "AgentRingNoAnswer", "AgentConnect", "AgentComplete",
            "DialBegin", "DialEnd", "BridgeEnter", "BridgeLeave", "MixMonitorStart",
            "CoreShowChannel"),
    variables=("HOTLINE_DISPOSITION", "HOTLINE_RECORDING", "HOTLINE_MESSAGE", "MIXMONITOR_FILENAME"),
)


def installed() -> AmiSubscription:
    """The union of the installed capabilities' parts."""
    return subscription_of(installed_capabilities())


def __getattr__(name: str) -> tuple[str, ...]:
    # EVENTS / VARSET_NAMES are read when needed: the capabilities are found through entry
    # points, which must not be loaded while this module is being imported.
    if name == "EVENTS":
        return installed().events
    if name == "VARSET_NAMES":
        return installed().variables
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def manager_eventfilters(subscription: AmiSubscription | None = None) -> list[str]:
    """The ``eventfilter`` lines for the daemon's account in ``manager.conf``.

    Include filters only: with any include filter, Asterisk sends an event only when one
    matches.  Event names are matched by hash; the VarSet filter also checks the
    ``Variable`` header with a regular expression.
    """
    subscription = subscription or installed()
    wants_varset = "VarSet" in subscription.events
    lines = [f"eventfilter(action(include),name({name}))=" for name in subscription.events
             if name != "VarSet" or not subscription.variables]
    if wants_varset and subscription.variables:
        names = "|".join(subscription.variables)
        lines.append(f"eventfilter(action(include),name(VarSet),header(Variable),method(regex))=^_{{0,2}}({names})$")
    return lines
