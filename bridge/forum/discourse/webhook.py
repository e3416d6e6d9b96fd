"""Discourse webhooks: signature check, parsing into ThreadEvents, and the FastAPI route.

Discourse signs each delivery with ``X-Discourse-Event-Signature: sha256=<hex>``, the
HMAC-SHA256 of the raw request body keyed with the webhook's secret.  A delivery with a
missing or wrong signature is refused (401) before anything is parsed or handed on.

Other headers: ``X-Discourse-Event-Type`` (``post``, ``topic``, ``ping``...),
``X-Discourse-Event`` (``post_created``, ``topic_edited``...) and ``X-Discourse-Event-Id``
(the delivery's id, logged only: our event ids come from the post or topic, so a
redelivery, or the same change seen by polling, gives the same ThreadEvent.event_id).
"""
from __future__ import annotations

import hashlib
import hmac
import inspect
import json
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Union

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from bridge.forum.adapter import ForumError, ThreadEvent
from bridge.forum.discourse.mapping import PostFacts

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Discourse-Event-Signature"
POST_EVENTS = {"post_created", "post_recovered"}
TOPIC_EVENTS = {"topic_created", "topic_edited", "topic_revised", "topic_recovered"}

EventSink = Callable[[list[ThreadEvent]], Union[Awaitable[None], None]]


def sign(secret: str, body: bytes) -> str:
    """The header value Discourse sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    if not secret or not header or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode())


class WebhookRejected(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class Delivery:
    event_type: str  # post / topic / ping ...
    event: str  # post_created / topic_edited ...
    delivery_id: str
    payload: dict = field(default_factory=dict)


def parse_delivery(secret: str, headers, body: bytes) -> Delivery:
    """Verify and decode one delivery; WebhookRejected if it must not be used."""
    if not verify_signature(secret, body, headers.get(SIGNATURE_HEADER)):
        raise WebhookRejected(401, "missing or bad X-Discourse-Event-Signature")
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        raise WebhookRejected(400, "body is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookRejected(400, "body is not a JSON object")
    return Delivery(event_type=headers.get("X-Discourse-Event-Type", ""),
                    event=headers.get("X-Discourse-Event", ""),
                    delivery_id=headers.get("X-Discourse-Event-Id", ""), payload=payload)


async def delivery_events(forum, delivery: Delivery) -> list[ThreadEvent]:
    """The ThreadEvents a verified delivery carries (``forum``: a DiscourseForum, used to
    read the thread when a unit's post may answer a follow-up)."""
    if delivery.event_type == "post" and delivery.event in POST_EVENTS and "post" in delivery.payload:
        return await forum.events_for_posts([PostFacts.from_json(delivery.payload["post"])])
    if delivery.event_type == "topic" and delivery.event in TOPIC_EVENTS and "topic" in delivery.payload:
        return await forum.events_for_topic(delivery.payload["topic"],
                                            moved=delivery.event != "topic_created")
    return []


def make_webhook_router(*, secret: str, forum, sink: EventSink,
                        path: str = "/forum/discourse/webhook") -> APIRouter:
    """``POST /forum/discourse/webhook``: verify, parse, hand the events to ``sink``.

    ``sink(events)`` may be sync or async; the forum service applies them (idempotently, by
    event_id).  Answers: 200 ``{"events": [ids]}``; 401 bad/missing signature (nothing handed
    on); 400 unreadable body; 503 when the thread could not be read from Discourse or the sink
    failed (Discourse redelivers later).
    """
    router = APIRouter()

    @router.post(path)
    async def discourse_webhook(request: Request):
        body = await request.body()
        try:
            delivery = parse_delivery(secret, request.headers, body)
        except WebhookRejected as exc:
            log.warning("discourse webhook refused", reason=exc.reason)
            return JSONResponse({"error": exc.reason}, status_code=exc.status)
        try:
            events = await delivery_events(forum, delivery)
            if events:
                result = sink(events)
                if inspect.isawaitable(result):
                    await result
        except ForumError as exc:
            log.warning("discourse webhook: thread unreadable", error=str(exc),
                        delivery_id=delivery.delivery_id)
            return JSONResponse({"error": "forum unavailable, redeliver later"}, status_code=503)
        log.info("discourse webhook", discourse_event=delivery.event, delivery_id=delivery.delivery_id,
                 events=[e.event_id for e in events])
        return {"events": [e.event_id for e in events]}

    return router


def router_from_config(config, *, forum, sink: EventSink) -> APIRouter:
    """The webhook route with the secret named by forum.discourse.webhook_secret_env."""
    return make_webhook_router(secret=config.secret(config.forum.discourse.webhook_secret_env),
                               forum=forum, sink=sink)
