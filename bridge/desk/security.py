"""The desk's sessions, CSRF tokens and sign-in throttling.

Sessions are Starlette's signed cookies (``itsdangerous``): the cookie holds the
session dict, signed with the key from ``config.secret(config.web.session_secret_env)``;
it is HttpOnly, SameSite=Lax, and Secure when ``web.secure_cookies`` is true.  The
session holds the user's id, the extension chosen at sign-in, the page language
and the CSRF token; the user row is read again on every request, so a disabled
user or a changed role takes effect at once.

CSRF: every form carries the session's token in a hidden ``csrf_token`` field,
and htmx/fetch requests send it in the ``X-CSRF-Token`` header (the page's
``<body hx-headers>``); :func:`check_csrf` refuses an unsafe request without it.

Throttling (:class:`SignInThrottle`, in memory, per process): failures are counted
per username and per client address in a sliding window; past the limit, sign-in
is refused without checking the password until the lockout ends.
"""
from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SESSION_COOKIE = "hotline_desk"
SESSION_MAX_AGE_S = 12 * 3600  # one long shift


class CsrfRefused(Exception):
    """An unsafe request without the session's CSRF token (the desk answers 403)."""


def csrf_token(request: Request) -> str:
    """The session's CSRF token (created on first use)."""
    token = request.session.get(CSRF_FIELD)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return token


async def check_csrf(request: Request) -> None:
    """Raise CsrfRefused unless the request's token (form field or header) is the session's."""
    expected = request.session.get(CSRF_FIELD)
    sent = request.headers.get(CSRF_HEADER)
    if not sent:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()  # cached on the request: the endpoint reads it again for free
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(str(expected), str(sent)):
        raise CsrfRefused()


@dataclass
class _Counter:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0


class SignInThrottle:
    """Counts failed sign-ins per key ("user:NAME", "ip:ADDR"); locks a key out past its limit.

    ``limits`` maps a key's kind to (failures allowed within ``window_s``); the
    failure that reaches the limit locks the key for ``lockout_s`` seconds.
    """

    def __init__(self, *, user_limit: int = 5, ip_limit: int = 20, window_s: float = 300.0,
                 lockout_s: float = 60.0, clock: Callable[[], float] = time.time) -> None:
        self.limits = {"user": user_limit, "ip": ip_limit}
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.clock = clock
        self._counters: dict[str, _Counter] = {}

    @staticmethod
    def keys(username: str, ip: str) -> list[str]:
        return [f"user:{username.strip().lower()}", f"ip:{ip}"]

    def locked_until(self, keys: list[str]) -> float | None:
        """The time (clock seconds) when the latest lockout among ``keys`` ends, or None."""
        now = self.clock()
        ends = [c.locked_until for k in keys if (c := self._counters.get(k)) and c.locked_until > now]
        return max(ends) if ends else None

    def failure(self, keys: list[str]) -> float | None:
        """Record a failure for every key; return when the (new) lockout ends, if one began."""
        now = self.clock()
        for key in keys:
            counter = self._counters.setdefault(key, _Counter())
            counter.failures.append(now)
            while counter.failures and counter.failures[0] <= now - self.window_s:
                counter.failures.popleft()
            if len(counter.failures) >= self.limits[key.split(":", 1)[0]]:
                counter.locked_until = now + self.lockout_s
                counter.failures.clear()
        self._prune(now)
        return self.locked_until(keys)

    def success(self, username: str) -> None:
        """A good sign-in clears the username's failures (not the address's)."""
        self._counters.pop(self.keys(username, "")[0], None)

    def _prune(self, now: float) -> None:
        if len(self._counters) < 10_000:
            return
        for key in [k for k, c in self._counters.items()
                    if c.locked_until <= now and (not c.failures or c.failures[-1] <= now - self.window_s)]:
            del self._counters[key]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def end_session(request: Request) -> None:
    """Sign out: forget everything in the session but the page language."""
    lang = request.session.get("lang")
    request.session.clear()
    if lang:
        request.session["lang"] = lang
