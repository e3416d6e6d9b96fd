"""The API's 422 shape, shared by every router: ``{"detail": [{"field", "message", "code"}]}``.

:class:`FieldErrorRoute` (``APIRouter(route_class=FieldErrorRoute)``) turns FastAPI's own
request-validation errors (wrong JSON types, unknown fields, out-of-range query parameters) and
the case rules' :class:`~bridge.cases.validation.CaseValidationError` into that shape, one entry
per problem, in the request's language (``Accept-Language``, else the site's ``[site] locale``).
The messages are the field-error catalogue of :mod:`bridge.cases.messages` (message ids such as
``required``, ``too_long``, ``not_integer``), which every API's fields use.
"""
from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from bridge.cases.validation import CaseValidationError, FieldError
from bridge.i18n import header_locale, translations
from bridge.site.periods import FilterError

# zh_CN or en: the request's Accept-Language, else the site's configured locale.
request_locale = header_locale


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    names = [p for p in parts if isinstance(p, str)]
    return names[-1] if names else "body"


def _translate_pydantic(error: dict[str, Any]) -> FieldError:
    kind = error.get("type", "")
    loc = tuple(error.get("loc", ()))
    field = _field_of(loc)
    ctx = error.get("ctx") or {}
    if kind == "json_invalid":
        return FieldError("body", "invalid_json")
    if kind == "extra_forbidden":
        return FieldError(field, "unknown_field")
    if kind == "missing":
        return FieldError(field, "required")
    if kind in ("string_type", "string_unicode"):
        return FieldError(field, "not_text")
    if kind in ("bool_type", "bool_parsing"):
        return FieldError(field, "not_bool")
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return FieldError(field, "not_integer")
    if kind in ("greater_than_equal", "greater_than"):
        return FieldError(field, "too_small", {"min": ctx.get("ge", ctx.get("gt"))})
    if kind in ("less_than_equal", "less_than"):
        return FieldError(field, "too_large", {"max": ctx.get("le", ctx.get("lt"))})
    if kind == "string_too_long":
        value = error.get("input")
        return FieldError(field, "too_long", {"max": ctx.get("max_length"),
                                              "length": len(value) if isinstance(value, str) else "?"})
    return FieldError(field, "invalid_value")


def filter_error_response(problem: FilterError, locale: str) -> JSONResponse:
    """A report's filter that cannot be used: 422 naming the parameter, in the request's language."""
    message = problem.text(translations(locale).gettext)
    return JSONResponse({"detail": [{"field": problem.param, "message": message, "code": "invalid_filter"}]},
                        status_code=422)


def field_errors_response(errors: list[FieldError], locale: str) -> JSONResponse:
    return JSONResponse({"detail": [e.as_dict(locale) for e in errors]}, status_code=422)


class FieldErrorRoute(APIRoute):
    """A route whose validation errors (FastAPI's and the case rules') answer 422 as
    ``{"detail": [{"field", "message", "code"}]}``, in the request's locale."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                errors = [_translate_pydantic(e) for e in exc.errors()]
                return field_errors_response(errors, request_locale(request))
            except CaseValidationError as exc:
                return field_errors_response(exc.errors, request_locale(request))

        return route_handler


class FieldErrorOut(BaseModel):
    field: str
    message: str
    code: str


class FieldErrors(BaseModel):
    detail: list[FieldErrorOut]


# For a router's ``responses=``: the OpenAPI document shows the 422 shape these routes answer.
FIELD_ERRORS_RESPONSE = {422: {"model": FieldErrors, "description": "one entry per invalid field"}}

__all__ = ["FIELD_ERRORS_RESPONSE", "FieldErrorOut", "FieldErrorRoute", "FieldErrors", "field_errors_response",
           "request_locale"]
