"""The case-status phone line: a FastAGI server the dialplan calls as
``AGI(agi://HOST:PORT/case-status,DIGITS)``.

The caller keys a case number (the digits after "96811-": year and sequence,
e.g. 2026000123, or only the sequence for this year, e.g. 123; "this year" is the
site's, :class:`bridge.site.clock.SiteClock`, as for the numbers filed).  With no
digits, a caller whose number matches exactly one case still under way is offered that
case: one open for its unit (:data:`bridge.cases.service.OPEN_STATES`), or answered
with the hotline's callback still to make.  An answered case whose caller has been
called back is done for the caller too; they can still key its number.
The server sets ``HOTLINE_CASE_STATUS`` (filed, accepted, answered,
callback_pending, not_found) and ``HOTLINE_CASE_NUMBER`` on the channel and speaks the
status with the prompts in the folder the dialplan's ``HOTLINE_SOUNDS`` names.

We use panoramisk's ``fast_agi.Request`` for the command exchange, but read the
request headers ourselves: panoramisk 1.4's ``Application.handler`` spins
forever when Asterisk closes the socket before the blank line, and has no
timeout.
"""
from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from dataclasses import dataclass

import structlog
from panoramisk.fast_agi import Request
from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from bridge.cases.service import OPEN_STATES
from bridge.cases.validation import normalise_phone
from bridge.db.case_numbers import format_case_number
from bridge.db.models import CallbackState, CallbackTask, Case, CaseState
from bridge.site.clock import SiteClock

log = structlog.get_logger(__name__)

SCRIPT = "case-status"
HEADER_TIMEOUT_S = 5.0
# Still owed: everything but done and unreachable (an unreachable caller can key the number).
CALLBACK_PENDING_STATES = (CallbackState.SCHEDULED, CallbackState.DUE, CallbackState.IN_PROGRESS)


@dataclass(frozen=True)
class StatusAnswer:
    status: str  # filed | accepted | answered | callback_pending | not_found
    case_number: str | None = None
    offered: bool = False  # found from the caller's number, not keyed


def phone_status(state: CaseState, callback_pending: bool) -> str:
    """What the caller hears for a case in ``state``."""
    if state in (CaseState.QUEUED, CaseState.POSTED):
        return "filed"
    if state in (CaseState.ACCEPTED, CaseState.FORWARDED, CaseState.REOPENED):
        return "accepted"
    return "callback_pending" if callback_pending else "answered"


def case_number_from_digits(digits: str, this_year: int) -> str | None:
    """'2026000123' -> '96811-2026-000123'; '123' -> this year's case 123; else None."""
    digits = re.sub(r"\D", "", digits or "")
    if len(digits) == 10 and digits.startswith("20"):
        return format_case_number(int(digits[:4]), int(digits[4:]))
    if 1 <= len(digits) <= 6:
        return format_case_number(this_year, int(digits))
    return None


def _callback_pending(case_id):
    """SQL: the hotline still owes the caller of case ``case_id`` a callback."""
    return exists().where(CallbackTask.case_id == case_id, CallbackTask.state.in_(CALLBACK_PENDING_STATES))


def _answer_for(session: Session, case: Case) -> StatusAnswer:
    pending = bool(session.scalar(select(_callback_pending(case.id))))
    return StatusAnswer(phone_status(case.state, pending), case.number)


def look_up(session: Session, digits: str, caller_number: str, this_year: int) -> StatusAnswer:
    """What the caller hears; ``this_year`` is the site's year (a case number's "123")."""
    number = case_number_from_digits(digits, this_year)
    if number:
        case = session.scalar(select(Case).where(Case.number == number))
        return _answer_for(session, case) if case else StatusAnswer("not_found")
    phone = normalise_phone(caller_number)  # cases keep numbers in E.164
    if digits or not phone:
        return StatusAnswer("not_found")
    under_way = or_(Case.state.in_(OPEN_STATES),
                    and_(Case.state == CaseState.ANSWERED, _callback_pending(Case.id)))
    cases = session.scalars(select(Case).where(Case.caller_phone == phone, under_way).limit(2)).all()
    if len(cases) == 1:
        answer = _answer_for(session, cases[0])
        return StatusAnswer(answer.status, answer.case_number, offered=True)
    return StatusAnswer("not_found")


def prompts_for(answer: StatusAnswer) -> list[str]:
    """Prompt names, in order, relative to the sound folder."""
    if answer.status == "not_found":
        return ["case-not-found"]
    sequence = answer.case_number.rsplit("-", 1)[1].lstrip("0") or "0"
    intro = ["case-offered"] if answer.offered else ["case-number-is"]
    return [*intro, *(f"digits/{d}" for d in sequence), f"status-{answer.status.replace('_', '-')}"]


class CaseStatusServer:
    """Serves ``agi://HOST:PORT/case-status`` inside the daemon's loop."""

    def __init__(self, host: str, port: int, db, *, clock: SiteClock) -> None:
        """``clock``: the site's (its year completes a keyed "123")."""
        self.host, self.port, self.db = host, port, db
        self._clock = clock
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(self._handle, self.host, self.port)
        except OSError as exc:
            raise OSError(exc.errno, f"pbx.agi_port: cannot listen on {self.host}:{self.port}: {exc.strerror}; "
                                     "choose a free port in [pbx]") from None
        log.info("agi.listening", host=self.host, port=self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            raw = await asyncio.wait_for(reader.readuntil(b"\n\n"), HEADER_TIMEOUT_S)
            headers = OrderedDict(
                line.split(": ", 1) for line in raw.decode("utf-8", "replace").splitlines() if ": " in line
            )
            if headers.get("agi_network_script", "").strip("/") != SCRIPT:
                log.warning("agi.unknown_script", script=headers.get("agi_network_script"))
                return
            await self._serve(Request(None, headers, reader, writer), headers)
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError) as exc:
            log.warning("agi.request_dropped", error=repr(exc))
        except Exception:
            log.exception("agi.failed")
        finally:
            writer.close()

    async def _serve(self, request: Request, headers: dict) -> None:
        digits = headers.get("agi_arg_1", "")
        caller = headers.get("agi_callerid", "")
        linkedid = headers.get("agi_uniqueid", "")
        answer = await self.db.run(self._look_up, digits, caller)
        log.info("agi.case_status", linkedid=linkedid, case_number=answer.case_number,
                 status=answer.status, offered=answer.offered)
        await request.send_command(f"SET VARIABLE HOTLINE_CASE_STATUS {answer.status}")
        if answer.case_number:
            await request.send_command(f"SET VARIABLE HOTLINE_CASE_NUMBER {answer.case_number}")
        if not digits and not answer.offered:
            return  # nothing to offer: the dialplan asks for the number
        # The dialplan's global HOTLINE_SOUNDS says where the prompts are: one place, no copy here.
        sounds = await request.send_command("GET FULL VARIABLE ${HOTLINE_SOUNDS}")
        sounds_dir = sounds.get("result", ("", ""))[1].strip("()") or "hotline"
        for prompt in prompts_for(answer):
            result = await request.send_command(f'STREAM FILE {sounds_dir}/{prompt} ""')
            if "error" in result:  # hung up, or the prompt is missing: nothing more to say
                log.info("agi.stream_stopped", linkedid=linkedid, prompt=prompt, error=result["error"])
                break

    def _look_up(self, digits: str, caller: str) -> StatusAnswer:
        with self.db.session() as session:
            return look_up(session, digits, caller, self._clock.this_year())
