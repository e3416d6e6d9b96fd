"""``GET /desk/events``: the desk's server-sent events (``text/event-stream``).

One stream per open desk page, fed by :class:`bridge.live.LiveEvents`:

- ``event: ready``: sent once the stream is subscribed (pages mark ``<body data-live="ready">``);
- ``event: call``: ``{"linkedid", "kind", "html"?}``.  A call that rings at, connects to or
  is adopted by *the signed-in user's extension* (chosen at sign-in) carries ``html``:
  the call pop, rendered here with the number's earlier calls and cases.  ``ring_stopped``
  at that extension and every ``ended`` carry no html (the page closes or marks its pop);
- ``event: calls``: a call was answered, ended or marked done without a case (``call`` kind
  ``done`` closes its pop); pages that list calls reload them ("my calls today");
- ``event: callbacks``: a callback task changed (taken, called, settled, its outcome recorded,
  ...: ``{"task_id", "linkedid", "kind"}``); pages showing the callback queue reload it at once;
- ``event: case``: a case was filed or changed (``{"number", "kind", "state"}``); pages
  reload their case rows.  As a safety net for writers that do not publish (the JSON API,
  another process, an attempt settled from Asterisk's events), the stream also looks at the
  cases and callback tables every ``app.state.desk_case_check_s`` seconds (default 10) and
  sends ``case`` or ``callbacks`` on a change.

- ``event: presence``: the operator queue or a sign-in changed (``{"kind", "user_id"}``): sent to
  supervisors and admins, and to the user it is about; pages showing presence reload it;
- ``event: signed_out``: the session ended on the server (a supervisor, a newer sign-in, 12 hours);
  the page goes to the sign-in page and the stream ends.

Watchers (:func:`bridge.web.site.add_stream_watcher`, e.g. queue presence: the page is alive) are called when the
stream opens and every ``watcher.every_s`` seconds; one answering False ends the stream with
``signed_out``.

A comment line every ``HEARTBEAT_S`` keeps proxies from closing an idle stream and
finds a client that went away; the subscription ends with the response (``finally``),
whether the client closed it or the server is stopping.
"""
from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select

from bridge.db.models import CallbackAttempt, CallbackTask, Case
from bridge.desk import queries
from bridge.desk.access import current_user
from bridge.desk.queries import DeskUser
from bridge.desk.rendering import TEMPLATES
from bridge.live import LiveEvent
from bridge.pbx.waits import menu_and_queue
from bridge.web.site import stream_watchers

HEARTBEAT_S = 15.0
DEFAULT_CASE_CHECK_S = 10.0
POP_KINDS = ("ringing", "connected", "adopted")

router = APIRouter(prefix="/desk", include_in_schema=False)


async def _watch(request: Request, user: DeskUser, watchers) -> bool:
    results = [await watcher(request, user) for watcher in watchers]
    return all(results)


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


def _cases_marker(session) -> tuple:
    return tuple(session.execute(select(func.count(Case.id), func.max(Case.updated_at))).one())


def _callbacks_marker(session) -> tuple:
    tasks = session.execute(select(func.count(CallbackTask.id), func.max(CallbackTask.updated_at))).one()
    attempts = session.execute(select(func.count(CallbackAttempt.id), func.count(CallbackAttempt.ended_at),
                                      func.count(CallbackAttempt.answered_at))).one()
    return (*tasks, *attempts)


def _markers(session) -> tuple[tuple, tuple]:
    return _cases_marker(session), _callbacks_marker(session)


def _when(value) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def live_waits(data: dict[str, Any]) -> dict[str, float | None]:
    """The pop's menu and queue seconds from a live call event (its record's times)."""
    menu_s, queue_s = menu_and_queue(_when(data.get("arrived_at")), data.get("queue_wait_s"),
                                     _when(data.get("answered_at")), None,
                                     queue_joined_at=_when(data.get("queue_joined_at")))
    return {"menu_s": menu_s, "queue_s": queue_s}


async def render_pop(request: Request, user: DeskUser, event: LiveEvent) -> str:
    data = {**event.data, **live_waits(event.data)}
    db = request.app.state.db
    history = await db.run(db.in_session, queries.caller_history, data.get("caller_number"),
                           exclude_linkedid=data.get("linkedid"), readonly=True)
    return TEMPLATES.text(request, "_pop.html", user=user, call=data, kind=event.kind, history=history)


async def translate(request: Request, user: DeskUser, event: LiveEvent, pops: dict[str, str]) -> str | None:
    """The SSE text for one live event, for this user's page (None: nothing to send)."""
    data = event.data
    if event.topic == "call":
        linkedid = str(data.get("linkedid") or "")
        mine = bool(user.extension) and str(data.get("extension") or "") == user.extension
        if event.kind in POP_KINDS and mine and linkedid:
            if linkedid not in pops or event.kind != "ringing":
                pops[linkedid] = await render_pop(request, user, event)
            text = sse("call", {"linkedid": linkedid, "kind": event.kind, "html": pops[linkedid]})
            # an answered call joins "my calls today" at once
            return text + sse("calls", {"linkedid": linkedid}) if event.kind == "connected" else text
        if event.kind == "ring_stopped" and mine:
            return sse("call", {"linkedid": linkedid, "kind": event.kind})
        if event.kind == "ended":
            pops.pop(linkedid, None)
            return sse("call", {"linkedid": linkedid, "kind": "ended"}) + sse("calls", {"linkedid": linkedid})
        if event.kind == "done":  # done without a case, on this or another page of the operator's
            return sse("call", {"linkedid": linkedid, "kind": "done"}) + sse("calls", {"linkedid": linkedid})
        return None
    if event.topic == "callbacks":
        return sse("callbacks", {"task_id": data.get("task_id"), "linkedid": data.get("linkedid"),
                                 "kind": data.get("kind") or event.kind})
    if event.topic == "case":
        return sse("case", {"number": data.get("number"), "kind": event.kind, "state": data.get("state")})
    if event.topic == "presence":
        mine = data.get("user_id") == user.id
        if mine and event.kind in ("signed_out", "ended"):
            return None   # the stream's watcher ends this page's stream when it is this session
        if mine or user.role.value in ("supervisor", "admin"):
            return sse("presence", {"kind": event.kind, "user_id": data.get("user_id")})
    return None


@router.get("/events")
async def events(request: Request, user: DeskUser = Depends(current_user)) -> StreamingResponse:
    live = request.app.state.live
    db = request.app.state.db
    check_s = float(getattr(request.app.state, "desk_case_check_s", DEFAULT_CASE_CHECK_S))
    watchers = list(stream_watchers(request.app))
    watch_s = min([float(getattr(w, "every_s", HEARTBEAT_S)) for w in watchers] or [HEARTBEAT_S])

    async def stream():
        pops: dict[str, str] = {}
        async with live.subscribe() as queue:
            cases_seen, callbacks_seen = await db.run(db.in_session, _markers, readonly=True)
            if not await _watch(request, user, watchers):
                yield sse("signed_out", {})
                return
            yield "retry: 3000\n" + sse("ready", {"extension": user.extension})
            next_check = time.monotonic() + check_s
            next_watch = time.monotonic() + watch_s
            while True:
                if watchers and time.monotonic() >= next_watch:   # checked first: a busy feed still touches
                    next_watch = time.monotonic() + watch_s
                    if not await _watch(request, user, watchers):
                        yield sse("signed_out", {})
                        break
                timeout = max(0.05, min(HEARTBEAT_S, next_check - time.monotonic(), next_watch - time.monotonic()))
                try:
                    event = await asyncio.wait_for(queue.get(), timeout)
                except asyncio.TimeoutError:
                    event = None
                if event is not None:
                    if event.topic == "presence" and event.kind in ("signed_out", "ended") \
                            and event.data.get("user_id") == user.id:
                        next_watch = 0.0   # maybe this page's session: look now
                    text = await translate(request, user, event, pops)
                    if text:
                        yield text
                    continue
                if await request.is_disconnected():
                    break
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + check_s
                    cases_now, callbacks_now = await db.run(db.in_session, _markers, readonly=True)
                    changed = ""
                    if cases_now != cases_seen:
                        changed += sse("case", {"number": None, "kind": "changed", "state": None})
                    if callbacks_now != callbacks_seen:
                        changed += sse("callbacks", {"task_id": None, "linkedid": None, "kind": "changed"})
                    cases_seen, callbacks_seen = cases_now, callbacks_now
                    if changed:
                        yield changed
                        continue
                yield ": ping\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
