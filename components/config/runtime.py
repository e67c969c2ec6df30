"""`runtime`: the streaming runtime's tunables (runtime/streaming_proxy/__init__.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from components.config.base import Section


class RuntimeConfig(Section):
    ready_timeout_seconds: float = Field(
        60.0,
        ge=1,
        le=900,
        description="how long LibreChat may take to become healthy (≤ `function.timeoutSeconds`)",
    )
    sse_keepalive_seconds: float = Field(
        20.0,
        ge=0,
        le=900,
        description="SSE keep-alive comment after this much silence on an event stream; `0` = off",
    )
    stream_idle_timeout_seconds: float = Field(
        120.0,
        ge=0,
        le=900,
        description="a stream that carries no byte from LibreChat this long (keep-alive comments "
        "do not count) ends with an error trailer, so no stream pins an environment; `0` = off",
    )
    title_wait_seconds: float = Field(
        20.0,
        ge=0,
        le=300,
        description="after a new conversation's first answer, how long the environment stays "
        "unfrozen for LibreChat to save its title (standard mode); `0` = off",
    )
    background_hold: bool = Field(
        True,
        description="keep the environment unfrozen while LibreChat finishes background generation",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="runtime log level"
    )
