"""What runtimes send to the Runtime API, parsed by h11 server-side, for tests.

The emulator reads streamed response bodies with its own zero-copy reader (the hot path);
a `WireLog` given to `LocalStack(wire=...)` keeps every byte each runtime connection sent and
parses it again with h11, an HTTP parser neither the runtime's client nor the emulator was
written against: request heads, chunked framing and trailers. The tests' `runtime_wire`
fixture fails a test whose runtime sent anything h11 rejects.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import h11

from emulator.http11 import MAX_HEAD, Headers, decode_headers


def _find(headers: Headers, name: str) -> str | None:
    values = [v for k, v in headers if k.lower() == name.lower()]
    return ", ".join(values) if values else None


@dataclass(eq=False)
class WireRequest:
    """One request a runtime sent to the Runtime API, as h11 parsed it."""

    method: str
    target: str
    headers: Headers
    chunks: list[bytes] = field(default_factory=list)  # the body, one piece per chunk
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


class WireLog:
    """The bytes of every connection runtimes opened to the Runtime APIs it is given to."""

    def __init__(self) -> None:
        self._connections: list[bytearray] = []
        self._lock = threading.Lock()

    def tap(self) -> Callable[[bytes], None]:
        """Where one new connection's received bytes go."""
        received = bytearray()
        with self._lock:
            self._connections.append(received)
        return received.extend

    def _parsed(self) -> tuple[list[WireRequest], list[str]]:
        with self._lock:
            connections = [bytes(c) for c in self._connections]
        requests: list[WireRequest] = []
        errors: list[str] = []
        for n, data in enumerate(connections):
            parsed, error = parse_connection(data)
            requests += parsed
            if error is not None:
                errors.append(f"connection {n + 1}: {error}")
        return requests, errors

    @property
    def requests(self) -> list[WireRequest]:
        return self._parsed()[0]

    @property
    def errors(self) -> list[str]:
        """What h11 rejected, per connection (a connection cut short is not an error: its
        last request just stays incomplete)."""
        return self._parsed()[1]

    def to(self, path_suffix: str) -> list[WireRequest]:
        """The requests whose path ends with `path_suffix` (e.g. "/response")."""
        return [r for r in self.requests if r.target.split("?")[0].endswith(path_suffix)]


def parse_connection(data: bytes) -> tuple[list[WireRequest], str | None]:
    """The requests in one connection's bytes, and the error h11 found in them, if any."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
    conn.receive_data(data)
    requests: list[WireRequest] = []
    current: WireRequest | None = None
    at_eof = False
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            return requests, None if at_eof else f"{type(exc).__name__}: {exc}"
        if event is h11.NEED_DATA:
            if at_eof:
                return requests, None
            conn.receive_data(b"")
            at_eof = True
        elif isinstance(event, h11.Request):
            current = WireRequest(
                event.method.decode("latin-1"),
                event.target.decode("latin-1"),
                decode_headers(event.headers.raw_items()),
            )
            requests.append(current)
        elif isinstance(event, h11.Data) and current is not None:
            current.chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage) and current is not None:
            current.trailers = decode_headers(event.headers)
            current.complete = True
            # Answer, so that h11 reads the next request of this connection.
            conn.send(h11.Response(status_code=200, headers=[("Content-Length", "0")]))
            conn.send(h11.EndOfMessage())
            if conn.our_state is not h11.DONE:
                return requests, None  # the request asked to close the connection
            conn.start_next_cycle()
        else:  # ConnectionClosed, or PAUSED
            return requests, None
