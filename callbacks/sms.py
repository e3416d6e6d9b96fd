"""The SMS fallback: the message a caller who could not be reached gets, at most once per task.

:func:`callbacks.tasks.give_up` records a ``callback_messages`` row (``recorded``, body empty)
when the caller consented to SMS.  :class:`SmsSender` fills the body (the case number and how
to hear the answer by phone, in the site's language) and sends it through
:class:`callbacks.twilio_gateway.TwilioGateway`.  A message's life::

    recorded --claimed, committed--> sending --Twilio took it--> sent
        --status callback--> delivered / undelivered / failed (Twilio's words)
    recorded --> not_sent    (the number is on the do-not-call list, consent withdrawn, no case)
    recorded --> failed      (Twilio refused it before sending: bad number, rejected, credentials)
    recorded --> recorded    (rate limited, or Twilio could not be reached: tried at the next wake)
    sending  --> unknown     (the daemon died mid-send, or Twilio may have taken it: a person checks,
                             unless Twilio's status callback comes, naming the row by its ref)

At most once: Twilio has no idempotency key, so the row is claimed (``sending``, ``sent_at``,
the body) and **committed** before the request leaves, by one conditional UPDATE; a second
sender, or the same one after a restart, finds it claimed and sends nothing.  A row found
``sending`` at start is never sent again: it becomes ``unknown`` for a person to check.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bridge.config import Config
from bridge.db.case_numbers import parse_case_number
from bridge.db.engine import Database
from bridge.db.models import CallbackMessage, CallbackTask, utcnow
from bridge.i18n import N_, translations
from bridge.live import LiveEvent, LiveEvents
from callbacks import tasks
from callbacks.twilio_gateway import TwilioBadNumber, TwilioError, TwilioGateway, TwilioRateLimited
from callbacks.twilio_status import REF_PARAM, TwilioStatus, status_url

log = structlog.get_logger(__name__)

LIVE_TOPIC = "callbacks"
RECORDED, SENDING, SENT, UNKNOWN, NOT_SENT, FAILED = "recorded", "sending", "sent", "unknown", "not_sent", "failed"
# Twilio's message statuses: those before "sent" mean Twilio has it (stored as sent); a late
# callback never moves a message back (callbacks arrive in any order).
TWILIO_HAS_IT = frozenset({"accepted", "scheduled", "queued", "sending"})
PROGRESS = {SENT: 1, "delivered": 2, "undelivered": 2, "failed": 2, "canceled": 2, "read": 3}
REF_PREFIX = "sms-"  # the StatusCallback's ref: names the message row even without its SID
BATCH = 50

SMS_TEXT = N_("%(site)s: your case %(case)s has been answered; we could not reach you by phone. "
              "To hear the answer, call %(hotline)s, press 2, then key %(digits)s and #.")


def sms_text(locale: str, *, site: str, case_number: str, hotline: str) -> str:
    """The message in ``locale``: the case number, and the keys to hear the answer on the status line
    (year and serial: the status line reads ten digits as a case of any year)."""
    _, year, serial = parse_case_number(case_number)
    return translations(locale).gettext(SMS_TEXT) % {
        "site": site, "case": case_number, "hotline": hotline, "digits": f"{year:04d}{serial:06d}"}


@dataclass(frozen=True)
class Outgoing:
    """A recorded message, ready to send."""

    message_id: int
    task_id: int
    case_number: str
    phone: str
    body: str


class AlreadyClaimed(Exception):
    """Another sender (or this one, before a restart) claimed the message: nothing is sent."""


class SmsSender:
    """Sends the recorded messages; one per daemon (the engine calls it at each wake)."""

    def __init__(self, db: Database, gateway: TwilioGateway, *, site: str, hotline: str, locale: str = "zh_CN",
                 status_callback: str | None = None, live: LiveEvents | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.gateway, self.live, self.clock = db, gateway, live, clock
        self.site, self.hotline, self.locale, self.status_callback = site, hotline, locale, status_callback

    @classmethod
    def from_config(cls, config: Config, db: Database, *, live: LiveEvents | None = None,
                    clock: Callable[[], datetime] = utcnow) -> SmsSender:
        return cls(db, TwilioGateway.from_config(config), site=config.site.name,
                   hotline=config.pbx.hotline_numbers[0], locale=config.site.locale,
                   status_callback=status_url(config), live=live, clock=clock)

    async def recover(self) -> int:
        """At start: messages left ``sending`` (the daemon died mid-send) become ``unknown``."""
        return await self.db.run_in_session(_sending_to_unknown, self.clock())

    async def send_pending(self) -> int:
        """Send every recorded message once; how many Twilio took."""
        sent = 0
        for outgoing in await self.db.run_in_session(self._prepare, self.clock()):
            if await self._send(outgoing):
                sent += 1
        return sent

    async def close(self) -> None:
        await self.gateway.close()

    def _prepare(self, session: Session, now: datetime) -> list[Outgoing]:
        rows = session.execute(select(CallbackMessage, CallbackTask).join(CallbackTask,
                               CallbackTask.id == CallbackMessage.task_id)
                               .where(CallbackMessage.status == RECORDED)
                               # rows held back by a rate limit (an error noted) after the fresh ones
                               .order_by(CallbackMessage.error.is_not(None), CallbackMessage.id).limit(BATCH))
        ready = []
        for message, task in rows:
            why = _not_to_send(session, task)
            if why is not None:
                message.status, message.error = NOT_SENT, why
                log.info("callbacks.sms_not_sent", task_id=task.id, why=why)
                continue
            body = sms_text(self.locale, site=self.site, case_number=task.case.number, hotline=self.hotline)
            ready.append(Outgoing(message.id, task.id, task.case.number, task.phone, body))
        return ready

    async def _send(self, outgoing: Outgoing) -> bool:
        async def claim() -> None:
            if not await self.db.run_in_session(_claim, outgoing.message_id, outgoing.body, self.clock()):
                raise AlreadyClaimed(outgoing.message_id)

        callback = _with_ref(self.status_callback, REF_PREFIX + str(outgoing.message_id))
        try:
            sid = await self.gateway.send_sms(outgoing.phone, outgoing.body, status_callback=callback, record=claim)
        except AlreadyClaimed:
            return False
        except TwilioError as exc:
            status = await self.db.run_in_session(_after_failure, outgoing.message_id, exc)
            log.warning("callbacks.sms_failed", task_id=outgoing.task_id, case_number=outgoing.case_number,
                        error=str(exc), status=status)
            self._publish("sms_" + status, outgoing)
            return False
        await self.db.run_in_session(_sent, outgoing.message_id, sid)
        log.info("callbacks.sms_sent", task_id=outgoing.task_id, case_number=outgoing.case_number, sid=sid)
        self._publish("sms_sent", outgoing)
        return True

    def _publish(self, kind: str, outgoing: Outgoing) -> None:
        if self.live is not None:
            self.live.publish(LiveEvent(LIVE_TOPIC, kind, {"task_id": outgoing.task_id}))


def _with_ref(url: str | None, ref: str) -> str | None:
    if not url:
        return None
    return url + ("&" if "?" in url else "?") + urlencode({REF_PARAM: ref})


def _not_to_send(session: Session, task: CallbackTask) -> str | None:
    if task.case is None:
        return "no_case"
    if not task.case.sms_consent:
        return "no_consent"
    if tasks.do_not_call(session, task.phone) is not None:
        return "do_not_call"
    return None


def _claim(session: Session, message_id: int, body: str, now: datetime) -> bool:
    """recorded -> sending, committed before the request leaves; False when someone else claimed it."""
    claimed = session.execute(update(CallbackMessage).where(CallbackMessage.id == message_id,
                                                            CallbackMessage.status == RECORDED)
                              .values(status=SENDING, sent_at=now, body=body)
                              .execution_options(synchronize_session=False)).rowcount
    return bool(claimed)


def _after_failure(session: Session, message_id: int, exc: TwilioError) -> str:
    """What a refusal leaves: tried again (not sent, may be sent later), failed, or unknown."""
    message = session.get(CallbackMessage, message_id)
    if exc.may_have_sent:
        status = UNKNOWN  # Twilio may have taken it: never resent, a person checks
    elif isinstance(exc, TwilioRateLimited) or (exc.status is None and not isinstance(exc, TwilioBadNumber)):
        status = RECORDED  # it did not leave (rate limit, no connection): the next wake tries again
    else:
        status = FAILED
    message.status, message.error = status, str(exc)[:500]
    if status == RECORDED:
        message.sent_at = None
    return status


def _sent(session: Session, message_id: int, sid: str) -> None:
    message = session.get(CallbackMessage, message_id)
    message.remote_id = sid
    if message.status == SENDING:  # a status callback may have come first
        message.status = SENT


def _sending_to_unknown(session: Session, now: datetime) -> int:
    stuck = list(session.scalars(select(CallbackMessage).where(CallbackMessage.status == SENDING)))
    for message in stuck:
        message.status, message.error = UNKNOWN, "the daemon stopped while sending: check in Twilio's console"
        log.warning("callbacks.sms_unknown", task_id=message.task_id, claimed_at=message.sent_at)
    return len(stuck)


def apply_status(session: Session, status: TwilioStatus) -> CallbackMessage | None:
    """A signed status callback for a message: its row moves forward, never back; None when no
    message of ours has that SID.  One left ``unknown`` (or still ``sending``) is found by the
    callback URL's ref: Twilio did take it, and the row learns its SID."""
    if status.kind != "message":
        return None
    message = session.scalar(select(CallbackMessage).where(CallbackMessage.remote_id == status.sid))
    if message is None:
        message = _by_ref(session, status)
    if message is None:
        log.info("callbacks.sms_status_unknown_sid", sid=status.sid, status=status.status)
        return None
    reported = SENT if status.status in TWILIO_HAS_IT else status.status
    if PROGRESS.get(reported, 0) > PROGRESS.get(message.status, 0):
        message.status = reported
        if status.error_code is not None:
            message.error = f"Twilio error {status.error_code}"
    log.info("callbacks.sms_status", task_id=message.task_id, sid=status.sid, status=message.status,
             error_code=status.error_code)
    return message


def _by_ref(session: Session, status: TwilioStatus) -> CallbackMessage | None:
    ref = status.ref or ""
    if not ref.startswith(REF_PREFIX) or not ref[len(REF_PREFIX):].isdigit():
        return None
    message = session.get(CallbackMessage, int(ref[len(REF_PREFIX):]))
    if message is None or message.remote_id is not None or message.status not in (SENDING, UNKNOWN):
        return None
    message.remote_id = status.sid
    if message.status == UNKNOWN:
        message.error = None  # settled: Twilio says it took the message
    log.info("callbacks.sms_resolved", task_id=message.task_id, sid=status.sid)
    return message
