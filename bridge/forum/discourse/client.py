"""The Discourse backend of the Forum protocol (bridge/forum/adapter.py).

The hotline account talks to Discourse's REST API with the ``Api-Key`` and
``Api-Username`` headers.  Only these endpoints are used (all in Discourse's published
OpenAPI description, a copy in tests/contracts/discourse-openapi.yml):

* ``GET  /categories.json``                     list_boards (names of the mapped categories)
* ``GET  /t/external_id/{case}.json`` (301) ->  find_post, and the check before every filing
  ``GET  /t/{id}.json``
* ``POST /posts.json``                          create_post (title, raw, category, external_id)
                                                and post_follow_up (topic_id, raw)
* ``GET  /posts/{id}.json``                     post_follow_up and verify_threads: the raw of
                                                posts the topic view shows only cooked
* ``GET  /posts.json?before=``                  fetch_events: the latest posts, paged to the cursor
* ``GET  /latest.json``                         fetch_events: tags (acceptance) on active topics
* ``GET  /t/{id}.json``                         verify_threads: a case's whole thread and tags

Errors: a timeout or a refused connection or a 5xx -> ForumError; 429 -> ForumRateLimited
(a ForumError carrying ``retry_after`` seconds from Retry-After; with ``max_wait_s`` the
client waits that long itself and retries); 422 "already been used/taken" on a filing ->
the existing topic (found by external_id); any other 4xx -> ForumRejected.
"""
from __future__ import annotations

import asyncio
import email.utils
import re
from collections import OrderedDict
from collections.abc import Mapping as MappingOf
from dataclasses import asdict
from datetime import datetime, timezone

import httpx
import structlog

from bridge.forum.adapter import (
    Board,
    EventPage,
    ForumError,
    ForumRateLimited,
    ForumRejected,
    NewPost,
    PostRef,
    ThreadEvent,
    ThreadEventKind,
)
from bridge.forum.discourse.mapping import (
    REGULAR_POST_TYPES,
    Mapping,
    PostFacts,
    key_of,
    title_with_case_number,
    with_key,
)

log = structlog.get_logger(__name__)

_DUPLICATE = re.compile(r"already been (used|taken)", re.IGNORECASE)
# What is kept of a post read once (enough to classify it again, and its raw text).
_SLIM = ("id", "topic_id", "post_number", "username", "primary_group_name", "created_at", "post_type",
         "raw", "cooked")


def _retry_after(value: str | None, default: float = 60.0) -> float:
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # an HTTP date
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return default
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return max(0.0, (parsed - datetime.now(timezone.utc)).total_seconds())


def _errors(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return "; ".join(str(e) for e in body["errors"])
    return str(body)[:200]


class Cursor:
    """Polling position over /posts.json (post ids grow): ``<done>`` or ``<done>:<gap_before>:<top>``.

    ``done``: every post with an id <= done was seen.  A cycle that hit its page budget
    before reaching ``done`` leaves a gap: the posts with ids in (done, gap_before) are still
    to read, and everything in [gap_before, top] was seen.  The next cycle closes the gap
    first (older posts first), then reads new posts above ``top``.
    """

    def __init__(self, done: int = 0, gap_before: int | None = None, top: int | None = None):
        self.done, self.gap_before, self.top = done, gap_before, top

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        try:
            parts = [int(p) for p in text.split(":")]
        except ValueError:
            raise ValueError(f"not a Discourse polling cursor: {text!r}") from None
        if len(parts) == 1:
            return cls(parts[0])
        if len(parts) == 3:
            return cls(*parts)
        raise ValueError(f"not a Discourse polling cursor: {text!r}")

    def __str__(self) -> str:
        if self.gap_before is None:
            return str(self.done)
        return f"{self.done}:{self.gap_before}:{self.top}"


class DiscourseForum:
    """The Forum protocol on a Discourse site, under the hotline's account.

    ``categories``: unit code -> category id (config forum.discourse.categories).
    ``unit_groups``: unit code -> the Discourse group of its spokespeople (their primary
    group; config forum.discourse.groups); by default the unit code in lower case.
    ``max_wait_s``: a 429 whose Retry-After is at most this is waited out here (once per
    request); a longer one raises ForumRateLimited at once.
    ``page_budget``: the most /posts.json pages one polling cycle reads.
    """

    PAGE_SIZE = 50  # Discourse's /posts.json page
    POST_CACHE = 2000  # posts kept with their raw text (verification re-reads threads)

    def __init__(self, *, base_url: str, api_username: str, api_key: str,
                 categories: dict[str, int], unit_groups: dict[str, str] | None = None,
                 timeout_s: float = 10.0, max_wait_s: float = 0.0, page_budget: int = 10,
                 transport: httpx.AsyncBaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self.api_username = api_username
        self.mapping = Mapping(hotline_username=api_username, categories=categories,
                               unit_groups=unit_groups)
        self.max_wait_s = max_wait_s
        self.page_budget = max(1, page_budget)
        self.requests_made = 0  # for tests and the benchmark
        # In memory only (a restart forgets them; see docs/discourse.md): spokespeople's
        # units, and (topic, category) pairs whose move was already looked at.
        self._unit_of_user: dict[str, str] = {}
        self._resolved: set[tuple[int, int | None]] = set()
        # Case number -> its topic (by external_id); the link fills it from the database at
        # start (remember_topics), filings and look-ups add to it.
        self._case_topic: dict[str, int] = {}
        self._state_reported: set[str] = set()  # topic-state events polling already reported
        self._posts: OrderedDict[int, dict] = OrderedDict()  # post id -> _SLIM fields, POST_CACHE
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Api-Key": api_key, "Api-Username": api_username,
                     "Accept": "application/json"},
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=True,
            transport=transport,
        )

    @classmethod
    def from_config(cls, config, **kwargs) -> DiscourseForum:
        """From a validated bridge.config.Config (forum.discourse section, secrets read there)."""
        dc = config.forum.discourse
        kwargs.setdefault("unit_groups", dict(dc.groups) or None)
        return cls(base_url=dc.base_url, api_username=dc.api_username,
                   api_key=config.secret(dc.api_key_env), categories=dict(dc.categories), **kwargs)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> DiscourseForum:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ HTTP

    async def _request(self, method: str, path: str, *, ok_statuses: tuple[int, ...] = (),
                       **kwargs) -> httpx.Response:
        waited = False
        while True:
            self.requests_made += 1
            try:
                response = await self._client.request(method, path, **kwargs)
            except httpx.TimeoutException as exc:
                raise ForumError(f"Discourse did not answer {method} {path} in time: {exc!r}") from exc
            except httpx.TransportError as exc:
                raise ForumError(f"Discourse unreachable for {method} {path}: {exc!r}") from exc
            status = response.status_code
            if status < 400 or status in ok_statuses:
                return response
            if status == 429:
                retry_after = _retry_after(response.headers.get("Retry-After"))
                if not waited and retry_after <= self.max_wait_s:
                    waited = True
                    await asyncio.sleep(retry_after)
                    continue
                raise ForumRateLimited(
                    f"Discourse rate limit on {method} {path}: retry after {retry_after:g} s",
                    retry_after)
            if status >= 500:
                raise ForumError(f"Discourse error {status} on {method} {path}: {_errors(response)}")
            raise ForumRejected(f"Discourse refused {method} {path} ({status}): {_errors(response)}")

    def _topic_url(self, topic: dict) -> str:
        slug = topic.get("slug") or topic.get("topic_slug") or "-"
        return f"{self.base_url}/t/{slug}/{topic.get('id') or topic.get('topic_id')}"

    # --------------------------------------------------------------- boards

    async def list_boards(self) -> list[Board]:
        response = await self._request("GET", "/categories.json")
        names = {c["id"]: c["name"] for c in response.json()["category_list"]["categories"]}
        return [Board(unit_code=unit, name=names.get(cid, unit), remote_id=str(cid))
                for unit, cid in self.mapping.categories.items()]

    # ----------------------------------------------------------------- posts

    async def _topic(self, topic_id: int) -> dict:
        return (await self._request("GET", f"/t/{topic_id}.json")).json()

    def remember_topics(self, topics: MappingOf[str, int | str]) -> None:
        """Case number -> topic id pairs known elsewhere (the cases' ``forum_post_id``): a case
        in this map needs no GET /t/external_id/ to tell its topic from an impostor."""
        for case_number, topic_id in topics.items():
            try:
                self._case_topic[case_number] = int(topic_id)
            except (TypeError, ValueError):
                log.warning("discourse.bad_topic_id", case_number=case_number, topic_id=topic_id)

    async def find_post(self, case_number: str) -> PostRef | None:
        response = await self._request("GET", f"/t/external_id/{case_number}.json",
                                       ok_statuses=(404,))
        if response.status_code == 404:
            return None
        topic = response.json()
        self._case_topic[case_number] = int(topic["id"])
        return PostRef(case_number=case_number, remote_id=str(topic["id"]), url=self._topic_url(topic))

    async def create_post(self, post: NewPost) -> PostRef:
        category = self.mapping.categories.get(post.unit_code)
        if category is None:
            raise ForumRejected(f"unit {post.unit_code} has no Discourse category "
                                "(forum.discourse.categories)")
        existing = await self.find_post(post.case_number)
        if existing is not None:
            return existing
        body = {"title": title_with_case_number(post.title, post.case_number), "raw": post.body,
                "category": category, "external_id": post.case_number}
        response = await self._request("POST", "/posts.json", json=body, ok_statuses=(422,))
        if response.status_code == 422:
            message = _errors(response)
            if _DUPLICATE.search(message):
                existing = await self.find_post(post.case_number)
                if existing is not None:
                    return existing
            raise ForumRejected(f"Discourse refused the post for {post.case_number}: {message}")
        created = response.json()
        self._case_topic[post.case_number] = int(created["topic_id"])
        return PostRef(case_number=post.case_number, remote_id=str(created["topic_id"]),
                       url=self._topic_url(created))

    async def post_follow_up(self, ref: PostRef, text: str, *, idempotency_key: str) -> str:
        """A reply by the hotline account; a retry finds the reply already made (key in raw)."""
        found = await self._find_keyed_reply(int(ref.remote_id), idempotency_key)
        if found is not None:
            return found
        body = {"topic_id": int(ref.remote_id), "raw": with_key(text, idempotency_key)}
        response = await self._request("POST", "/posts.json", json=body, ok_statuses=(422,))
        if response.status_code == 422:
            found = await self._find_keyed_reply(int(ref.remote_id), idempotency_key)
            if found is not None:
                return found
            raise ForumRejected(f"Discourse refused the follow-up for {ref.case_number}: "
                                f"{_errors(response)}")
        return str(response.json()["id"])

    async def _find_keyed_reply(self, topic_id: int, key: str) -> str | None:
        """The hotline's reply carrying ``key`` in the thread (newest first), if any."""
        posts = await self._thread_posts(topic_id)
        for item in sorted(posts, key=lambda p: p["post_number"], reverse=True):
            if item["post_number"] > 1 and self.mapping.is_hotline(item["username"]):
                raw = item.get("raw")
                if raw is None:
                    raw = (await self._request("GET", f"/posts/{item['id']}.json")).json()["raw"]
                if key_of(raw) == key:
                    return str(item["id"])
        return None

    # --------------------------------------------------------------- events

    async def events_for_posts(self, posts: list[PostFacts], *,
                               threads: dict[int, list[dict]] | None = None) -> list[ThreadEvent]:
        """Classify posts (oldest first); a unit's answer looks at its thread once per topic
        (``threads``: topic id -> its posts, when the caller has read them already)."""
        events: list[ThreadEvent] = []
        threads = dict(threads or {})
        ordered = sorted(posts, key=lambda p: p.id)
        self._learn(ordered)
        for index, post in enumerate(ordered):
            self._keep(asdict(post))
            event = await self._post_event(post, ordered[index + 1:], threads)
            if event is not None and await self._is_case_topic(event.case_number, post.topic_id):
                events.append(event)
        return events

    async def _post_event(self, post: PostFacts, later: list[PostFacts],
                          threads: dict[int, list[dict]]) -> ThreadEvent | None:
        follow_up_before = False
        forwarded_to = None
        kind = self.mapping.classify(post, follow_up_before=False)
        if kind is ThreadEventKind.ANSWERED:
            if post.topic_id not in threads:
                threads[post.topic_id] = await self._thread_posts(post.topic_id)
            follow_up_before = self.mapping.follow_up_before(threads[post.topic_id], post.post_number)
        elif kind is ThreadEventKind.FORWARDED:
            forwarded_to = self._next_unit(later, post)
        return self.mapping.post_event(post, follow_up_before=follow_up_before,
                                       forwarded_to=forwarded_to)

    def _next_unit(self, later: list[PostFacts], note: PostFacts) -> str | None:
        """The next other unit that spoke in the note's thread: where the note sent it."""
        author = self.mapping.unit_of_group(note.primary_group_name)
        for post in later:
            if post.topic_id == note.topic_id:
                unit = self.mapping.unit_of_group(post.primary_group_name)
                if unit is not None and unit != author:
                    return unit
        return None

    async def _thread_posts(self, topic_id: int) -> list[dict]:
        """The thread's posts (number and author): the topic view's first chunk, then any
        further posts one by one (hotline threads are short; this is rare)."""
        return await self._posts_of(await self._topic(topic_id))

    async def _posts_of(self, view: dict) -> list[dict]:
        """A topic view's posts: its first chunk, then the others (kept, or read one by one)."""
        posts = list(view["post_stream"]["posts"])
        loaded = {p["id"] for p in posts}
        for post_id in view["post_stream"]["stream"]:
            if post_id not in loaded:
                posts.append(await self._post(post_id))
        return posts

    def _keep(self, post: dict) -> dict:
        """Keep a post whose raw is known (posts are not events when edited: it stays valid)."""
        slim = {k: post[k] for k in _SLIM if k in post}
        if slim.get("raw"):
            self._posts[slim["id"]] = slim
            self._posts.move_to_end(slim["id"])
            if len(self._posts) > self.POST_CACHE:
                self._posts.popitem(last=False)
        return slim

    async def _post(self, post_id: int) -> dict:
        """A post with its raw: kept, else GET /posts/{id}.json."""
        if post_id in self._posts:
            self._posts.move_to_end(post_id)
            return self._posts[post_id]
        return self._keep((await self._request("GET", f"/posts/{post_id}.json")).json())

    async def _raw_of(self, post_id: int) -> str:
        return str((await self._post(post_id)).get("raw") or "")

    async def _is_case_topic(self, case_number: str, topic_id: int) -> bool:
        """Whether ``topic_id`` is the topic filed for the case (its external_id), not a topic
        whose title merely carries a case number; looked up once per case and remembered."""
        if case_number not in self._case_topic:
            await self.find_post(case_number)
        return self._case_topic.get(case_number) == topic_id

    async def events_for_topic(self, topic: dict, *, moved: bool = True) -> list[ThreadEvent]:
        """Events a topic's state shows (a topic webhook, or a topic on /latest.json):
        acceptance by tag, and, when ``moved`` may have happened, a forward whose note was
        posted before the move (one GET /t/{id}.json, one GET /posts/{id}.json)."""
        case_number = self.mapping.case_number_in_topic(topic)
        if case_number is None or self.mapping.unit_of_category(topic.get("category_id")) is None:
            return []
        events = self.mapping.topic_events(topic)
        if not events and not moved:
            return []
        if not await self._is_case_topic(case_number, int(topic["id"])):
            return []
        if moved:
            view = await self._topic(int(topic["id"]))
            self._learn(view["post_stream"]["posts"])
            note = self.mapping.forward_note_in_thread(view)
            if note is not None:
                facts = await self._facts_in(view, note)
                event = self.mapping.post_event(facts, follow_up_before=False)
                if event is not None:
                    events.append(event)
            self._resolved.add((int(topic["id"]), topic.get("category_id")))
        return events

    def _learn(self, posts) -> None:
        """Remember which unit each spokesperson speaks for (from their primary group)."""
        for post in posts:
            if isinstance(post, PostFacts):
                username, group = post.username, post.primary_group_name
            else:
                username, group = post.get("username"), post.get("primary_group_name")
            unit = self.mapping.unit_of_group(group)
            if username and unit:
                self._unit_of_user[username] = unit

    async def _facts_in(self, view: dict, item: dict) -> PostFacts:
        """A topic view's post item as PostFacts (its raw read once, then kept)."""
        raw = item.get("raw") or await self._raw_of(int(item["id"]))
        return PostFacts.from_json({**item, "raw": raw, "topic_title": view["title"],
                                    "category_id": view["category_id"]})

    # ----------------------------------------------------------- verification

    async def verify_threads(self, refs: list[PostRef]) -> list[ThreadEvent]:
        """Every event the present state of each case's topic shows, with the ids polling and
        webhooks give (the service applies each id once): acceptance (notice or tag),
        forwards, answers, follow-ups.  For what polling cannot see: a tag on a topic off
        /latest.json, and a thread's history after a fresh start.

        Requests per topic: one GET /t/{id}.json, plus one GET /posts/{id}.json per post
        beyond the view's first chunk and per unit or hotline reply whose raw this process
        has not read yet.  A topic Discourse refuses (gone, 404) is logged and skipped.
        """
        self.remember_topics({ref.case_number: ref.remote_id for ref in refs})
        events: list[ThreadEvent] = []
        for ref in refs:
            try:
                events += await self._verify_thread(ref)
            except ForumRejected as exc:  # a timeout, a 5xx or a 429 is raised: retry later
                log.warning("discourse.verify_refused", case_number=ref.case_number,
                            topic_id=ref.remote_id, error=str(exc))
        return events

    async def _verify_thread(self, ref: PostRef) -> list[ThreadEvent]:
        view = await self._topic(int(ref.remote_id))
        if self.mapping.case_number_in_topic(view) != ref.case_number:
            log.warning("discourse.verify_title_mismatch", case_number=ref.case_number,
                        topic_id=ref.remote_id)
            return []
        items = await self._posts_of(view)
        self._learn(items)
        facts = [await self._facts_in(view, item) for item in items if self._speaks(item)]
        events = await self.events_for_posts(facts, threads={int(view["id"]): items})
        return self._with_tag_acceptance(events, view)

    def _speaks(self, item: dict) -> bool:
        """Whether a thread post may be an event: a reply by the hotline or by a unit member."""
        if int(item.get("post_number") or 0) <= 1 or item.get("post_type") not in REGULAR_POST_TYPES:
            return False
        return (self.mapping.is_hotline(str(item.get("username") or ""))
                or self.mapping.unit_of_group(item.get("primary_group_name")) is not None)

    def _with_tag_acceptance(self, events: list[ThreadEvent], view: dict) -> list[ThreadEvent]:
        """The thread's events plus the present unit's acceptance by tag, when that is news:
        not already given by its notice post, and the unit's last step (when the unit has
        spoken or been asked since the thread reached it, the acceptance is behind it, and
        applying it after those would set the case back to "accepted")."""
        known = {e.event_id for e in events}
        since_arrival = events[max((i + 1 for i, e in enumerate(events)
                                    if e.kind is ThreadEventKind.FORWARDED), default=0):]
        if since_arrival:
            return events
        return events + [e for e in self.mapping.topic_events(view) if e.event_id not in known]

    # ----------------------------------------------------------------- polling

    async def fetch_events(self, cursor: str | None) -> EventPage:
        """One polling cycle (``None``: a fresh start at the newest post, no events).

        Requests: one GET /posts.json page (50 latest posts) per 50 posts made since the last
        cycle (at most ``page_budget``), one GET /latest.json, and one GET /t/{id}.json per
        topic in which a unit answered during the cycle.  None of these grows with the number
        of open threads.
        """
        if cursor is None:
            return await self._start_at_newest()
        position = Cursor.parse(cursor)
        fresh: list[dict] = []
        if position.gap_before is not None:
            items, reached, lowest = await self._walk(position.gap_before, position.done,
                                                      self.page_budget)
            fresh += items
            if reached:
                next_cursor = Cursor(position.top)
            else:
                next_cursor = Cursor(position.done, lowest, position.top)
        else:
            items, reached, lowest = await self._walk(None, position.done, self.page_budget)
            fresh += items
            top = max([i["id"] for i in items], default=position.done)
            if reached or not items:
                next_cursor = Cursor(max(top, position.done))
            else:
                next_cursor = Cursor(position.done, lowest, top)
        posts = [PostFacts.from_json(item) for item in fresh]
        events = await self.events_for_posts(posts)
        events += await self._topic_state_events()
        return EventPage(events=events, cursor=str(next_cursor))

    async def _start_at_newest(self) -> EventPage:
        """A fresh start (no cursor): one GET /posts.json, the cursor at its newest post.  The
        history is not walked: the link's verification reads the open cases' threads."""
        page = (await self._request("GET", "/posts.json")).json()["latest_posts"]
        top = max((p["id"] for p in page), default=0)
        log.info("discourse.polling_starts_at_newest", cursor=top)
        return EventPage(events=[], cursor=str(top))

    async def _walk(self, before: int | None, done: int, budget: int
                    ) -> tuple[list[dict], bool, int | None]:
        """Read /posts.json pages from ``before`` (None: the newest) down to ``done``.

        Returns (posts with id > done, whether ``done`` was reached, the lowest id read).
        """
        items: list[dict] = []
        lowest = before
        for _ in range(budget):
            params = {"before": before} if before is not None else None
            page = (await self._request("GET", "/posts.json", params=params)).json()["latest_posts"]
            newer = [p for p in page if p["id"] > done]
            items += newer
            if not page or len(newer) < len(page) or len(page) < self.PAGE_SIZE:
                return items, True, lowest
            before = min(p["id"] for p in page)
            lowest = before
            if before <= done + 1:
                return items, True, lowest
        return items, False, lowest

    async def _topic_state_events(self) -> list[ThreadEvent]:
        """One GET /latest.json (the 30 most recently active topics): acceptance by tag, and
        moves after a note posted before the move (the topic's last poster speaks for
        another unit than the topic's board: its thread is read once)."""
        response = await self._request("GET", "/latest.json", params={"order": "activity"})
        events = []
        for topic in response.json()["topic_list"]["topics"]:
            unit_now = self.mapping.unit_of_category(topic.get("category_id"))
            last_unit = self._unit_of_user.get(str(topic.get("last_poster_username") or ""))
            moved = (unit_now is not None and last_unit is not None and last_unit != unit_now
                     and (int(topic["id"]), topic.get("category_id")) not in self._resolved)
            for event in await self.events_for_topic(topic, moved=moved):
                # A tagged topic stays on /latest.json for many cycles: report it once, so a
                # cycle without news has no events (the link polls until a page is empty).
                if event.event_id not in self._state_reported:
                    self._state_reported.add(event.event_id)
                    events.append(event)
        return events
