"""The runtime's environment variables, each declared once, in the class `Env` below.

Everything else is derived from it: `settings.load()` reads them with their parsers, the
upstream's environment leaves out the ones not passed to it (`RUNTIME_ONLY`), the program's
contract and stack defaults (components/contract.py, components/config/runtime.py) take their
defaults and bounds from here, and docs/runtime-variables.md is this table printed
(`make docs` runs ``python -m streaming_proxy.variables --markdown`` in runtime/; a test
keeps the page current).

Adding a variable is one entry in `Env` (plus the `Settings` field that `load()` fills).
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SSM_NAME = re.compile(r"^(/[A-Za-z0-9_.\-]+)+$|^[A-Za-z0-9_.\-]+$|^arn:aws[a-z-]*:ssm:.+$")


class Invalid(ValueError):
    """One variable's value is wrong; the message is the whole problem, naming the variable."""


class Parser(Protocol[T_co]):
    """Turns a variable's text into a value, or raises Invalid naming the problem."""

    @property
    def accepts(self) -> str:
        """What the docs page says the variable takes."""
        ...

    def __call__(self, name: str, raw: str) -> T_co: ...


@dataclass(frozen=True)
class Text:
    """Any text; `starts` / `contains` are what it must start with / contain."""

    starts: str = ""
    contains: str = ""
    note: str = ""

    def __call__(self, name: str, raw: str) -> str:
        if self.starts and raw and not raw.startswith(self.starts):
            raise Invalid(f"{name}={raw!r} must start with {self.starts!r}{self.note}")
        if self.contains and self.contains not in raw:
            raise Invalid(f"{name} must contain {self.contains}{self.note}")
        return raw

    @property
    def accepts(self) -> str:
        if self.starts:
            return f"text starting with `{self.starts}`"
        if self.contains:
            return f"text containing `{self.contains}`"
        return "text"


@dataclass(frozen=True)
class Number:
    """A number within [low, high]."""

    low: float
    high: float

    def __call__(self, name: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise Invalid(f"{name}={raw!r} is not a number") from None
        if not self.low <= value <= self.high:
            raise Invalid(f"{name}={raw!r} must be between {self.low:g} and {self.high:g}")
        return value

    @property
    def accepts(self) -> str:
        return f"number {self.low:g}\N{EN DASH}{self.high:g}"


@dataclass(frozen=True)
class Integer:
    """A number within [low, high], its fraction dropped."""

    low: int
    high: int

    def __call__(self, name: str, raw: str) -> int:
        return int(Number(self.low, self.high)(name, raw))

    @property
    def accepts(self) -> str:
        return f"integer {self.low}\N{EN DASH}{self.high}"


@dataclass(frozen=True)
class HostPort:
    """host:port."""

    def __call__(self, name: str, raw: str) -> str:
        if not raw.rpartition(":")[2].isdigit():
            raise Invalid(f"{name} must be host:port")
        return raw

    accepts = "host:port"


@dataclass(frozen=True)
class Flag:
    """on/off (or true/false, 1/0), any case."""

    def __call__(self, name: str, raw: str) -> bool:
        value = raw.lower()
        if value not in {"on", "off", "true", "false", "1", "0"}:
            raise Invalid(f"{name}={value!r} must be on or off")
        return value in {"on", "true", "1"}

    accepts = "`on` or `off`"


@dataclass(frozen=True)
class Choice:
    """One of a few words, any case (given back upper-case)."""

    choices: tuple[str, ...]

    def __call__(self, name: str, raw: str) -> str:
        value = raw.upper()
        if value not in self.choices:
            listed = ", ".join(self.choices[:-1]) + " or " + self.choices[-1]
            raise Invalid(f"{name}={value!r} must be {listed}")
        return value

    @property
    def accepts(self) -> str:
        return "one of " + ", ".join(f"`{c}`" for c in self.choices)


@dataclass(frozen=True)
class Command:
    """A shell-style command line."""

    def __call__(self, name: str, raw: str) -> tuple[str, ...]:
        try:
            argv = tuple(shlex.split(raw))
        except ValueError as exc:
            raise Invalid(f"{name} cannot be parsed as a command line: {exc}") from None
        if not argv:
            raise Invalid(f"{name} is empty")
        return argv

    accepts = "shell-style command line"


@dataclass(frozen=True)
class Paths:
    """':'-separated paths; empty means none."""

    def __call__(self, name: str, raw: str) -> tuple[str, ...]:
        return tuple(d for d in raw.split(":") if d.strip())

    accepts = "`:`-separated paths"


@dataclass(frozen=True)
class Regex:
    """A Python regular expression."""

    def __call__(self, name: str, raw: str) -> re.Pattern[str]:
        try:
            return re.compile(raw)
        except re.error as exc:
            raise Invalid(f"{name} is not a valid regular expression: {exc}") from None

    accepts = "regular expression"


@dataclass(frozen=True)
class SsmSecrets:
    """JSON object of environment variable name to SSM parameter name (or ARN)."""

    def __call__(self, name: str, raw: str) -> dict[str, str]:
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise Invalid(f"{name} is not valid JSON: {exc.msg} at position {exc.pos}") from None
        if not isinstance(value, dict):
            raise Invalid(f'{name} must be a JSON object {{"ENV_NAME": "/ssm/parameter/name"}}')
        problems: list[str] = []
        for env_name, param in value.items():
            if not _ENV_NAME.match(env_name):
                problems.append(f"{name} key {env_name!r} is not a valid environment variable name")
            elif not isinstance(param, str) or not _SSM_NAME.match(param):
                problems.append(f"{name}[{env_name!r}] is not an SSM parameter name: {param!r}")
        if problems:
            raise Invalid("; ".join(problems))
        return value

    accepts = 'JSON `{"ENV_NAME": "/ssm/parameter"}`'


@dataclass(frozen=True)
class RedisUrl:
    """A redis://, rediss:// or unix:// URL; never quoted back (it may carry a password)."""

    def __call__(self, name: str, raw: str) -> str:
        if not raw.startswith(("redis://", "rediss://", "unix://")):
            raise Invalid(f"{name} must be a redis://, rediss:// or unix:// URL")
        return raw

    accepts = "`redis://`, `rediss://` or `unix://` URL"


class Variable(Generic[T]):
    """One environment variable: its default (as text, like the environment gives it; None:
    unset), parser, what it means, and whether the upstream (LibreChat) sees it too."""

    def __init__(
        self,
        default: str | None,
        parse: Parser[T],
        meaning: str,
        *,
        to_upstream: bool = False,
        empty_is_a_value: bool = False,
    ) -> None:
        self.name = ""  # the attribute's name in Env (__set_name__)
        self.default = default
        self.parse = parse
        self.meaning = meaning
        self.to_upstream = to_upstream
        self.empty_is_a_value = empty_is_a_value  # "" is a value ("off"), not "unset"

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Env.{self.name}"

    @property
    def default_value(self) -> T:
        """The parsed default (the value the runtime uses when the variable is unset)."""
        if self.default is None:
            raise LookupError(f"{self.name} has no default")
        return self.parse(self.name, self.default)

    def raw(self, env: Mapping[str, str]) -> str | None:
        """The variable's text in `env` (stripped), or its default text when unset/empty."""
        value = env.get(self.name)
        if value is None:
            return self.default
        value = value.strip()
        if not value and not self.empty_is_a_value:
            return self.default
        return value

    def read(self, env: Mapping[str, str], problems: list[str]) -> T | None:
        """The parsed value (the default when unset); a problem is appended, not raised, so
        one error can name every wrong variable. None when unset without default, or wrong
        (then the default, if any)."""
        raw = self.raw(env)
        if raw is None:
            return None
        try:
            return self.parse(self.name, raw)
        except Invalid as exc:
            problems.append(str(exc))
            return None if self.default is None else self.default_value


# Where the image links LibreChat's writable paths (uploads, images, logs): /tmp starts empty.
_DIRS = "/tmp/librechat/uploads:/tmp/librechat/images:/tmp/librechat/logs"  # noqa: S108


class Env:
    """The table: every variable the runtime reads or withholds from the upstream.

    The attribute name is the variable's name; order is the docs page's order.
    """

    AWS_LAMBDA_RUNTIME_API = Variable(
        None, HostPort(), "host:port of the Runtime API (set by Lambda and the emulator; required)"
    )
    AWS_LAMBDA_FUNCTION_NAME = Variable(
        "local", Text(), "FunctionName dimension of the runtime's metrics (set by Lambda)",
        to_upstream=True,
    )  # fmt: skip
    AWS_LAMBDA_MAX_CONCURRENCY = Variable(
        "1", Integer(1, 1024),
        "invocations served at once; Managed Instances set it (and the initialization type): "
        "no freeze, so no background hold",
    )  # fmt: skip
    AWS_LAMBDA_INITIALIZATION_TYPE = Variable(
        None, Text(), "`lambda-managed-instances` on Managed Instances, `snap-start` under "
        "SnapStart: the runtime then runs its [SnapStart lifecycle](snapstart.md) (set by Lambda)",
        to_upstream=True,
    )  # fmt: skip
    _HANDLER = Variable(None, Text(), "set by Lambda; not read")
    LAMBDA_RUNTIME_DIR = Variable(None, Text(), "set by Lambda; not read")
    UPSTREAM_COMMAND = Variable(
        "node /app/api/server/index.js", Command(), "command line of the upstream server"
    )
    UPSTREAM_HOST = Variable(
        "127.0.0.1", Text(), "address the upstream listens on (given to it as HOST)"
    )
    UPSTREAM_PORT = Variable(
        "3080", Integer(1, 65535), "port the upstream listens on (given to it as PORT)"
    )
    UPSTREAM_HEALTH_PATH = Variable(
        "/health", Text(starts="/"),
        "GET path that answers 200 once listening; ready also needs start-up complete: /readyz "
        "200, or the line LibreChat logs at its end (readiness.py)",
    )  # fmt: skip
    UPSTREAM_READY_TIMEOUT = Variable(
        "60", Number(0.1, 900),
        "seconds the upstream may take to become healthy, counting only time spent waiting for "
        "it (frozen time between invocations does not count)",
    )  # fmt: skip
    UPSTREAM_INIT_WAIT = Variable(
        "9.5", Number(0, 10),
        "seconds of Lambda's 10 s init spent waiting for health before init ends anyway "
        '("async init")',
    )  # fmt: skip
    UPSTREAM_DIRS = Variable(
        _DIRS, Paths(),
        "directories created before the upstream starts: /tmp starts empty in Lambda and the "
        "image links LibreChat's writable paths there; empty = none",
        empty_is_a_value=True,
    )  # fmt: skip
    CONFIG_S3_BUCKET = Variable(None, Text(), "bucket of the config object (with the key)")
    CONFIG_S3_KEY = Variable(None, Text(), "key of the config object (with the bucket)")
    CONFIG_PATH = Variable(
        "/tmp/librechat.yaml",  # noqa: S108 - Lambda's only writable directory
        Text(), "where the config is written; given to the upstream as CONFIG_PATH",
        to_upstream=True,
    )  # fmt: skip
    CONFIG_DOMAIN_FROM = Variable(
        None, Text(), "domain replaced everywhere in the config by the host of DOMAIN_SERVER"
    )
    DOMAIN_SERVER = Variable(
        None, Text(), "public URL of the server (LibreChat's own)", to_upstream=True
    )
    SSM_SECRETS = Variable(
        None, SsmSecrets(),
        "secrets resolved with decryption at cold start into the upstream's environment only",
    )  # fmt: skip
    BASE_PATH = Variable(
        None, Text(), "path prefix stripped from requests (custom domain base path mappings)"
    )
    SSE_KEEPALIVE_INTERVAL = Variable(
        "20", Number(0, 900),
        "seconds of silence on a text/event-stream response before an SSE comment is sent; 0 = off",
    )  # fmt: skip
    DEADLINE_MARGIN = Variable(
        "0.5", Number(0, 60),
        "seconds before the invocation deadline at which the response is ended and the upstream "
        "aborted",
    )  # fmt: skip
    STREAM_IDLE_TIMEOUT = Variable(
        "120", Number(0, 900),
        "seconds a started response may go without a byte from the upstream (keep-alive comments "
        "do not count) before it is ended with Runtime.StreamError trailers; 0 = off",
    )  # fmt: skip
    BACKGROUND_HOLD = Variable(
        "on", Flag(),
        "hold `/next` while work a chat answer started runs (the job, then the title); never on "
        "Managed Instances",
    )  # fmt: skip
    BACKGROUND_HOLD_PATH = Variable(
        r"^/api/agents/chat(/[^/]+)?$", Regex(), "POST paths that may start background work"
    )
    BACKGROUND_STATUS_PATH = Variable(
        "/api/agents/chat/status/{id}", Text(contains="{id}", note=" (the conversation id)"),
        "status path polled with the caller's credentials",
    )  # fmt: skip
    BACKGROUND_POLL_INTERVAL = Variable("0.5", Number(0.01, 60), "seconds between status polls")
    BACKGROUND_TITLE_WAIT = Variable(
        "20", Number(0, 300),
        "seconds the hold waits for a new conversation's title after the answer; 0 = off (so when "
        'TITLE_CONVO is not "true")',
    )  # fmt: skip
    TITLE_CONVO = Variable(
        "true", Text(), "LibreChat's own: titles are generated only when `true`",
        to_upstream=True, empty_is_a_value=True,
    )  # fmt: skip
    STREAM_CHECK_PATH = Variable(
        "/_runtime/stream-check", Text(starts="/", note=" (or be empty: off)"),
        "GET path the runtime answers itself with a paced event stream (`n` <= 20 events, "
        "`interval_ms` <= 1000 apart; stream_check.py); empty = off",
        empty_is_a_value=True,
    )  # fmt: skip
    STREAM_RELAY = Variable(
        "on", Flag(),
        "carry resumable LibreChat streams (v0.8.2+) between environments through Redis "
        "(resumable.py); only where environments freeze and a Redis is configured",
    )  # fmt: skip
    STREAM_RELAY_REDIS = Variable(
        None, RedisUrl(),
        "Redis of the stream relay; unset: LibreChat's `REDIS_URI` when `USE_REDIS=true` "
        "(also when `REDIS_URI` comes from SSM_SECRETS)",
    )  # fmt: skip
    STREAM_RELAY_RETENTION = Variable(
        "1800", Number(60, 86400), "seconds a turn's events stay in Redis after their last write"
    )
    STREAM_RELAY_MAX_EVENTS = Variable(
        "20000", Integer(100, 1_000_000),
        "events kept per turn (approximate trimming, oldest first)",
    )  # fmt: skip
    STREAM_RELAY_HEARTBEAT = Variable(
        "5", Number(1, 60),
        "seconds without a sign of life from the holding environment before the reader of its "
        "answer ends the stream (an `error` event, then a clean end)",
    )  # fmt: skip
    LOG_LEVEL = Variable(
        "INFO", Choice(("DEBUG", "INFO", "WARNING", "ERROR")),
        "DEBUG and INFO log every request, WARNING less (lines carrying metrics are always "
        "written)",
    )  # fmt: skip


#: Every variable, in the table's order.
VARIABLES: tuple[Variable[Any], ...] = tuple(
    v for v in vars(Env).values() if isinstance(v, Variable)
)

#: What the upstream does not inherit: Lambda's Runtime API (a child could take other
#: invocations' events from /next) and plumbing, and the runtime's own variables.
RUNTIME_ONLY = frozenset(v.name for v in VARIABLES if not v.to_upstream)


def markdown() -> str:
    """docs/runtime-variables.md: the table above, printed."""
    lines = [
        "# The runtime's environment variables",
        "",
        "<!-- generated from runtime/streaming_proxy/variables.py by `make docs`; edit there -->",
        "",
        "The streaming runtime (`runtime/streaming_proxy`) reads these at cold start; all are "
        "optional except `AWS_LAMBDA_RUNTIME_API`, which Lambda sets. A wrong value fails the "
        "init with one error naming every wrong variable. *To LibreChat*: whether the upstream "
        "process inherits the variable (the others are withheld from it).",
        "",
        "| Variable | Default | Accepts | To LibreChat | Meaning |",
        "|---|---|---|---|---|",
    ]
    for v in VARIABLES:
        default = "(unset)" if v.default is None else f"`{v.default}`"
        to_upstream = "yes" if v.to_upstream else "no"
        lines.append(
            f"| `{v.name}` | {default} | {v.parse.accepts} | {to_upstream} | {v.meaning} |"
        )
    lines += [
        "",
        "boto3 honours `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3` and `AWS_ENDPOINT_URL_SSM`.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m streaming_proxy.variables --markdown")
    sys.stdout.write(markdown())
