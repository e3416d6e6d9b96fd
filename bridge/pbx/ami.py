"""The AMI link: one robust connection to Asterisk's Manager Interface.

Why not panoramisk's ``Manager`` / ``AMIProtocol``
-------------------------------------------------
panoramisk 1.4 is pinned and small, and we read all of it.  Its problems are in the
connection and dispatch layer, i.e. exactly the part we would have to subclass:

* ``AMIProtocol.data_received`` decodes every TCP read on its own with
  ``errors='ignore'``: a UTF-8 character split across two reads (a Chinese caller name)
  is silently dropped.  Fixing it means replacing ``data_received`` entirely.
* ``Manager.dispatch`` calls handlers inline inside ``data_received``: an exception
  there propagates into asyncio's protocol machinery, which closes the transport and
  loses the rest of that read; coroutine handlers are scheduled with
  ``ensure_future`` and so run in no guaranteed order.
* ``Manager.ping`` sends a Ping and never looks at the answer: a silent (half-open)
  link is never detected.
* ``Manager.login`` ignores a failed login (no error, no state); ``connect`` has no
  timeout and ``connection_lost`` reconnects after a fixed ``reconnect_timeout`` forever.
* ``AMIProtocol.close`` moves unanswered actions to ``awaiting_actions`` and
  ``send_awaiting_actions`` re-sends them after the next ``FullyBooted`` with no age
  limit: an Originate sent before a network cut can ring a citizen hours later.  The
  caller's future never resolves if nothing reconnects.
* Its ``Message.from_line`` strips the message, which drops a last header with an empty
  value (``Value: ``), and mistakes ``Response: Fail`` lines for a body.

Patching those would override nearly every method of both classes while inheriting
their state (``awaiting_actions``, the ``FullyBooted`` hook, ``call_later`` timers).
So this module owns the whole link — ``asyncio`` streams, an incremental UTF-8
decoder, its own tiny header parser and action writer — and uses from panoramisk only
``panoramisk.message.Message`` as the case-insensitive container handed back for
action responses (the same object panoramisk users know).

Behaviour
---------
* ``start()`` runs a supervisor task: connect (with a timeout), read the banner, log in,
  then read until the link drops; then back off exponentially with jitter between
  ``reconnect_min`` and ``reconnect_max`` and try again, until ``stop()``.
* The state (``"connecting"``, ``"up"``, ``"down: <reason>"``, e.g.
  ``"down: authentication failed for user 'hotline-bridge'"``) goes to ``on_state`` and
  ``client.state``, and every change is a structlog line.  The secret is never logged.
* Every ``ping_interval`` a Ping is sent; no answer within ``action_timeout`` aborts
  the transport (and so reconnects).
* Every event goes through one guarded path, strictly in arrival order, to every
  listener in turn (``on_event`` and ``listeners`` of the constructor, then
  ``add_listener``): the listeners are called at once when nothing is queued before the
  event, else an ordered ``asyncio.Queue`` holds it for the one consumer task; a
  coroutine result is awaited by that consumer before the next listener sees the event
  and before any later event is handled.  A listener's exception is logged with the
  event (``ami.event_handler_failed``) and the other listeners, and the next events, are
  handled as if nothing happened.
  ``on_connected`` is called from that same consumer, in order, after every
  successful login: events received after the login are handled after it (so the daemon
  can adopt channels with CoreShowChannels before applying newer events).
* Every action has a timeout (``AmiActionTimeout``).  When the link drops, every action
  in flight fails with ``AmiConnectionLost``; **nothing is ever re-sent** — whether to
  retry an Originate is the caller's decision.  ``send_action`` while the link is not
  up fails at once with ``AmiNotConnected``.
* Bytes are decoded with an incremental UTF-8 decoder (invalid bytes become U+FFFD,
  never silently dropped), so multi-byte characters split across reads survive.
* Header injection is refused: an action value containing CR or LF raises ValueError.
* Optional client-side event filter (``wanted_events``, ``varset_prefixes``): an event
  whose name is not wanted, or a VarSet whose ``Variable`` (leading ``_`` ignored) starts
  with none of the prefixes, is dropped from its first line / ``Variable:`` line without a
  full parse and counted in ``dropped_events``.  Responses, and list events carrying the
  ActionID of a *List action in flight, are always parsed.  Without ``wanted_events`` every
  event is delivered (the AMI account and ``manager.conf`` are not changed by the filter).
"""
from __future__ import annotations

import asyncio
import codecs
import inspect
import itertools
import random
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from panoramisk.message import Message

__all__ = [
    "AmiActionError",
    "AmiActionTimeout",
    "AmiClient",
    "AmiConnectionLost",
    "AmiError",
    "AmiNotConnected",
    "AmiResponse",
    "parse_message",
]

log = structlog.get_logger(__name__)

EventHandler = Callable[[dict[str, str]], Awaitable[None] | None]
StateHandler = Callable[[str], None]
ConnectedHandler = Callable[[], Awaitable[None] | None]

_BLANK_LINE = re.compile(r"\r?\n\r?\n")
_MAX_MESSAGE_CHARS = 1_000_000
_SUCCESS = ("success", "follows", "goodbye")


# ---------------------------------------------------------------------------- errors


class AmiError(Exception):
    """Base class of the AMI link's errors."""


class AmiNotConnected(AmiError):
    """The link is not up (connecting, down or stopped); the action was not sent."""


class AmiConnectionLost(AmiError):
    """The link dropped before Asterisk answered; the action is not re-sent.

    Asterisk may or may not have carried it out.
    """


class AmiActionTimeout(AmiError):
    """Asterisk did not answer an action within its timeout."""


class AmiActionError(AmiError):
    """Asterisk answered ``Response: Error`` (only raised with ``check=True``)."""

    def __init__(self, text: str, response: AmiResponse):
        super().__init__(text)
        self.response = response


# ---------------------------------------------------------------------- messages


@dataclass(frozen=True)
class AmiResponse:
    """Asterisk's answer to an action, plus the list events of a *List action."""

    headers: Message
    events: list[dict[str, str]] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return str(self.headers.get("Response", "")).lower() in _SUCCESS

    @property
    def message(self) -> str:
        return str(self.headers.get("Message", ""))

    def get(self, key: str, default: Any = None) -> Any:
        return self.headers.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self.headers[key]


# One AMI line: ``Key: value`` (a key has no whitespace and no colon; one leading space of
# the value is dropped) or else a body line.  Trailing CRs are dropped; only "\n" ends a
# line (a caller name may hold U+2028 or other characters str.splitlines() would split on).
_LINE = re.compile(r"^(?:([^\s:]+): ?(.*?)|(.*?))\r*$", re.M)
# Headers looked up in the raw text before (or instead of) a full parse.
_ACTION_ID = re.compile(r"^ActionID: ?(.*?)\r*$", re.M | re.I)
_VARIABLE = re.compile(r"^Variable: ?(.*?)\r*$", re.M | re.I)
# The first line of an event message (Asterisk always sends Event first).
_EVENT_LINE = re.compile(r"Event: ?([^\r\n]*)", re.I)
# The client-side filter's verdict for an event name.
_DROP, _KEEP, _CHECK_VARIABLE = 0, 1, 2


def _listener_name(listener: Any) -> str:
    return getattr(listener, "__qualname__", None) or repr(listener)


def parse_message(text: str) -> list[tuple[str, str]]:
    """The ``Key: value`` lines of one AMI message, in order (repeated keys kept).

    A value keeps everything after the first ``:`` minus one leading space, so an empty
    value (``Value: ``) is kept as ``""``.  Lines without a key (a command body) are
    returned under the key ``""``; blank lines are skipped.  One regex pass, no
    per-character Python loop (this runs for every AMI message).
    """
    return [(key, value) if key else ("", body)
            for key, value, body in _LINE.findall(text) if key or not body.isspace() and body]


def _as_event(headers: list[tuple[str, str]]) -> dict[str, str]:
    """A plain dict; a header repeated in one message (ChanVariable) joins its values with \\n."""
    event: dict[str, str] = {}
    for key, value in headers:
        if not key:
            continue
        event[key] = f"{event[key]}\n{value}" if key in event else value
    return event


def _as_message(headers: list[tuple[str, str]]) -> Message:
    grouped: dict[str, Any] = {}
    body: list[str] = []
    for key, value in headers:
        if not key:
            body.append(value)
        elif key in grouped:
            prev = grouped[key]
            grouped[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            grouped[key] = value
    return Message(grouped, "\n".join(body))


def _serialise(action: Mapping[str, Any]) -> bytes:
    lines = []
    for key, value in action.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            k, v = str(key), "" if v is None else str(v)
            if any(c in k or c in v for c in "\r\n") or ":" in k or not k.strip():
                raise ValueError(f"AMI action header {k!r} has an invalid name or a line break in its value")
            lines.append(f"{k}: {v}\r\n")
    return ("".join(lines) + "\r\n").encode("utf-8")


@dataclass(eq=False)
class _Pending:
    name: str
    future: asyncio.Future
    expect_list: bool
    response: list[tuple[str, str]] | None = None
    events: list[dict[str, str]] = field(default_factory=list)
    on_response: Callable[[AmiResponse], None] | None = None


# ------------------------------------------------------------------------ client


class AmiClient:
    """One supervised AMI connection.  See the module docstring for the behaviour."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        ping_interval: float = 10.0,
        action_timeout: float = 10.0,
        connect_timeout: float | None = None,
        reconnect_min: float = 1.0,
        reconnect_max: float = 60.0,
        on_event: EventHandler | None = None,
        listeners: Iterable[EventHandler] = (),
        on_state: StateHandler | None = None,
        on_connected: ConnectedHandler | None = None,
        events: str = "on",
        wanted_events: Iterable[str] | None = None,
        varset_prefixes: Iterable[str] | None = None,
        stable_after: float | None = None,
        rng: random.Random | None = None,
    ):
        if reconnect_min <= 0 or reconnect_max < reconnect_min:
            raise ValueError("need 0 < reconnect_min <= reconnect_max")
        self.host, self.port, self.username = host, port, username
        self._secret = secret
        self.ping_interval = ping_interval
        self.action_timeout = action_timeout
        self.connect_timeout = connect_timeout if connect_timeout is not None else action_timeout
        self.reconnect_min, self.reconnect_max = reconnect_min, reconnect_max
        # A session that stayed up this long resets the back-off.
        self.stable_after = stable_after if stable_after is not None else max(reconnect_max, 2 * ping_interval)
        self._events_filter = events
        # Client-side event filter (None: every event goes to on_event).  Names are
        # compared case-insensitively; VarSet also needs its (normalised) Variable to start
        # with one of varset_prefixes.  Unwanted events are dropped before being parsed.
        self._wanted = (frozenset(n.strip().lower() for n in wanted_events)
                        if wanted_events is not None else None)
        self._varset_prefixes = (tuple(p.strip().lstrip("_").upper() for p in varset_prefixes)
                                 if varset_prefixes is not None else None)
        self._verdicts: dict[str, int] = {}
        self.dropped_events = 0
        # Every event goes to each listener in turn (``on_event`` first), see ``add_listener``.
        self._listeners: list[EventHandler] = [*([on_event] if on_event else []), *listeners]
        self._on_state = on_state
        self._on_connected = on_connected
        self._rng = rng or random.Random()
        self._ids = itertools.count(1)
        self._id_prefix = f"hb-{uuid.uuid4().hex[:8]}"

        self.state = "not started"
        self.version: str | None = None
        self.connect_attempts = 0
        self.last_error: str | None = None
        self._up = False
        self._stopping = False
        self._writer: asyncio.StreamWriter | None = None
        self._drop_reason: str | None = None
        self._pending: dict[str, _Pending] = {}
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._handling = False  # the consumer is running (or awaiting) a handler
        self._supervisor: asyncio.Task | None = None
        self._consumer: asyncio.Task | None = None
        self._up_event = asyncio.Event()

    @classmethod
    def from_config(cls, ami: Any, secret: str, **kwargs: Any) -> AmiClient:
        """From ``bridge.config.AmiConfig`` and the secret read from its ``secret_env``."""
        return cls(ami.host, ami.port, ami.username, secret,
                   ping_interval=ami.ping_interval_s, action_timeout=ami.action_timeout_s,
                   reconnect_min=ami.reconnect_min_s, reconnect_max=ami.reconnect_max_s, **kwargs)

    def __repr__(self) -> str:   # never shows the secret
        return f"<AmiClient {self.username}@{self.host}:{self.port} {self.state}>"

    # ----------------------------------------------------------------- public API

    def add_listener(self, listener: EventHandler) -> None:
        """Also hand every event to ``listener``, after the listeners added before it."""
        self._listeners.append(listener)

    @property
    def is_up(self) -> bool:
        return self._up

    @property
    def queued_events(self) -> int:
        """Events received but not yet handled (a growing figure means a slow handler)."""
        return self._queue.qsize()

    async def start(self) -> None:
        """Start connecting in the background; returns at once (see ``wait_up``)."""
        if self._supervisor is not None:
            return
        self._stopping = False
        self._consumer = asyncio.create_task(self._consume(), name="ami-events")
        self._supervisor = asyncio.create_task(self._supervise(), name="ami-link")

    async def wait_up(self, timeout: float | None = None) -> bool:
        """Wait until the link is up (logged in); False on timeout."""
        try:
            await asyncio.wait_for(self._up_event.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def stop(self) -> None:
        """Log off, close the link, fail actions in flight, handle the events already received."""
        self._stopping = True
        if self._up:
            try:
                await self._send({"Action": "Logoff"}, timeout=min(1.0, self.action_timeout), check=False)
            except AmiError:
                pass
        if self._supervisor is not None:
            self._supervisor.cancel()
            try:
                await self._supervisor
            except asyncio.CancelledError:
                pass
            self._supervisor = None
        if self._consumer is not None:
            self._queue.put_nowait(("stop", None))
            try:
                await asyncio.wait_for(self._consumer, self.action_timeout)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                pass
            self._consumer = None
        self._set_state("down: stopped")

    async def send_action(self, action: Mapping[str, Any], *, expect_list: bool = False,
                          timeout: float | None = None, check: bool = True) -> AmiResponse:
        """Send one action and wait for Asterisk's answer.

        ``expect_list``: a *List action (CoreShowChannels, QueueStatus, ...): also collect
        the events carrying its ActionID until the ``...Complete`` event, in
        ``response.events``.  ``timeout`` defaults to ``action_timeout``.  ``check``:
        raise ``AmiActionError`` on ``Response: Error``.

        Raises ``AmiNotConnected`` (not sent), ``AmiActionTimeout``, ``AmiConnectionLost``
        (sent, link dropped before the answer; never re-sent), ``AmiActionError``.
        """
        if not self._up or self._writer is None:
            raise AmiNotConnected(f"the AMI link is {self.state}; {action.get('Action', '?')} not sent")
        return await self._send(action, expect_list=expect_list, timeout=timeout, check=check)

    # -------------------------------------------------------------- sending

    async def _send(self, action: Mapping[str, Any], *, expect_list: bool = False,
                    timeout: float | None = None, check: bool = True,
                    on_response: Callable[[AmiResponse], None] | None = None) -> AmiResponse:
        writer = self._writer
        if writer is None:
            raise AmiNotConnected(f"the AMI link is {self.state}")
        action = dict(action)
        name = str(action.get("Action", "?"))
        action_id = str(action.get("ActionID") or f"{self._id_prefix}-{next(self._ids)}")
        action["ActionID"] = action_id
        data = _serialise(action)
        if action_id in self._pending:
            raise ValueError(f"ActionID {action_id!r} is already in flight")
        future = asyncio.get_running_loop().create_future()
        self._pending[action_id] = _Pending(name, future, expect_list, on_response=on_response)
        timeout = self.action_timeout if timeout is None else timeout

        async def roundtrip() -> AmiResponse:
            writer.write(data)
            await writer.drain()
            return await future

        try:
            response = await asyncio.wait_for(roundtrip(), timeout)
        except asyncio.TimeoutError:
            log.warning("ami.action_timeout", action=name, action_id=action_id, timeout_s=timeout)
            raise AmiActionTimeout(f"{name} (ActionID {action_id}) got no answer within {timeout:g} s") from None
        except (ConnectionError, OSError) as exc:
            raise AmiConnectionLost(f"{name} (ActionID {action_id}) could not be sent: {exc}") from None
        finally:
            self._pending.pop(action_id, None)
        if check and not response.success:
            raise AmiActionError(f"{name} failed: {response.message or response.get('Response')}", response)
        return response

    def _fail_pending(self, reason: str) -> None:
        pending, self._pending = self._pending, {}
        for action_id, p in pending.items():
            if not p.future.done():
                p.future.set_exception(AmiConnectionLost(
                    f"{p.name} (ActionID {action_id}): the AMI link dropped before Asterisk answered "
                    f"({reason}); it was not re-sent and Asterisk may or may not have acted on it"))
                p.future.exception()   # mark retrieved: the waiter may already be gone

    # ------------------------------------------------------------- receiving

    def wants(self, event_name: str, text: str) -> bool:
        """Whether an event (its name, its raw text) goes to ``on_event`` under the filter."""
        if self._wanted is None:
            return True
        verdict = self._verdicts.get(event_name)
        if verdict is None:
            verdict = self._verdict(event_name)
        return verdict == _KEEP or verdict == _CHECK_VARIABLE and self._varset_wanted(text)

    def _verdict(self, event_name: str) -> int:
        """_KEEP, _DROP or _CHECK_VARIABLE for an event name as sent (cached per spelling)."""
        name = event_name.strip().lower()
        if self._wanted is None or name not in self._wanted:
            verdict = _DROP if self._wanted is not None else _KEEP
        elif name == "varset" and self._varset_prefixes is not None:
            verdict = _CHECK_VARIABLE
        else:
            verdict = _KEEP
        if len(self._verdicts) < 1024:
            self._verdicts[event_name] = verdict
        return verdict

    def _varset_wanted(self, text: str) -> bool:
        match = _VARIABLE.search(text)
        variable = match.group(1).strip().lstrip("_").upper() if match else ""
        return bool(variable) and variable.startswith(self._varset_prefixes)

    def _for_pending_list(self, text: str) -> bool:
        """Whether this message may carry the ActionID of a *List action in flight."""
        if not any(p.expect_list and not p.future.done() for p in self._pending.values()):
            return False
        match = _ACTION_ID.search(text)
        return match is not None and match.group(1) in self._pending

    def _route(self, text: str) -> None:
        """One raw message from the wire: to its pending action, or to the event queue."""
        if self._wanted is not None:
            # Fast path: an event message starts with its Event line.  Unwanted events
            # (most of them: VarSet, Newexten, ...) are dropped without being parsed,
            # unless they belong to a list action in flight.
            match = _EVENT_LINE.match(text)
            if match is not None:
                name = match.group(1)
                verdict = self._verdicts.get(name)
                if verdict is None:
                    verdict = self._verdict(name)
                if (verdict == _DROP or verdict == _CHECK_VARIABLE and not self._varset_wanted(text)) \
                        and not (self._pending and self._for_pending_list(text)):
                    self.dropped_events += 1
                    return
        headers = parse_message(text)
        if not headers:
            return
        action_id = is_response = event_name = event_list = None
        for key, value in headers:
            lower = key.lower()
            if lower == "actionid":
                action_id = value if action_id is None else action_id
            elif lower == "response":
                is_response = True
            elif lower == "event":
                event_name = value if event_name is None else event_name
            elif lower == "eventlist":
                event_list = value if event_list is None else event_list
        pending = self._pending.get(action_id) if action_id is not None else None
        if pending is not None and not pending.future.done():
            if is_response and pending.response is None:
                pending.response = headers
                response = AmiResponse(_as_message(headers))
                if not pending.expect_list or not response.success:
                    self._resolve(pending, response)
                return
            if event_name is not None and pending.expect_list:
                if (event_list or "").lower() == "complete" or event_name.endswith("Complete"):
                    response = AmiResponse(_as_message(pending.response or headers), pending.events)
                    self._resolve(pending, response)
                else:
                    pending.events.append(_as_event(headers))
                return
        if event_name is not None:
            if self._wanted is not None and not self.wants(event_name, text):
                self.dropped_events += 1   # an event whose first line was not its Event line
                return
            self._deliver(_as_event(headers))
        elif is_response:
            log.debug("ami.late_response", action_id=action_id)

    def _resolve(self, pending: _Pending, response: AmiResponse) -> None:
        pending.future.set_result(response)
        if pending.on_response is not None:
            pending.on_response(response)

    async def _read_loop(self, reader: asyncio.StreamReader) -> str:
        """Read until the link drops; fail the actions in flight at once; return why it dropped."""
        reason = await self._read(reader)
        self._fail_pending("client stopped" if self._stopping else reason)
        return reason

    async def _read(self, reader: asyncio.StreamReader) -> str:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        buffer = ""
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    return self._drop_reason or "connection closed by Asterisk"
                buffer += decoder.decode(chunk)
                if "\n" not in buffer:
                    continue
                parts = _BLANK_LINE.split(buffer)
                buffer = parts.pop()
                for part in parts:
                    try:
                        self._route(part)
                    except Exception:   # noqa: BLE001 - one bad message never drops the link
                        log.exception("ami.bad_message", size=len(part))
                if len(buffer) > _MAX_MESSAGE_CHARS:
                    return f"a message longer than {_MAX_MESSAGE_CHARS} characters"
        except (ConnectionError, OSError) as exc:
            return self._drop_reason or f"connection lost: {exc.__class__.__name__}: {exc}"

    def _deliver(self, event: dict[str, str]) -> None:
        """Hand an event on in arrival order: at once when nothing is waiting before it
        (plain function listeners then cost no task switch per event), else through the
        queue.  A listener's awaitable result is awaited by the consumer before the next
        listener sees the event, and before any later event."""
        if self._handling or not self._queue.empty():
            self._queue.put_nowait(("event", event))
            return
        pending = self._call_listeners(event, 0)
        if pending is not None:
            self._queue.put_nowait(("await", (event, *pending)))

    def _call_listeners(self, event: dict[str, str], first: int) -> tuple[Awaitable[None], int] | None:
        """Call the listeners from index ``first`` on, each guarded, until one returns an
        awaitable: return it with that listener's index (the caller awaits it, then goes on
        with the next listener)."""
        listeners = self._listeners
        for index in range(first, len(listeners)):
            try:
                result = listeners[index](event)
            except Exception:   # noqa: BLE001 - one listener's bug never stops the others or the stream
                self._log_listener_failure(listeners[index], event)
                continue
            if inspect.isawaitable(result):
                return result, index
        return None

    async def _finish_event(self, event: dict[str, str], pending: tuple[Awaitable[None], int] | None) -> None:
        """Await a listener's result, then run the listeners after it (in order)."""
        while pending is not None:
            awaitable, index = pending
            try:
                await awaitable
            except asyncio.CancelledError:
                raise
            except Exception:   # noqa: BLE001 - one listener's bug never stops the others or the stream
                self._log_listener_failure(self._listeners[index], event)
            pending = self._call_listeners(event, index + 1)

    def _log_listener_failure(self, listener: EventHandler, event: dict[str, str]) -> None:
        try:
            log.exception("ami.event_handler_failed", listener=_listener_name(listener),
                          ami_event=event.get("Event"), linkedid=event.get("Linkedid"), ami_headers=dict(event))
        except Exception:   # noqa: BLE001 - not even a broken log setup
            pass

    async def _connected(self) -> None:
        try:
            result = self._on_connected() if self._on_connected else None
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception:   # noqa: BLE001 - a handler bug never stops the stream
            try:
                log.exception("ami.on_connected_failed")
            except Exception:   # noqa: BLE001 - not even a broken log setup
                pass

    async def _consume(self) -> None:
        """The one task that handles queued events, in arrival order."""
        while True:
            kind, payload = await self._queue.get()
            if kind == "stop":
                return
            self._handling = True
            try:
                if kind == "event":
                    await self._finish_event(payload, self._call_listeners(payload, 0))
                elif kind == "await":
                    event, awaitable, index = payload
                    await self._finish_event(event, (awaitable, index))
                else:
                    await self._connected()
            finally:
                self._handling = False

    # ------------------------------------------------------------ the link

    def _set_state(self, state: str) -> None:
        if state == self.state:
            return
        self.state = state
        if self._on_state is not None:
            try:
                self._on_state(state)
            except Exception:   # noqa: BLE001
                log.exception("ami.state_handler_failed")

    def backoff(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failures (>= 1): exponential, jittered."""
        ceiling = min(self.reconnect_max, self.reconnect_min * 2 ** min(max(failures - 1, 0), 40))
        return self._rng.uniform(max(self.reconnect_min, ceiling / 2), ceiling)

    async def _supervise(self) -> None:
        failures = 0
        self._set_state("connecting")
        while not self._stopping:
            self.connect_attempts += 1
            reason, up_for = await self._session()
            if self._stopping:
                return
            if up_for is not None and up_for >= self.stable_after:
                failures = 0
            failures += 1
            delay = self.backoff(failures)
            self.last_error = reason
            self._set_state(f"down: {reason}")
            log.warning("ami.retry", reason=reason, retry_in_s=round(delay, 2), failures=failures,
                        host=self.host, port=self.port)
            await asyncio.sleep(delay)

    async def _session(self) -> tuple[str, float | None]:
        """One connection: (why it ended, how long it was up or None if never)."""
        loop = asyncio.get_running_loop()
        where = f"{self.host}:{self.port}"
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port),
                                                    self.connect_timeout)
        except asyncio.TimeoutError:
            return f"connecting to {where} timed out after {self.connect_timeout:g} s", None
        except OSError as exc:
            return f"cannot connect to {where}: {exc.strerror or exc}", None

        self._writer = writer
        self._drop_reason = None
        reader_task: asyncio.Task | None = None
        pinger: asyncio.Task | None = None
        reason = "connection closed"
        up_at: float | None = None
        try:
            try:
                banner = await asyncio.wait_for(reader.readline(), self.connect_timeout)
            except asyncio.TimeoutError:
                return f"no AMI banner from {where} within {self.connect_timeout:g} s", None
            except (ConnectionError, OSError) as exc:
                return f"connection to {where} lost before the banner: {exc}", None
            banner_text = banner.decode("utf-8", "replace").strip()
            if not banner_text.startswith("Asterisk Call Manager/"):
                return f"{where} is not an Asterisk manager interface (banner {banner_text[:60]!r})", None
            self.version = banner_text.partition("/")[2]

            reader_task = asyncio.create_task(self._read_loop(reader), name="ami-reader")

            def logged_in(response: AmiResponse) -> None:
                # Runs inside the reader as the Login answer is routed, so the on_connected
                # marker is queued before any event that follows the login.
                if response.success:
                    self._up = True
                    self._up_event.set()
                    self._queue.put_nowait(("connected", None))

            try:
                login = await self._send({"Action": "Login", "Username": self.username,
                                          "Secret": self._secret, "Events": self._events_filter},
                                         check=False, on_response=logged_in)
            except AmiActionTimeout:
                return f"no answer to Login from {where} within {self.action_timeout:g} s", None
            except AmiError as exc:
                return f"connection to {where} lost during login ({exc.__class__.__name__})", None
            if not login.success:
                detail = login.message or "rejected"
                reason = f"authentication failed for user {self.username!r}"
                if detail.lower() != "authentication failed":
                    reason += f" ({detail})"
                log.error("ami.login_failed", user=self.username, host=self.host, port=self.port,
                          asterisk_said=detail)
                return reason, None

            up_at = loop.time()
            self.last_error = None
            self._set_state("up")
            log.info("ami.up", user=self.username, host=self.host, port=self.port, version=self.version)
            pinger = asyncio.create_task(self._ping_loop(writer), name="ami-ping")
            reason = await reader_task
            if not self._stopping:
                log.warning("ami.link_lost", reason=reason, host=self.host, port=self.port)
            return reason, loop.time() - up_at
        finally:
            self._up = False
            self._up_event.clear()
            self._writer = None
            for task in (pinger, reader_task):
                if task is not None and not task.done():
                    task.cancel()
            writer.transport.abort()
            self._fail_pending("client stopped" if self._stopping else (self._drop_reason or reason))

    async def _ping_loop(self, writer: asyncio.StreamWriter) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            if self._writer is not writer:
                return
            try:
                await self._send({"Action": "Ping"}, check=False)
            except AmiActionTimeout:
                self._drop_reason = f"no answer to Ping within {self.action_timeout:g} s"
                log.warning("ami.ping_timeout", timeout_s=self.action_timeout, host=self.host, port=self.port)
                writer.transport.abort()
                return
            except AmiError:
                return
