"""Load and validate config.toml: the one place every setting is read from.

Every problem in a file is reported at once, each line naming the key path
(``pbx.ami_port``) and what is expected.  Secrets are never in the file: a key
ending in ``_env`` names the environment variable that holds the secret, and a
missing variable is a configuration error like any other.
"""
from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bridge.site.office_hours import parse_period

DEFAULT_CONFIG_PATH = "config.toml"
CONFIG_PATH_ENV = "HOTLINE_BRIDGE_CONFIG"

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class ConfigError(Exception):
    """A configuration file that cannot be used; ``problems`` lists every reason."""

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))

    def render(self) -> str:
        lines = [f"configuration {self.path} has {len(self.problems)} problem(s):"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


# --------------------------------------------------------------------------- types


def _check_env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError("expected the name of an environment variable, like HOTLINE_BRIDGE_SECRET")
    return value


EnvName = Annotated[str, AfterValidator(_check_env_name)]
Port = Annotated[int, Field(ge=1, le=65535)]


def _check_hhmm(value: str) -> str:
    if not _HHMM.match(value):
        raise ValueError("expected a time of day as HH:MM, like 08:30")
    return value


HHMM = Annotated[str, AfterValidator(_check_hhmm)]


def _check_period(value: str) -> str:
    parts = value.split("-")
    if len(parts) != 2 or not all(_HHMM.match(p.strip()) for p in parts):
        raise ValueError("expected a period as HH:MM-HH:MM, like 08:30-12:00")
    start, end = (p.strip() for p in parts)
    if start >= end:
        raise ValueError(f"period {value!r} ends before it starts")
    return f"{start}-{end}"


Period = Annotated[str, AfterValidator(_check_period)]


def _check_loopback(value: str) -> str:
    if value not in ("127.0.0.1", "localhost", "::1") and not value.startswith("127."):
        raise ValueError("the sandbox only runs on loopback: use 127.0.0.1")
    return value


LoopbackHost = Annotated[str, AfterValidator(_check_loopback)]


class Section(BaseModel):
    # extra="forbid": a misspelt key is an error, never silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# ------------------------------------------------------------------------ sections


class SiteConfig(Section):
    name: str = "96811 热线"
    timezone: str = "Asia/Shanghai"
    locale: Literal["zh_CN", "en"] = "zh_CN"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; expected an IANA name like Asia/Shanghai")
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class OfficeHoursConfig(Section):
    # Office periods on a working day (China calendar, make-up days included).
    periods: list[Period] = ["08:30-12:00", "14:00-17:30"]

    @field_validator("periods")
    @classmethod
    def _ordered(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one office period is needed")
        bounds = [parse_period(p) for p in value]
        for (_, end), (start, _) in zip(bounds, bounds[1:]):
            if start < end:
                raise ValueError("periods must be in order and must not overlap")
        return value


class DatabaseConfig(Section):
    # sqlite:///relative/path is taken relative to the configuration file's folder.
    url: str = "sqlite:///state/hotline-bridge.sqlite3"
    # Optional: a variable holding the database password, inserted into the URL.
    password_env: EnvName | None = None

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError("expected a sqlite:/// or postgresql:// URL")
        return value


class WebConfig(Section):
    host: str = "127.0.0.1"
    port: Port = 8680
    # The address operators type; used in links, e.g. https://hotline.example.org
    public_url: str = "http://127.0.0.1:8680"
    # Plain-HTTP sites on a trusted LAN may set this false; otherwise cookies are Secure.
    secure_cookies: bool = True
    session_secret_env: EnvName = "HOTLINE_BRIDGE_SESSION_SECRET"


class AmiConfig(Section):
    host: str = "127.0.0.1"
    port: Port = 5038
    username: str = "hotline-bridge"
    secret_env: EnvName = "HOTLINE_BRIDGE_AMI_SECRET"
    # Seconds: keepalive ping interval and how long a ping or an action may take.
    ping_interval_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    action_timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    # Reconnect back-off (exponential with jitter) bounds, seconds.
    reconnect_min_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    reconnect_max_s: Annotated[float, Field(gt=0, le=3600)] = 60.0

    @model_validator(mode="after")
    def _backoff_order(self) -> AmiConfig:
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s must not exceed reconnect_max_s")
        return self


def _check_sql_name(value: str) -> str:
    if not _SQL_NAME.match(value):
        raise ValueError(f"{value!r} is not a table name; expected letters, digits and '_' "
                         "(not starting with a digit), at most 63, like cel")
    return value


_SQL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
SqlName = Annotated[str, AfterValidator(_check_sql_name)]


class PbxConfig(Section):
    # "asterisk": connect to the Asterisk below; "none": run without a PBX.
    backend: Literal["asterisk", "none"] = "asterisk"
    hotline_numbers: Annotated[list[Annotated[str, Field(pattern=r"^\+?\d{3,15}$")]], Field(min_length=1)] = ["96811"]
    queue: str = "hotline"
    ami: AmiConfig = AmiConfig()
    # The daemon's FastAGI server (case status line), where the dialplan's AGI() points.
    agi_host: str = "127.0.0.1"
    agi_port: Port = 4573
    # Asterisk's CDR sqlite3 file (master.db; or its folder), read to recover calls missed while
    # down; CEL is read from cel.db beside it (bridge.pbx.recovery.cel_path_for).
    cdr_path: str | None = None
    # Or CEL/CDR in PostgreSQL (Asterisk's cel_pgsql / cdr_pgsql): the tables' database URLs
    # (cdr_url defaults to cel_url), table names, and the variable holding their password.
    cel_url: str | None = None
    cdr_url: str | None = None
    cel_table: SqlName = "cel"
    cdr_table: SqlName = "cdr"
    cel_password_env: EnvName | None = None
    # Folder holding recordings and messages (as the daemon sees it).
    recordings_dir: str | None = None

    @field_validator("cel_url", "cdr_url")
    @classmethod
    def _postgresql_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgresql+psycopg://")):
            raise ValueError("expected a postgresql:// URL of the database Asterisk's cel_pgsql/cdr_pgsql "
                             "write into, like postgresql://asterisk@db.example.org/asterisk "
                             "(SQLite CEL/CDR files: use cdr_path)")
        return value

    @model_validator(mode="after")
    def _one_cel_source(self) -> PbxConfig:
        if self.cdr_url and not self.cel_url:
            raise ValueError("cdr_url is set but cel_url is not; recovery reads CEL first: set cel_url too")
        if self.cel_url and self.cdr_path:
            raise ValueError("cdr_path and cel_url are both set; choose the SQLite files (cdr_path) "
                             "or PostgreSQL (cel_url)")
        return self


class SandboxConfig(Section):
    # The loopback Asterisk test bed started by `hotline-bridge sandbox start`.
    enabled: bool = True
    # Debian unstable root holding Asterisk 22; built once, cached outside the repo.
    asterisk_root: str = "/var/cache/hotline-bridge/asterisk-root"
    # Where the sandbox keeps its configuration, logs, recordings (relative to the config file).
    state_dir: str = "state/sandbox"
    host: LoopbackHost = "127.0.0.1"
    trunk_port: Port = 5160
    carrier_port: Port = 5170
    ami_port: Port = 5038
    # Desk phones: extension -> loopback SIP port where the phone (e.g. SIPp) listens.
    phones: dict[Annotated[str, Field(pattern=r"^\d{2,8}$")], Port] = {"8001": 5181, "8002": 5182}

    @model_validator(mode="after")
    def _distinct_ports(self) -> SandboxConfig:
        ports = [self.trunk_port, self.carrier_port, self.ami_port, *self.phones.values()]
        if len(set(ports)) != len(ports):
            raise ValueError("trunk_port, carrier_port, ami_port and phone ports must all differ")
        return self


# A unit's code (config keys here, the units file in bridge/departments): upper case, digits, '-'.
UNIT_CODE_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,31}$")
_GROUP_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,60}$")


def _check_unit_code(value: str) -> str:
    if not UNIT_CODE_PATTERN.match(value):
        raise ValueError(f"{value!r} is not a unit code; expected upper-case letters, digits and '-', "
                         "like CITY-GAJ")
    return value


def _check_group_name(value: str) -> str:
    if not _GROUP_NAME.match(value):
        raise ValueError(f"{value!r} is not a Discourse group name; expected letters, digits, '_', '-' "
                         "or '.', like city-gaj")
    return value


UnitCode = Annotated[str, AfterValidator(_check_unit_code)]
GroupName = Annotated[str, AfterValidator(_check_group_name)]


class DiscourseConfig(Section):
    base_url: str = "http://127.0.0.1:4200"
    api_username: str = "hotline96811"
    api_key_env: EnvName = "HOTLINE_BRIDGE_DISCOURSE_API_KEY"
    webhook_secret_env: EnvName = "HOTLINE_BRIDGE_DISCOURSE_WEBHOOK_SECRET"
    # Unit code -> Discourse category id.
    categories: dict[UnitCode, Annotated[int, Field(ge=1)]] = {}
    # Unit code -> the Discourse group of its spokespeople; a unit left out: its code in lower case.
    groups: dict[UnitCode, GroupName] = {}
    poll_interval_s: Annotated[float, Field(ge=5, le=3600)] = 60.0
    # Threads of open cases read each polling cycle (0: none), and how soon one may be read again.
    verify_per_cycle: Annotated[int, Field(ge=0, le=20)] = 3
    verify_min_interval_s: Annotated[float, Field(ge=60, le=86400)] = 600.0

    @field_validator("groups")
    @classmethod
    def _groups_of_mapped_units(cls, groups: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        categories = info.data.get("categories")
        if categories is None:  # categories itself is wrong: reported there
            return groups
        unmapped = sorted(set(groups) - set(categories))
        if unmapped:
            raise ValueError("; ".join(
                f"unit {unit} has a group but no category; add {unit} to forum.discourse.categories "
                f"or remove forum.discourse.groups.{unit}" for unit in unmapped))
        by_group: dict[str, list[str]] = {}
        for unit in sorted(categories):
            by_group.setdefault(groups.get(unit, unit.lower()).lower(), []).append(unit)
        shared = {group: units for group, units in by_group.items() if len(units) > 1}
        if shared:
            raise ValueError("; ".join(
                f"units {', '.join(units)} share the group {group!r}; each unit needs its own"
                for group, units in sorted(shared.items())))
        return groups


class ForumConfig(Section):
    # "builtin": the daemon serves the units' boards itself; "discourse": a Discourse site.
    backend: Literal["builtin", "discourse"] = "builtin"
    retry_backoff_s: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)] = [30, 120, 600, 1800, 3600]
    # How the platform's "answer within 3 days" counts: "calendar" (72 clock hours, the platform's
    # 3天; the default) or "working" (72 hours of working days of the China calendar).
    answer_days: Literal["calendar", "working"] = "calendar"
    discourse: DiscourseConfig = DiscourseConfig()


# The hours callers are never phoned in (site's zone), whatever the configuration says:
# no call before 08:00 or from 21:00 on (many callers are elderly; a ring at night alarms them).
# callbacks/windows.py clips every window to these bounds as well.
CALLBACK_DAY_STARTS = "08:00"
CALLBACK_DAY_ENDS = "21:00"
# The attempt results a retry ladder exists for (callbacks.retry): operator_no_answer is not an
# attempt on the caller (due again at once), unknown goes to a person, answered gets an outcome.
CALLBACK_RETRIED_RESULTS = ("busy", "no_answer", "failed", "voicemail")
_LADDER_STEP = re.compile(r"^([1-9]\d{0,4})([mhd])$")
_STEP_MINUTES = {"m": 1, "h": 60, "d": 1440}
LADDER_NEXT_DAY = "next_day"


def _day_periods(value: list[str]) -> list[str]:
    """Calling windows of one kind of day: in order and apart (each inside the day bounds)."""
    bounds = [parse_period(p) for p in value]
    for (_, end), (start, _) in zip(bounds, bounds[1:]):
        if start < end:
            raise ValueError("windows must be in order and must not overlap")
    return value


def _overlap(one: str, other: str) -> bool:
    (start, end), (other_start, other_end) = parse_period(one), parse_period(other)
    return start < other_end and other_start < end


def _inside_the_day(period: str) -> str:
    start, end = period.split("-")
    if start < CALLBACK_DAY_STARTS or end > CALLBACK_DAY_ENDS:
        inside = max(start, CALLBACK_DAY_STARTS), min(end, CALLBACK_DAY_ENDS)
        hint = f", e.g. {inside[0]}-{inside[1]}" if inside[0] < inside[1] else ""
        raise ValueError(f"{period!r} reaches into the night: callers are phoned only between "
                         f"{CALLBACK_DAY_STARTS} and {CALLBACK_DAY_ENDS} (a fixed bound){hint}")
    return period


DayPeriod = Annotated[Period, AfterValidator(_inside_the_day)]
DayWindows = Annotated[list[DayPeriod], AfterValidator(_day_periods)]


def ladder_step_minutes(step: str) -> int:
    """A ladder step's wait in minutes ("15m", "4h", "1d"; ``next_day`` counts as one day)."""
    if step == LADDER_NEXT_DAY:
        return 1440
    amount, unit = _LADDER_STEP.match(step).groups()
    return int(amount) * _STEP_MINUTES[unit]


def _check_ladder_step(value: str) -> str:
    if value != LADDER_NEXT_DAY and not _LADDER_STEP.match(value):
        raise ValueError(f"{value!r} is not a wait; expected minutes, hours or days like 15m, 4h, 1d, "
                         f"or {LADDER_NEXT_DAY} (the first window of the next day)")
    if ladder_step_minutes(value) > 7 * 1440:
        raise ValueError(f"{value!r} is longer than a week (7d); a caller waiting for an answer "
                         "should not wait that long for the next try")
    return value


def _sorted_ladder(value: list[str]) -> list[str]:
    waits = [ladder_step_minutes(step) for step in value]
    if waits != sorted(waits):
        raise ValueError(f"the waits {value} must not get shorter from one try to the next "
                         f"({LADDER_NEXT_DAY} counts as 1d)")
    return value


LadderStep = Annotated[str, AfterValidator(_check_ladder_step)]
Ladder = Annotated[list[LadderStep], Field(min_length=1, max_length=20), AfterValidator(_sorted_ladder)]


class CallingWindowsConfig(Section):
    # Which kind a day is comes from the China working calendar (bridge.site.calendar).
    working_day: Annotated[DayWindows, Field(min_length=1)] = ["09:00-12:00", "14:00-20:00"]
    weekend: DayWindows = ["10:00-12:00", "14:00-18:00"]
    holiday: DayWindows = []


class BestTimeHoursConfig(Section):
    morning: DayPeriod = "08:00-12:00"
    afternoon: DayPeriod = "12:00-18:00"
    evening: DayPeriod = "18:00-21:00"

    @model_validator(mode="before")
    @classmethod
    def _no_hours_for_any(cls, data: object) -> object:
        if isinstance(data, dict) and "any" in data:
            raise ValueError("'any' has no hours of its own: it is every calling window; remove the key")
        return data


class RetryLaddersConfig(Section):
    # After the 1st, 2nd, ... attempt with that result; past the last step the task is given up.
    busy: Ladder = ["15m", "30m", "1h"]
    no_answer: Ladder = ["1h", "4h", LADDER_NEXT_DAY]
    failed: Ladder = ["30m", "2h", LADDER_NEXT_DAY]
    voicemail: Ladder = ["1h", "4h", LADDER_NEXT_DAY]

    @model_validator(mode="before")
    @classmethod
    def _known_results(cls, data: object) -> object:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(CALLBACK_RETRIED_RESULTS))
            if unknown:
                raise ValueError(
                    f"unknown attempt result {', '.join(map(repr, unknown))}; a ladder exists for "
                    f"{', '.join(CALLBACK_RETRIED_RESULTS)} (operator_no_answer is not an attempt on "
                    "the caller, unknown goes to a person)")
        return data


class CallbacksConfig(Section):
    # Calling windows per kind of day, local time in [site] timezone; never at night.
    windows: CallingWindowsConfig = CallingWindowsConfig()
    # The hours of the caller's stated best time (callbacks.best_time codes).
    best_time_hours: Annotated[BestTimeHoursConfig, Field(validate_default=True)] = BestTimeHoursConfig()
    # Waits before the next try, one ladder per attempt result.
    retry: RetryLaddersConfig = RetryLaddersConfig()
    # Attempts on the caller before a task is given up (operator_no_answer does not count).
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 5
    # Hangup causes (Q.850) meaning the number itself is wrong: no retry, an operator checks it.
    check_number_causes: Annotated[list[Annotated[int, Field(ge=1, le=127)]], Field(max_length=20)] = [1, 22, 28]
    # Minutes the owner has, once the task is due, before it goes to the shared pool.
    owner_timeout_minutes: Annotated[int, Field(ge=1, le=10080)] = 30
    # "asterisk": Originate through the PBX; "twilio": through Twilio's API.
    dialler: Literal["asterisk", "twilio"] = "asterisk"
    # The dialplan context that rings the operator, then the caller.
    originate_context: str = "hotline-callback"
    # Seconds the operator's desk phone rings before the callback is given up as operator_no_answer.
    operator_ring_s: Annotated[int, Field(ge=5, le=120)] = 30

    @field_validator("windows", mode="before")
    @classmethod
    def _windows_per_kind_of_day(cls, value: object) -> object:
        if isinstance(value, list):
            raise ValueError("is now one list per kind of day: [callbacks.windows] with working_day = [...], "
                             "weekend = [...] and holiday = [...]")
        return value

    @field_validator("check_number_causes")
    @classmethod
    def _distinct_causes(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("a hangup cause is listed twice")
        return value

    @field_validator("best_time_hours")
    @classmethod
    def _best_times_can_be_met(cls, hours: BestTimeHoursConfig, info: ValidationInfo) -> BestTimeHoursConfig:
        # A caller who chose a best time must have some working day on which it can be met.
        windows = info.data.get("windows")
        if windows is None:  # windows itself is wrong: reported there
            return hours
        unmet = [f"{name} ({period}) meets no working-day window ({', '.join(windows.working_day)}): "
                 "callers who chose it would never be phoned"
                 for name, period in hours.model_dump().items()
                 if not any(_overlap(period, window) for window in windows.working_day)]
        if unmet:
            raise ValueError("; ".join(unmet))
        return hours


class TwilioConfig(Section):
    enabled: bool = False
    account_sid: str = ""
    auth_token_env: EnvName = "HOTLINE_BRIDGE_TWILIO_AUTH_TOKEN"
    # The number callers see, E.164 (Twilio sends SMS and places calls from it).
    from_number: str = "+8657096811"
    # Only for tests against a local server speaking Twilio's API.
    api_base_url: str | None = None

    @field_validator("from_number")
    @classmethod
    def _e164(cls, value: str) -> str:
        if not re.match(r"^\+[1-9]\d{6,14}$", value):
            raise ValueError(f"{value!r} is not an E.164 number; write + country code and digits, e.g. +8657096811")
        return value

    @field_validator("api_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL, e.g. http://127.0.0.1:8901")
        return value

    @model_validator(mode="after")
    def _sid_when_enabled(self) -> TwilioConfig:
        if self.enabled and not re.match(r"^AC[0-9a-f]{32}$", self.account_sid):
            raise ValueError("account_sid must look like AC followed by 32 hex digits when Twilio is enabled")
        return self


class DeskConfig(Section):
    # A signed-in operator whose desk page has not been seen this long (no live stream: browser
    # closed, computer asleep) is "away": out of the operator queue, still signed in.
    presence_timeout_s: int = Field(default=120, ge=30, le=3600)


class LoggingConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    # "auto": readable on a terminal, JSON lines otherwise (journald).
    format: Literal["auto", "console", "json"] = "auto"


class Config(Section):
    site: SiteConfig = SiteConfig()
    office_hours: OfficeHoursConfig = OfficeHoursConfig()
    database: DatabaseConfig = DatabaseConfig()
    web: WebConfig = WebConfig()
    pbx: PbxConfig = PbxConfig()
    sandbox: SandboxConfig = SandboxConfig()
    forum: ForumConfig = ForumConfig()
    callbacks: CallbacksConfig = CallbacksConfig()
    twilio: TwilioConfig = TwilioConfig()
    desk: DeskConfig = DeskConfig()
    logging: LoggingConfig = LoggingConfig()

    # Set by load_config: the folder relative paths are resolved against.
    base_dir: Path = Field(default=Path("."), exclude=True)
    # The secrets the enabled features need, read from the environment at validation.
    _secrets: dict[str, str] = PrivateAttr(default_factory=dict)

    def path(self, value: str) -> Path:
        """A path from the file, resolved against the configuration file's folder."""
        p = Path(value)
        return p if p.is_absolute() else (self.base_dir / p)

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL: relative SQLite paths resolved, psycopg 3 driver, password from env."""
        from sqlalchemy.engine import make_url

        url = make_url(self.database.url)
        if url.get_backend_name() == "sqlite":
            if url.database and url.database != ":memory:":
                url = url.set(database=str(self.path(url.database).resolve()))
        else:
            url = url.set(drivername="postgresql+psycopg")
            if self.database.password_env:
                url = url.set(password=os.environ.get(self.database.password_env, ""))
        return url.render_as_string(hide_password=False)

    @property
    def cel_database_url(self) -> str | None:
        """[pbx] cel_url for SQLAlchemy (psycopg 3 driver, password from cel_password_env)."""
        return self._asterisk_url(self.pbx.cel_url)

    @property
    def cdr_database_url(self) -> str | None:
        """[pbx] cdr_url (default: cel_url) for SQLAlchemy, like :attr:`cel_database_url`."""
        return self._asterisk_url(self.pbx.cdr_url or self.pbx.cel_url)

    def _asterisk_url(self, value: str | None) -> str | None:
        if value is None:
            return None
        from sqlalchemy.engine import make_url

        url = make_url(value).set(drivername="postgresql+psycopg")
        if self.pbx.cel_password_env:
            url = url.set(password=self.secret(self.pbx.cel_password_env))
        return url.render_as_string(hide_password=False)

    def secret(self, env_name: str) -> str:
        """The secret held in environment variable ``env_name``, as read when the file was validated."""
        if env_name in self._secrets:
            return self._secrets[env_name]
        return os.environ[env_name]


# --------------------------------------------------------------------- validation


def _required_secrets(config: Config) -> list[tuple[str, str]]:
    """(key path, variable) for every secret the enabled features need."""
    needed = [("web.session_secret_env", config.web.session_secret_env)]
    if config.pbx.backend == "asterisk":
        needed.append(("pbx.ami.secret_env", config.pbx.ami.secret_env))
    if config.forum.backend == "discourse":
        needed.append(("forum.discourse.api_key_env", config.forum.discourse.api_key_env))
        needed.append(("forum.discourse.webhook_secret_env", config.forum.discourse.webhook_secret_env))
    if config.twilio.enabled or config.callbacks.dialler == "twilio":
        needed.append(("twilio.auth_token_env", config.twilio.auth_token_env))
    if config.database.password_env:
        needed.append(("database.password_env", config.database.password_env))
    if config.pbx.backend == "asterisk" and config.pbx.cel_password_env:
        needed.append(("pbx.cel_password_env", config.pbx.cel_password_env))
    return needed


def _cross_checks(config: Config) -> list[str]:
    problems = []
    if config.callbacks.dialler == "twilio" and not config.twilio.enabled:
        problems.append("callbacks.dialler: is 'twilio' but twilio.enabled is false; enable [twilio] or use 'asterisk'")
    if config.callbacks.dialler == "asterisk" and config.pbx.backend == "none":
        problems.append("callbacks.dialler: is 'asterisk' but pbx.backend is 'none'; configure [pbx] or use 'twilio'")
    return problems


def _describe(error: dict) -> str:
    loc = ".".join(str(part) for part in error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{loc}: unknown key; check its spelling against the documented keys in config.toml"
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    if kind.endswith(("_type", "_parsing")):
        got = type(error.get("input")).__name__
        message = f"{message} (got {got} {error.get('input')!r})"
    return f"{loc}: {message}" if loc else message


def validate(data: dict, *, path: str = "<config>", base_dir: Path | None = None,
             environ: dict[str, str] | None = None) -> Config:
    """Validate parsed TOML; raise ConfigError listing every problem."""
    environ = os.environ if environ is None else environ
    try:
        config = Config.model_validate({**data, "base_dir": base_dir or Path(".")})
    except ValidationError as exc:
        raise ConfigError(path, [_describe(e) for e in exc.errors()]) from None
    problems = _cross_checks(config)
    for key, variable in _required_secrets(config):
        if not environ.get(variable):
            problems.append(f"{key}: environment variable {variable} is not set (it must hold the secret)")
    if problems:
        raise ConfigError(path, problems)
    config._secrets.update({variable: environ[variable] for _, variable in _required_secrets(config)})
    return config


def resolve_config_path(explicit: str | None) -> Path:
    return Path(explicit or os.environ.get(CONFIG_PATH_ENV) or DEFAULT_CONFIG_PATH)


def load_config(path: str | Path, *, environ: dict[str, str] | None = None) -> Config:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(str(path), ["the file is not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from None
    if "base_dir" in data:
        raise ConfigError(str(path), ["base_dir: unknown key; check its spelling against the documented keys in config.toml"])
    return validate(data, path=str(path), base_dir=path.resolve().parent, environ=environ)
