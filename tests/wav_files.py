"""WAV files as Asterisk writes them, for recording tests: with sound, or the 44-byte header alone."""
from __future__ import annotations

import io
import wave


def wav_bytes(seconds: float = 0.2, rate: int = 8000) -> bytes:
    """A mono 16-bit WAV of ``seconds`` of a quiet tone (0: the header only, 44 bytes)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(rate)
        frames = int(seconds * rate)
        file.writeframes(b"".join(((i % 16) * 64).to_bytes(2, "little", signed=True) for i in range(frames)))
    return out.getvalue()


EMPTY_WAV = wav_bytes(0)
assert len(EMPTY_WAV) == 44
