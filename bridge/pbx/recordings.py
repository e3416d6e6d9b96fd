"""Where the recordings and messages Asterisk writes are found by the daemon (no HTTP here: the desk
and the callbacks API serve them, each behind its own sign-in)."""
from __future__ import annotations

from pathlib import Path

from bridge.config import Config


def recordings_dir(config: Config) -> Path | None:
    """The recordings folder as the daemon sees it: ``[pbx] recordings_dir``, else the sandbox's."""
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


# The media type a recording is served with, by its file's suffix.
MEDIA_TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".gsm": "audio/x-gsm", ".ogg": "audio/ogg"}


def media_type(path: Path) -> str:
    return MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
