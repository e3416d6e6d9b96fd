"""SIPp phones for the sandbox: every desk phone and the carrier's far end answer each call.

``hotline-bridge sandbox phones`` runs them in the foreground, so a newcomer on the README's run
command can take an inbound call at desk phone 8001 and see a callback ring the desk phone,
then the "caller" behind the carrier.  SIPp (Debian's ``sip-tester``) plays the phones; the
scenario is the one the real-Asterisk tests use.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

ANSWERING_PHONE = Path(__file__).resolve().parent / "sipp" / "phone_answer.xml"
# Media ports of the phones: above the sandbox Asterisk's RTP range (20000-39999).
FIRST_MEDIA_PORT = 46000


class PhonesError(RuntimeError):
    """The phones could not start (SIPp missing, a port taken)."""


@dataclass(frozen=True)
class Phone:
    name: str  # "phone.8001" or "carrier"
    host: str
    port: int


def phones_of(addresses: dict[str, tuple[str, int]]) -> list[Phone]:
    """The answering phones for the sandbox's addresses (``Sandbox.status()["addresses"]``)."""
    return [Phone(name, host, port) for name, (host, port) in sorted(addresses.items())
            if name.startswith("phone.") or name == "carrier"]


def command(phone: Phone, media_port: int) -> list[str]:
    sipp = shutil.which("sipp")
    if sipp is None:
        raise PhonesError("sipp is not installed (Debian package sip-tester; scripts/run installs it)")
    return [sipp, "-sf", str(ANSWERING_PHONE), "-i", phone.host, "-p", str(phone.port), "-mp", str(media_port),
            "-aa", "-nostdin", "-nd"]


def free_media_port(host: str, start: int, taken: set[int]) -> int:
    """An even UDP port from ``start`` up, with the next one (RTCP) free too, not in ``taken``."""
    for port in range(start - start % 2, 65000, 2):
        if port in taken or port + 1 in taken:
            continue
        sockets = []
        try:
            for candidate in (port, port + 1):
                probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(probe)
                probe.bind((host, candidate))
        except OSError:
            continue
        finally:
            for probe in sockets:
                probe.close()
        taken.update((port, port + 1))
        return port
    raise PhonesError(f"no free UDP port for the phones' audio from {start} on")


def ensure_voice(workdir: Path) -> Path:
    """voice.al in ``workdir``: 2 s of A-law "speech" (two tones) that the scenarios stream
    as RTP (payload 8), so recordings and messages hold real audio."""
    path = workdir / "voice.al"
    if not path.is_file():
        subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-t", "al", str(path),
                        "synth", "1", "sine", "440", "vol", "0.3", ":", "synth", "1", "sine", "660", "vol", "0.3"],
                       check=True, capture_output=True)
    return path


def start(phones: list[Phone], workdir: Path) -> list[subprocess.Popen]:
    """One SIPp per phone, working in ``workdir`` (it holds the audio they speak); raise
    :class:`PhonesError` (after stopping the others) if one fails."""
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        ensure_voice(workdir)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise PhonesError(f"could not make the phones' audio with sox (Debian package sox): {exc}") from exc
    running: list[subprocess.Popen] = []
    taken: set[int] = set()
    try:
        for phone in phones:
            media_port = free_media_port(phone.host, FIRST_MEDIA_PORT, taken)
            taken.update((media_port + 2, media_port + 3))  # SIPp's video pair, unused but reserved
            process = subprocess.Popen(command(phone, media_port), cwd=workdir,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            running.append(process)
        for process, phone in zip(running, phones):
            try:
                process.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                continue
            error = process.stderr.read().decode(errors="replace").strip() if process.stderr else ""
            raise PhonesError(f"{phone.name} on {phone.host}:{phone.port} did not start: {error or 'exited'}")
    except BaseException:
        stop(running)
        raise
    return running


def stop(running: list[subprocess.Popen]) -> None:
    for process in running:
        if process.poll() is None:
            process.terminate()
    for process in running:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
