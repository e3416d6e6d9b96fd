"""The forum, as the bridge sees it: one interface, two backends (builtin board, Discourse).

There is no delete operation anywhere, by design: the platform's rule is that posts
are never deleted.  Every write carries the case number as its idempotency key,
so a write retried after a timeout (the forum may have accepted it) finds the
existing post instead of making a second one.

Thread events (accepted, forwarded, answered, follow-up asked / answered) each have
the backend's own id, so applying them is idempotent (``CaseEvent.source_event_id``), and a
place in their thread (``at``, then ``sequence``), so an event that arrives after a newer one
cannot set its case back.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable


class ThreadEventKind(str, enum.Enum):
    ACCEPTED = "accepted"
    FORWARDED = "forwarded"
    ANSWERED = "answered"
    FOLLOW_UP_ASKED = "follow_up_asked"
    FOLLOW_UP_ANSWERED = "follow_up_answered"


@dataclass(frozen=True)
class Board:
    """A unit's board on the forum."""

    unit_code: str
    name: str
    remote_id: str  # the backend's id for it (a category id on Discourse)


@dataclass(frozen=True)
class NewPost:
    """What the hotline posts: only the public part of a case (never phone or full name)."""

    case_number: str  # the idempotency key
    unit_code: str
    title: str
    body: str


@dataclass(frozen=True)
class PostRef:
    case_number: str
    remote_id: str  # the thread / topic id on the forum
    url: str  # the public thread


@dataclass(frozen=True)
class ThreadEvent:
    event_id: str  # unique per backend: applied once
    kind: ThreadEventKind
    case_number: str
    at: datetime
    unit_code: str  # the unit that acted
    text: str = ""
    to_unit_code: str | None = None  # forwarded: the unit that now owes acceptance
    actor: str = ""  # the spokesperson's name on the forum
    # The forum's own order of the event in its thread (the board's event id, the Discourse
    # post number): it orders events of the same ``at``.  None when the forum gives the event
    # no place (a Discourse tag acceptance): its ``at`` is then when the bridge saw it.
    sequence: int | None = None


@dataclass(frozen=True)
class EventPage:
    events: list[ThreadEvent] = field(default_factory=list)
    cursor: str | None = None  # pass back to fetch_events for the next page


class ForumError(Exception):
    """The forum could not do it now (down, timeout, refused); retry later."""


class ForumRejected(ForumError):
    """The forum refused the write for good (bad category, post too long...): a person must look."""


class ForumRateLimited(ForumError):
    """The forum asks us to wait ``retry_after`` seconds before the next request (HTTP 429);
    the forum link then sends it nothing until then."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


@runtime_checkable
class Forum(Protocol):
    async def list_boards(self) -> list[Board]: ...

    async def create_post(self, post: NewPost) -> PostRef:
        """Post under the hotline account; an existing post for the case number is returned as is."""

    async def find_post(self, case_number: str) -> PostRef | None: ...

    async def post_follow_up(self, ref: PostRef, text: str, *, idempotency_key: str) -> str:
        """A follow-up in the case's thread; returns the reply's id."""

    async def fetch_events(self, cursor: str | None) -> EventPage:
        """Thread events since ``cursor`` (polling).  ``None``: the builtin board starts from
        its first event; Discourse starts at its newest post (the link's verification reads
        the open cases' threads instead of the old history)."""
