"""Twilio, for the callbacks: the SMS after the last attempt and the automated voice callback.

A thin adapter over the ``twilio`` package's REST client on its asyncio HTTP client
(``AsyncTwilioHttpClient``, aiohttp), so no request blocks the daemon's loop.  It sends one
message (``send_sms``) or creates one call (``place_call``) and answers the resource's SID;
what to send, when, and what a failure means for the task is the policy's.

At most once: Twilio's API has no idempotency key, so a request that may have reached Twilio
must never be sent again.  ``send_sms`` and ``place_call`` take ``record``, called (and
awaited) before the request leaves: the caller notes the attempt durably there, and raises
to stop the send (e.g. the task already has one).  After a failure the attempt stays recorded;
:attr:`TwilioError.may_have_sent` says whether Twilio may have acted on it anyway.

Failures are mapped to the types the policy acts on:

=========================  ===========================================================
``TwilioRateLimited``      429 (or Twilio's rate codes): try later
``TwilioBadNumber``        the number is not a number Twilio can reach: ask an operator
``TwilioAuthFailed``       401/403, wrong account SID or auth token: fix [twilio]
``TwilioUnreachable``      no answer, a timeout, or a 5xx from Twilio
``TwilioRejected``         any other refusal (4xx), with Twilio's error code
=========================  ===========================================================
"""
from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import structlog
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from bridge.config import Config

log = structlog.get_logger(__name__)

# A request to Twilio that has not answered by then is given up (aiohttp has no timeout otherwise).
REQUEST_TIMEOUT_S = 15.0
E164 = re.compile(r"^\+[1-9]\d{6,14}$")

# Twilio error codes (https://www.twilio.com/docs/api/errors) that mean "this number cannot be reached".
BAD_NUMBER_CODES = frozenset({
    13223,  # Dial: invalid phone number format
    13224,  # Dial: invalid phone number
    21211,  # invalid 'To' phone number
    21214,  # 'To' phone number cannot be reached
    21217,  # phone number does not appear to be valid
    21401,  # invalid phone number
    21407,  # this phone number type does not support SMS
    21612,  # the 'To' phone number is not currently reachable via SMS
    21614,  # 'To' number is not a valid mobile number
})
RATE_LIMIT_CODES = frozenset({20429, 14107})  # too many requests; SMS send rate limit exceeded
AUTH_CODES = frozenset({20003, 20005})  # authentication failed; account not active

Record = Callable[[], Awaitable[None] | None]


class TwilioError(Exception):
    """Twilio did not take the request; ``code`` is Twilio's error code when it gave one."""

    may_have_sent = False

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None):
        super().__init__(message)
        self.status, self.code = status, code


class TwilioRateLimited(TwilioError):
    pass


class TwilioBadNumber(TwilioError):
    pass


class TwilioAuthFailed(TwilioError):
    pass


class TwilioRejected(TwilioError):
    pass


class TwilioUnreachable(TwilioError):
    def __init__(self, message: str, *, may_have_sent: bool, status: int | None = None,
                 code: int | None = None):
        super().__init__(message, status=status, code=code)
        self.may_have_sent = may_have_sent


@dataclass(frozen=True)
class TwilioAccount:
    """What the gateway needs from ``[twilio]``: who it is, its secret, the number callers see."""

    account_sid: str
    auth_token: str = field(repr=False)  # never in a log line
    from_number: str
    api_base_url: str | None = None

    @classmethod
    def from_config(cls, config: Config) -> TwilioAccount:
        twilio = config.twilio
        return cls(twilio.account_sid, config.secret(twilio.auth_token_env), twilio.from_number,
                   twilio.api_base_url)


def say_twiml(text: str, language: str = "zh-CN") -> str:
    """TwiML that speaks ``text`` (Twilio's text-to-speech) in ``language``."""
    response = VoiceResponse()
    response.say(text, language=language)
    return str(response)


def play_twiml(audio_url: str) -> str:
    """TwiML that plays the recording at ``audio_url``."""
    response = VoiceResponse()
    response.play(audio_url)
    return str(response)


class TwilioGateway:
    """Sends SMS and places calls through Twilio's REST API, from the configured number.

    The aiohttp session is made on first use, inside the running loop; :meth:`close` ends it.
    """

    def __init__(self, account: TwilioAccount, *, timeout_s: float = REQUEST_TIMEOUT_S):
        self.account = account
        self.timeout_s = timeout_s
        self._client: Client | None = None

    @classmethod
    def from_config(cls, config: Config) -> TwilioGateway:
        return cls(TwilioAccount.from_config(config))

    async def send_sms(self, to: str, body: str, *, status_callback: str | None = None,
                       record: Record | None = None) -> str:
        """Send ``body`` to ``to`` (E.164); the message's SID.  ``record`` runs first (see the module doc)."""
        _check_number(to)
        kwargs = {"to": to, "from_": self.account.from_number, "body": body}
        if status_callback:
            kwargs["status_callback"] = status_callback
        messages = self._rest().api.v2010.accounts(self.account.account_sid).messages
        return await self._create("sms", to, messages.create_async, kwargs, record)

    async def place_call(self, to: str, twiml_or_url: str, status_callback: str, *,
                         record: Record | None = None) -> str:
        """Call ``to`` (E.164) and run ``twiml_or_url`` (TwiML, see :func:`say_twiml`, or the URL
        of a TwiML document); Twilio posts the call's end to ``status_callback``.  The call's SID."""
        _check_number(to)
        kwargs = {"to": to, "from_": self.account.from_number, "status_callback": status_callback}
        if twiml_or_url.lstrip().startswith("<"):
            kwargs["twiml"] = twiml_or_url
        elif re.match(r"^https?://", twiml_or_url):
            kwargs["url"] = twiml_or_url
        else:
            raise ValueError("twiml_or_url: neither TwiML (<Response>...) nor an http(s) URL")
        calls = self._rest().api.v2010.accounts(self.account.account_sid).calls
        return await self._create("call", to, calls.create_async, kwargs, record)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.http_client.close()
            self._client = None

    async def __aenter__(self) -> TwilioGateway:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    def _rest(self) -> Client:
        if self._client is None:
            client = Client(self.account.account_sid, self.account.auth_token,
                            http_client=AsyncTwilioHttpClient())
            if self.account.api_base_url:  # a local server speaking Twilio's API (tests)
                client.api.base_url = self.account.api_base_url
            self._client = client
        return self._client

    async def _create(self, what: str, to: str, create, kwargs: dict, record: Record | None) -> str:
        if record is not None:
            noted = record()
            if inspect.isawaitable(noted):
                await noted
        try:
            async with asyncio.timeout(self.timeout_s):
                instance = await create(**kwargs)
        except TwilioRestException as exc:
            error = _mapped(exc)
            log.warning("twilio.refused", what=what, status=exc.status, code=exc.code,
                        error=type(error).__name__)
            raise error from exc
        except TimeoutError as exc:
            raise TwilioUnreachable(f"Twilio did not answer within {self.timeout_s:g} s",
                                    may_have_sent=True) from exc
        except aiohttp.ClientConnectorError as exc:  # the request never left
            raise TwilioUnreachable(f"cannot connect to Twilio: {exc}", may_have_sent=False) from exc
        except aiohttp.ClientError as exc:
            raise TwilioUnreachable(f"the connection to Twilio failed: {exc}", may_have_sent=True) from exc
        log.info("twilio.created", what=what, sid=instance.sid, to_tail=to[-4:])
        return instance.sid


def _check_number(to: str) -> None:
    if not E164.match(to):
        raise TwilioBadNumber(f"{to!r} is not an E.164 number (+ country code, digits)")


def _mapped(exc: TwilioRestException) -> TwilioError:
    status, code = exc.status, exc.code
    message = f"Twilio answered {status}" + (f" (error {code})" if code and code != status else "")
    if exc.msg:
        message += f": {exc.msg}"
    if status == 429 or code in RATE_LIMIT_CODES:
        return TwilioRateLimited(message, status=status, code=code)
    if code in BAD_NUMBER_CODES:
        return TwilioBadNumber(message, status=status, code=code)
    if status in (401, 403) or code in AUTH_CODES:
        return TwilioAuthFailed(message, status=status, code=code)
    if status >= 500:
        return TwilioUnreachable(message, may_have_sent=True, status=status, code=code)
    return TwilioRejected(message, status=status, code=code)
