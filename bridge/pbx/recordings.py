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


WAV_HEADER_BYTES = 44  # a WAV file Asterisk opened and closed with nothing recorded is just this


def has_audio(path: Path) -> bool:
    """Whether the file holds any sound: a WAV needs bytes after its ``data`` chunk's header
    (a 44-byte header-only file has none), other formats any bytes at all."""
    try:
        size = path.stat().st_size
        if path.suffix.lower() != ".wav":
            return size > 0
        with path.open("rb") as file:
            head = file.read(4096)
    except OSError:
        return False
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return size > WAV_HEADER_BYTES
    position = 12
    while position + 8 <= len(head):
        chunk, length = head[position:position + 4], int.from_bytes(head[position + 4:position + 8], "little")
        if chunk == b"data":
            return size > position + 8  # the header's length may still be 0 while Asterisk writes
        position += 8 + length + (length & 1)
    return False


def audible_recording(folder: Path | None, *values: str | None) -> Path | None:
    """The first of ``values`` (recording names) that is a file with sound in ``folder``, else None."""
    if folder is None:
        return None
    for value in values:
        path = recording_path(folder, value) if value else None
        if path is not None and has_audio(path):
            return path
    return None
