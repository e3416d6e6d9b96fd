"""The admins' pages: ``/desk/admin/users`` (list, add, disable) and ``/desk/admin/units``."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from bridge.db.models import Role
from bridge.desk.access import admin_user
from bridge.desk.queries import DeskUser
from bridge.desk.rendering import render
from bridge.i18n import N_, request_locale, translations
from bridge.web.csrf import check_csrf

router = APIRouter(prefix="/desk", include_in_schema=False)

# The form's labels of the fields an account error names (bridge.accounts.service.AccountError.field).
FIELD_LABELS = {"username": N_("Username"), "display_name": N_("Name"), "role": N_("Role"),
                "extension": N_("Extension"), "department": N_("Unit code (spokespeople only)"),
                "password": N_("Password")}


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
        field = _(FIELD_LABELS.get(problem.field, problem.field))
        return await _users_page(request, user, _("Check the field “%(field)s”: %(problem)s") % {
            "field": field, "problem": problem.translated(_)}, status_code=422)


@router.get("/admin/units")
async def admin_units(request: Request, user: DeskUser = Depends(admin_user)) -> Response:
    from bridge.departments.service import list_units

    db = request.app.state.db

    def work() -> list[dict]:
        with db.session(readonly=True) as session:
            return [{"code": d.code, "name": d.name, "kind": d.kind.value, "initials": d.pinyin_initials,
                     "keywords": d.keywords, "synonyms": d.synonyms, "retired_at": d.retired_at}
                    for d in list_units(session, include_retired=True)]

    return render(request, "admin_units.html", user=user, page="admin", units=await db.run(work))

