"""How a hotline case's thread on Discourse maps onto ThreadEvents (pure functions, no I/O).

See docs/discourse.md for the whole mapping.  In short, for a topic the hotline
account opened (its title carries the case number, its ``external_id`` is the
case number), in the category of unit U:

* acceptance   -- the tag ``accepted`` on the topic while it is in U's category, and/or a
                  post by a member of U's group starting with 已受理 (the notice);
                  both give the one event id ``discourse:topic:<tid>:accepted:<category>``;
* forwarding   -- the topic moved to unit V's category, then a post by a member of U's
                  group (U != V) telling the poster which unit handles it: that post is
                  the note; event ``discourse:post:<pid>`` (from U, to V);
* answer       -- any other post by a member of the group of the unit whose category the
                  topic is in; ``discourse:post:<pid>``; it is a follow-up answer when a
                  follow-up by the hotline account precedes it in the thread;
* follow-up    -- a post by the hotline account after its first post; ``discourse:post:<pid>``.

Posts by anyone else (citizens, moderators outside a unit group) are not events.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from bridge.db.case_numbers import case_number_in
from bridge.forum.adapter import ThreadEvent, ThreadEventKind

ACCEPTED_TAG = "accepted"
# The platform's standard wording for an acceptance notice; a unit post starting with one
# of these is the notice (not an answer).
ACCEPT_MARKERS = ("已受理", "【已受理】", "[已受理]", "[accepted]")
# A forward note may be posted before the topic is moved: a unit post on its own board
# starting with one of these is never an answer; the move that follows makes it the note.
FORWARD_MARKERS = ("转办", "已转", "转交", "【转办】", "[转办]", "【转交】", "[转交]", "[forwarded]")

# Discourse post_type: 1 regular, 2 moderator action, 3 small action, 4 whisper.
REGULAR_POST_TYPES = (1, 2)


def title_with_case_number(title: str, case_number: str) -> str:
    """The title the hotline posts: it always carries the case number (polling reads it back)."""
    title = title.strip()
    return title if case_number in title else f"{title} [{case_number}]"


def parse_time(value: str | None) -> datetime:
    if not value:
        return datetime.now(timezone.utc)
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(timezone.utc)


def tag_names(tags) -> list[str]:
    """Topic tags as names: the topic view gives {id,name,slug} objects, webhooks and lists give names."""
    names = []
    for tag in tags or []:
        if isinstance(tag, dict):
            names.append(str(tag.get("name") or tag.get("slug") or ""))
        else:
            names.append(str(tag))
    return names


@dataclass(frozen=True)
class PostFacts:
    """What an event needs from a post (a /posts.json item or a post webhook payload)."""

    id: int
    topic_id: int
    post_number: int
    username: str
    primary_group_name: str | None
    category_id: int | None  # the topic's category when this was read
    topic_title: str
    raw: str
    created_at: str
    post_type: int = 1

    @classmethod
    def from_json(cls, data: dict) -> PostFacts:
        return cls(
            id=int(data["id"]),
            topic_id=int(data["topic_id"]),
            post_number=int(data.get("post_number") or 0),
            username=str(data.get("username") or ""),
            primary_group_name=data.get("primary_group_name"),
            category_id=data.get("category_id"),
            topic_title=str(data.get("topic_title") or ""),
            raw=str(data.get("raw") or ""),
            created_at=str(data.get("created_at") or ""),
            post_type=int(data.get("post_type") or 1),
        )


class Mapping:
    """Units <-> categories and groups, and the classification of posts and topics."""

    def __init__(self, *, hotline_username: str, categories: dict[str, int],
                 unit_groups: dict[str, str] | None = None):
        self.hotline_username = hotline_username.lower()
        self.categories = dict(categories)
        self.unit_by_category = {cid: unit for unit, cid in categories.items()}
        groups = {unit: unit.lower() for unit in categories}
        groups.update(unit_groups or {})
        self.unit_groups = groups
        self.unit_by_group = {g.lower(): unit for unit, g in groups.items() if unit in categories}

    def unit_of_category(self, category_id: int | None) -> str | None:
        return self.unit_by_category.get(category_id) if category_id is not None else None

    def unit_of_group(self, group: str | None) -> str | None:
        return self.unit_by_group.get(group.lower()) if group else None

    def is_hotline(self, username: str) -> bool:
        return username.lower() == self.hotline_username

    # ----------------------------------------------------------------- topics

    def topic_events(self, topic: dict, *, at: datetime | None = None) -> list[ThreadEvent]:
        """Events that a topic's present state shows: acceptance by the tag ``accepted``."""
        case_number = case_number_in(str(topic.get("title") or ""))
        unit = self.unit_of_category(topic.get("category_id"))
        if not case_number or unit is None:
            return []
        if ACCEPTED_TAG not in tag_names(topic.get("tags")):
            return []
        return [ThreadEvent(
            event_id=accepted_event_id(int(topic["id"]), topic["category_id"]),
            kind=ThreadEventKind.ACCEPTED,
            case_number=case_number,
            at=at or datetime.now(timezone.utc),
            unit_code=unit,
        )]

    def case_number_in_topic(self, topic: dict) -> str | None:
        return case_number_in(str(topic.get("title") or ""))

    # ------------------------------------------------------------------ posts

    def classify(self, post: PostFacts, *, follow_up_before: bool) -> ThreadEventKind | None:
        if post.post_type not in REGULAR_POST_TYPES or post.post_number <= 1:
            return None
        if not case_number_in(post.topic_title):
            return None
        topic_unit = self.unit_of_category(post.category_id)
        if topic_unit is None:
            return None
        if self.is_hotline(post.username):
            return ThreadEventKind.FOLLOW_UP_ASKED
        author_unit = self.unit_of_group(post.primary_group_name)
        if author_unit is None:
            return None  # a citizen, or a moderator speaking for no unit
        if post.raw.lstrip().startswith(ACCEPT_MARKERS):
            # A unit says 已受理 only while the thread is on its board, so the notice is its
            # acceptance even when the thread has moved on since (read later by polling).
            return ThreadEventKind.ACCEPTED
        if author_unit != topic_unit:
            return ThreadEventKind.FORWARDED
        if post.raw.lstrip().startswith(FORWARD_MARKERS):
            return None  # a note before the move: see forward_note_in_thread
        return ThreadEventKind.FOLLOW_UP_ANSWERED if follow_up_before else ThreadEventKind.ANSWERED

    def post_event(self, post: PostFacts, *, follow_up_before: bool,
                   forwarded_to: str | None = None) -> ThreadEvent | None:
        """The event a post makes.  ``forwarded_to``: for a forward note, the unit the thread
        went to when that is known better than the topic's present category (polling read
        several steps at once: the next unit that spoke in the thread)."""
        kind = self.classify(post, follow_up_before=follow_up_before)
        if kind is None:
            return None
        case_number = case_number_in(post.topic_title)
        topic_unit = self.unit_of_category(post.category_id)
        author_unit = self.unit_of_group(post.primary_group_name)
        at = parse_time(post.created_at)
        if kind is ThreadEventKind.ACCEPTED:
            return ThreadEvent(event_id=accepted_event_id(post.topic_id, self.categories[author_unit]),
                               kind=kind, case_number=case_number, at=at, unit_code=author_unit,
                               text=post.raw, actor=post.username, sequence=post.post_number)
        if kind is ThreadEventKind.FORWARDED:
            return ThreadEvent(event_id=post_event_id(post.id), kind=kind, case_number=case_number,
                               at=at, unit_code=author_unit, to_unit_code=forwarded_to or topic_unit,
                               text=post.raw, actor=post.username, sequence=post.post_number)
        if kind is ThreadEventKind.FOLLOW_UP_ASKED:
            return ThreadEvent(event_id=post_event_id(post.id), kind=kind, case_number=case_number,
                               at=at, unit_code=topic_unit, text=strip_key(post.raw),
                               actor=post.username, sequence=post.post_number)
        return ThreadEvent(event_id=post_event_id(post.id), kind=kind, case_number=case_number,
                           at=at, unit_code=topic_unit, text=post.raw, actor=post.username,
                           sequence=post.post_number)

    def forward_note_in_thread(self, topic: dict) -> dict | None:
        """After a move: the note posted *before* the move, if the thread's last unit post is
        one (a topic view's post item, by a member of another unit, starting with a forward
        marker).  The caller reads its raw and makes the FORWARDED event from it."""
        unit_now = self.unit_of_category(topic.get("category_id"))
        if unit_now is None or not case_number_in(str(topic.get("title") or "")):
            return None
        for item in reversed(topic["post_stream"]["posts"]):
            author_unit = self.unit_of_group(item.get("primary_group_name"))
            if author_unit is None or item.get("post_type") not in REGULAR_POST_TYPES:
                continue
            if author_unit == unit_now:
                return None
            text = html.unescape(re.sub(r"<[^>]+>", "", str(item.get("cooked") or ""))).lstrip()
            return item if text.startswith(FORWARD_MARKERS) else None
        return None

    def follow_up_before(self, thread_posts: list[dict], post_number: int) -> bool:
        """Whether the hotline account posted after its first post and before ``post_number``."""
        return any(self.is_hotline(str(p.get("username") or ""))
                   and 1 < int(p.get("post_number") or 0) < post_number
                   for p in thread_posts)


def post_event_id(post_id: int) -> str:
    return f"discourse:post:{post_id}"


def accepted_event_id(topic_id: int, category_id: int) -> str:
    return f"discourse:topic:{topic_id}:accepted:{category_id}"


# The hotline's follow-ups carry their idempotency key in an HTML comment: invisible on the
# page (Discourse drops comments when cooking), kept in ``raw`` for a retry to find.
_KEY = re.compile(r"\n*<!-- hotline-key: (?P<key>[^\s>]+) -->\s*$")


def with_key(text: str, key: str) -> str:
    return f"{text.rstrip()}\n\n<!-- hotline-key: {key} -->"


def key_of(raw: str) -> str | None:
    match = _KEY.search(raw or "")
    return match.group("key") if match else None


def strip_key(raw: str) -> str:
    return _KEY.sub("", raw or "").rstrip()
