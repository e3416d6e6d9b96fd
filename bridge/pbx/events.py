"""The call log's data types: one ``CallRecord`` per hotline call, ``CallUpdate`` for live pops.

These are what the call tracker (``bridge.pbx.tracker``) hands to the rest of the
daemon: the call log persists ``CallRecord`` rows (keyed by ``linkedid``, so a call
recovered twice is still one row), the operator desk shows ``CallUpdate`` events
("call X is ringing at extension 8001", "connected at 8001", "ended").

Times are timezone-aware ``datetime`` values as given to the tracker; durations are
float seconds.  Everything here is immutable and free of I/O.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

Disposition = Literal["answered", "abandoned", "after_hours_message", "status_line", "hung_up_in_menu",
                      "failed"]
DISPOSITIONS: tuple[str, ...] = ("answered", "abandoned", "after_hours_message", "status_line", "hung_up_in_menu",
                                 "failed")

UpdateKind = Literal[
    "arrived",        # a hotline call was seen for the first time (Newchannel of its first channel)
    "adopted",        # a call in progress was found after a (re)connect (CoreShowChannels)
    "queued",         # the caller joined the operator queue
    "ringing",        # an operator phone started ringing (extension set)
    "ring_stopped",   # that phone stopped ringing without answering (extension set)
    "connected",      # an operator answered (extension set)
    "ended",          # the last channel hung up: ``record`` is final
]
UPDATE_KINDS: tuple[str, ...] = ("arrived", "adopted", "queued", "ringing", "ring_stopped", "connected", "ended")


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One hotline call, as far as it is known at the moment of the snapshot."""

    linkedid: str
    caller_number: str | None = None
    caller_name: str | None = None
    dialled_number: str | None = None
    arrived_at: datetime | None = None
    queue_joined_at: datetime | None = None
    queue_wait_s: float | None = None
    answered_at: datetime | None = None
    # The operator's extension (PJSIP/8001 -> "8001") and the queue member name Asterisk reports.
    extension: str | None = None
    member_name: str | None = None
    talk_s: float | None = None
    ended_at: datetime | None = None
    hangup_cause: int | None = None
    hangup_cause_text: str | None = None
    # Final for ended calls; for calls in progress the disposition they would get if they ended now.
    disposition: Disposition = "failed"
    recording: str | None = None
    message_file: str | None = None
    # True when the call was picked up from CoreShowChannels rather than seen arriving:
    # arrived_at / answered_at are then estimates from channel durations.
    adopted: bool = False
    # False when the end was not seen (the link was down) but inferred from a later channel
    # list: ended_at is then only an upper bound; recover the real figures from CDR/CEL.
    complete: bool = True

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: datetimes as ISO 8601 strings."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, datetime):
                data[key] = value.isoformat()
        return data


@dataclass(frozen=True, slots=True)
class CallUpdate:
    """A live event about one call, with the call's record at that moment."""

    kind: UpdateKind
    linkedid: str
    at: datetime
    record: CallRecord
    # The operator phone concerned (ringing / ring_stopped / connected), else None.
    extension: str | None = None
