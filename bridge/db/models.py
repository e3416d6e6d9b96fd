"""The data model (SQLAlchemy 2, typed).

Calls, cases and case events are never deleted, and case events are never
updated: the application has no code path for it and the database refuses it
too (see ``bridge/db/guards.py``).  Times are stored as UTC.
"""
from __future__ import annotations

import enum
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy import text as sql_text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UtcDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; pass an aware datetime")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _enum(cls: type[enum.Enum]) -> Enum:
    # Store the value strings; a CHECK constraint keeps the column honest on both backends.
    return Enum(cls, values_callable=lambda e: [m.value for m in e], native_enum=False,
                create_constraint=True, length=32, name=cls.__name__.lower())


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JSON()}


# ------------------------------------------------------------------ departments


class DepartmentKind(str, enum.Enum):
    CITY_DEPARTMENT = "city_department"
    COUNTY_GOVERNMENT = "county_government"
    COMMUNITY = "community"


class Department(Base):
    """A government unit with a board on the forum. Retired, never deleted."""

    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[DepartmentKind] = mapped_column(_enum(DepartmentKind))
    # Pinyin initials of the name, for the desk's search box (e.g. 市住房和城乡建设局 -> szfhcxjsj).
    pinyin_initials: Mapped[str] = mapped_column(String(64), default="")
    # Words that suggest this unit from a case description (space separated).
    keywords: Mapped[str] = mapped_column(Text, default="")
    retired_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Everyday names operators search the unit by (space separated): 城管 for 市综合行政执法局.
    synonyms: Mapped[str] = mapped_column(Text, default="")


# ------------------------------------------------------------------------ users


class Role(str, enum.Enum):
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    SPOKESPERSON = "spokesperson"


class User(Base):
    __tablename__ = "users"
    # One active user per desk extension (0011); a disabled user keeps theirs as history.
    __table_args__ = (Index("uq_users_active_extension", "extension", unique=True,
                            sqlite_where=sql_text("disabled_at IS NULL AND extension IS NOT NULL"),
                            postgresql_where=sql_text("disabled_at IS NULL AND extension IS NOT NULL")),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(120), default="")
    role: Mapped[Role] = mapped_column(_enum(Role))
    extension: Mapped[str | None] = mapped_column(String(16))
    # Spokespeople belong to one unit.
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    department: Mapped[Department | None] = relationship()

    @property
    def active(self) -> bool:
        return self.disabled_at is None


class ApiToken(Base):
    """An API token; only its SHA-256 is stored, the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters, so an admin can tell tokens apart without the secret.
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


# ------------------------------------------------------------------------ calls


class CallDisposition(str, enum.Enum):
    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"
    ABANDONED = "abandoned"
    AFTER_HOURS_MESSAGE = "after_hours_message"
    STATUS_LINE = "status_line"
    HUNG_UP_IN_MENU = "hung_up_in_menu"    # the caller hung up in the greeting or the menu
    FAILED = "failed"                      # a technical failure (see hangup_cause)


class Call(Base):
    """One incoming hotline call, keyed by Asterisk's Linkedid."""

    __tablename__ = "calls"
    # one disposition's calls by arrival (the call figures' failures and the call log's filter, 0016)
    __table_args__ = (Index("ix_calls_disposition_arrived", "disposition", "arrived_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    linkedid: Mapped[str] = mapped_column(String(64), unique=True)
    caller_number: Mapped[str] = mapped_column(String(32), default="", index=True)
    caller_name: Mapped[str] = mapped_column(String(120), default="")
    dialled_number: Mapped[str] = mapped_column(String(32), default="")
    arrived_at: Mapped[datetime] = mapped_column(index=True)
    queue_wait_s: Mapped[float | None]
    answered_at: Mapped[datetime | None]
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    extension: Mapped[str | None] = mapped_column(String(16))
    talk_s: Mapped[float | None]
    ended_at: Mapped[datetime | None]
    hangup_cause: Mapped[int | None]
    hangup_cause_text: Mapped[str | None] = mapped_column(String(64))
    disposition: Mapped[CallDisposition] = mapped_column(_enum(CallDisposition), default=CallDisposition.IN_PROGRESS)
    recording: Mapped[str | None] = mapped_column(String(255))
    message_file: Mapped[str | None] = mapped_column(String(255))
    # How the row was learnt: "live" (AMI events), "adopted" (up at reconnect), "recovered" (CDR).
    source: Mapped[str] = mapped_column(String(16), default="live")
    # Indexed (0007): the missed-call sweep (callbacks.missed_calls) reads calls changed since its cursor.
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, index=True)
    # The shared "to call back / to file" list: who took the call (at most one operator), and when it
    # was dealt with without a case (a note says how).  A case filed from the call also ends it.
    taken_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    taken_at: Mapped[datetime | None]
    handled_at: Mapped[datetime | None]
    handled_note: Mapped[str | None] = mapped_column(Text)

    operator: Mapped[User | None] = relationship(foreign_keys=[operator_id])
    taken_by: Mapped[User | None] = relationship(foreign_keys=[taken_by_id])


# ------------------------------------------------------------------------ cases


class CaseState(str, enum.Enum):
    QUEUED = "queued"
    POSTED = "posted"
    ACCEPTED = "accepted"
    FORWARDED = "forwarded"
    ANSWERED = "answered"
    REOPENED = "reopened"
    CLOSED = "closed"


class CaseChannel(str, enum.Enum):
    PHONE = "phone"
    WALK_IN = "walk_in"
    MESSAGE = "message"
    EMAIL = "email"


class Honorific(str, enum.Enum):
    MS = "女士"
    MR = "先生"


class CallbackBestTime(str, enum.Enum):
    """When the caller wants the callback, as the operator clicked it (the stored codes).

    The callbacks capability maps them onto its calling windows; a case filed before the
    choice existed has none (``cases.best_time_choice`` NULL) and its free text in ``best_time``."""

    MORNING = "morning"
    AFTERNOON = "afternoon"
    EVENING = "evening"
    ANY = "any"


class CaseNumberCounter(Base):
    """The last case number handed out per year (96811-2026-000123)."""

    __tablename__ = "case_number_counters"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(default=0)


class Case(Base):
    __tablename__ = "cases"
    # an operator's own cases by filing time (the callback log, 0014)
    # the deadlines that are set (open cases), for what is overdue now (0018)
    __table_args__ = (Index("ix_cases_created_by_created", "created_by_id", "created_at"),
                      Index("ix_cases_deadline_set", "deadline_at", sqlite_where=sql_text("deadline_at IS NOT NULL"),
                            postgresql_where=sql_text("deadline_at IS NOT NULL")))

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), index=True)  # the call log's case (0016)
    channel: Mapped[CaseChannel] = mapped_column(_enum(CaseChannel), default=CaseChannel.PHONE)
    state: Mapped[CaseState] = mapped_column(_enum(CaseState), default=CaseState.QUEUED, index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    # Public part: goes to the forum.
    caller_surname: Mapped[str] = mapped_column(String(16))
    caller_honorific: Mapped[Honorific] = mapped_column(_enum(Honorific))
    location: Mapped[str] = mapped_column(String(200), default="")
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    # Private part: never leaves the hotline.
    caller_full_name: Mapped[str] = mapped_column(String(64), default="")
    caller_phone: Mapped[str] = mapped_column(String(32), default="", index=True)
    caller_phone_alt: Mapped[str] = mapped_column(String(32), default="")
    best_time: Mapped[str] = mapped_column(String(120), default="")  # what was typed before 0006; "" since
    callback_wanted: Mapped[bool] = mapped_column(Boolean, default=True)
    sms_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    operator_notes: Mapped[str] = mapped_column(Text, default="")
    # Forum side.
    forum_post_id: Mapped[str | None] = mapped_column(String(64))
    forum_url: Mapped[str | None] = mapped_column(String(500))
    deadline_at: Mapped[datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Private, when to call back (migration 0006 added them, hence last): the clicked choice (NULL on
    # cases filed before it; ``best_time`` then holds what was typed), and the first day the caller
    # may be called, a date in the site's zone.
    best_time_choice: Mapped[CallbackBestTime | None] = mapped_column(_enum(CallbackBestTime))
    callback_not_before: Mapped[date | None] = mapped_column(Date)
    # The caller chose an automated voice callback (migration 0008): the answer, spoken, is phoned
    # to them without an operator (callbacks/voice_callback.py).
    voice_callback: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    department: Mapped[Department] = relationship()
    call: Mapped[Call | None] = relationship()
    created_by: Mapped[User | None] = relationship()
    # passive_deletes="all": the ORM never nulls out the events' case_id (events are never
    # updated); deleting a case is refused by the database with a clear message instead.
    events: Mapped[list[CaseEvent]] = relationship(back_populates="case", order_by="CaseEvent.id",
                                                   passive_deletes="all")


class CaseEvent(Base):
    """The append-only timeline of a case: inserted, never updated or deleted."""

    __tablename__ = "case_events"
    # (kind, case_id): the callback log's forwards and first steps of its cases (0014); (kind, at): the
    # units' figures' steps of a period (0015); (case_id, at, id, kind): the step after each, read
    # from the index alone (0018); a step's unit and time: a unit's trend (0017, PostgreSQL; the
    # expression figures.py writes).
    __table_args__ = (UniqueConstraint("source_event_id", name="uq_case_events_source_event_id"),
                      Index("ix_case_events_kind_case", "kind", "case_id"),
                      Index("ix_case_events_kind_at", "kind", "at"),
                      Index("ix_case_events_case_at_kind", "case_id", "at", "id", "kind"),
                      Index("ix_case_events_step_unit_at", sql_text(
                          "(CASE kind WHEN 'posted' THEN (detail ->> 'department') "
                          "WHEN 'forwarded' THEN (detail ->> 'to_unit') ELSE (detail ->> 'unit') END)"), "at",
                          postgresql_where=sql_text("kind IN ('posted', 'forwarded', 'accepted', 'follow_up_asked')"))
                      .ddl_if(dialect="postgresql"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(48))
    # Who: a user of the bridge, or a system actor ("forum", "pbx", "scheduler").
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(String(120))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # An outside event's own id (e.g. a forum event), so it is applied once.
    source_event_id: Mapped[str | None] = mapped_column(String(128))

    case: Mapped[Case] = relationship(back_populates="events")


# ---------------------------------------------------------------- forum outbox


class OutboxState(str, enum.Enum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # gave up; a person must look


class OutboxOperation(str, enum.Enum):
    """What an outbox row asks of the forum: the ``Forum`` method of the same name."""

    CREATE_POST = "create_post"
    POST_FOLLOW_UP = "post_follow_up"


class ForumOutbox(Base):
    """A write to the forum, sent at least once and applied exactly once."""

    __tablename__ = "forum_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    operation: Mapped[str] = mapped_column(String(32))
    # The case number (plus a suffix for follow-ups): the forum-side idempotency key.
    idempotency_key: Mapped[str] = mapped_column(String(96), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[OutboxState] = mapped_column(_enum(OutboxState), default=OutboxState.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    remote_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# -------------------------------------------------------------------- callbacks


class CallbackReason(str, enum.Enum):
    """Why the hotline phones someone back."""

    ANSWER = "answer"  # a unit answered the caller's case: tell them the answer
    MISSED_CALL = "missed_call"  # abandoned in the queue, or a message left (after hours, queue timeout)


class CallbackState(str, enum.Enum):
    """Where a callback task stands (``due_at`` in the past makes a ``scheduled`` task ``due``)."""

    SCHEDULED = "scheduled"  # waits for due_at (a window opening, a retry)
    DUE = "due"  # may be called now (held by its owner, then the pool)
    IN_PROGRESS = "in_progress"  # an attempt is live, or its outcome is still to record
    DONE = "done"  # reached (informed, follow-up, ...) or closed by a person
    UNREACHABLE = "unreachable"  # attempts exhausted, or the number needs checking: supervisors see it


class CallbackOutcome(str, enum.Enum):
    """How a task ended, or what the operator recorded after an answered attempt."""

    INFORMED = "informed"  # the caller heard the answer (with a satisfaction grade, by a person)
    FOLLOW_UP = "follow_up"  # the caller asked further: posted to the thread, the case reopens
    WRONG_NUMBER = "wrong_number"
    DO_NOT_CALL = "do_not_call"
    VOICEMAIL = "voicemail"  # a machine or someone else answered: an attempt, retried
    SUPERSEDED = "superseded"  # a newer answer of the same case made a new task
    HANDLED = "handled"  # a missed call dealt with: a case filed from it (case_id), or the note says how


class CallbackCheck(str, enum.Enum):
    """Why a task waits for a person before anything else happens."""

    NUMBER = "check_number"  # Asterisk's hangup cause says the number itself is wrong
    ATTEMPT = "check_attempt"  # an attempt's result was lost (PBX link, daemon died): settle it


class CallbackAttemptResult(str, enum.Enum):
    """How an attempt's call ended, from Asterisk's (or Twilio's) own events."""

    ANSWERED = "answered"  # the caller picked up
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"  # congestion, bad number, trunk down
    OPERATOR_NO_ANSWER = "operator_no_answer"  # the operator's own phone did not answer
    UNKNOWN = "unknown"  # lost with the PBX link, or the daemon died mid-call


class CallbackTask(Base):
    """Phone someone back until the unit's answer (or the hotline) has reached them.

    The rows of ``callback_tasks`` and ``callback_attempts`` are the record of truth; the
    scheduler only wakes the daemon at the next ``due_at``."""

    __tablename__ = "callback_tasks"
    # (state, waiting_since, id): the due tasks in the pool's order without a sort (0009).
    __table_args__ = (Index("ix_callback_tasks_state_due", "state", "due_at"),
                      Index("ix_callback_tasks_state_waiting", "state", "waiting_since", "id"),
                      # a case's latest answer task (the callback log, 0014)
                      Index("ix_callback_tasks_case_reason", "case_id", "reason", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    reason: Mapped[CallbackReason] = mapped_column(_enum(CallbackReason))
    # reason answer: the case and the answer (its case event; unique: one task per answer);
    # reason missed_call: the call (unique: one task per call), and the case filed during the callback.
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    answer_event_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("case_events.id"), unique=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), unique=True)
    # The number to phone (private): the case's caller_phone, or the missed call's caller number.
    phone: Mapped[str] = mapped_column(String(32), index=True)
    state: Mapped[CallbackState] = mapped_column(_enum(CallbackState), default=CallbackState.SCHEDULED)
    due_at: Mapped[datetime]
    # Since when the caller waits: the answer's time, or the missed call's (the pool's order).
    waiting_since: Mapped[datetime]
    # The operator who filed the case (the owner's turn, then the pool), from assigned_at.
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    assigned_at: Mapped[datetime]
    # Who holds it now (taken from the pool, or the owner acting): one operator at a time.
    held_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    held_at: Mapped[datetime | None]
    needs_check: Mapped[CallbackCheck | None] = mapped_column(_enum(CallbackCheck))
    outcome: Mapped[CallbackOutcome | None] = mapped_column(_enum(CallbackOutcome))
    satisfaction: Mapped[int | None]
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    completed_at: Mapped[datetime | None]

    case: Mapped[Case | None] = relationship()
    call: Mapped[Call | None] = relationship()
    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id])
    held_by: Mapped[User | None] = relationship(foreign_keys=[held_by_id])
    attempts: Mapped[list[CallbackAttempt]] = relationship(back_populates="task", order_by="CallbackAttempt.id",
                                                           passive_deletes="all")


class CallbackAttempt(Base):
    """One call placed for a task: the row exists (``ended_at`` NULL, ``result`` NULL: dialling)
    before the Originate leaves the daemon, and is never placed again."""

    __tablename__ = "callback_attempts"
    # At most one live attempt per task: two operators pressing "call" at once place one call.
    __table_args__ = (Index("uq_callback_attempts_live_task", "task_id", unique=True,
                            sqlite_where=sql_text("ended_at IS NULL"), postgresql_where=sql_text("ended_at IS NULL")),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("callback_tasks.id"), index=True)
    # The Originate's ActionID and its channel variable HOTLINE_CALLBACK_ATTEMPT.
    idempotency_key: Mapped[str] = mapped_column(String(96), unique=True)
    dialler: Mapped[str] = mapped_column(String(16))  # asterisk, twilio, voice (automated), sms
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    extension: Mapped[str | None] = mapped_column(String(16))
    # The answer the operator was shown when the attempt began (newest answer of the case).
    answer_event_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    linkedid: Mapped[str | None] = mapped_column(String(64), index=True)
    remote_id: Mapped[str | None] = mapped_column(String(64))  # a Twilio Call or Message SID
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    result: Mapped[CallbackAttemptResult | None] = mapped_column(_enum(CallbackAttemptResult))
    hangup_cause: Mapped[int | None]
    # How the result was learnt: "events" (live AMI), "cel" (recovered at start), "person", "twilio".
    settled_by: Mapped[str | None] = mapped_column(String(16))
    recording: Mapped[str | None] = mapped_column(String(255))
    # What the operator recorded after an answered attempt (informed, follow_up, ..., voicemail).
    outcome: Mapped[CallbackOutcome | None] = mapped_column(_enum(CallbackOutcome))
    satisfaction: Mapped[int | None]
    note: Mapped[str] = mapped_column(Text, default="")

    task: Mapped[CallbackTask] = relationship(back_populates="attempts")
    operator: Mapped[User | None] = relationship()


class DoNotCall(Base):
    """A number no task may phone again, on any case, until a supervisor lifts it."""

    __tablename__ = "do_not_call"
    __table_args__ = (Index("uq_do_not_call_active_phone", "phone", unique=True,
                            sqlite_where=sql_text("lifted_at IS NULL"), postgresql_where=sql_text("lifted_at IS NULL")),)

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(32), index=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("callback_tasks.id"))
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    set_at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str] = mapped_column(Text, default="")
    lifted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    lifted_at: Mapped[datetime | None]


class CallbackMessage(Base):
    """The SMS sent when a task is given up (at most one per task: recorded before it is sent)."""

    __tablename__ = "callback_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("callback_tasks.id"), unique=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    remote_id: Mapped[str | None] = mapped_column(String(64))  # Twilio's Message SID
    status: Mapped[str] = mapped_column(String(32), default="recorded")  # recorded, sent, delivered, failed, ...
    error: Mapped[str | None] = mapped_column(Text)


# ------------------------------------------------- builtin forum board (issue 5)


class BoardPostState(str, enum.Enum):
    OPEN = "open"  # waiting for the current unit to accept it (blue, 未受理)
    ACCEPTED = "accepted"  # accepted by the current unit, answer owed (green, 已受理)
    ANSWERED = "answered"  # the unit answered; nothing owed
    FOLLOW_UP = "follow_up"  # a follow-up question waits for the unit's answer


class BoardPost(Base):
    """A thread on the builtin board (one per case number). Never deleted."""

    __tablename__ = "board_posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The idempotency key: one thread per case number.
    case_number: Mapped[str] = mapped_column(String(32), unique=True)
    # The unit whose board shows the thread now (changes on forward).
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    origin_department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    state: Mapped[BoardPostState] = mapped_column(_enum(BoardPostState), default=BoardPostState.OPEN, index=True)
    author: Mapped[str] = mapped_column(String(120))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    department: Mapped[Department] = relationship(foreign_keys=[department_id])
    origin_department: Mapped[Department] = relationship(foreign_keys=[origin_department_id])
    replies: Mapped[list[BoardReply]] = relationship(back_populates="post", order_by="BoardReply.id",
                                                     passive_deletes="all")


class BoardReply(Base):
    """A post in a thread: an answer, a forwarding note, a follow-up. Never updated or deleted."""

    __tablename__ = "board_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("board_posts.id"), index=True)
    # "accepted", "forwarded", "answer", "follow_up", "follow_up_answer"
    kind: Mapped[str] = mapped_column(String(32))
    author: Mapped[str] = mapped_column(String(120))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text, default="")
    # A write from the hotline carries its idempotency key (follow-ups).
    idempotency_key: Mapped[str | None] = mapped_column(String(96), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    post: Mapped[BoardPost] = relationship(back_populates="replies")
    department: Mapped[Department | None] = relationship()


class BoardEvent(Base):
    """A thread event of the builtin board; its id is the polling cursor. Never updated or deleted."""

    __tablename__ = "board_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("board_posts.id"), index=True)
    reply_id: Mapped[int | None] = mapped_column(ForeignKey("board_replies.id"))
    kind: Mapped[str] = mapped_column(String(32))  # a ThreadEventKind value
    case_number: Mapped[str] = mapped_column(String(32))
    unit_code: Mapped[str] = mapped_column(String(32))
    to_unit_code: Mapped[str | None] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(120), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ForumCursor(Base):
    """Where event polling stopped, per forum backend ("builtin", "discourse")."""

    __tablename__ = "forum_cursors"

    backend: Mapped[str] = mapped_column(String(32), primary_key=True)
    cursor: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Cursor(Base):
    """Where a reader of a durable stream stopped (``cel-recovery``, ``events:<capability>``, ...).

    The reader moves it in the same transaction as the work it did, so a restart resumes there."""

    __tablename__ = "cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ParkedDomainEvent(Base):
    """A domain event a consumer failed on ``bridge.domain_events.PARK_AFTER`` times in a row (0010).

    The consumer's cursor moved past it, so the events after it are not held up (one broken
    answer must not stop every later callback); the row keeps it for a person, who asks for
    another try (``hotline-bridge events retry``) once the cause is fixed.  Never deleted:
    ``resolved_at`` says it was handled after all."""

    __tablename__ = "parked_domain_events"
    __table_args__ = (UniqueConstraint("consumer", "position", name="uq_parked_domain_events_consumer_position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    consumer: Mapped[str] = mapped_column(String(64))
    # The case event's id (the stream's position) and its case.
    position: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    failures: Mapped[int] = mapped_column(default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    parked_at: Mapped[datetime] = mapped_column(default=utcnow)
    retry_requested_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]


class DeskSessionEnd(str, enum.Enum):
    SIGNED_OUT = "signed_out"
    EXPIRED = "expired"
    DISABLED = "disabled"
    REPLACED = "replaced"
    ENDED_BY_SUPERVISOR = "ended_by_supervisor"


class PauseReason(str, enum.Enum):
    BREAK = "break"        # 休息
    CALLBACK = "callback"  # 回电中
    TRAINING = "training"  # 培训


class DeskSession(Base):
    """A sign-in to the pages (desk or board), server side: the signed cookie carries ``token``;
    the row ended, the cookie signs nobody in (``bridge.presence.service``)."""

    __tablename__ = "desk_sessions"
    __table_args__ = (Index("ix_desk_sessions_active", "ended_at", "extension"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    extension: Mapped[str | None] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[DeskSessionEnd | None] = mapped_column(_enum(DeskSessionEnd))
    ended_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    paused_reason: Mapped[PauseReason | None] = mapped_column(_enum(PauseReason))
    paused_at: Mapped[datetime | None]
    # The pause was the daemon's (an operator placing a callback): only such a pause is lifted by itself.
    paused_auto: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    user: Mapped[User] = relationship(foreign_keys=[user_id])


# Tables whose rows the application never deletes (enforced by triggers).
NEVER_DELETED = (
    "departments", "users", "calls", "cases", "case_events",
    "forum_outbox", "callback_tasks", "callback_attempts",
    "board_posts", "board_replies", "board_events",
    "do_not_call", "callback_messages", "parked_domain_events",
)
# Tables whose rows are never updated either.
NEVER_UPDATED = ("case_events", "board_replies", "board_events")
