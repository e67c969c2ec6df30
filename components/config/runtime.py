"""`runtime`: the streaming runtime's tunables; each key's default and bounds are the runtime's
own (runtime/streaming_proxy/variables.py declares them once; docs/runtime-variables.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field
from streaming_proxy.variables import Env, Number, Variable

from components.config.base import Section

if TYPE_CHECKING:
    LogLevel = str
else:  # the runtime's choices, as a Literal so the schema and the docs list them
    LogLevel = Literal[Env.LOG_LEVEL.parse.choices]


def runtime_default(variable: Variable[Any], description: str, ge: float | None = None) -> Any:
    """A key the program passes as `variable`: its default and bounds are the runtime's
    (`ge` may raise the lower one)."""
    parser = variable.parse
    low, high = (parser.low, parser.high) if isinstance(parser, Number) else (None, None)
    return Field(variable.default_value, description=description, ge=ge or low, le=high)


class RuntimeConfig(Section):
    ready_timeout_seconds: float = runtime_default(
        Env.UPSTREAM_READY_TIMEOUT,
        "how long LibreChat may take to become healthy (≤ `function.timeoutSeconds`)",
        ge=1,  # a stack asks for at least a second
    )
    sse_keepalive_seconds: float = runtime_default(
        Env.SSE_KEEPALIVE_INTERVAL,
        "SSE keep-alive comment after this much silence on an event stream; `0` = off",
    )
    stream_idle_timeout_seconds: float = runtime_default(
        Env.STREAM_IDLE_TIMEOUT,
        "a stream that carries no byte from LibreChat this long (keep-alive comments "
        "do not count) ends with an error trailer, so no stream pins an environment; `0` = off",
    )
    title_wait_seconds: float = runtime_default(
        Env.BACKGROUND_TITLE_WAIT,
        "after a new conversation's first answer, how long the environment stays "
        "unfrozen for LibreChat to save its title (standard mode); `0` = off",
    )
    background_hold: bool = runtime_default(
        Env.BACKGROUND_HOLD,
        "keep the environment unfrozen while LibreChat finishes background generation",
    )
    log_level: LogLevel = runtime_default(Env.LOG_LEVEL, "runtime log level")
