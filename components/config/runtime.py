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
    background_hold: bool = Field(
        True,
        description="keep the environment unfrozen while LibreChat finishes background generation",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="runtime log level"
    )
