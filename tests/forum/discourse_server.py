"""A fake Discourse for the Discourse backend's tests, held to Discourse's published API.

Two parts:

1. ``Contract``: requests and responses checked against
   ``tests/contracts/discourse-openapi.yml`` (OpenAPI 3.1; JSON Schema 2020-12 schemas,
   no $refs), so this fake cannot drift from the real API:

   * the path must match a documented path template and the method a documented operation,
     else ContractViolation ("unknown path");
   * required header / path / query parameters must be present; query parameters must be
     documented ones, of the documented type;
   * a JSON request body must match the operation's requestBody schema (a body sent to an
     operation without one is a violation);
   * a response with a documented status must match that status's schema (a 301 must carry
     Location).  The description documents no error responses, so an undocumented status is
     accepted only for the error codes Discourse uses (400, 403, 404, 422, 429, 5xx) and only
     with Discourse's error body ``{"errors": [...], "error_type": ...}``.

2. ``FakeDiscourse``: topics, posts, tags, categories and users in memory, served over HTTP on
   a free 127.0.0.1 port by uvicorn in a thread; every request and response passes the
   Contract (violations are collected and fail the test), and it can be down, slow, rate
   limited, and send signed webhooks.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import html
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.contracts import DISCOURSE_OPENAPI
from tests.contracts.openapi import ContractViolation, OpenApiPaths, Operation, schema_errors
from tests.loopback_server import LoopbackServer

SPEC_PATH = DISCOURSE_OPENAPI

ERROR_STATUSES = {400, 403, 404, 422, 429, 500, 502, 503}
DISCOURSE_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "errors": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "error_type": {"type": "string"},
        "extras": {"type": ["object", "null"]},
        "action": {"type": "string"},
    },
    "required": ["errors"],
    "additionalProperties": False,
}


def _type_ok(value: str, schema: dict) -> bool:
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    for k in kinds:
        if k in (None, "string"):
            return True
        if k == "integer" and re.fullmatch(r"-?\d+", value):
            return True
        if k == "number" and re.fullmatch(r"-?\d+(\.\d+)?", value):
            return True
        if k == "boolean" and value in ("true", "false"):
            return True
    return False


_VALIDATORS: dict[int, Draft202012Validator] = {}


def _errors(schema: dict, instance) -> list[str]:
    validator = _VALIDATORS.get(id(schema))
    if validator is None:  # schemas live as long as the loaded description: id() is stable
        validator = _VALIDATORS[id(schema)] = Draft202012Validator(schema)
    return schema_errors(validator, instance)


class Contract(OpenApiPaths):
    source = "discourse-openapi.yml"

    @classmethod
    @functools.cache
    def load(cls, path: str | Path = SPEC_PATH) -> Contract:
        with open(path, encoding="utf-8") as fh:
            return cls(yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))

    # --------------------------------------------------------------- request

    def check_request(self, method: str, path: str, query: list[tuple[str, str]],
                      headers: dict[str, str], body: bytes, content_type: str = "") -> Operation:
        op = self.operation(method, path)
        where = f"{method} {path}"
        params = op.spec.get("parameters") or []
        lower_headers = {k.lower(): v for k, v in headers.items()}
        declared_query = {p["name"]: p for p in params if p["in"] == "query"}
        for p in params:
            if p["in"] == "header" and p.get("required") and p["name"].lower() not in lower_headers:
                raise ContractViolation(f"{where}: missing required header {p['name']}")
            if p["in"] == "path" and p["name"] not in op.path_params:
                raise ContractViolation(f"{where}: path parameter {p['name']} missing")
            if p["in"] == "path" and not _type_ok(op.path_params[p["name"]], p.get("schema", {})):
                raise ContractViolation(f"{where}: path parameter {p['name']} is not {p['schema']}")
            if p["in"] == "query" and p.get("required") and p["name"] not in dict(query):
                raise ContractViolation(f"{where}: missing required query parameter {p['name']}")
        for name, value in query:
            if name not in declared_query:
                raise ContractViolation(f"{where}: undocumented query parameter {name!r}")
            schema = declared_query[name].get("schema", {})
            if not _type_ok(value, schema):
                raise ContractViolation(f"{where}: query parameter {name}={value!r} is not {schema}")
        request_body = op.spec.get("requestBody")
        if body:
            if request_body is None:
                raise ContractViolation(f"{where}: a body was sent, the operation takes none")
            if "json" not in content_type:
                raise ContractViolation(f"{where}: body is {content_type!r}; the tests send JSON")
            schema = request_body["content"].get("application/json", {}).get("schema")
            if schema is None:
                raise ContractViolation(f"{where}: no application/json request body documented")
            _check_json(schema, body, f"{where}: request body")
        elif request_body is not None and request_body.get("required"):
            raise ContractViolation(f"{where}: the request body is required")
        return op

    # -------------------------------------------------------------- response

    def check_response(self, method: str, path: str, status: int, headers: dict[str, str],
                       body: bytes) -> None:
        op = self.operation(method, path)
        where = f"{method} {path} -> {status}"
        responses = op.spec.get("responses") or {}
        documented = responses.get(str(status))
        lower_headers = {k.lower(): v for k, v in headers.items()}
        if documented is None:
            if status not in ERROR_STATUSES:
                raise ContractViolation(f"{where}: status {status} not documented "
                                        f"(documented: {sorted(responses)})")
            schema = DISCOURSE_ERROR_SCHEMA
        else:
            if 300 <= status < 400:
                if "location" not in lower_headers:
                    raise ContractViolation(f"{where}: a redirect without Location")
                return
            content = documented.get("content") or {}
            schema = (content.get("application/json") or {}).get("schema")
            if schema is None:
                if body:
                    raise ContractViolation(f"{where}: a body where none is documented")
                return
        _check_json(schema, body, f"{where}: response")


def _check_json(schema: dict, body: bytes, what: str) -> None:
    """``body`` is JSON matching ``schema``, else a ContractViolation naming ``what``."""
    try:
        instance = json.loads(body)
    except ValueError:
        raise ContractViolation(f"{what} is not JSON: {body[:100]!r}") from None
    problems = _errors(schema, instance)
    if problems:
        raise ContractViolation(f"{what} does not match the schema: {problems}")


# =========================================================================== the fake server


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _slug(title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return slug or "topic"


def _error(status: int, message: str, error_type: str = "invalid_parameters", **extra) -> Response:
    body = {"errors": [message], "error_type": error_type}
    body.update(extra)
    return JSONResponse(body, status_code=status)


@dataclass
class User:
    id: int
    username: str
    primary_group_name: str | None = None
    admin: bool = False


@dataclass
class Topic:
    id: int
    title: str
    category_id: int
    user_id: int
    external_id: str | None
    created_at: str
    tags: list[str] = field(default_factory=list)
    post_ids: list[int] = field(default_factory=list)
    bumped_at: str = ""

    @property
    def slug(self) -> str:
        return _slug(self.title)


@dataclass
class Post:
    id: int
    topic_id: int
    post_number: int
    user_id: int
    raw: str
    created_at: str
    post_type: int = 1


class FakeDiscourse(LoopbackServer):
    """A Discourse site in memory, served on 127.0.0.1 over HTTP (uvicorn in a thread).

    Knobs: ``fail_next`` (answer N requests with 500), ``slow_next`` (store, then take
    ``slow_seconds`` to answer: the client times out after the write happened),
    ``rate_limit_next`` (429 with Retry-After ``retry_after``), ``stop()``/``start()``
    (connection refused while stopped).  Every change queues a signed webhook delivery;
    ``deliver_webhooks`` sends them.  ``violations`` lists contract violations; the test
    fixture fails the test if it is not empty.
    """

    server_name = "the fake Discourse"

    def __init__(self, *, api_key: str = "test-api-key", webhook_secret: str = "test-webhook-secret",
                 hotline_username: str = "hotline96811", contract: Contract | None = None):
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.contract = contract or Contract.load()
        self.users: dict[str, User] = {}
        self.categories: dict[int, str] = {}
        self.topics: dict[int, Topic] = {}
        self.posts: dict[int, Post] = {}
        self._next_topic = 1
        self._next_post = 1
        self._next_delivery = 1
        self.requests: list[tuple[str, str]] = []
        self.violations: list[str] = []
        self.webhook_queue: list[tuple[dict[str, str], bytes]] = []
        self.fail_next = 0
        self.slow_next = 0
        self.slow_seconds = 3.0
        self.rate_limit_next = 0
        self.retry_after = 2
        self.add_user(hotline_username, admin=True)
        self.hotline_username = hotline_username
        self.app = self._build_app()

    # ------------------------------------------------------------------ set-up

    def add_user(self, username: str, *, group: str | None = None, admin: bool = False) -> User:
        user = User(id=len(self.users) + 1, username=username, primary_group_name=group, admin=admin)
        self.users[username] = user
        return user

    def add_category(self, category_id: int, name: str) -> None:
        self.categories[category_id] = name

    # --------------------------------------------------------------- the site

    def _user(self, user_id: int) -> User:
        return next(u for u in self.users.values() if u.id == user_id)

    def create_topic(self, username: str, title: str, raw: str, category_id: int,
                     external_id: str | None = None) -> Post:
        user = self.users[username]
        at = _now()
        topic = Topic(id=self._next_topic, title=title, category_id=category_id, user_id=user.id,
                      external_id=external_id, created_at=at, bumped_at=at)
        self._next_topic += 1
        self.topics[topic.id] = topic
        post = self._add_post(topic, user, raw)
        self._queue("topic", "topic_created", {"topic": self.topic_payload(topic)})
        self._queue("post", "post_created", {"post": self.post_payload(post)})
        return post

    def reply(self, username: str, topic_id: int, raw: str) -> Post:
        """A post by ``username`` (a spokesperson, a citizen...), as the site's UI would make it."""
        post = self._add_post(self.topics[topic_id], self.users[username], raw)
        self._queue("post", "post_created", {"post": self.post_payload(post)})
        return post

    def _add_post(self, topic: Topic, user: User, raw: str) -> Post:
        post = Post(id=self._next_post, topic_id=topic.id, post_number=len(topic.post_ids) + 1,
                    user_id=user.id, raw=raw, created_at=_now())
        self._next_post += 1
        self.posts[post.id] = post
        topic.post_ids.append(post.id)
        topic.bumped_at = post.created_at
        return post

    def edit_topic(self, topic_id: int, *, category_id: int | None = None,
                   tags: list[str] | None = None) -> None:
        """Move a topic and/or set its tags (a topic edit: no bump, a topic_edited webhook)."""
        topic = self.topics[topic_id]
        if category_id is not None:
            topic.category_id = category_id
        if tags is not None:
            topic.tags = list(tags)
        self._queue("topic", "topic_edited", {"topic": self.topic_payload(topic)})

    def _queue(self, event_type: str, event: str, payload: dict) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Discourse-Instance": "http://127.0.0.1",
            "X-Discourse-Event-Id": str(self._next_delivery),
            "X-Discourse-Event-Type": event_type,
            "X-Discourse-Event": event,
            "X-Discourse-Event-Signature": "sha256=" + hmac.new(
                self.webhook_secret.encode(), body, hashlib.sha256).hexdigest(),
        }
        self._next_delivery += 1
        self.webhook_queue.append((headers, body))

    async def deliver_webhooks(self, client: httpx.AsyncClient, url: str) -> list[httpx.Response]:
        """Send the queued deliveries (signed) to ``url``; returns the answers."""
        answers = []
        while self.webhook_queue:
            headers, body = self.webhook_queue.pop(0)
            answers.append(await client.post(url, content=body, headers=headers))
        return answers

    # ------------------------------------------------------------ JSON shapes

    def _avatar(self) -> str:
        return "/letter_avatar_proxy/v4/letter/h/8c91f0/{size}.png"

    def _post_common(self, post: Post) -> dict:
        user = self._user(post.user_id)
        topic = self.topics[post.topic_id]
        return {
            "id": post.id, "name": user.username, "username": user.username,
            "avatar_template": self._avatar(), "created_at": post.created_at,
            "cooked": f"<p>{html.escape(re.sub(r'<!--.*?-->', '', post.raw).strip())}</p>",
            "post_number": post.post_number, "post_type": post.post_type, "updated_at": post.created_at,
            "reply_count": 0, "reply_to_post_number": None, "quote_count": 0,
            "incoming_link_count": 0, "reads": 1, "readers_count": 0, "score": 0.0,
            "yours": False, "topic_id": topic.id, "topic_slug": topic.slug,
            "display_username": user.username, "primary_group_name": user.primary_group_name,
            "flair_name": None, "flair_url": None, "flair_bg_color": None, "flair_color": None,
            "version": 1, "can_edit": True, "can_delete": False, "can_recover": False,
            "can_wiki": False, "user_title": None, "bookmarked": False,
            "actions_summary": [], "moderator": False, "admin": user.admin, "staff": user.admin,
            "user_id": user.id, "hidden": False, "trust_level": 1, "deleted_at": None,
            "user_deleted": False, "edit_reason": None, "can_view_edit_history": True, "wiki": False,
        }

    def created_post_json(self, post: Post) -> dict:
        data = self._post_common(post)
        data.update({"raw": post.raw, "posts_count": len(self.topics[post.topic_id].post_ids),
                     "flair_group_id": None, "badges_granted": [], "can_see_hidden_post": False,
                     "draft_sequence": 0, "reviewable_id": None, "reviewable_score_count": 0,
                     "reviewable_score_pending_count": 0,
                     "post_url": f"/t/{post.topic_id}/{post.post_number}", "post_localizations": [],
                     "mentioned_users": []})
        return data

    def latest_post_json(self, post: Post) -> dict:
        topic = self.topics[post.topic_id]
        data = self._post_common(post)
        data.update({"raw": post.raw, "posts_count": len(topic.post_ids), "topic_title": topic.title,
                     "topic_html_title": html.escape(topic.title), "category_id": topic.category_id,
                     "flair_group_id": None, "badges_granted": [], "can_see_hidden_post": False,
                     "excerpt": post.raw[:100], "truncated": False, "reviewable_id": None,
                     "reviewable_score_count": 0, "reviewable_score_pending_count": 0,
                     "post_url": f"/t/{topic.slug}/{topic.id}/{post.post_number}"})
        return data

    def single_post_json(self, post: Post) -> dict:
        data = self.created_post_json(post)
        for key in ("badges_granted", "draft_sequence", "post_localizations"):
            data.pop(key)
        return data

    def post_payload(self, post: Post) -> dict:
        """A post webhook's payload (Discourse's WebHookPostSerializer: a post plus its topic)."""
        data = self.latest_post_json(post)
        data["topic_posts_count"] = data.pop("posts_count")
        return data

    def topic_payload(self, topic: Topic) -> dict:
        """A topic webhook's payload (the topic view, tags as names)."""
        return {"id": topic.id, "title": topic.title, "slug": topic.slug,
                "category_id": topic.category_id, "tags": list(topic.tags),
                "posts_count": len(topic.post_ids), "created_at": topic.created_at,
                "created_by": {"id": topic.user_id, "username": self._user(topic.user_id).username}}

    def topic_view_json(self, topic: Topic) -> dict:
        posts = [self.posts[pid] for pid in topic.post_ids]
        creator = self._user(topic.user_id)
        last = self._user(posts[-1].user_id)

        def brief(user: User) -> dict:
            return {"id": user.id, "username": user.username, "name": user.username,
                    "avatar_template": self._avatar()}

        stream_posts = []
        for post in posts[:20]:
            item = self._post_common(post)
            item.update({"link_counts": [], "read": True, "reviewable_id": 0,
                         "reviewable_score_count": 0, "reviewable_score_pending_count": 0})
            stream_posts.append(item)
        return {
            "post_stream": {"posts": stream_posts, "stream": [p.id for p in posts]},
            "timeline_lookup": [], "suggested_topics": [],
            "tags": [{"id": i + 1, "name": t, "slug": t} for i, t in enumerate(topic.tags)],
            "tags_descriptions": {},
            "id": topic.id, "title": topic.title, "fancy_title": html.escape(topic.title),
            "posts_count": len(posts), "created_at": topic.created_at, "views": 1,
            "reply_count": max(0, len(posts) - 1), "like_count": 0,
            "last_posted_at": posts[-1].created_at, "visible": True, "closed": False,
            "archived": False, "has_summary": False, "archetype": "regular", "slug": topic.slug,
            "category_id": topic.category_id, "word_count": None, "deleted_at": None,
            "user_id": topic.user_id, "featured_link": None, "pinned_globally": False,
            "pinned_at": None, "pinned_until": None, "image_url": None, "slow_mode_seconds": 0,
            "draft": None, "draft_key": f"topic_{topic.id}", "draft_sequence": 0, "unpinned": None,
            "pinned": False, "highest_post_number": len(posts), "deleted_by": None,
            "has_deleted": False, "actions_summary": [], "chunk_size": 20, "bookmarked": False,
            "bookmarks": [], "topic_timer": None, "message_bus_last_id": 0,
            "participant_count": len({p.user_id for p in posts}), "show_read_indicator": False,
            "thumbnails": None, "slow_mode_enabled_until": None,
            "details": {
                "can_edit": True, "notification_level": 1, "can_move_posts": False,
                "can_delete": False, "can_remove_allowed_users": False, "can_create_post": True,
                "can_reply_as_new_topic": True, "can_convert_topic": False,
                "can_review_topic": False, "can_close_topic": False, "can_archive_topic": False,
                "can_split_merge_topic": False, "can_edit_staff_notes": False,
                "can_toggle_topic_visibility": False, "can_pin_unpin_topic": False,
                "can_moderate_category": False, "can_remove_self_id": 0,
                "created_by": brief(creator), "last_poster": brief(last),
            },
        }

    def category_list_json(self) -> dict:
        categories = []
        for position, (cid, name) in enumerate(sorted(self.categories.items())):
            count = sum(1 for t in self.topics.values() if t.category_id == cid)
            categories.append({
                "id": cid, "name": name, "color": "0088CC", "text_color": "FFFFFF",
                "style_type": "square", "emoji": None, "icon": None, "slug": f"c{cid}",
                "topic_count": count, "post_count": count, "position": position,
                "description": None, "description_text": None, "description_excerpt": None,
                "topic_url": None, "read_restricted": False, "permission": 1,
                "notification_level": 1, "can_edit": True, "topic_template": None,
                "topic_title_placeholder": None, "has_children": False, "subcategory_count": None,
                "sort_order": None, "sort_ascending": None, "show_subcategory_list": False,
                "num_featured_topics": 3, "default_view": None, "subcategory_list_style": "rows",
                "default_top_period": "all", "default_list_filter": "all",
                "minimum_required_tags": 0, "navigate_to_first_post_after_read": False,
                "topics_day": 0, "topics_week": 0, "topics_month": 0, "topics_year": 0,
                "topics_all_time": count, "subcategory_ids": [], "uploaded_logo": None,
                "uploaded_logo_dark": None, "uploaded_background": None,
                "uploaded_background_dark": None,
            })
        return {"category_list": {"can_create_category": False, "can_create_topic": True,
                                  "categories": categories}}

    def latest_topics_json(self, per_page: int = 30) -> dict:
        topics = sorted(self.topics.values(), key=lambda t: t.bumped_at, reverse=True)[:per_page]
        return {"users": [], "primary_groups": [], "topic_list": {
            "can_create_topic": True, "per_page": per_page, "topics": [{
                "id": t.id, "title": t.title, "fancy_title": html.escape(t.title), "slug": t.slug,
                "posts_count": len(t.post_ids), "reply_count": max(0, len(t.post_ids) - 1),
                "highest_post_number": len(t.post_ids), "created_at": t.created_at,
                "last_posted_at": t.bumped_at, "bumped": True, "bumped_at": t.bumped_at,
                "archetype": "regular", "visible": True, "closed": False, "archived": False,
                "category_id": t.category_id, "tags": list(t.tags), "posters": [],
                "last_poster_username": self._user(self.posts[t.post_ids[-1]].user_id).username,
            } for t in topics]}}

    # ----------------------------------------------------------------- the app

    def _build_app(self) -> Starlette:
        routes = [
            Route("/categories.json", self._categories, methods=["GET"]),
            Route("/latest.json", self._latest, methods=["GET"]),
            Route("/posts.json", self._list_posts, methods=["GET"]),
            Route("/posts.json", self._create_post, methods=["POST"]),
            Route("/posts/{id:int}.json", self._get_post, methods=["GET"]),
            Route("/t/external_id/{external_id}.json", self._by_external_id, methods=["GET"]),
            Route("/t/{id:int}.json", self._get_topic, methods=["GET"]),
        ]
        return Starlette(routes=routes, middleware=[Middleware(_ContractMiddleware, site=self)])

    def _auth(self, request: Request) -> User | None:
        if request.headers.get("Api-Key") != self.api_key:
            return None
        return self.users.get(request.headers.get("Api-Username", ""))

    async def _categories(self, request: Request) -> Response:
        return JSONResponse(self.category_list_json())

    async def _latest(self, request: Request) -> Response:
        per_page = int(request.query_params.get("per_page", 30))
        return JSONResponse(self.latest_topics_json(per_page))

    async def _list_posts(self, request: Request) -> Response:
        before = request.query_params.get("before")
        ids = sorted(self.posts, reverse=True)
        if before is not None:
            ids = [i for i in ids if i < int(before)]
        return JSONResponse({"latest_posts": [self.latest_post_json(self.posts[i]) for i in ids[:50]]})

    async def _get_post(self, request: Request) -> Response:
        post = self.posts.get(request.path_params["id"])
        if post is None:
            return _error(404, "The requested URL or resource could not be found.", "not_found")
        return JSONResponse(self.single_post_json(post))

    async def _by_external_id(self, request: Request) -> Response:
        external_id = request.path_params["external_id"]
        topic = next((t for t in self.topics.values() if t.external_id == external_id), None)
        if topic is None:
            return _error(404, "The requested URL or resource could not be found.", "not_found")
        return Response(status_code=301, headers={"Location": f"/t/{topic.id}.json"})

    async def _get_topic(self, request: Request) -> Response:
        topic = self.topics.get(request.path_params["id"])
        if topic is None:
            return _error(404, "The requested URL or resource could not be found.", "not_found")
        return JSONResponse(self.topic_view_json(topic))

    async def _create_post(self, request: Request) -> Response:
        user = request.state.user
        data = json.loads(await request.body())
        raw = data.get("raw", "")
        if len(raw.strip()) < 3:
            return _error(422, "Body is too short (minimum is 3 characters)", action="create_post")
        if "topic_id" in data:
            topic = self.topics.get(data["topic_id"])
            if topic is None:
                return _error(422, "Topic not found", action="create_post")
            post = self.reply(user.username, topic.id, raw)
        else:
            title = data.get("title", "")
            if len(title) < 5:
                return _error(422, "Title is too short (minimum is 15 characters)", action="create_post")
            category = data.get("category")
            if category not in self.categories:
                return _error(422, "Category can't be blank", action="create_post")
            external_id = data.get("external_id")
            if external_id and any(t.external_id == external_id for t in self.topics.values()):
                return _error(422, "External ID has already been used", action="create_post")
            post = self.create_topic(user.username, title, raw, category, external_id)
        if self.slow_next > 0:  # stored; the answer comes too late for the client
            self.slow_next -= 1
            await asyncio.sleep(self.slow_seconds)
        return JSONResponse(self.created_post_json(post))


class _ContractMiddleware:
    """Validates every request and response against the OpenAPI description; simulates
    outages and rate limits; checks the API key."""

    def __init__(self, app, site: FakeDiscourse):
        self.app, self.site = app, site

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        site = self.site
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        method, path = scope["method"], scope["path"]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        query = parse_qsl(scope.get("query_string", b"").decode(), keep_blank_values=True)
        site.requests.append((method, path))
        try:
            site.contract.check_request(method, path, query, headers, body,
                                        headers.get("content-type", ""))
        except ContractViolation as exc:
            site.violations.append(f"request: {exc}")
            return await _error(400, f"contract violation: {exc}")(scope, receive, send)

        async def replay():
            return {"type": "http.request", "body": body, "more_body": False}

        request = Request(scope, replay)
        if site.fail_next > 0:
            site.fail_next -= 1
            response = _error(500, "Internal Server Error", "server_error")
        elif site.rate_limit_next > 0:
            site.rate_limit_next -= 1
            response = _error(429, "You've performed this action too many times. Please wait "
                              f"{site.retry_after} seconds before trying again.", "rate_limit",
                              extras={"wait_seconds": site.retry_after})
            response.headers["Retry-After"] = str(site.retry_after)
        elif (user := site._auth(request)) is None:
            response = _error(403, "You are not permitted to view the requested resource.",
                              "invalid_access")
        else:
            scope.setdefault("state", {})["user"] = user
            response = None
        if response is not None:
            return await self._checked(response, scope, replay, send)
        sent = []

        async def capture(message):
            sent.append(message)

        await self.app(scope, replay, capture)
        start = next(m for m in sent if m["type"] == "http.response.start")
        out_body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        self._check(method, path, start["status"],
                    {k.decode("latin-1"): v.decode("latin-1") for k, v in start["headers"]}, out_body)
        for message in sent:
            await send(message)

    def _check(self, method, path, status, headers, body):
        try:
            self.site.contract.check_response(method, path, status, headers, body)
        except ContractViolation as exc:
            self.site.violations.append(f"response: {exc}")

    async def _checked(self, response: Response, scope, receive, send):
        self._check(scope["method"], scope["path"], response.status_code,
                    dict(response.headers), response.body)
        await response(scope, receive, send)


# ============================================================================== fixtures

# Units and categories of the tests: the article's chain procuratorate -> land -> housing.
UNITS = {"CITY-JCY": (11, "市人民检察院"), "CITY-ZRGHJ": (12, "市自然资源和规划局"),
         "CITY-ZJJ": (13, "市住房和城乡建设局"), "CITY-HJ": (14, "市环境保护局")}
CATEGORIES = {unit: cid for unit, (cid, _) in UNITS.items()}
# Spokespeople: username -> their unit (their primary group is the unit code in lower case).
SPOKESPEOPLE = {"jcy_zhang": "CITY-JCY", "zrghj_li": "CITY-ZRGHJ", "zjj_wang": "CITY-ZJJ",
                "hj_chen": "CITY-HJ"}
HOTLINE = "hotline96811"


def make_site() -> FakeDiscourse:
    site = FakeDiscourse(hotline_username=HOTLINE)
    for unit, (cid, name) in UNITS.items():
        site.add_category(cid, name)
    for username, unit in SPOKESPEOPLE.items():
        site.add_user(username, group=unit.lower())
    site.add_user("citizen_zhou")
    site.add_category(1, "Uncategorized")
    return site


@pytest.fixture
def discourse_site():
    """A running fake Discourse; the test fails if any request or response broke the contract."""
    site = make_site()
    site.start()
    try:
        yield site
    finally:
        site.stop()
    assert not site.violations, "contract violations:\n" + "\n".join(site.violations)


def daemon_config(folder: Path, port: int, base_url: str, poll_interval_s: float = 5) -> Path:
    """A config.toml for the daemon on the Discourse backend pointing at ``base_url`` (no PBX;
    SQLite beside the file), for end-to-end tests and benchmarks."""
    categories = "\n".join(f'"{unit}" = {cid}' for unit, cid in CATEGORIES.items())
    config = Path(folder) / f"config-{port}.toml"
    config.write_text(f"""
[database]
url = "sqlite:///{Path(folder) / 'bridge.sqlite3'}"
[web]
port = {port}
[pbx]
backend = "none"
[callbacks]
dialler = "twilio"
[twilio]
enabled = true
account_sid = "AC{'0' * 32}"
[forum]
backend = "discourse"
[forum.discourse]
base_url = "{base_url}"
poll_interval_s = {poll_interval_s}
[forum.discourse.categories]
{categories}
[logging]
format = "json"
level = "info"
""", encoding="utf-8")
    return config
