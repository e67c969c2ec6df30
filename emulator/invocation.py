"""One invocation's record and the sinks its response is streamed into.

The Runtime API side writes the runtime's response into a `ResponseSink`: the gateway's
client connection for HTTP requests, or a `MemorySink` for direct `LocalStack.invoke` calls.
Timestamps are `time.perf_counter()` values so benchmarks can subtract them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

GATEWAY_ERROR = {"message": "Internal server error"}
TIMEOUT_ERROR = {"message": "Endpoint request timed out"}


class ResponseSink(Protocol):
    """Where a response goes. Every method may be called from any thread, at most once
    per terminal state; late calls after a terminal state are ignored."""

    status: int | None

    @property
    def started(self) -> bool: ...

    def start(self, prelude: dict[str, Any], first: bytes | memoryview = b"") -> None:
        """Send status and headers (with the first body bytes if they came along); raises
        ValueError when the prelude is malformed."""

    def write(self, data: bytes | memoryview) -> None:
        """Body bytes; a memoryview is valid only during the call."""

    def finish(self) -> None:
        """The body ended normally."""

    def abort(self) -> None:
        """Cut the response mid-stream (no terminating chunk)."""

    def fail(self, status: int, body: dict[str, Any]) -> None:
        """Answer with an error response, or cut if headers were already sent."""


@dataclass(eq=False)
class Invocation:
    """What happened to one event; `stack.invocations` holds these."""

    request_id: str
    event: Any
    payload: bytes = field(repr=False)
    sink: ResponseSink = field(repr=False)
    source: str = "invoke"
    environment: int | None = None  # number of the environment that served it (1, 2, ...)
    submitted_at: float = field(default_factory=time.perf_counter)
    next_handed_out_at: float | None = None
    prelude_at: float | None = None
    first_body_byte_at: float | None = None
    response_done_at: float | None = None
    deadline_ms: int = 0
    deadline: float = 0.0
    prelude: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    timed_out: bool = False
    gateway_error: str | None = None
    bytes: int = 0
    done: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _finished: bool = field(default=False, repr=False)

    @property
    def status(self) -> int | None:
        """HTTP status the client received (None if it never got headers)."""
        return self.sink.status

    def claim_completion(self) -> bool:
        """True for exactly one caller: the one that gets to end this invocation."""
        with self._lock:
            if self._finished:
                return False
            self._finished = True
            return True

    @property
    def finished(self) -> bool:
        return self._finished

    def refuse(self, status: int, body: dict[str, Any], error: dict[str, Any]) -> None:
        """End an invocation no runtime saw: API Gateway or Lambda refused it."""
        if not self.claim_completion():
            return
        self.error = error
        self.response_done_at = time.perf_counter()
        self.sink.fail(status, body)
        self.done.set()


class MemorySink:
    """Collects a response in memory for direct invokes."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.prelude: dict[str, Any] | None = None
        self.chunks: list[bytes] = []
        self.error_body: dict[str, Any] | None = None
        self.aborted = False
        self._started = False

    @property
    def started(self) -> bool:
        return self._started

    def start(self, prelude: dict[str, Any], first: bytes | memoryview = b"") -> None:
        self.prelude = prelude
        status = prelude.get("statusCode", 200)
        self.status = status if isinstance(status, int) else None
        self._started = True
        if first:
            self.chunks.append(bytes(first))

    def write(self, data: bytes | memoryview) -> None:
        self.chunks.append(bytes(data))

    def finish(self) -> None:
        pass

    def abort(self) -> None:
        self.aborted = True

    def fail(self, status: int, body: dict[str, Any]) -> None:
        if self._started:
            self.aborted = True
            return
        self.status = status
        self.error_body = body

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


@dataclass
class InvokeResult:
    """Outcome of `LocalStack.invoke`: the prelude (None if the runtime never sent a valid
    one), the body bytes, and the error from trailers, `/error`, a crash or a timeout."""

    prelude: dict[str, Any] | None
    body: bytes
    error: dict[str, Any] | None
    record: Invocation = field(repr=False)

    @property
    def status(self) -> int | None:
        return self.record.status

    @property
    def timed_out(self) -> bool:
        return self.record.timed_out
