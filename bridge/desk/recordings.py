"""``GET /desk/recordings/{linkedid}``: a call's message or recording, from the recordings folder only."""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response

from bridge.config import Config
from bridge.desk import queries
from bridge.desk.access import current_user
from bridge.desk.queries import DeskUser

router = APIRouter(prefix="/desk", include_in_schema=False)


def _recordings_dir(config: Config) -> Path | None:
    if config.pbx.recordings_dir:
        return config.path(config.pbx.recordings_dir).resolve()
    if config.sandbox.enabled:
        from bridge.pbx.sandbox import Sandbox

        return Sandbox(config).paths()["recordings"].resolve()
    return None


def recording_path(folder: Path, value: str) -> Path | None:
    """The file a call's recording value names, inside ``folder`` only (never outside it).

    Asterisk gives paths as it sees them (inside the sandbox's chroot, or the
    monitor folder); the part after the last ``recordings/`` or else the file name
    is looked up in ``folder``.  A name without an extension is tried as .wav.
    """
    value = value.strip().replace("\\", "/")
    if not value:
        return None
    if "/recordings/" in value:
        relative = value.rsplit("/recordings/", 1)[1]
    elif value.startswith("/"):
        relative = value.rsplit("/", 1)[1]
    else:
        relative = value
    for candidate in (relative, f"{relative}.wav"):
        path = (folder / candidate).resolve()
        if path.is_relative_to(folder) and path.is_file():
            return path
    return None


@router.get("/recordings/{linkedid}")
async def recording(request: Request, linkedid: str, kind: str = "message",
                    user: DeskUser = Depends(current_user)) -> Response:
    db = request.app.state.db
    call = await db.run(db.in_session, queries.call_by_linkedid, linkedid, readonly=True)
    folder = _recordings_dir(request.app.state.config)
    if call is None or folder is None:
        return Response(status_code=404)
    names = [call["message_file"], call["recording"]] if kind == "message" else [call["recording"]]
    for name in names:
        path = recording_path(folder, name) if name else None
        if path is not None:
            media = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".gsm": "audio/x-gsm",
                     ".ogg": "audio/ogg"}.get(path.suffix.lower(), "application/octet-stream")
            return FileResponse(path, media_type=media, headers={"Cache-Control": "private, no-store"})
    return Response(status_code=404)

