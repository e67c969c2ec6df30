"""What arrives at the Runtime API, one request at a time, and the record tests read of it.

Every request a runtime sends is parsed by h11 (server side: chunked framing, trailers,
header syntax), so the runtime's hand-written client is checked by an independent parser. A
`WireLog` given to `LocalStack(wire=...)` keeps each request as h11 delivered it, trailers
included, and every framing error h11 found; the tests' `runtime_wire` fixture fails a test
that caused any.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import h11

from emulator.http11 import Headers, ServerConnection, collect

JSON = ("Content-Type", "application/json")


def _find(headers: Headers, name: str) -> str | None:
    values = [v for k, v in headers if k.lower() == name.lower()]
    return ", ".join(values) if values else None


@dataclass(eq=False)
class WireRequest:
    """One request a runtime sent to the Runtime API, as h11 parsed it."""

    method: str
    target: str
    headers: Headers
    chunks: list[bytes] = field(default_factory=list)  # the body, piece by piece as received
    trailers: Headers = field(default_factory=list)
    complete: bool = False  # the body reached its end (terminating chunk or full length)

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def header(self, name: str) -> str | None:
        """The value of header `name` (any case; repeated values joined with ", ")."""
        return _find(self.headers, name)

    def trailer(self, name: str) -> str | None:
        return _find(self.trailers, name)


@dataclass(eq=False)
class WireLog:
    """Everything runtimes sent to the Runtime APIs it was given to, and every framing error
    h11 found in it (a well-behaved runtime causes none)."""

    requests: list[WireRequest] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, request: WireRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def error(self, text: str) -> None:
        with self._lock:
            self.errors.append(text)

    def to(self, path_suffix: str) -> list[WireRequest]:
        """The requests whose path ends with `path_suffix` (e.g. "/response")."""
        with self._lock:
            return [r for r in self.requests if r.target.split("?")[0].endswith(path_suffix)]


class Exchange:
    """One request on a Runtime API connection: its head, its body as it arrives (each piece
    recorded when a wire log is on), and the answer."""

    __slots__ = ("http", "record", "request", "trailers")

    def __init__(
        self, http: ServerConnection, request: h11.Request, record: WireRequest | None
    ) -> None:
        self.http = http
        self.request = request
        self.record = record
        self.trailers: Headers = []

    def header(self, name: bytes) -> str:
        """A request header by its lower-case name, '' if absent."""
        for key, value in self.request.headers:
            if key == name:
                return value.decode("latin-1")
        return ""

    def body(self) -> Iterator[bytes]:
        record = self.record
        for piece in self.http.body(self.trailers):
            if record is not None:
                record.chunks.append(bytes(piece))
            yield piece
        if record is not None:
            record.trailers = list(self.trailers)
            record.complete = True

    def read_body(self, limit: int) -> bytes:
        return collect(self.body(), limit)

    @property
    def last_recv_at(self) -> float:
        """When the bytes handed out last were received (time.perf_counter())."""
        return self.http.last_recv_at

    def reply(self, status: int, body: dict[str, Any], *, close: bool = False) -> None:
        headers = [JSON, ("Connection", "close")] if close else [JSON]
        self.http.respond(status, headers, json.dumps(body).encode())
