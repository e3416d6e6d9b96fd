"""The operator desk's pages (server-rendered HTML, htmx, server-sent events).

``mount_desk(app, config)`` (re-exported by :mod:`bridge.desk`) adds the session
middleware, the static files, the error handlers and these routes to the
FastAPI app made by :func:`bridge.web.app.create_app`.

Pages (all under ``/desk``): ``login`` / ``logout``; ``/desk/`` the desk (live
call pop, the shared "to call back / to file" list; ``calls/{linkedid}/take``, ``/done``
and ``/release`` act on its rows); ``cases`` (list, filters,
search, live rows); ``cases/new`` (the case form, optionally ``?call=LINKEDID``);
``cases/{number}``; ``recordings/{linkedid}``; ``events`` (SSE, see
:mod:`bridge.desk.sse`); ``admin/users`` and ``admin/units`` for admins.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from starlette.middleware.sessions import SessionMiddleware

from bridge.accounts.service import EXTENSION_PATTERN, sign_in
from bridge.cases import service as cases
from bridge.cases.messages import translate
from bridge.cases.validation import FIELDS, CaseValidationError, display_phone, normalise_phone
from bridge.config import Config
from bridge.db.models import Call, CaseState, Role, User
from bridge.desk import queries
from bridge.desk.queries import DESK_ROLES, DeskUser
from bridge.desk.security import (
    CSRF_FIELD,
    SESSION_COOKIE,
    SESSION_MAX_AGE_S,
    CsrfRefused,
    SignInThrottle,
    check_csrf,
    client_ip,
    csrf_token,
    end_session,
)
from bridge.i18n import HTML_LANG, N_, request_locale, translations
from bridge.live import LiveEvent
from bridge.web.paging import clamp_page

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


STATE_LABELS = {
    "queued": N_("Queued"), "posted": N_("Posted"), "accepted": N_("Accepted"),
    "forwarded": N_("Forwarded"), "answered": N_("Answered"), "reopened": N_("Reopened"),
    "closed": N_("Closed"),
}
STATE_COLOUR = {"queued": "blue", "posted": "blue", "accepted": "green", "forwarded": "green",
                "reopened": "green", "answered": "answered", "closed": "closed"}
DISPOSITION_LABELS = {
    "in_progress": N_("In progress"), "answered": N_("Answered call"), "abandoned": N_("Hung up unanswered"),
    "after_hours_message": N_("After-hours message"), "status_line": N_("Status line"), "failed": N_("Failed"),
}
CHANNEL_LABELS = {"phone": N_("Phone"), "walk_in": N_("Walk-in"), "message": N_("Message"), "email": N_("Email")}
ROLE_LABELS = {"operator": N_("Operator"), "supervisor": N_("Supervisor"), "admin": N_("Administrator"),
               "spokesperson": N_("Spokesperson")}
# Who sees the calls done without a case (with their notes) under the shared list.
SUPERVISING_ROLES = (Role.SUPERVISOR, Role.ADMIN)


# ------------------------------------------------------------------ exceptions


class SignInRequired(Exception):
    pass


class RoleRefused(Exception):
    pass


# ------------------------------------------------------------------- rendering


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                      extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    env.filters["phone"] = lambda v: display_phone(v) if v else ""
    return env


ENV = _env()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _duration(seconds: float | None, _) -> str:
    if seconds is None:
        return ""
    seconds = int(abs(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if hours >= 24:
        return _("%(days)d d %(hours)d h") % {"days": hours // 24, "hours": hours % 24}
    if hours:
        return _("%(hours)d h %(minutes)d min") % {"hours": hours, "minutes": minutes}
    return _("%(minutes)d min") % {"minutes": minutes}


def context(request: Request, **values: Any) -> dict[str, Any]:
    config: Config = request.app.state.config
    locale = request_locale(request)
    tr = translations(locale)
    zone = config.site.zone
    _ = tr.gettext

    def localtime(value: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(zone).strftime(fmt)

    def lang_url(lang: str) -> str:
        params = dict(request.query_params)
        params["lang"] = lang
        return f"{request.url.path}?{urlencode(params)}"

    base = {
        "request": request, "_": _, "gettext": _, "ngettext": tr.ngettext, "locale": locale,
        "html_lang": HTML_LANG.get(locale, "zh-CN"), "csrf": csrf_token(request), "csrf_field": CSRF_FIELD,
        "site_name": config.site.name, "localtime": localtime, "lang_url": lang_url,
        "state_label": lambda s: _(STATE_LABELS.get(s, s)), "state_colour": lambda s: STATE_COLOUR.get(s, ""),
        "disposition_label": lambda d: _(DISPOSITION_LABELS.get(d, d)),
        "channel_label": lambda c: _(CHANNEL_LABELS.get(c, c)),
        "role_label": lambda r: _(ROLE_LABELS.get(r, r)),
        "duration": lambda s: _duration(s, _), "user": None, "now": _now(),
    }
    base.update(values)
    return base


def render(request: Request, name: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    html = ENV.get_template(name).render(context(request, **values))
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


# ------------------------------------------------------------------------ users


async def current_user(request: Request) -> DeskUser:
    """The signed-in desk user (operator, supervisor or admin), read again from the database."""
    user_id = request.session.get("uid")
    if not user_id:
        raise SignInRequired()
    db = request.app.state.db
    user: User | None = await db.run(db.in_session, queries.load_user, user_id, readonly=True)
    if user is None:
        request.session.clear()
        raise SignInRequired()
    if user.role not in DESK_ROLES:
        raise RoleRefused()
    return DeskUser(id=user.id, username=user.username, display_name=user.display_name or user.username,
                    role=user.role, extension=request.session.get("ext") or None)


async def admin_user(user: DeskUser = Depends(current_user)) -> DeskUser:
    if user.role is not Role.ADMIN:
        raise RoleRefused()
    return user


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/desk") and not value.startswith("//") and "\\" not in value:
        return value
    return "/desk/"


router = APIRouter(prefix="/desk", include_in_schema=False)


# ---------------------------------------------------------------------- sign-in


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", next=_safe_next(next), username="", extension="", error=None)


def _lockout_message(_, until: float, now: float, zone) -> str:
    """When to retry, in the site's zone (``until`` and ``now`` are the throttle's clock, epoch seconds)."""
    local = datetime.fromtimestamp(until, timezone.utc).astimezone(zone)
    seconds = max(1, int(round(until - now)))
    return _("Too many failed sign-ins. Try again at %(time)s (in %(seconds)d seconds).") % {
        "time": local.strftime("%H:%M:%S"), "seconds": seconds}


@router.post("/login", dependencies=[Depends(check_csrf)])
async def login(request: Request) -> Response:
    form = await request.form()
    username = str(form.get("username") or "").strip().lower()
    password = str(form.get("password") or "")
    extension = str(form.get("extension") or "").strip()
    next_url = _safe_next(str(form.get("next") or ""))
    throttle: SignInThrottle = request.app.state.desk_throttle
    zone = request.app.state.config.site.zone
    _ = translations(request_locale(request)).gettext
    keys = throttle.keys(username, client_ip(request))

    def again(message: str, status: int) -> Response:
        return render(request, "login.html", status_code=status, next=next_url, username=username,
                      extension=extension, error=message)

    locked = throttle.locked_until(keys)
    if locked is not None:
        return again(_lockout_message(_, locked, throttle.clock(), zone), 429)
    if extension and not EXTENSION_PATTERN.match(extension):
        return again(_("The extension must be 2 to 8 digits."), 422)
    if not username or not password:
        return again(_("Enter your username and password."), 422)

    db = request.app.state.db
    user = await db.run(sign_in, db, username, password)
    if user is None:
        locked = throttle.failure(keys)
        if locked is not None:
            return again(_lockout_message(_, locked, throttle.clock(), zone), 429)
        return again(_("Wrong username or password."), 401)
    throttle.success(username)
    if user.role not in DESK_ROLES:
        return again(_("This account (%(role)s) may not use the operator desk.")
                     % {"role": _(ROLE_LABELS[user.role.value])}, 403)
    lang = request.session.get("lang")
    request.session.clear()  # a fresh session (and CSRF token) for the signed-in user
    request.session.update({"uid": user.id, "ext": extension or user.extension or "", "at": int(_now().timestamp())})
    if lang:
        request.session["lang"] = lang
    return RedirectResponse(next_url, status_code=303)


@router.post("/logout", dependencies=[Depends(check_csrf)])
async def logout(request: Request) -> Response:
    end_session(request)
    return RedirectResponse("/desk/login?bye=1", status_code=303)


# ------------------------------------------------------------------------ desk


def _lists(session, user: DeskUser, now: datetime) -> dict[str, Any]:
    """The shared list (``callbacks``) and, for supervisors, the calls done from it (``done``)."""
    return {"callbacks": queries.callback_list(session, now),
            "done": queries.done_list(session, now) if user.role in SUPERVISING_ROLES else None,
            "done_days": queries.CALLBACK_LIST_DAYS}


@router.get("/")
async def desk(request: Request, user: DeskUser = Depends(current_user)) -> Response:
    db = request.app.state.db

    def work() -> tuple[dict[str, Any], list[dict]]:
        with db.session(readonly=True) as session:
            now = _now()
            return _lists(session, user, now), queries.open_calls_at(session, user.extension, now)

    lists, open_calls = await db.run(work)
    return render(request, "desk.html", user=user, open_calls=open_calls, page="desk", **lists)


@router.get("/callbacks")
async def callbacks_fragment(request: Request, user: DeskUser = Depends(current_user)) -> Response:
    db = request.app.state.db
    lists = await db.run(db.in_session, _lists, user, _now(), readonly=True)
    return render(request, "_callbacks.html", user=user, **lists)


# The shared list's "take" / "done" / "release": each answers an htmx request with the list again
# (and a message), a plain form post with a redirect to the desk or an error page.


async def _callbacks_answer(request: Request, user: DeskUser, linkedid: str, kind: str | None,
                            message: str | None = None, status_code: int = 200) -> Response:
    if kind is not None:
        request.app.state.live.publish(LiveEvent("callbacks", "changed", {
            "linkedid": linkedid, "kind": kind, "by": user.display_name}))
    if request.headers.get("hx-request") == "true":
        db = request.app.state.db
        lists = await db.run(db.in_session, _lists, user, _now(), readonly=True)
        # htmx swaps 2xx answers only; the refusal is told in the list's message
        return render(request, "_callbacks.html", user=user, message=message, message_linkedid=linkedid, **lists)
    if message is None:
        return RedirectResponse("/desk/", status_code=303)
    return render(request, "error.html", status_code=status_code, user=user, message=message)


@router.post("/calls/{linkedid}/take", dependencies=[Depends(check_csrf)])
async def take_call(request: Request, linkedid: str, user: DeskUser = Depends(current_user)) -> Response:
    db = request.app.state.db
    _ = translations(request_locale(request)).gettext

    def work() -> tuple[str, str | None]:
        with db.session() as session:
            return queries.take_call(session, linkedid, user.id, _now())

    outcome, name = await db.run(work)
    if outcome == "taken":
        return await _callbacks_answer(request, user, linkedid, "taken")
    if outcome == "mine":
        return await _callbacks_answer(request, user, linkedid, None)
    if outcome == "taken_by_other":
        return await _callbacks_answer(request, user, linkedid, None, _("%(name)s took this call first.")
                                       % {"name": name}, 409)
    return await _callbacks_answer(request, user, linkedid, None,
                                   _("This call is no longer on the list."), 404)


@router.post("/calls/{linkedid}/done", dependencies=[Depends(check_csrf)])
async def done_call(request: Request, linkedid: str, user: DeskUser = Depends(current_user)) -> Response:
    form = await request.form()
    note = form.get("note")
    note = note if isinstance(note, str) else ""
    db = request.app.state.db
    _ = translations(request_locale(request)).gettext

    def work() -> tuple[str, str | None]:
        with db.session() as session:
            return queries.done_call(session, linkedid, user.id, note, _now())

    outcome, name = await db.run(work)
    if outcome == "done":
        return await _callbacks_answer(request, user, linkedid, "done")
    if outcome == "note_missing":
        return await _callbacks_answer(request, user, linkedid, None,
                                       _("Say how the call was handled: the note is required."), 422)
    if outcome == "not_yours":
        message = (_("%(name)s took this call: only they can mark it done.") % {"name": name} if name
                   else _("Take the call first."))
        return await _callbacks_answer(request, user, linkedid, None, message, 409)
    return await _callbacks_answer(request, user, linkedid, None,
                                   _("This call is no longer on the list."), 404)


@router.post("/calls/{linkedid}/release", dependencies=[Depends(check_csrf)])
async def release_call(request: Request, linkedid: str, user: DeskUser = Depends(current_user)) -> Response:
    _ = translations(request_locale(request)).gettext
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        return await _callbacks_answer(request, user, linkedid, None,
                                       _("Only a supervisor can put a taken call back on the list."), 403)
    db = request.app.state.db

    def work() -> str:
        with db.session() as session:
            return queries.release_call(session, linkedid, _now())

    if await db.run(work) == "released":
        return await _callbacks_answer(request, user, linkedid, "released")
    return await _callbacks_answer(request, user, linkedid, None,
                                   _("This call is not taken or no longer on the list."), 404)


def _recordings_dir(config: Config) -> Path | None:
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


@router.get("/recordings/{linkedid}")
async def recording(request: Request, linkedid: str, kind: str = "message",
                    user: DeskUser = Depends(current_user)) -> Response:
    db = request.app.state.db
    call = await db.run(db.in_session, queries.call_by_linkedid, linkedid, readonly=True)
    folder = _recordings_dir(request.app.state.config)
    if call is None or folder is None:
        return Response(status_code=404)
    names = [call["message_file"], call["recording"]] if kind == "message" else [call["recording"]]
    for name in names:
        path = recording_path(folder, name) if name else None
        if path is not None:
            media = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".gsm": "audio/x-gsm",
                     ".ogg": "audio/ogg"}.get(path.suffix.lower(), "application/octet-stream")
            return FileResponse(path, media_type=media, headers={"Cache-Control": "private, no-store"})
    return Response(status_code=404)


# ---------------------------------------------------------------------- cases


def _filters(params) -> tuple[cases.CaseFilter, dict[str, str]]:
    def flag(name: str) -> bool:
        return params.get(name, "") in ("1", "on", "true")

    state = params.get("state") or ""
    try:
        state_value = CaseState(state) if state else None
    except ValueError:
        state_value, state = None, ""
    department = (params.get("department") or "").strip().upper()[:32]
    q = (params.get("q") or "").strip()[:64]
    filters = cases.CaseFilter(mine=flag("mine"), state=state_value, department=department or None, q=q or None,
                               overdue=flag("overdue"), today=flag("today"))
    shown = {"mine": flag("mine"), "today": flag("today"), "overdue": flag("overdue"), "state": state,
             "department": department, "q": q}
    return filters, shown


async def _case_rows(request: Request, user: DeskUser) -> dict[str, Any]:
    filters, shown = _filters(request.query_params)
    try:
        page = clamp_page(int(request.query_params.get("page", "1")))
    except ValueError:
        page = 1
    db = request.app.state.db
    zone = request.app.state.config.site.zone
    now = _now()

    def work() -> dict[str, Any]:
        with db.session(readonly=True) as session:
            account = session.get(User, user.id)
            found, total = cases.list_cases(session, filters, user=account, now=now, zone=zone, page=page,
                                            per_page=50)
            rows = [cases.case_view(c, zone, now, timeline=False) for c in found]
            return {"rows": rows, "total": total, "units": queries.units(session)}

    result = await db.run(work)
    for row in result["rows"]:
        deadline = row["deadline_at"]
        row["time_left_s"] = (deadline - now).total_seconds() if deadline is not None else None
    result.update(filters=shown, page_number=page, query=urlencode({k: v for k, v in shown.items() if v}))
    return result


@router.get("/cases")
async def case_list(request: Request, user: DeskUser = Depends(current_user)) -> Response:
    data = await _case_rows(request, user)
    return render(request, "cases.html", user=user, page="cases", states=list(STATE_LABELS), **data)


@router.get("/cases/rows")
async def case_rows(request: Request, user: DeskUser = Depends(current_user)) -> Response:
    data = await _case_rows(request, user)
    return render(request, "_case_rows.html", user=user, **data)


def _form_defaults() -> dict[str, Any]:
    values: dict[str, Any] = {name: "" for name in FIELDS}
    values.update(channel="phone", callback_wanted=True, sms_consent=False)
    return values


async def _form_page(request: Request, user: DeskUser, values: dict[str, Any], errors: dict[str, str],
                     status_code: int = 200, restore: bool = True, privacy: bool = False) -> Response:
    db = request.app.state.db
    linkedid = values.get("call_linkedid") or ""

    def work() -> dict[str, Any]:
        with db.session(readonly=True) as session:
            call = queries.call_by_linkedid(session, linkedid) if linkedid else None
            number = values.get("caller_phone") or (call or {}).get("caller_number") or ""
            history = queries.caller_history(session, number, exclude_linkedid=linkedid or None)
            holder = None
            if call is not None and "call_linkedid" not in errors:  # said before anything is typed
                row = session.scalar(select(Call).where(Call.linkedid == linkedid))
                found = cases.taken_by_someone_else(session, row, session.get(User, user.id), _now())
                holder = (found.display_name or found.username) if found is not None else None
            return {"call": call, "history": history, "units": queries.units(session), "holder": holder}

    data = await db.run(work)
    holder = data.pop("holder")
    if holder is not None:
        data["call_taken"] = translate("call_taken", request_locale(request), name=holder)
    draft_key = f"hotline-desk:draft:{linkedid or 'new'}"
    return render(request, "case_form.html", status_code=status_code, user=user, page="new", values=values,
                  errors=errors, draft_key=draft_key, restore=restore, privacy=privacy,
                  channels=list(CHANNEL_LABELS), **data)


@router.get("/cases/new")
async def case_form(request: Request, call: str | None = None, phone: str | None = None,
                    user: DeskUser = Depends(current_user)) -> Response:
    values = _form_defaults()
    if call:
        values["call_linkedid"] = call.strip()[:64]
        db = request.app.state.db
        found = await db.run(db.in_session, queries.call_by_linkedid, values["call_linkedid"], readonly=True)
        number = (found or {}).get("caller_number") or phone or ""
    else:
        number = phone or ""
    if number:
        e164 = normalise_phone(number)
        values["caller_phone"] = display_phone(e164) if e164 else number
    return await _form_page(request, user, values, {})


@router.post("/cases", dependencies=[Depends(check_csrf)])
async def file_case(request: Request, user: DeskUser = Depends(current_user)) -> Response:
    form = await request.form()
    data: dict[str, Any] = {}
    for name in FIELDS:
        value = form.get(name)
        data[name] = value.strip() if isinstance(value, str) else ""
    data["callback_wanted"] = "true" if form.get("callback_wanted") else "false"
    data["sms_consent"] = "true" if form.get("sms_consent") else "false"
    if data["call_linkedid"]:
        data["channel"] = "phone"
    db = request.app.state.db
    config: Config = request.app.state.config
    zone = config.site.zone
    locale = request_locale(request)

    def work() -> str:
        with db.session() as session:
            account = session.get(User, user.id)
            case = cases.file_case(session, data, user=account, now=_now(), zone=zone)
            return case.number

    try:
        number = await db.run(work)
    except CaseValidationError as problem:
        errors: dict[str, str] = {}
        for error in problem.errors:  # every message of a field, beside it
            message = error.message(locale)
            errors[error.field] = f"{errors[error.field]} {message}" if error.field in errors else message
        privacy = any(e.message_id == "privacy_found" for e in problem.errors)
        values = dict(data)
        values["callback_wanted"] = data["callback_wanted"] == "true"
        values["sms_consent"] = data["sms_consent"] == "true"
        return await _form_page(request, user, values, errors, status_code=422, restore=False,
                                privacy=privacy)
    request.app.state.live.publish(LiveEvent("case", "filed", {"number": number, "state": "queued"}))
    draft_key = f"hotline-desk:draft:{data['call_linkedid'] or 'new'}"
    return RedirectResponse(f"/desk/cases/{quote(number)}?filed=1&draft={quote(draft_key)}", status_code=303)


@router.get("/cases/{number}")
async def case_page(request: Request, number: str, user: DeskUser = Depends(current_user)) -> Response:
    db = request.app.state.db
    zone = request.app.state.config.site.zone

    def work() -> dict | None:
        with db.session(readonly=True) as session:
            case = cases.get_case(session, number)
            return None if case is None else cases.case_view(case, zone, _now())

    view = await db.run(work)
    if view is None:
        return render(request, "error.html", status_code=404, user=user,
                      message=translations(request_locale(request)).gettext("There is no case %(number)s.")
                      % {"number": number})
    fragment = request.headers.get("hx-request") == "true"
    return render(request, "_case_detail.html" if fragment else "case.html", user=user, case=view, page="cases",
                  filed=request.query_params.get("filed") == "1", draft=request.query_params.get("draft", ""))


# ---------------------------------------------------------------------- admin


def _user_rows(session) -> list[dict]:
    from bridge.accounts.service import list_users

    return [{"username": u.username, "display_name": u.display_name, "role": u.role.value,
             "extension": u.extension or "", "department": u.department.name if u.department else "",
             "disabled_at": u.disabled_at} for u in list_users(session)]


async def _users_page(request: Request, user: DeskUser, message: str | None = None,
                      status_code: int = 200) -> Response:
    db = request.app.state.db
    users = await db.run(db.in_session, _user_rows, readonly=True)
    return render(request, "admin_users.html", status_code=status_code, user=user, page="admin", users=users,
                  roles=[r.value for r in Role], message=message)


@router.get("/admin/users")
async def admin_users(request: Request, user: DeskUser = Depends(admin_user)) -> Response:
    return await _users_page(request, user)


@router.post("/admin/users", dependencies=[Depends(check_csrf)])
async def admin_users_change(request: Request, user: DeskUser = Depends(admin_user)) -> Response:
    from bridge.accounts.service import AccountError, add_user, disable_user

    form = await request.form()
    action = form.get("action")
    db = request.app.state.db
    _ = translations(request_locale(request)).gettext

    def work() -> str:
        with db.session() as session:
            name = str(form.get("username") or "").strip()
            if action == "disable":
                disable_user(session, name)
                return _("User %(name)s is disabled.") % {"name": name}
            add_user(session, name, str(form.get("role") or ""), str(form.get("password") or ""),
                     extension=str(form.get("extension") or "").strip() or None,
                     department_code=str(form.get("department") or "").strip().upper() or None,
                     display_name=str(form.get("display_name") or "").strip())
            return _("User %(name)s is added.") % {"name": name}

    try:
        return await _users_page(request, user, await db.run(work))
    except AccountError as problem:
        return await _users_page(request, user, f"{problem.field}: {problem.message}", status_code=422)


@router.get("/admin/units")
async def admin_units(request: Request, user: DeskUser = Depends(admin_user)) -> Response:
    from bridge.departments.service import list_units

    db = request.app.state.db

    def work() -> list[dict]:
        with db.session(readonly=True) as session:
            return [{"code": d.code, "name": d.name, "kind": d.kind.value, "initials": d.pinyin_initials,
                     "keywords": d.keywords, "retired_at": d.retired_at}
                    for d in list_units(session, include_retired=True)]

    return render(request, "admin_units.html", user=user, page="admin", units=await db.run(work))


# ---------------------------------------------------------------------- mount


def mount_desk(app: FastAPI, config: Config, *, throttle: SignInThrottle | None = None) -> None:
    """Add the desk to ``app``: sessions, static files, error pages, the pages and the SSE stream.

    Call it from :func:`bridge.web.app.create_app` after the API routers, before the app starts.
    """
    from bridge.desk.sse import router as sse_router

    app.state.desk_throttle = throttle or SignInThrottle()
    app.add_middleware(SessionMiddleware, secret_key=config.secret(config.web.session_secret_env),
                       session_cookie=SESSION_COOKIE, max_age=SESSION_MAX_AGE_S, path="/desk",
                       same_site="lax", https_only=config.web.secure_cookies)
    app.mount("/desk/static", StaticFiles(directory=str(STATIC)), name="desk-static")
    app.include_router(sse_router)
    app.include_router(router)

    @app.get("/desk", include_in_schema=False)
    async def desk_root() -> Response:
        return RedirectResponse("/desk/", status_code=307)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _exc: SignInRequired) -> Response:
        if request.headers.get("hx-request") == "true" or "text/event-stream" in request.headers.get("accept", ""):
            return Response(status_code=401, headers={"HX-Redirect": "/desk/login"})
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/desk/login?next={quote(target)}", status_code=303)

    @app.exception_handler(RoleRefused)
    async def _role(request: Request, _exc: RoleRefused) -> Response:
        _ = translations(request_locale(request)).gettext
        return render(request, "error.html", status_code=403,
                      message=_("Your account may not use this page."))

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, _exc: CsrfRefused) -> Response:
        _ = translations(request_locale(request)).gettext
        return render(request, "error.html", status_code=403,
                      message=_("This form has expired or did not come from this site. Reload the page and try again."))
