"""The builtin board's storage and rules: plain synchronous functions in the caller's session.

A thread (:class:`BoardPost`) is made once per case number by the hotline account
and lives on the board of the unit that owes the next step.  What a unit's
spokesperson can do, and what it does to the thread:

=================  =====================  ===========================  ==================
action             allowed in             thread becomes               event
=================  =====================  ===========================  ==================
accept             open                   accepted (green, 已受理)     accepted
forward(unit, n)   open, accepted,        open (blue) on the new       forwarded
                   follow_up              unit's board
answer(text)       accepted               answered                     answered
answer(text)       follow_up              answered                     follow_up_answered
=================  =====================  ===========================  ==================

The hotline posts a follow-up (a new question from the caller) into a thread:
it becomes ``follow_up`` and the event is ``follow_up_asked``.  Every action
appends a reply (the note to the poster, the answer, the follow-up) and one
:class:`BoardEvent`; the event's id is the polling cursor and, as
``builtin:<id>``, the thread event's own id.  Nothing is ever deleted (the
database refuses it) and replies and events are never updated.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload

from bridge.db.models import BoardEvent, BoardPost, BoardPostState, BoardReply, Department, Role, User
from bridge.forum.adapter import NewPost, ThreadEvent, ThreadEventKind
from bridge.i18n import DEFAULT_LOCALE, LOCALES, NC_, N_, translations

# The hotline account's name on the board: stored with each thread (data, the same in every language).
HOTLINE_AUTHOR = "96811热线"
EVENT_ID_PREFIX = "builtin:"
NOTE_MAX = 2000
ANSWER_MAX = 10000
TEXT_MIN = 2

# Status shown to the public: the platform's colours.
COLOUR = {BoardPostState.OPEN: "blue", BoardPostState.ACCEPTED: "green",
          BoardPostState.ANSWERED: "green", BoardPostState.FOLLOW_UP: "green"}
# The status's words (the catalogues, bridge/locale; blue = 未受理, green = 已受理): state -> (context, msgid).
STATUS_LABEL: dict[BoardPostState, tuple[str, str]] = {
    BoardPostState.OPEN: NC_("board status", "not accepted"),
    BoardPostState.ACCEPTED: NC_("board status", "accepted"),
    BoardPostState.ANSWERED: NC_("board status", "answered"),
    BoardPostState.FOLLOW_UP: NC_("board status", "accepted (follow-up to answer)"),
}

# Messages of BoardError, by code: the msgid (English; translated by the catalogues), with
# ``%(name)s`` placeholders from ``params`` (``%(label)s`` is the field's label).
MESSAGES: dict[str, str] = {
    "post_unknown": N_("There is no post %(id)s."),
    "not_your_unit": N_("This post is on the board of %(unit)s; you may act only on your own unit's (%(mine)s) "
                        "posts."),
    "not_spokesperson": N_("Only a unit's network spokesperson may act on posts."),
    "no_unit": N_("Your account belongs to no unit."),
    "already_accepted": N_("This post is already accepted."),
    "already_answered": N_("This post is already answered; no question waits for an answer."),
    "accept_first": N_("Accept the post before answering it."),
    "required": N_("The %(label)s is required."),
    "too_short": N_("The %(label)s needs at least %(min)s characters."),
    "too_long": N_("The %(label)s may have at most %(max)s characters."),
    "department_unknown": N_("There is no unit with the code %(value)s."),
    "department_retired": N_("The unit %(value)s is retired."),
    "same_department": N_("A post cannot be forwarded to its own unit."),
    "not_posted": N_("This case has no post yet."),
}
# A field chosen from a list, not typed, is asked for with "choose" rather than "fill in":
# (code, field) -> the msgid used instead of MESSAGES[code] (the API's code stays the same).
FIELD_MESSAGES: dict[tuple[str, str], str] = {
    ("required", "to_department"): N_("Choose the %(label)s."),
}
# The fields' labels inside messages (%(label)s): field -> (context, msgid).
LABELS: dict[str, tuple[str, str]] = {
    "note": NC_("board field", "note to the poster"),
    "text": NC_("board field", "answer"),
    "to_department": NC_("board field", "unit to forward to"),
    "unit": NC_("board field", "unit"),
}


def _locale(locale: str | None) -> str:
    return locale if locale in LOCALES else DEFAULT_LOCALE


def status_label(state: BoardPostState | str, locale: str = DEFAULT_LOCALE) -> str:
    """The public status of a thread in ``state``, in ``locale`` (zh_CN when unknown)."""
    return translations(_locale(locale)).pgettext(*STATUS_LABEL[BoardPostState(state)])


def legend(locale: str = DEFAULT_LOCALE) -> list[tuple[str, str]]:
    """(colour, status) for every state a thread can be in, in the order a thread moves: the public
    board's legend explains every badge it may show."""
    return [(COLOUR[state], status_label(state, locale)) for state in BoardPostState]


class BoardError(Exception):
    """An action the board refuses: HTTP ``status``, a message ``code``, the ``field`` at fault if any."""

    def __init__(self, status: int, code: str, field: str | None = None, params: dict | None = None) -> None:
        self.status = status
        self.code = code
        self.field = field
        self.params = params or {}
        super().__init__(code)

    def message(self, locale: str = DEFAULT_LOCALE) -> str:
        """The message in ``locale`` (zh_CN when unknown), from the catalogues."""
        tr = translations(_locale(locale))
        params = dict(self.params)
        if self.field:
            entry = LABELS.get(self.field)
            params.setdefault("label", tr.pgettext(*entry) if entry else self.field)
        template = tr.gettext(FIELD_MESSAGES.get((self.code, self.field or ""), MESSAGES[self.code]))
        try:
            return template % params
        except (KeyError, ValueError, TypeError):  # a catalogue mistake must not hide the error itself
            return template

    def __str__(self) -> str:
        return f"{self.field + ': ' if self.field else ''}{self.message('en')}"


# ------------------------------------------------------------------- reading


def _loaded():
    return (joinedload(BoardPost.department), joinedload(BoardPost.origin_department),
            selectinload(BoardPost.replies).joinedload(BoardReply.department))


def get_post(session: Session, post_id: int) -> BoardPost | None:
    return session.scalar(select(BoardPost).options(*_loaded()).where(BoardPost.id == post_id)
                          .execution_options(populate_existing=True))


def find_post(session: Session, case_number: str) -> BoardPost | None:
    return session.scalar(select(BoardPost).options(*_loaded()).where(BoardPost.case_number == case_number)
                          .execution_options(populate_existing=True))


def list_posts(session: Session, unit_code: str | None = None, *, state: BoardPostState | None = None,
               limit: int = 100, offset: int = 0) -> tuple[list[BoardPost], int]:
    """Threads newest first (of one unit's board if given) and how many match."""
    conditions = []
    if unit_code:
        unit = select(Department.id).where(Department.code == unit_code.strip().upper()).scalar_subquery()
        conditions.append(BoardPost.department_id == unit)
    if state is not None:
        conditions.append(BoardPost.state == state)
    total = session.scalar(select(func.count()).select_from(BoardPost).where(*conditions)) or 0
    posts = session.scalars(select(BoardPost).options(*_loaded()).where(*conditions)
                            .order_by(BoardPost.created_at.desc(), BoardPost.id.desc())
                            .limit(limit).offset(offset)).unique().all()
    return list(posts), int(total)


def unit_board_posts(session: Session, unit_code: str, *, answered_limit: int = 200) -> tuple[list[BoardPost], int]:
    """A unit's board: every thread still owing a step (none may drop off the page, however old),
    then the ``answered_limit`` newest answered ones; and how many threads the board holds."""
    unit = select(Department.id).where(Department.code == unit_code.strip().upper()).scalar_subquery()
    owing = session.scalars(select(BoardPost).options(*_loaded())
                            .where(BoardPost.department_id == unit, BoardPost.state != BoardPostState.ANSWERED)
                            .order_by(BoardPost.created_at.desc(), BoardPost.id.desc())).unique().all()
    answered, total = list_posts(session, unit_code, state=BoardPostState.ANSWERED, limit=answered_limit)
    return [*owing, *answered], total + len(owing)


# Board state -> (the step owed, the case state owing it, the reply whose time started its clock).
_OWED = {BoardPostState.ACCEPTED: ("answer", "accepted", "accepted"),
         BoardPostState.FOLLOW_UP: ("follow_up", "reopened", "follow_up")}


def owed_since(post: BoardPost) -> tuple[str, str, datetime] | None:
    """(step, case state owing it, when its clock started) for a thread, None when answered.

    An open thread owes its acceptance from when it came to this board (posted, or the latest
    forward); an accepted one its answer from the acceptance; a follow-up its answer from the
    follow-up (the same starts as the case's, :mod:`bridge.forum.service`)."""
    def latest(kind: str) -> datetime | None:
        return max((r.created_at for r in post.replies if r.kind == kind), default=None)

    if post.state is BoardPostState.OPEN:
        forwarded = latest("forwarded")
        return ("accept", "forwarded", forwarded) if forwarded else ("accept", "posted", post.created_at)
    owed = _OWED.get(post.state)
    if owed is None:
        return None
    step, state, kind = owed
    since = latest(kind)
    return (step, state, since) if since else None


def post_path(post_id: int) -> str:
    """The public thread's path (prefix it with ``web.public_url``)."""
    return f"/board/threads/{post_id}"


def post_url(public_url: str, post_id: int) -> str:
    return public_url.rstrip("/") + post_path(post_id)


def thread_event(event: BoardEvent) -> ThreadEvent:
    return ThreadEvent(event_id=f"{EVENT_ID_PREFIX}{event.id}", kind=ThreadEventKind(event.kind),
                       case_number=event.case_number, at=event.at, unit_code=event.unit_code,
                       text=event.text, to_unit_code=event.to_unit_code, actor=event.actor, sequence=event.id)


def events_since(session: Session, cursor: str | None, limit: int = 500) -> tuple[list[BoardEvent], str | None]:
    """Events after ``cursor`` (the last event id seen, as text) in order, and the new cursor."""
    after = int(cursor) if cursor and cursor.strip().isdigit() else 0
    events = list(session.scalars(select(BoardEvent).where(BoardEvent.id > after)
                                  .order_by(BoardEvent.id).limit(limit)))
    return events, (str(events[-1].id) if events else cursor)


# ------------------------------------------------------------------- writing


def create_post(session: Session, post: NewPost, now: datetime) -> tuple[BoardPost, bool]:
    """The thread for ``post.case_number``: made now, or the existing one (then ``False``)."""
    existing = find_post(session, post.case_number)
    if existing is not None:
        return existing, False
    department = session.scalar(select(Department).where(Department.code == post.unit_code))
    if department is None:
        raise BoardError(422, "department_unknown", "unit", {"value": post.unit_code})
    row = BoardPost(case_number=post.case_number, department_id=department.id,
                    origin_department_id=department.id, state=BoardPostState.OPEN, author=HOTLINE_AUTHOR,
                    title=post.title, body=post.body, created_at=now, updated_at=now)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:  # the same case posted at the same moment by another worker
        existing = find_post(session, post.case_number)
        if existing is None:
            raise
        return existing, False
    return get_post(session, row.id), True  # type: ignore[return-value]


def _event(session: Session, post: BoardPost, kind: ThreadEventKind, now: datetime, *, unit_code: str,
           actor: str, text: str = "", to_unit_code: str | None = None, reply: BoardReply | None = None
           ) -> BoardEvent:
    event = BoardEvent(post_id=post.id, reply_id=reply.id if reply else None, kind=kind.value,
                       case_number=post.case_number, unit_code=unit_code, to_unit_code=to_unit_code,
                       actor=actor, text=text, at=now)
    session.add(event)
    session.flush()
    return event


def _checked_text(value: str | None, name: str, maximum: int) -> str:
    text = (value or "").strip()
    if not text:
        raise BoardError(422, "required", name)
    if len(text) < TEXT_MIN:
        raise BoardError(422, "too_short", name, {"min": TEXT_MIN})
    if len(text) > maximum:
        raise BoardError(422, "too_long", name, {"max": maximum})
    return text


def _for_spokesperson(session: Session, post_id: int, user: User) -> tuple[BoardPost, Department]:
    """The post, if ``user`` speaks for the unit whose board it is on; else BoardError (403/404)."""
    if user.role is not Role.SPOKESPERSON:
        raise BoardError(403, "not_spokesperson")
    if user.department_id is None:
        raise BoardError(403, "no_unit")
    post = session.scalar(select(BoardPost).options(*_loaded()).where(BoardPost.id == post_id)
                          .with_for_update(of=BoardPost).execution_options(populate_existing=True))
    if post is None:
        raise BoardError(404, "post_unknown", None, {"id": post_id})
    mine = session.get(Department, user.department_id)
    assert mine is not None
    if post.department_id != user.department_id:
        raise BoardError(403, "not_your_unit", None, {"unit": post.department.name, "mine": mine.name})
    return post, mine


def _actor(user: User) -> str:
    return user.display_name or user.username


def accept(session: Session, post_id: int, user: User, now: datetime) -> BoardEvent:
    post, unit = _for_spokesperson(session, post_id, user)
    if post.state is not BoardPostState.OPEN:
        raise BoardError(409, "already_answered" if post.state is BoardPostState.ANSWERED else "already_accepted")
    reply = BoardReply(post_id=post.id, kind="accepted", author=unit.name, department_id=unit.id,
                       user_id=user.id, text="", created_at=now)
    session.add(reply)
    session.flush()
    post.state = BoardPostState.ACCEPTED
    post.updated_at = now
    return _event(session, post, ThreadEventKind.ACCEPTED, now, unit_code=unit.code, actor=_actor(user),
                  reply=reply)


def forward(session: Session, post_id: int, user: User, to_department: str | None, note: str | None,
            now: datetime) -> BoardEvent:
    """Hand the thread to another unit; ``note`` (required) tells the poster which unit handles it."""
    post, unit = _for_spokesperson(session, post_id, user)
    code = (to_department or "").strip().upper()
    if not code:
        raise BoardError(422, "required", "to_department")
    text = _checked_text(note, "note", NOTE_MAX)
    target = session.scalar(select(Department).where(Department.code == code))
    if target is None:
        raise BoardError(422, "department_unknown", "to_department", {"value": code})
    if target.retired_at is not None:
        raise BoardError(422, "department_retired", "to_department", {"value": code})
    if target.id == unit.id:
        raise BoardError(422, "same_department", "to_department")
    if post.state is BoardPostState.ANSWERED:
        raise BoardError(409, "already_answered")
    reply = BoardReply(post_id=post.id, kind="forwarded", author=unit.name, department_id=unit.id,
                       user_id=user.id, text=text, created_at=now)
    session.add(reply)
    session.flush()
    post.department_id = target.id
    post.state = BoardPostState.OPEN
    post.updated_at = now
    return _event(session, post, ThreadEventKind.FORWARDED, now, unit_code=unit.code, actor=_actor(user),
                  text=text, to_unit_code=target.code, reply=reply)


def answer(session: Session, post_id: int, user: User, text: str | None, now: datetime) -> BoardEvent:
    """The unit's answer (to the post, or to the waiting follow-up)."""
    post, unit = _for_spokesperson(session, post_id, user)
    body = _checked_text(text, "text", ANSWER_MAX)
    if post.state is BoardPostState.OPEN:
        raise BoardError(409, "accept_first")
    if post.state is BoardPostState.ANSWERED:
        raise BoardError(409, "already_answered")
    follow_up = post.state is BoardPostState.FOLLOW_UP
    reply = BoardReply(post_id=post.id, kind="follow_up_answer" if follow_up else "answer", author=unit.name,
                       department_id=unit.id, user_id=user.id, text=body, created_at=now)
    session.add(reply)
    session.flush()
    post.state = BoardPostState.ANSWERED
    post.updated_at = now
    kind = ThreadEventKind.FOLLOW_UP_ANSWERED if follow_up else ThreadEventKind.ANSWERED
    return _event(session, post, kind, now, unit_code=unit.code, actor=_actor(user), text=body, reply=reply)


def follow_up(session: Session, case_number: str, text: str, idempotency_key: str, now: datetime,
              author: str = HOTLINE_AUTHOR) -> tuple[BoardReply, BoardEvent | None]:
    """The hotline's follow-up question in a thread; the same key again returns the first reply."""
    existing = session.scalar(select(BoardReply).where(BoardReply.idempotency_key == idempotency_key))
    if existing is not None:
        return existing, None
    post = session.scalar(select(BoardPost).options(*_loaded()).where(BoardPost.case_number == case_number)
                          .with_for_update(of=BoardPost))
    if post is None:
        raise BoardError(404, "not_posted")
    body = _checked_text(text, "text", ANSWER_MAX)
    reply = BoardReply(post_id=post.id, kind="follow_up", author=author, text=body,
                       idempotency_key=idempotency_key, created_at=now)
    session.add(reply)
    session.flush()
    if post.state is not BoardPostState.OPEN:  # an open thread still waits for acceptance first
        post.state = BoardPostState.FOLLOW_UP
    post.updated_at = now
    event = _event(session, post, ThreadEventKind.FOLLOW_UP_ASKED, now, unit_code=post.department.code,
                   actor=author, text=body, reply=reply)
    return reply, event


# ------------------------------------------------------------------- viewing


def post_view(post: BoardPost, *, public_url: str, zone, locale: str = DEFAULT_LOCALE, replies: bool = True) -> dict:
    """A thread as the API and the pages show it (public: no private data is stored on the board)."""
    local = lambda t: t.astimezone(zone) if t else None  # noqa: E731
    view = {
        "id": post.id,
        "case_number": post.case_number,
        "unit": post.department.code,
        "unit_name": post.department.name,
        "origin_unit": post.origin_department.code,
        "state": post.state.value,
        "colour": COLOUR[post.state],
        "status": status_label(post.state, locale),
        "author": post.author,
        "title": post.title,
        "body": post.body,
        "url": post_url(public_url, post.id),
        "created_at": local(post.created_at),
        "updated_at": local(post.updated_at),
    }
    if replies:
        view["replies"] = [{"id": r.id, "kind": r.kind, "author": r.author,
                            "unit": r.department.code if r.department else None, "text": r.text,
                            "created_at": local(r.created_at)} for r in post.replies]
    return view
