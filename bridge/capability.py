"""Capabilities: what each part of the daemon plugs in, found through entry points.

A capability (the PBX link, the forum, the desk, callbacks, ...) is a subclass of
:class:`Capability` that overrides what it has; everything defaults to nothing.
The daemon (``bridge/daemon.py``), the web app (``bridge/web/app.py``), the command
line (``bridge/cli.py``), health and the AMI subscription (``bridge/pbx/subscription.py``)
loop over the installed capabilities and name none of them.

Capabilities are found through the entry-point group ``hotline_bridge.capabilities``
(``[project.entry-points]`` in pyproject.toml): each entry names a Capability class,
instantiated once per daemon, web app or command line.  So a package outside
``bridge`` (the top-level ``callbacks/``, a site's own add-on) plugs in by declaring an
entry point, without an edit in ``bridge/``.

All parts of all capabilities are taken in ``order`` (then ``name``): the database is
prepared in that order, links start in that order and stop in the reverse, routers
and pages are mounted in that order.  The daemon's own parts come first (database,
scheduler) and last (the web server).

What a capability may supply, and when it is used:

===========================  ====================================================
``commands()``               click groups added to ``hotline-bridge``
``prepare(runtime)``         at daemon start, in a worker thread, before any link:
                             migrate, ensure reference data (raise ``StartError``)
``links(runtime)``           ``(name, link)`` pairs: long-running parts with
                             ``async start()`` / ``async stop()``
``ami``                      its part of the AMI subscription: event names and
                             the ``VarSet`` variables it reads (manager.conf)
``ami_listeners(runtime)``   callables given every AMI event, in order
``consumers(runtime)``       durable domain-event consumers (``bridge.domain_events``)
``mount(app, runtime)``      its routers and pages on the FastAPI app
``health_components``        the /healthz components it reports ("not configured"
                             until it says otherwise)
``health_probes()``          component -> check run at each /healthz request
``essential_components``     /healthz answers 503 while one of them is not up
``live_topics``              the live-feed topics (``bridge.live``) it publishes
===========================  ====================================================
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    import click
    from fastapi import FastAPI

    from bridge.config import Config
    from bridge.db.engine import Database
    from bridge.domain_events import Consumer, DomainEvents
    from bridge.health import Health
    from bridge.live import LiveEvents

ENTRY_POINT_GROUP = "hotline_bridge.capabilities"

AmiListener = Callable[[dict[str, str]], Awaitable[None] | None]


class StartError(Exception):
    """The daemon cannot start; the message says what to fix."""


class CapabilityError(Exception):
    """An installed capability cannot be loaded, or clashes with another; the message names it."""


class Link(Protocol):
    """A long-lived part the daemon starts and stops (PBX link, forum link)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class AmiSubscription:
    """AMI events a capability needs from Asterisk; ``variables``: the ``VarSet`` variables it
    reads (a leading ``_``/``__`` of inherited variables is allowed in manager.conf)."""

    events: tuple[str, ...] = ()
    variables: tuple[str, ...] = ()

    def __or__(self, other: AmiSubscription) -> AmiSubscription:
        events = _ordered_union(self.events, other.events)
        variables = _ordered_union(self.variables, other.variables)
        if variables and "VarSet" not in events:
            events += ("VarSet",)
        return AmiSubscription(events, variables)


def _ordered_union(first: Iterable[str], second: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*first, *second]))


class Capability:
    """One capability; a subclass overrides what it has (see the module docstring)."""

    name: ClassVar[str] = ""
    order: ClassVar[int] = 100
    ami: ClassVar[AmiSubscription] = AmiSubscription()
    health_components: ClassVar[tuple[str, ...]] = ()
    essential_components: ClassVar[tuple[str, ...]] = ()
    live_topics: ClassVar[tuple[str, ...]] = ()

    def commands(self) -> Iterable[click.Command]:
        return ()

    def prepare(self, runtime: Runtime) -> None:
        """Runs in a worker thread; may raise :class:`StartError`."""

    def links(self, runtime: Runtime) -> Iterable[tuple[str, Link]]:
        return ()

    def ami_listeners(self, runtime: Runtime) -> Iterable[AmiListener]:
        return ()

    def consumers(self, runtime: Runtime) -> Iterable[Consumer]:
        return ()

    def mount(self, app: FastAPI, runtime: Runtime) -> None:
        """Include routers, add pages; ``runtime.links`` is empty when no daemon runs the app."""

    def health_probes(self) -> Mapping[str, Callable[[Database], None]]:
        """Component -> a check that raises when the component is down (run in a worker thread)."""
        return {}

    def __repr__(self) -> str:
        return f"<capability {self.name} order={self.order}>"


@dataclass
class Runtime:
    """What capabilities get from the process that runs them (the daemon or a bare web app)."""

    config: Config
    db: Database
    health: Health
    live: LiveEvents
    capabilities: tuple[Capability, ...]
    scheduler: Any = None
    events: DomainEvents | None = None
    links: dict[str, Link] = field(default_factory=dict)
    ami_listeners: list[AmiListener] = field(default_factory=list)
    announce: Callable[[str], None] = print

    @cached_property
    def ami_subscription(self) -> AmiSubscription:
        return subscription_of(self.capabilities)


def subscription_of(capabilities: Iterable[Capability]) -> AmiSubscription:
    """The union of the capabilities' AMI subscriptions, in capability order."""
    union = AmiSubscription()
    for capability in capabilities:
        union = union | capability.ami
    return union


def load_capabilities(group: str = ENTRY_POINT_GROUP) -> tuple[Capability, ...]:
    """A fresh instance of every installed capability, in ``order``; clashes are refused."""
    found: list[Capability] = []
    for entry in entry_points(group=group):
        try:
            cls = entry.load()
            capability = cls()
        except Exception as exc:
            raise CapabilityError(f"capability {entry.name!r} ({entry.value}) cannot be loaded: "
                                  f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(capability, Capability):
            raise CapabilityError(f"entry point {entry.name!r} ({entry.value}) is not a bridge.capability.Capability")
        found.append(capability)
    capabilities = tuple(sorted(found, key=lambda c: (c.order, c.name)))
    check_no_clashes(capabilities)
    return capabilities


def check_no_clashes(capabilities: Iterable[Capability]) -> None:
    """Two capabilities may not share a name, a health component or a command group name."""
    def claims(what: str, items: Callable[[Capability], Iterable[str]]) -> None:
        owner: dict[str, str] = {}
        for capability in capabilities:
            for item in items(capability):
                if item in owner:
                    raise CapabilityError(f"capabilities {owner[item]!r} and {capability.name!r} "
                                          f"both declare the {what} {item!r}")
                owner[item] = capability.name

    claims("name", lambda c: [c.name])
    claims("health component", lambda c: c.health_components)
    claims("command", lambda c: [command.name for command in c.commands()])


def installed() -> tuple[Capability, ...]:
    """The installed capabilities (loaded once per process for module-level users: the CLI)."""
    global _installed
    if _installed is None:
        _installed = load_capabilities()
    return _installed


_installed: tuple[Capability, ...] | None = None
