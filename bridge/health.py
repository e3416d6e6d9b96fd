"""What each part of the daemon is doing, told honestly for /healthz.

A component is "not configured", "connecting", "up" or "down: <reason>".  Parts
report their own state; nothing here probes on their behalf.  (A capability may give
/healthz a probe run at request time, as the database's real query: bridge/web/app.py.)
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

NOT_CONFIGURED = "not configured"
CONNECTING = "connecting"
UP = "up"


def down(reason: str) -> str:
    return f"down: {reason}"


@dataclass
class ComponentState:
    state: str
    since: datetime
    detail: dict = field(default_factory=dict)


class Health:
    """``components``: those listed from the start ("not configured" until their part says
    otherwise; the daemon lists every capability's); a part may also report one not listed."""

    def __init__(self, components: Iterable[str] = ()) -> None:
        now = datetime.now(timezone.utc)
        self._states = {name: ComponentState(NOT_CONFIGURED, now) for name in components}
        # Problems that stop nothing now but need a person (e.g. next year's calendar is missing).
        self._warnings: dict[str, str] = {}

    def warn(self, key: str, message: str | None) -> None:
        """Set (or, with None, clear) the warning ``key``."""
        if message:
            self._warnings[key] = message
        else:
            self._warnings.pop(key, None)

    def set(self, component: str, state: str, **detail) -> None:
        current = self._states.get(component)
        if current is not None and current.state == state:
            current.detail = detail
            return
        self._states[component] = ComponentState(state, datetime.now(timezone.utc), detail)

    def get(self, component: str) -> str:
        return self._states[component].state

    @property
    def healthy(self) -> bool:
        """Up or deliberately not configured; anything connecting or down is not healthy."""
        return all(s.state in (UP, NOT_CONFIGURED) for s in self._states.values())

    def snapshot(self) -> dict:
        return {
            "status": "ok" if self.healthy else "degraded",
            "components": {
                name: {"state": s.state, "since": s.since.isoformat(), **s.detail}
                for name, s in self._states.items()
            },
            "warnings": dict(self._warnings),
        }
