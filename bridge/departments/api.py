"""GET /api/v1/departments: the units a case can be filed to (API-token auth, any role), with their synonyms."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from bridge.db.models import User
from bridge.departments.service import list_units
from bridge.web.auth import api_user
from bridge.web.errors import FIELD_ERRORS_RESPONSE, FieldErrorRoute

router = APIRouter(prefix="/api/v1", tags=["departments"], route_class=FieldErrorRoute,
                   responses=FIELD_ERRORS_RESPONSE)


class DepartmentOut(BaseModel):
    code: str
    name: str
    kind: str
    pinyin_initials: str
    synonyms: list[str]
    retired: bool


@router.get("/departments", response_model=list[DepartmentOut],
            summary="The units, by kind then code; retired ones included unless retired=false")
async def list_departments(
    request: Request,
    _user: Annotated[User, Depends(api_user)],
    retired: Annotated[bool | None, Query(description="true: only retired units; false: only units "
                                                      "in service; absent: all")] = None,
) -> list[DepartmentOut]:
    db = request.app.state.db

    def work() -> list[DepartmentOut]:
        with db.session(readonly=True) as session:
            units = list_units(session, include_retired=retired is not False)
            return [DepartmentOut(code=u.code, name=u.name, kind=u.kind.value, pinyin_initials=u.pinyin_initials,
                                  synonyms=u.synonyms.split(), retired=u.retired_at is not None)
                    for u in units if retired is None or (u.retired_at is not None) == retired]

    return await db.run(work)
