"""The desk page (``/desk/``): the live call pop, and links to the pages other packages add
(:func:`bridge.desk.rendering.add_desk_page`; the callbacks' queue of calls to return, which
replaced the shared "to call back / to file" list)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from bridge.desk import queries
from bridge.desk.access import current_user
from bridge.desk.queries import DeskUser
from bridge.desk.rendering import now as _now
from bridge.desk.rendering import render

router = APIRouter(prefix="/desk", include_in_schema=False)


@router.get("/")
async def desk(request: Request, user: DeskUser = Depends(current_user)) -> Response:
    db = request.app.state.db
    open_calls = await db.run(db.in_session, queries.open_calls_at, user.extension, _now(), readonly=True)
    return render(request, "desk.html", user=user, open_calls=open_calls, page="desk")
