"""The unit's answer, spoken: its text rendered offline with espeak-ng's Mandarin voice and
converted with sox to what Asterisk plays (8 kHz 16-bit mono WAV), as the prompts are
(:meth:`bridge.pbx.sandbox.Sandbox.write_prompts`).

The status line (:mod:`bridge.pbx.agi`) and the automated voice callback play the same file.
Answers are case events, never changed once written, so one file per answer event id is
made once and kept: ``answers/answer-<id>-<digest>.wav`` in the recordings folder, which Asterisk
reads (the daemon writes it there; Asterisk names the folder ``HOTLINE_RECORDINGS``).
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from pathlib import Path

import structlog

from bridge.config import Config

log = structlog.get_logger(__name__)

ANSWERS_DIR = "answers"  # inside the recordings folder
# The prompts' voice (bridge.pbx.sandbox.Tuning): the answer sounds like the rest of the line.
VOICE = "cmn-latn-pinyin"
SPEED_WPM = 170  # a little slower than the prompts: an answer is new to the caller
TIMEOUT_S = 60.0
_URL = re.compile(r"https?://\S+")


class SpeechError(RuntimeError):
    """The answer could not be spoken (espeak-ng or sox missing or failing); the message says why."""


def recordings_folder(config: Config) -> Path | None:
    """The recordings folder as the daemon sees it: ``[pbx] recordings_dir``, else the sandbox's."""
    if config.pbx.recordings_dir:
        return config.path(config.pbx.recordings_dir).resolve()
    if config.sandbox.enabled:
        from bridge.pbx.sandbox import Sandbox

        return Sandbox(config).paths()["recordings"]
    return None


def speakable(text: str) -> str:
    """What espeak-ng is given: links dropped (nobody can use one read out), spaces collapsed."""
    return " ".join(_URL.sub(" ", text or "").split())


class AnswerSpeech:
    """Makes (once) and finds the spoken answer of an answer case event."""

    def __init__(self, recordings: Path, *, voice: str = VOICE, speed_wpm: int = SPEED_WPM) -> None:
        self.recordings = recordings
        self.voice, self.speed_wpm = voice, speed_wpm

    @classmethod
    def of(cls, config: Config) -> AnswerSpeech | None:
        """None when the daemon knows no recordings folder (the status line then only says the status)."""
        folder = recordings_folder(config)
        return cls(folder) if folder is not None else None

    def name_for(self, answer_event_id: int, text: str) -> str:
        """The file's name in the recordings folder, without extension (as Asterisk plays it): the
        answer's event id, and a digest of what is said and how, so another database's answer of the
        same id (a reset, a test) or another voice never plays a stale file."""
        digest = hashlib.sha1(f"{self.voice} {self.speed_wpm} {speakable(text)}".encode()).hexdigest()[:10]
        return f"{ANSWERS_DIR}/answer-{int(answer_event_id)}-{digest}"

    def audio_for(self, answer_event_id: int, text: str) -> Path:
        """The WAV file of this answer, made now if it is not there yet; raises :class:`SpeechError`."""
        target = self.recordings / f"{self.name_for(answer_event_id, text)}.wav"
        if target.is_file():
            return target
        words = speakable(text)
        if not words:
            raise SpeechError(f"answer {answer_event_id} has no text to speak")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(target.parent, 0o755)  # Asterisk (another user at a site) reads it
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".speaking-") as work:
            text_file, raw, converted = (Path(work) / name for name in ("answer.txt", "raw.wav", "answer.wav"))
            text_file.write_text(words, encoding="utf-8")
            _run(["espeak-ng", "-v", self.voice, "-s", str(self.speed_wpm), "-f", str(text_file), "-w", str(raw)])
            _run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(converted)])
            os.chmod(converted, 0o644)
            os.replace(converted, target)  # two callers at once: the last complete file wins
        log.info("answer_speech.made", answer_event_id=answer_event_id, chars=len(words), file=str(target))
        return target


def _run(cmd: list[str]) -> None:
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except FileNotFoundError:
        raise SpeechError(f"{cmd[0]} is not installed; install espeak-ng and sox to speak answers") from None
    except subprocess.TimeoutExpired:
        raise SpeechError(f"{cmd[0]} took more than {TIMEOUT_S:g} s") from None
    if result.returncode != 0:
        raise SpeechError(f"{cmd[0]} failed ({result.returncode}): {result.stderr.strip()[-400:]}")
