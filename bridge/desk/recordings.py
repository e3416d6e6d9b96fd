"""``GET /desk/recordings/{linkedid}``: a call's message or recording, from the recordings folder only."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response

from bridge.desk import queries
from bridge.desk.access import current_user
from bridge.desk.queries import DeskUser
from bridge.pbx.recordings import audible_recording, media_type, recording_path, recordings_dir

router = APIRouter(prefix="/desk", include_in_schema=False)

__all__ = ["recording_path", "router"]  # recording_path: its home is bridge.pbx.recordings


@router.get("/recordings/{linkedid}")
async def recording(request: Request, linkedid: str, kind: str = "message",
                    user: DeskUser = Depends(current_user)) -> Response:
    db = request.app.state.db
    call = await db.run(db.in_session, queries.call_by_linkedid, linkedid, readonly=True)
    folder = recordings_dir(request.app.state.config)
    if call is None or folder is None:
        return Response(status_code=404)
    names = [call["message_file"], call["recording"]] if kind == "message" else [call["recording"]]
    path = audible_recording(folder, *names)  # a header-only file is no recording
    if path is None:
        return Response(status_code=404)
    return FileResponse(path, media_type=media_type(path), headers={"Cache-Control": "private, no-store"})

