"""The desk's case pages: the list (filters, search, live rows), the case form and a case.

``/desk/cases`` and ``/desk/cases/rows`` (the rows as a fragment); ``/desk/cases/new`` (the form,
optionally ``?call=LINKEDID`` or ``?phone=``) and ``POST /desk/cases`` (filing; every problem
shown beside its field); ``/desk/cases/{number}``.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select

from bridge.cases import service as cases
from bridge.cases.caller_names import caller_name
from bridge.cases.messages import translate
from bridge.cases.timeline import timeline_view, unit_codes, unit_names
from bridge.cases.validation import (
    BEST_TIME_CODES,
    DESCRIPTION_MIN,
    FIELDS,
    NOT_BEFORE_MAX_DAYS,
    CaseValidationError,
    display_phone,
    normalise_phone,
)
from bridge.config import Config
from bridge.db.models import Call, CaseEvent, CaseState, User
from bridge.desk import queries
from bridge.desk.access import current_user
from bridge.desk.queries import DeskUser
from bridge.desk.rendering import CHANNEL_LABELS, STATE_LABELS, render
from bridge.desk.rendering import now as _now
from bridge.desk.unit_choice import SEARCH_MAX, merged, unit_choice_errors
from bridge.forum.deadline_labels import CLOCK_STARTS, case_steps, deadline_view, stored_step
from bridge.forum.service import site_deadlines
from bridge.i18n import request_locale, translations
from bridge.live import LiveEvent
from bridge.site.clock import SiteClock
from bridge.web.csrf import check_csrf
from bridge.web.paging import clamp_page

router = APIRouter(prefix="/desk", include_in_schema=False)


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
            _add_deadlines(session, [(c.id, row) for c, row in zip(found, rows)], now, policy=policy, zone=zone, tr=tr)
            return {"rows": rows, "total": total, "units": queries.units(session)}

    policy, tr = site_deadlines(request.app), translations(request_locale(request))
    result = await db.run(work)
    result.update(filters=shown, page_number=page, query=urlencode({k: v for k, v in shown.items() if v}))
    return result


def _add_deadlines(session, listed: list[tuple[int, dict[str, Any]]], now, *, policy, zone, tr) -> None:
    """Each listed case's step owed, counted in its own measure as on the case page (office time
    for an acceptance posted in office hours): ``deadline`` (None: nothing owed)."""
    owing = {case_id: row for case_id, row in listed
             if row["deadline_at"] is not None and row["state"] in CLOCK_STARTS}
    starts = {(case_id, kind): at for case_id, kind, at in session.execute(
        select(CaseEvent.case_id, CaseEvent.kind, func.max(CaseEvent.at))
        .where(CaseEvent.case_id.in_(list(owing)), CaseEvent.kind.in_(set(CLOCK_STARTS.values())))
        .group_by(CaseEvent.case_id, CaseEvent.kind))} if owing else {}
    for case_id, row in listed:
        row["deadline"] = None
        kind = CLOCK_STARTS.get(row["state"], "")
        if case_id not in owing:
            continue
        since = starts.get((case_id, kind))
        if since is None:  # no entry started it (a case from before): the stored deadline, in clock time
            step = stored_step(row["state"], row["department"], row["deadline_at"])
        else:
            steps = case_steps([{"kind": kind, "at": since, "detail": {"unit": row["department"]}}], state=row["state"],
                               unit_code=row["department"], deadline_at=row["deadline_at"], policy=policy)
            step = steps[-1] if steps else None
        if step is not None:
            row["deadline"] = deadline_view(step, now, policy=policy, zone=zone, tr=tr)


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
    values.update(channel="phone", callback_wanted=True, sms_consent=False, voice_callback=False, best_time="any",
                  unit_search="")
    return values


# The fields the page checks itself before sending (the rules check them all again).
CLIENT_REQUIRED = ("caller_surname", "caller_honorific", "caller_phone", "title", "description")


def _form_messages(locale: str) -> dict[str, Any]:
    """The page's own messages for what the browser would otherwise say in its tooltips, in the
    page's locale; ``{query}``, ``{name}`` and ``{length}`` are filled in by desk.js."""
    return {
        "not_filed": translations(locale).gettext("The case is not filed yet: correct the fields marked below."),
        "required": {name: translate("required", locale, field=name) for name in CLIENT_REQUIRED},
        "too_short": {"description": translate("too_short", locale, field="description", min=DESCRIPTION_MIN,
                                               length="{length}")},
        "min_length": {"description": DESCRIPTION_MIN},
        "unit": {"not_chosen": translate("department_not_chosen", locale),
                 "only_typed": translate("department_only_typed", locale, query="{query}"),
                 "not_shown": translate("department_not_shown", locale, query="{query}", name="{name}")},
    }


def _not_before_bounds(config: Config) -> dict[str, str]:
    """The days the form's "not before" date may take (the rules check them again)."""
    today = SiteClock.of(config, source=_now).today()
    return {"first": today.isoformat(), "last": (today + timedelta(days=NOT_BEFORE_MAX_DAYS)).isoformat()}


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
                  channels=list(CHANNEL_LABELS), best_times=BEST_TIME_CODES,
                  not_before=_not_before_bounds(request.app.state.config),
                  form_messages=_form_messages(request_locale(request)), **data)


def _name_prefill(caller_id_name: str | None) -> dict[str, str]:
    """The form's name fields from the call's caller ID (nothing when it is no person's name)."""
    name = caller_name(caller_id_name)
    if name is None:
        return {}
    found = {"caller_full_name": name.full_name, "caller_surname": name.surname, "caller_honorific": name.honorific}
    return {field: value for field, value in found.items() if value}


@router.get("/cases/new")
async def case_form(request: Request, call: str | None = None, phone: str | None = None,
                    user: DeskUser = Depends(current_user)) -> Response:
    values = _form_defaults()
    if call:
        values["call_linkedid"] = call.strip()[:64]
        db = request.app.state.db
        found = await db.run(db.in_session, queries.call_by_linkedid, values["call_linkedid"], readonly=True)
        number = (found or {}).get("caller_number") or phone or ""
        values.update(_name_prefill((found or {}).get("caller_name")))
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
    data["voice_callback"] = "true" if form.get("voice_callback") else "false"
    if data["call_linkedid"]:
        data["channel"] = "phone"
    unit_search = form.get("unit_search")
    unit_search = unit_search.strip()[:SEARCH_MAX] if isinstance(unit_search, str) else ""
    db = request.app.state.db
    config: Config = request.app.state.config
    zone = config.site.zone
    locale = request_locale(request)

    def work() -> str:
        with db.session() as session:
            account = session.get(User, user.id)
            choice = unit_choice_errors(session, data["department"], unit_search)
            now = _now()
            if choice:  # every other problem is told too, and nothing is written
                try:
                    cases.check_case(session, data, today=now.astimezone(zone).date(), user=account, now=now)
                except CaseValidationError as problem:
                    raise CaseValidationError(merged(choice, problem.errors)) from None
                raise CaseValidationError(choice)
            case = cases.file_case(session, data, user=account, now=now, zone=zone)
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
        values["voice_callback"] = data["voice_callback"] == "true"
        values["best_time"] = data["best_time"] or "any"  # none clicked: the rules took "any"
        values["unit_search"] = unit_search
        return await _form_page(request, user, values, errors, status_code=422, restore=False,
                                privacy=privacy)
    request.app.state.live.publish(LiveEvent("case", "filed", {"number": number, "state": "queued"}))
    draft_key = f"hotline-desk:draft:{data['call_linkedid'] or 'new'}"
    return RedirectResponse(f"/desk/cases/{quote(number)}?filed=1&draft={quote(draft_key)}", status_code=303)


@router.get("/cases/{number}")
async def case_page(request: Request, number: str, user: DeskUser = Depends(current_user)) -> Response:
    db = request.app.state.db
    zone = request.app.state.config.site.zone
    tr = translations(request_locale(request))

    policy = site_deadlines(request.app)
    now = _now()

    def work() -> dict | None:
        with db.session(readonly=True) as session:
            case = cases.get_case(session, number)
            if case is None:
                return None
            view = cases.case_view(case, zone, now)
            steps = case_steps(view["timeline"], state=view["state"], unit_code=view["department"],
                               deadline_at=case.deadline_at, policy=policy)
            names = unit_names(session, unit_codes(view["timeline"]) | {s.unit_code for s in steps})
            view["timeline"] = timeline_view(view["timeline"], names, tr)
            view["deadlines"] = [deadline_view(s, now, policy=policy, zone=zone, tr=tr, names=names) for s in steps]
            return view

    view = await db.run(work)
    if view is None:
        return render(request, "error.html", status_code=404, user=user, signed_in=True,
                      message=tr.gettext("There is no case %(number)s.") % {"number": number})
    fragment = request.headers.get("hx-request") == "true"
    return render(request, "_case_detail.html" if fragment else "case.html", user=user, case=view, page="cases",
                  filed=request.query_params.get("filed") == "1", draft=request.query_params.get("draft", ""))

