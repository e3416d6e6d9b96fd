"""Twilio's status callbacks: ``POST /callbacks/twilio/status``, signature checked, status handed on.

Twilio posts a message's or a call's progress (form-encoded, as its webhooks are) to the
``StatusCallback`` URL the gateway gave it, signed in ``X-Twilio-Signature``: HMAC-SHA1 with
the account's auth token over the URL it called and the sorted form parameters.  The URL is
the public one (``[web] public_url`` + the path + the query), since that is what Twilio saw;
behind a proxy the daemon's own view of the request would differ.

An unsigned or wrongly signed request is answered 403 before its form is used, and nothing is
handed on.  A signed one is parsed into a :class:`TwilioStatus` and given to ``on_status``
(sync or async); a failure there answers 500, which Twilio logs in its console.  In the
daemon ``on_status`` is :func:`storing_handler`: a message's status updates its
``callback_messages`` row (by ``MessageSid``).
"""
from __future__ import annotations

import inspect
from urllib.parse import quote
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from twilio.request_validator import RequestValidator

from bridge.config import Config
from bridge.db.engine import Database

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = structlog.get_logger(__name__)

STATUS_PATH = "/callbacks/twilio/status"
SIGNATURE_HEADER = "X-Twilio-Signature"
REF_PARAM = "ref"


@dataclass(frozen=True)
class TwilioStatus:
    """One status callback: a message's (``MessageSid``) or a call's (``CallSid``)."""

    kind: Literal["message", "call"]
    sid: str
    status: str  # Twilio's: delivered / undelivered / failed ...; completed / busy / no-answer ...
    error_code: int | None = None
    call_duration_s: int | None = None
    # The ``ref`` query parameter of the StatusCallback URL we gave (signed with it): which row
    # of ours the request was for, even when its SID never reached us (a crash mid-send).
    ref: str | None = None


StatusHandler = Callable[[TwilioStatus], Awaitable[None] | None]


class StatusRefused(ValueError):
    """A signed callback that carries no status this receiver can read."""


def status_url(config: Config, ref: str | None = None) -> str:
    """The ``StatusCallback`` URL to give Twilio: where it reaches this daemon from outside;
    ``ref`` names our row (Twilio signs the URL with it, so it cannot be forged)."""
    return config.web.public_url.rstrip("/") + STATUS_PATH + (f"?{REF_PARAM}={quote(ref)}" if ref else "")


def parse_status(form: Mapping[str, str]) -> TwilioStatus:
    """The status in a callback's form parameters (``StatusRefused`` if it has none)."""
    if form.get("MessageSid"):
        kind, sid, status = "message", form["MessageSid"], form.get("MessageStatus", "")
    elif form.get("CallSid"):
        kind, sid, status = "call", form["CallSid"], form.get("CallStatus", "")
    else:
        raise StatusRefused("neither MessageSid nor CallSid")
    if not status:
        raise StatusRefused(f"no {'MessageStatus' if kind == 'message' else 'CallStatus'} for {sid}")
    return TwilioStatus(kind, sid, status, _integer(form.get("ErrorCode")), _integer(form.get("CallDuration")))


def _integer(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def make_status_router(*, auth_token: str, public_url: str, on_status: StatusHandler) -> APIRouter:
    """The route; ``public_url`` as in ``[web] public_url``, ``auth_token`` the account's."""
    validator = RequestValidator(auth_token)
    base = public_url.rstrip("/") + STATUS_PATH
    router = APIRouter()

    @router.post(STATUS_PATH, include_in_schema=False)
    async def twilio_status(request: Request) -> Response:
        signature = request.headers.get(SIGNATURE_HEADER, "")
        url = base + (f"?{request.url.query}" if request.url.query else "")
        form = await request.form()
        if not signature or not validator.validate(url, form, signature):
            log.warning("twilio.status_refused", reason="missing or wrong X-Twilio-Signature", url=url)
            return JSONResponse({"error": "missing or wrong X-Twilio-Signature"}, status_code=403)
        try:
            status = replace(parse_status(form), ref=request.query_params.get(REF_PARAM))
        except StatusRefused as exc:
            log.warning("twilio.status_unreadable", reason=str(exc))
            return JSONResponse({"error": str(exc)}, status_code=400)
        try:
            handled = on_status(status)
            if inspect.isawaitable(handled):
                await handled
        except Exception:  # Twilio shows the 500 in its console; the log has the cause
            log.exception("twilio.status_failed", kind=status.kind, sid=status.sid, status=status.status)
            return JSONResponse({"error": "the status could not be stored"}, status_code=500)
        log.info("twilio.status", kind=status.kind, sid=status.sid, status=status.status,
                 error_code=status.error_code)
        return Response(status_code=204)

    return router


def status_router(config: Config, on_status: StatusHandler) -> APIRouter:
    """The route with ``[twilio]``'s auth token and ``[web] public_url``."""
    return make_status_router(auth_token=config.secret(config.twilio.auth_token_env),
                              public_url=config.web.public_url, on_status=on_status)


StatusApplier = Callable[["Session", TwilioStatus], object]


def storing_handler(db: Database, appliers: Mapping[str, StatusApplier]) -> StatusHandler:
    """The handler that stores each status in one transaction: ``appliers`` by kind ("message":
    :func:`callbacks.sms.apply_status`; "call": the voice callback's).  A kind without one is
    only logged by the route."""
    async def store(status: TwilioStatus) -> None:
        applier = appliers.get(status.kind)
        if applier is not None:
            await db.run_in_session(applier, status)

    return store
