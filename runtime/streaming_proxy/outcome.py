"""What became of one request; its log line (``fields``) and its metrics (metrics.py) are views.

Each step of the request path records what it knows as it happens; nothing is read back out
of the log line.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Outcome:
    request_id: str
    started: float  # time.monotonic() when the event was handed out
    method: str | None = None
    path: str | None = None
    upstream_headers_ms: float | None = None  # until the upstream's response head arrived
    status: int | None = None
    bytes_sent: int | None = None  # body bytes streamed, once a response went out
    stream_check_events: int | None = None
    relay: str | None = None  # "redis": a resumable stream carried; "forwarded": a job request
    turn: str | None = None  # the carried answer's turn (its producer logs the same id)
    error: str | None = None
    runtime_api: int | str | None = None  # what the Runtime API answered when not 202
    stream_ms: float | None = None  # until the response ended, when background work followed
    duration_ms: float | None = None

    def responded(self, status: int, bytes_sent: int, error: tuple[str, str] | None) -> None:
        """A response went out: its status, body bytes and the error that ended it, if any."""
        self.status, self.bytes_sent = status, bytes_sent
        if error:
            self.error = f"{error[0]}: {error[1]}"

    def answered(self, runtime_api_status: int) -> None:
        """What the Runtime API answered to the whole response (202: accepted)."""
        if runtime_api_status != 202:
            self.error = self.error or "response not accepted"
            self.runtime_api = runtime_api_status

    def elapsed_ms(self, digits: int = 2) -> float:
        return round((time.monotonic() - self.started) * 1000, digits)

    @property
    def broke_mid_stream(self) -> bool:
        """A response that had started and then failed, or a broken Runtime API link."""
        return self.error is not None and (
            self.bytes_sent is not None or self.runtime_api is not None
        )

    @property
    def level(self) -> str:
        """ERROR for what an operator must look at: server-side failures, a broken stream."""
        server_side = (self.status or 500) >= 500 or self.runtime_api is not None
        return "ERROR" if self.error is not None and server_side else "INFO"

    def fields(self) -> dict[str, Any]:
        """The request log line: what is known, under its JSON name."""
        named = (
            ("method", self.method),
            ("path", self.path),
            ("upstreamHeadersMs", self.upstream_headers_ms),
            ("status", self.status),
            ("bytes", self.bytes_sent),
            ("streamCheckEvents", self.stream_check_events),
            ("relay", self.relay),
            ("turn", self.turn),
            ("error", self.error),
            ("runtimeApi", self.runtime_api),
            ("streamMs", self.stream_ms),
            ("durationMs", self.duration_ms),
        )
        return {"requestId": self.request_id, **{k: v for k, v in named if v is not None}}
