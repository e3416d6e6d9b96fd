"""Attempts left ``dialling`` when the daemon died or the AMI link dropped: settled from
Asterisk's own record, never placed again.

At every AMI login (the daemon's start, and each reconnect after a loss) every Asterisk
attempt whose row has no ``ended_at`` and began before that login is looked at (one begun
less than :data:`MIN_AGE` ago a little later: its Originate may still be on the way):

1. Asterisk is asked which channels are up (``CoreShowChannels``) and which attempt each
   belongs to (``Getvar HOTLINE_CALLBACK_ATTEMPT``, the channel variable the Originate
   set).  A call still up is left ``dialling``: it is watched, and when a channel of its
   call hangs up it is looked at again (its CDR row is written at that hang-up).
2. Otherwise the CDR rows whose ``hotline_callback_attempt`` is the attempt's key
   (``dialplan/templates/cdr_*.conf.j2``; the table the call log's recovery reads,
   SQLite file or PostgreSQL, :class:`bridge.pbx.recovery.AsteriskTable`) settle it
   (:func:`verdict_of`), ``settled_by="cel"``.
3. With no channel and no CDR row the attempt is ``unknown`` (``settled_by="daemon"``):
   :func:`callbacks.tasks.settle_attempt` then puts the task in front of a person
   (``needs_check = attempt``); it is never retried by itself.

Between logins, every :data:`SWEEP_EVERY_S` the same look is taken at attempts begun more
than :data:`STALE_AFTER` ago: an attempt whose events were lost on a link that stayed up (the
database away when they came, a call the dialler forgot) is not left dialling until the next
reconnect.

When Asterisk or the CDR table cannot be asked (the link dropped again, PostgreSQL away)
nothing is settled and the run is tried again: an attempt is marked ``unknown`` only when
Asterisk said it has no channel for it and its CDR has no row.
"""
from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import structlog
from sqlalchemy import bindparam, select, text
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from bridge.db.engine import Database
from bridge.db.models import CallbackAttempt, CallbackAttemptResult, utcnow
from bridge.live import LiveEvent
from bridge.pbx.recovery import AsteriskTable
from callbacks import tasks
from callbacks.placing import LIVE_TOPIC
from callbacks.tasks import CallbackPolicy

log = structlog.get_logger(__name__)

ATTEMPT_VARIABLE = "HOTLINE_CALLBACK_ATTEMPT"   # the Originate's channel variable
CDR_COLUMN = "hotline_callback_attempt"          # the CDR field the callback context fills
# The attempts placed through the site's Asterisk: the operators' callbacks and the automated
# voice callbacks (both carry HOTLINE_CALLBACK_ATTEMPT on their channel).
DIALLERS = ("asterisk", "voice")
SETTLED_FROM_CDR = "cel"        # callback_attempts.settled_by: recovered from Asterisk's record
SETTLED_BY_DAEMON = "daemon"

# Asterisk's CDR dispositions (cdr.conf congestion=yes adds CONGESTION).
DISPOSITIONS = {
    "ANSWERED": CallbackAttemptResult.ANSWERED,
    "BUSY": CallbackAttemptResult.BUSY,
    "NO ANSWER": CallbackAttemptResult.NO_ANSWER,
    "FAILED": CallbackAttemptResult.FAILED,
    "CONGESTION": CallbackAttemptResult.FAILED,
}

# After a watched call hangs up, its CDR row may take a moment to be written: an attempt
# seen live this recently is not called unknown for want of a row.
CDR_WRITE_GRACE_S = 5.0
RECHECK_AFTER_HANGUP_S = 1.0
# An attempt begun this recently may have its Originate on the way (a Placer that saw the link
# up just as it logged in): it is looked at once it is older, never called unknown before.
MIN_AGE = timedelta(seconds=10)
RETRY_S = 30.0
# Attempts still dialling this long after they began are looked at between logins too (no
# callback rings and talks this long without its events settling it), every SWEEP_EVERY_S.
STALE_AFTER = timedelta(hours=1)
SWEEP_EVERY_S = 600.0
# CDR rows are read newest first, in chunks of row ids, down to the first row of a call
# that ended before the oldest attempt began (less this slack for clocks and write order).
_CHUNK = 2000
_ROW_ORDER_SLACK = timedelta(minutes=5)
_EPOCH_ID = re.compile(r"(\d{9,11})\.\d+$")


@dataclass(frozen=True)
class Verdict:
    """What Asterisk's CDR says of one attempt."""

    result: CallbackAttemptResult
    linkedid: str | None
    recording: str | None


def verdict_of(rows: list[dict[str, str]]) -> Verdict | None:
    """Pure: the result of an attempt from its CDR rows (in row order), or None (no row).

    The operator's phone is the Originate's channel (party A), the caller is its Dial's
    party B (``dstchannel``).  A row with a party B tells how the caller's phone answered;
    an answered row without one means the operator picked up but the caller was never
    reached (``failed``), an unanswered one that the operator's phone did not answer."""
    if not rows:
        return None
    legs = [r for r in rows if r.get("dstchannel")]
    if legs:
        answered = [r for r in legs if _disposition(r) is CallbackAttemptResult.ANSWERED]
        chosen = answered[0] if answered else legs[-1]
        result = _disposition(chosen) or CallbackAttemptResult.FAILED
    else:
        chosen = rows[-1]
        picked_up = any(_disposition(r) is CallbackAttemptResult.ANSWERED for r in rows)
        result = CallbackAttemptResult.FAILED if picked_up else CallbackAttemptResult.OPERATOR_NO_ANSWER
    recording = next((r["hotline_recording"] for r in rows if r.get("hotline_recording")), None)
    return Verdict(result, chosen.get("linkedid") or None, recording)


def _disposition(row: dict[str, str]) -> CallbackAttemptResult | None:
    return DISPOSITIONS.get((row.get("disposition") or "").strip().upper())


def ended_by(row: dict[str, str]) -> datetime | None:
    """Pure: about when the call of a CDR row ended: its channel's creation (the uniqueid is
    "[system-]EPOCH.SEQUENCE") plus its duration; None when the row does not say."""
    match = _EPOCH_ID.search(row.get("uniqueid") or "")
    if match is None:
        return None
    try:
        duration = int(float(row.get("duration") or 0))
    except ValueError:
        duration = 0
    return datetime.fromtimestamp(int(match.group(1)) + duration, timezone.utc)


# ---------------------------------------------------------------------- the CDR table


class CdrUnreadable(Exception):
    """The CDR table could not be read now (try again later)."""


class CdrLacksColumn(Exception):
    """The CDR table has no hotline_callback_attempt column: it can never name an attempt."""


def cdr_rows_for(table: AsteriskTable, keys: Iterable[str], since: datetime) -> dict[str, list[dict[str, str]]]:
    """Blocking: the CDR rows of each attempt key (row order), read newest first by row id
    (Asterisk's tables have no index on the column) down to the rows of calls that ended
    before ``since`` (the oldest attempt's start)."""
    wanted = sorted(set(keys))
    found: dict[str, list[dict[str, str]]] = {}
    if not wanted:
        return found
    floor = since - _ROW_ORDER_SLACK
    try:
        with table.connect() as connection:
            if connection is None:  # no SQLite file yet: Asterisk wrote no CDR
                return found
            lo, hi = table.bounds(connection)
            if hi is None:
                return found
            query = text(f"SELECT {table.row_id} AS _row_id, * FROM {table.table} "
                         f"WHERE {table.row_id} > :lo AND {table.row_id} <= :hi AND {CDR_COLUMN} IN :keys "
                         f"ORDER BY {table.row_id}").bindparams(bindparam("keys", expanding=True))
            first = text(f"SELECT uniqueid, duration FROM {table.table} WHERE {table.row_id} > :lo "
                         f"ORDER BY {table.row_id} LIMIT 1")
            top = hi
            while top >= lo:
                bottom = max(lo - 1, top - _CHUNK)
                for row in connection.execute(query, {"lo": bottom, "hi": top, "keys": wanted}):
                    values = {k: "" if v is None else str(v) for k, v in row._mapping.items()}
                    found.setdefault(values[CDR_COLUMN], []).append(values)
                oldest = connection.execute(first, {"lo": bottom}).first()
                ended = ended_by({"uniqueid": str(oldest[0]), "duration": str(oldest[1])}) if oldest else None
                if ended is not None and ended < floor:
                    break
                top = bottom
    except (OperationalError, ProgrammingError) as exc:
        if CDR_COLUMN in str(exc.orig if isinstance(exc, DBAPIError) else exc):
            raise CdrLacksColumn(str(exc).splitlines()[0]) from exc
        raise CdrUnreadable(str(exc).splitlines()[0]) from exc
    except DBAPIError as exc:
        raise CdrUnreadable(str(exc).splitlines()[0]) from exc
    for rows in found.values():
        rows.sort(key=lambda r: int(r["_row_id"]))
    return found


# ------------------------------------------------------------------------- the database


@dataclass(frozen=True)
class Dialling:
    key: str
    task_id: int
    started_at: datetime


def dialling_attempts(session: Session, begun_before: datetime) -> list[Dialling]:
    """Attempts placed through Asterisk (operators' and voice callbacks) still ``dialling`` that
    began before ``begun_before`` (an attempt
    begun since belongs to the link now up: its Originate may still be on its way)."""
    rows = session.execute(select(CallbackAttempt.idempotency_key, CallbackAttempt.task_id,
                                  CallbackAttempt.started_at)
                           .where(CallbackAttempt.ended_at.is_(None), CallbackAttempt.dialler.in_(DIALLERS),
                                  CallbackAttempt.started_at < begun_before)
                           .order_by(CallbackAttempt.id))
    return [Dialling(key, task_id, _aware(started)) for key, task_id, started in rows]


def settle_from_record(session: Session, verdicts: dict[str, Verdict | None], now: datetime,
                       policy: CallbackPolicy) -> dict[str, tuple[CallbackAttemptResult, str]]:
    """Settle each attempt by its CDR verdict, ``unknown`` where it has none; what each became
    and who settled it (its events may have been first)."""
    settled = {}
    for key, verdict in verdicts.items():
        if verdict is None:
            attempt = tasks.settle_attempt(session, key, CallbackAttemptResult.UNKNOWN, now, policy,
                                           settled_by=SETTLED_BY_DAEMON)
        else:
            attempt = tasks.settle_attempt(session, key, verdict.result, now, policy, settled_by=SETTLED_FROM_CDR,
                                           linkedid=verdict.linkedid, recording=verdict.recording)
        if attempt is not None and attempt.result is not None:
            settled[key] = (attempt.result, attempt.settled_by or "")
    return settled


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# ----------------------------------------------------------------------------- Asterisk


class AsteriskUnreachable(Exception):
    """Asterisk could not be asked which channels are up."""


async def live_attempts(ami) -> dict[str, str]:
    """Attempt key -> Linkedid of every channel up now that carries HOTLINE_CALLBACK_ATTEMPT."""
    from bridge.pbx.ami import AmiActionError, AmiError

    try:
        listing = await ami.send_action({"Action": "CoreShowChannels"}, expect_list=True)
    except AmiError as exc:
        raise AsteriskUnreachable(str(exc)) from exc
    live: dict[str, str] = {}
    for channel in listing.events:
        if channel.get("Event") != "CoreShowChannel" or not channel.get("Channel"):
            continue
        try:
            answer = await ami.send_action({"Action": "Getvar", "Channel": channel["Channel"],
                                            "Variable": ATTEMPT_VARIABLE})
        except AmiActionError:
            continue  # the channel hung up meanwhile
        except AmiError as exc:
            raise AsteriskUnreachable(str(exc)) from exc
        key = (answer.get("Value") or "").strip()
        if key:
            live[key] = channel.get("Linkedid") or channel.get("Uniqueid") or ""
    return live


# --------------------------------------------------------------------------------- the link


class AttemptRecovery:
    """The daemon's part that settles attempts left dialling (a link of the callbacks
    capability).  ``pbx`` is the PBX link (``bridge.pbx.service.PbxService``): its AMI client,
    its CDR table (``pbx.recovery.cdr``, None when no CDR is configured) and its hook
    ``connected_hooks``, run after each AMI login."""

    def __init__(self, db: Database, policy: CallbackPolicy, pbx, *,
                 clock: Callable[[], datetime] = utcnow, retry_s: float = RETRY_S, live=None) -> None:
        self.db, self.policy, self.pbx, self.clock, self.retry_s = db, policy, pbx, clock, retry_s
        # bridge.live.LiveEvents: a settled attempt is published (the desk's queue shows it, the
        # engine plans the task's retry at once instead of at its 5-minute safety net).
        self.live = live
        self._logged_in_at: datetime | None = None
        self._watched: dict[str, str] = {}          # key -> Linkedid of a call live at a run
        self._hung_up: dict[str, float] = {}        # key -> loop time a watched call's channel hung up
        self._run: asyncio.Task | None = None
        self._again = False
        self._later: asyncio.TimerHandle | None = None
        self.runs = 0   # runs finished (settled, postponed or failed)
        self._sweeps: asyncio.Task | None = None
        pbx.connected_hooks.append(self.on_ami_login)

    @property
    def cdr(self) -> AsteriskTable | None:
        recovery = getattr(self.pbx, "recovery", None)
        return recovery.cdr if recovery is not None else None

    async def start(self) -> None:
        if self.pbx.ami.is_up and self._logged_in_at is None:
            self.on_ami_login()
        self._sweeps = asyncio.create_task(self._sweep_every(SWEEP_EVERY_S), name="callback-attempt-sweeps")

    async def _sweep_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            self.request_run()

    async def stop(self) -> None:
        if self._sweeps is not None:
            self._sweeps.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeps
        if self._later is not None:
            self._later.cancel()
        if self._run is not None:
            self._run.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._run

    def on_ami_login(self) -> None:
        """Every AMI login: attempts begun before it are the ones its link may have lost."""
        self._logged_in_at = self.clock()
        self.request_run()

    def on_ami_event(self, event: dict[str, str]) -> None:
        """A channel of a watched call hung up: look at its attempt again shortly."""
        if event.get("Event") != "Hangup" or not self._watched:
            return
        linkedid = event.get("Linkedid")
        keys = [key for key, watched in self._watched.items() if watched and watched == linkedid]
        for key in keys:
            self._hung_up[key] = asyncio.get_running_loop().time()
        if keys:
            self._run_later(RECHECK_AFTER_HANGUP_S)

    def request_run(self) -> asyncio.Task:
        if self._run is not None and not self._run.done():
            self._again = True
        else:
            self._run = asyncio.create_task(self._loop(), name="callback-attempt-recovery")
        return self._run

    def _run_later(self, delay: float) -> None:
        if self._later is not None:
            self._later.cancel()
        self._later = asyncio.get_running_loop().call_later(delay, self.request_run)

    async def _loop(self) -> None:
        while True:
            self._again = False
            try:
                pending = await self.run_once()
            except (AsteriskUnreachable, CdrUnreadable) as exc:
                log.warning("callbacks.attempt_recovery_postponed", error=str(exc), retry_in_s=self.retry_s)
                self._run_later(self.retry_s)
                return
            except Exception:  # noqa: BLE001 - a bug here must not stop the daemon; tried again later
                log.exception("callbacks.attempt_recovery_failed", retry_in_s=self.retry_s)
                self._run_later(self.retry_s)
                return
            finally:
                self.runs += 1
            if pending:
                self._run_later(RECHECK_AFTER_HANGUP_S)
            if not self._again:
                return

    async def run_once(self) -> int:
        """One look at the attempts left dialling; how many wait for their CDR row still."""
        if self._logged_in_at is None:
            return 0
        loop = asyncio.get_running_loop()
        # Begun before the login (its link may have lost them), or long enough ago to be stale.
        begun_before = max(self._logged_in_at, self.clock() - STALE_AFTER)
        attempts = await self.db.run_in_session(dialling_attempts, begun_before, readonly=True)
        young = [a for a in attempts if self.clock() - a.started_at < MIN_AGE]
        if young:
            self._run_later(max(0.5, (MIN_AGE - (self.clock() - max(a.started_at for a in young))).total_seconds()))
            attempts = [a for a in attempts if a not in young]
        if not attempts:
            self._watched.clear()
            return 0
        live = await live_attempts(self.pbx.ami)
        ended = [a for a in attempts if a.key not in live]
        for attempt in attempts:
            if attempt.key in live and attempt.key not in self._watched:
                log.info("callbacks.attempt_still_live", task_id=attempt.task_id, attempt=attempt.key,
                         linkedid=live[attempt.key])
        self._watched = {a.key: live[a.key] for a in attempts if a.key in live}
        if not ended:
            return 0
        rows = await self._cdr_rows(ended)
        verdicts: dict[str, Verdict | None] = {}
        waiting = 0
        for attempt in ended:
            verdict = verdict_of(rows.get(attempt.key, []))
            hung_up = self._hung_up.get(attempt.key)
            if verdict is None and hung_up is not None and loop.time() - hung_up < CDR_WRITE_GRACE_S:
                waiting += 1
                continue
            verdicts[attempt.key] = verdict
        settled = await self.db.run_in_session(settle_from_record, verdicts, self.clock(), self.policy)
        for attempt in ended:
            if attempt.key in settled:
                self._hung_up.pop(attempt.key, None)
                result, settled_by = settled[attempt.key]
                log.info("callbacks.attempt_recovered", task_id=attempt.task_id, attempt=attempt.key,
                         result=result.value, settled_by=settled_by)
                if self.live is not None:
                    self.live.publish(LiveEvent(LIVE_TOPIC, "attempt_ended",
                                                {"task_id": attempt.task_id, "result": result.value}))
        return waiting

    async def _cdr_rows(self, attempts: list[Dialling]) -> dict[str, list[dict[str, str]]]:
        table = self.cdr
        if table is None:
            log.warning("callbacks.attempt_recovery_without_cdr", attempts=len(attempts),
                        fix="set [pbx] cdr_path (or cel_url) so attempts the daemon lost are settled "
                            "from Asterisk's CDR rather than marked unknown")
            return {}
        since = min(a.started_at for a in attempts)
        try:
            return await asyncio.to_thread(cdr_rows_for, table, [a.key for a in attempts], since)
        except CdrLacksColumn as exc:
            log.error("callbacks.cdr_lacks_attempt_column", error=str(exc),
                      fix=f"add the column {CDR_COLUMN} to Asterisk's CDR table (cdr_*.conf templates) "
                          f"and restart Asterisk; until then attempts left dialling are marked unknown")
            return {}
