"""A fake Twilio for the callbacks' tests, held to Twilio's published API description.

Two parts, as ``tests/forum/discourse_server.py`` for Discourse:

1. ``Contract``: requests and responses checked against ``tests/contracts/twilio_api_v2010.json``
   (OpenAPI 3.0.1: ``$ref``s into ``components/schemas`` resolved, ``nullable`` read as JSON
   Schema's ``null`` type):

   * the path must match a documented path template and the method a documented operation,
     and the path parameters their schemas (an AccountSid is AC + 32 hex digits);
   * the operation's security (HTTP basic) needs an ``Authorization: Basic`` header;
   * the body must be ``application/x-www-form-urlencoded``, every parameter a documented one
     of its documented type (repeated for arrays, ``true``/``false`` for booleans, an enum's
     values), the required ones present, and one of each ``x-twilio.conditional`` group
     (``From`` or ``MessagingServiceSid``; ``Body``, ``MediaUrl`` or ``ContentSid``; ``Url``,
     ``Twiml`` or ``ApplicationSid``);
   * a response with a documented status must match that status's JSON schema.  The description
     documents no error responses, so an undocumented status is accepted only for the errors
     Twilio answers (400, 401, 403, 404, 429, 5xx) and only with Twilio's error body
     ``{"code", "message", "more_info", "status"}``.

2. ``FakeTwilio``: an account's Messages and Calls, served over HTTP on a free 127.0.0.1 port by
   uvicorn in a thread; every request and response passes the Contract (violations are collected
   and fail the test).  It records what it received, can be told to fail the next requests
   (``fail_next``), to answer slowly (``delay_s``), refuses wrong credentials as Twilio does
   (401, error 20003) and numbers it calls invalid (400, error 21211), and posts signed status
   callbacks (``send_status``) to the ``StatusCallback`` a request gave, as Twilio does.
"""
from __future__ import annotations

import asyncio
import base64
import copy
import functools
import hashlib
import hmac
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest
from jsonschema import Draft4Validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.contracts import TWILIO_API_V2010
from tests.contracts.openapi import ContractViolation, OpenApiPaths, Operation, schema_errors
from tests.loopback_server import LoopbackServer

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "fake-twilio-auth-token"
MESSAGES = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
CALLS = "/2010-04-01/Accounts/{AccountSid}/Calls.json"

ERROR_STATUSES = {400, 401, 403, 404, 429, 500, 502, 503}
TWILIO_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "code": {"type": "integer"},
        "message": {"type": "string"},
        "more_info": {"type": "string"},
        "status": {"type": "integer"},
        "details": {"type": "object"},
    },
    "required": ["code", "message", "status"],
    "additionalProperties": False,
}
FORM = "application/x-www-form-urlencoded"


def _pascal(snake: str) -> str:
    """x-twilio's conditional names (``messaging_service_sid``) as form parameters (``MessagingServiceSid``)."""
    return "".join(part.capitalize() for part in snake.split("_"))


class Contract(OpenApiPaths):
    source = "twilio_api_v2010.json"

    def __init__(self, spec: dict):
        super().__init__(spec)
        self._validators: dict[int, Draft4Validator] = {}

    @classmethod
    @functools.cache
    def load(cls, path: str | Path = TWILIO_API_V2010) -> Contract:
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))

    def schema(self, schema: dict) -> dict:
        """``schema`` as JSON Schema: ``$ref``s inlined, ``nullable: true`` as a ``null`` type."""
        if "$ref" in schema:
            name = schema["$ref"].removeprefix("#/components/schemas/")
            return self.schema(self.spec["components"]["schemas"][name])
        out = {k: v for k, v in schema.items() if k not in ("nullable", "x-twilio", "description", "examples")}
        if "properties" in out:
            out["properties"] = {name: self.schema(sub) for name, sub in out["properties"].items()}
        if "items" in out:
            out["items"] = self.schema(out["items"])
        if schema.get("nullable") and "type" in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        return out

    def _errors(self, schema: dict, instance) -> list[str]:
        validator = self._validators.get(id(schema))
        if validator is None:  # the schemas live as long as the loaded description: id() is stable
            validator = self._validators[id(schema)] = Draft4Validator(self.schema(schema))
        return schema_errors(validator, instance)

    # --------------------------------------------------------------- request

    def check_request(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Operation:
        op = self.operation(method, path)
        where = f"{method} {path}"
        for p in op.spec.get("parameters") or []:
            if p["in"] == "path":
                problems = self._errors(p["schema"], op.path_params.get(p["name"]))
                if problems:
                    raise ContractViolation(f"{where}: path parameter {p['name']}: {problems}")
        lower = {k.lower(): v for k, v in headers.items()}
        if op.spec.get("security", self.spec.get("security")) and not lower.get("authorization", "").startswith("Basic "):
            raise ContractViolation(f"{where}: no HTTP basic Authorization header")
        request_body = op.spec.get("requestBody")
        if request_body is None:
            if body:
                raise ContractViolation(f"{where}: a body was sent, the operation takes none")
            return op
        content_type = lower.get("content-type", "").split(";")[0].strip()
        if content_type not in request_body["content"]:
            raise ContractViolation(f"{where}: body is {content_type!r}, documented: {sorted(request_body['content'])}")
        self._check_form(where, op, request_body["content"][content_type]["schema"], body)
        return op

    def _check_form(self, where: str, op: Operation, schema: dict, body: bytes) -> None:
        declared = self.schema(schema)["properties"]
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
        instance: dict = {}
        for name, value in pairs:
            prop = declared.get(name)
            if prop is None:
                raise ContractViolation(f"{where}: undocumented form parameter {name!r}")
            if prop.get("type") == "array":
                instance.setdefault(name, []).append(value)
            elif name in instance:
                raise ContractViolation(f"{where}: form parameter {name!r} repeated, it is no array")
            else:
                instance[name] = _typed(value, prop)
        problems = self._errors(schema, instance)
        if problems:
            raise ContractViolation(f"{where}: form body does not match the schema: {problems}")
        for group in (op.spec.get("x-twilio") or {}).get("conditional", []):
            names = [_pascal(n) for n in group]
            if not any(n in instance for n in names):
                raise ContractViolation(f"{where}: one of {names} is required")

    # -------------------------------------------------------------- response

    def check_response(self, method: str, path: str, status: int, headers: dict[str, str], body: bytes) -> None:
        op = self.operation(method, path)
        where = f"{method} {path} -> {status}"
        documented = (op.spec.get("responses") or {}).get(str(status))
        if documented is None:
            if status not in ERROR_STATUSES:
                raise ContractViolation(f"{where}: status not documented (documented: {sorted(op.spec['responses'])})")
            schema = TWILIO_ERROR_SCHEMA
        else:
            content = documented.get("content") or {}
            if not content:
                if body:
                    raise ContractViolation(f"{where}: a body where none is documented")
                return
            if "application/json" not in headers.get("content-type", ""):
                raise ContractViolation(f"{where}: response is {headers.get('content-type')!r}, not JSON")
            schema = content["application/json"]["schema"]
        try:
            instance = json.loads(body)
        except ValueError:
            raise ContractViolation(f"{where}: response is not JSON: {body[:100]!r}") from None
        problems = (_plain_errors(schema, instance) if schema is TWILIO_ERROR_SCHEMA
                    else self._errors(schema, instance))
        if problems:
            raise ContractViolation(f"{where}: response does not match the schema: {problems}")


def _plain_errors(schema: dict, instance) -> list[str]:
    return [e.message for e in Draft4Validator(schema).iter_errors(instance)][:10]


def _typed(value: str, prop: dict):
    """A form value as the JSON value the schema describes (left a string when it is not one)."""
    kind = prop.get("type")
    if kind == "integer" and re.fullmatch(r"-?\d+", value):
        return int(value)
    if kind == "number" and re.fullmatch(r"-?\d+(\.\d+)?", value):
        return float(value)
    if kind == "boolean" and value in ("true", "false"):
        return value == "true"
    return value


# ========================================================================= signatures


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """``X-Twilio-Signature`` as Twilio computes it: base64 HMAC-SHA1, keyed with the auth token,
    of the URL followed by each parameter's name and value, sorted by name."""
    data = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


# ========================================================================= the fake Twilio


def _now_rfc2822() -> str:
    return format_datetime(datetime.now(timezone.utc).replace(microsecond=0))


def _sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                         "status": status}, status_code=status)


@dataclass
class Sent:
    """One message or call the fake took: its SID and the form it was created with."""

    kind: str  # "message" / "call"
    sid: str
    form: dict[str, str]

    @property
    def status_callback(self) -> str | None:
        return self.form.get("StatusCallback")


@dataclass
class Failure:
    status: int
    code: int
    message: str


@dataclass
class FakeTwilio(LoopbackServer):
    server_name = "the fake Twilio"   # a plain class attribute, not a dataclass field
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    contract: Contract = field(default_factory=Contract.load)
    # Numbers Twilio would refuse as invalid (400, error 21211).
    invalid_numbers: set[str] = field(default_factory=set)
    # Seconds each answer takes (the client is asynchronous: its loop goes on meanwhile).
    delay_s: float = 0.0

    def __post_init__(self):
        self.messages: list[Sent] = []
        self.calls: list[Sent] = []
        self.requests: list[tuple[str, str]] = []
        self.violations: list[str] = []
        self._failures: list[Failure] = []
        self.app = Starlette(routes=[
            Route("/2010-04-01/Accounts/{account}/Messages.json", self._create_message, methods=["POST"]),
            Route("/2010-04-01/Accounts/{account}/Calls.json", self._create_call, methods=["POST"]),
        ])

    def fail_next(self, status: int, code: int, message: str = "", times: int = 1) -> None:
        """Answer the next ``times`` create requests with ``status`` and Twilio error ``code``."""
        self._failures += [Failure(status, code, message or f"fake failure {code}")] * times

    def asgi_app(self):
        return _ContractMiddleware(self.app, self)

    # ------------------------------------------------------------- the account

    async def _refusal(self, request: Request) -> Response | None:
        """Twilio's answer when this request is not taken: credentials, account, injected failures."""
        auth = request.headers.get("authorization", "")
        try:
            user, _, password = base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
        except ValueError:
            user = password = ""
        if (user, password) != (self.account_sid, self.auth_token):
            return _error(401, 20003, "Authenticate")
        if request.path_params["account"] != self.account_sid:
            return _error(404, 20404, f"The requested resource {request.url.path} was not found")
        if self._failures:
            failure = self._failures.pop(0)
            return _error(failure.status, failure.code, failure.message)
        to = (await request.form()).get("To", "")
        if to in self.invalid_numbers:
            return _error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        return None

    async def _create_message(self, request: Request) -> Response:
        if (refused := await self._refusal(request)) is not None:
            return refused
        form = dict((await request.form()).items())
        sent = Sent("message", _sid("SM"), form)
        self.messages.append(sent)
        body = self._example(MESSAGES, "create") | {
            "sid": sent.sid, "account_sid": self.account_sid, "to": form["To"], "from": form.get("From"),
            "body": form.get("Body"), "status": "queued", "messaging_service_sid": None,
            "date_created": _now_rfc2822(), "date_updated": _now_rfc2822(), "date_sent": None,
            "num_segments": "1", "num_media": "0", "price": None, "price_unit": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sent.sid}.json",
            "subresource_uris": {"media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sent.sid}/Media.json"}}
        return await self._answer(body)

    async def _create_call(self, request: Request) -> Response:
        if (refused := await self._refusal(request)) is not None:
            return refused
        form = dict((await request.form()).items())
        sent = Sent("call", _sid("CA"), form)
        self.calls.append(sent)
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Calls/{sent.sid}"
        body = self._example(CALLS, "create") | {
            "sid": sent.sid, "account_sid": self.account_sid, "to": form["To"], "to_formatted": form["To"],
            "from": form["From"], "from_formatted": form["From"], "status": "queued", "direction": "outbound-api",
            "date_created": _now_rfc2822(), "date_updated": _now_rfc2822(), "start_time": None, "end_time": None,
            "duration": None, "price": None, "price_unit": "USD", "answered_by": None, "forwarded_from": None,
            "parent_call_sid": None, "phone_number_sid": None, "caller_name": None, "queue_time": "0",
            "uri": uri + ".json",
            "subresource_uris": {"notifications": uri + "/Notifications.json", "recordings": uri + "/Recordings.json"}}
        return await self._answer(body)

    def _example(self, template: str, name: str) -> dict:
        content = self.contract.spec["paths"][template]["post"]["responses"]["201"]["content"]
        return copy.deepcopy(content["application/json"]["examples"][name]["value"])

    async def _answer(self, body: dict) -> Response:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return JSONResponse(body, status_code=201)

    # --------------------------------------------------------- status callbacks

    def status_params(self, sent: Sent, status: str, *, error_code: int | None = None) -> dict[str, str]:
        """The form Twilio posts to a message's or a call's ``StatusCallback``."""
        common = {"AccountSid": self.account_sid, "From": sent.form.get("From", ""), "To": sent.form["To"],
                  "ApiVersion": "2010-04-01"}
        if sent.kind == "message":
            params = common | {"MessageSid": sent.sid, "SmsSid": sent.sid, "MessageStatus": status,
                               "SmsStatus": status}
        else:
            params = common | {"CallSid": sent.sid, "CallStatus": status, "Direction": "outbound-api",
                               "CallbackSource": "call-progress-events", "SequenceNumber": "0",
                               "Timestamp": _now_rfc2822(), "CallDuration": "0" if status != "completed" else "42"}
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        return params

    async def send_status(self, sent: Sent, status: str, *, client: httpx.AsyncClient,
                          error_code: int | None = None, url: str | None = None,
                          signature: str | None = "sign", params: dict[str, str] | None = None) -> httpx.Response:
        """POST a status callback for ``sent`` to its ``StatusCallback`` (or ``url``), as Twilio does.

        ``signature``: "sign" signs the form with the auth token, None sends none, any other
        string is sent as it is.  ``params``: the form to send instead (signed all the same), to
        forge one.
        """
        url = url or sent.status_callback
        assert url, f"{sent.kind} {sent.sid} was created without a StatusCallback"
        form = params if params is not None else self.status_params(sent, status, error_code=error_code)
        headers = {"User-Agent": "TwilioProxy/1.1", "Content-Type": FORM}
        if signature == "sign":
            headers["X-Twilio-Signature"] = twilio_signature(self.auth_token, url, form)
        elif signature is not None:
            headers["X-Twilio-Signature"] = signature
        return await client.post(url, data=form, headers=headers)


class _ContractMiddleware:
    """Holds every request and response to the Contract and records the requests."""

    def __init__(self, app, site: FakeTwilio):
        self.app, self.site = app, site

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        method, path = scope["method"], scope["path"]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.site.requests.append((method, path))
        try:
            self.site.contract.check_request(method, path, headers, body)
        except ContractViolation as exc:
            self.site.violations.append(f"request: {exc}")
            return await _error(400, 20001, f"contract violation: {exc}")(scope, receive, send)

        async def replay():
            return {"type": "http.request", "body": body, "more_body": False}

        sent = []

        async def capture(message):
            sent.append(message)

        await self.app(scope, replay, capture)
        start = next(m for m in sent if m["type"] == "http.response.start")
        out_body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        try:
            self.site.contract.check_response(
                method, path, start["status"],
                {k.decode("latin-1"): v.decode("latin-1") for k, v in start["headers"]}, out_body)
        except ContractViolation as exc:
            self.site.violations.append(f"response: {exc}")
        for message in sent:
            await send(message)


# ============================================================================== fixtures


@pytest.fixture
def fake_twilio():
    """A running fake Twilio; the test fails if any request or response broke the contract."""
    site = FakeTwilio()
    site.start()
    try:
        yield site
    finally:
        site.stop()
    assert not site.violations, "contract violations:\n" + "\n".join(site.violations)
