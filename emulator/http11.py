"""Server-side HTTP/1.1 for the Runtime API and the gateway, on blocking sockets.

h11 parses every request head and every ordinary body, and frames every response (chunked,
Content-Length or close-delimited, trailers included). One path stays hand-written because it
is the hot path: the body of a streamed response the emulator relays from the runtime to the
client, read zero-copy into one reused buffer and forwarded as memoryviews (h11 would copy
each piece twice, which made it the bottleneck of `make bench`'s throughput). Tests check
that path against h11 (`emulator.wire`). Every receive is timestamped, and writes go out
vectored with TCP_NODELAY.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any, cast

import h11

log = logging.getLogger("emulator")

RECV_SIZE = 64 * 1024  # h11 parses 64 KB pieces about twice as fast as 256 KB ones
RELAY_BUFFER = 256 * 1024  # the zero-copy relay's reused receive buffer
MAX_HEAD = 64 * 1024  # request line + headers, and one chunk-size or trailer line
MAX_TRAILERS = 200

Headers = list[tuple[str, str]]
JSON = ("Content-Type", "application/json")


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"body larger than {limit} bytes")
        self.limit = limit


def _protocol_error(message: str) -> h11.RemoteProtocolError:
    return h11.RemoteProtocolError(message, error_status_hint=400)


class ServerConnection:
    """One server-side connection and the request it is serving.

    Used by one thread at a time; a handler may pass it to another thread while it waits (the
    Runtime API answers /next from the thread that submits an event). `tap`, if given, gets
    every byte received (the wire log of the tests).
    """

    def __init__(self, sock: socket.socket, tap: Callable[[bytes], None] | None = None) -> None:
        self.sock = sock
        self.tap = tap
        self.h11 = self._new_h11()
        self.request: h11.Request | None = None
        self.last_recv_at = 0.0  # time.perf_counter() of the last bytes received
        self._carry: bytes | None = None  # read past a relayed body: the next request's start

    @staticmethod
    def _new_h11() -> h11.Connection:
        return h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)

    def _recv(self, size: int) -> bytes:
        try:
            data = self.sock.recv(size)
        except OSError:
            data = b""
        self.last_recv_at = time.perf_counter()
        if self.tap is not None:
            self.tap(data)
        return data

    def _next_event(self) -> h11.Event | None:
        """The next event, receiving as needed (None: h11 paused, which a server that reads
        each request to its end never sees); raises h11.RemoteProtocolError."""
        conn = self.h11
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Event):
                return event
            if event is h11.PAUSED:
                return None
            conn.receive_data(self._recv(RECV_SIZE))  # b"" is EOF: h11 reports it

    def next_request(self) -> h11.Request | None:
        """The next request's head (after the previous exchange); None when the client closed
        the connection between requests or it cannot carry another one."""
        conn = self.h11
        if self._carry is not None:  # the previous body was relayed past h11
            self.h11 = conn = self._new_h11()
            if self._carry:  # (b"" would tell h11 the connection closed)
                conn.receive_data(self._carry)
            self._carry = None
        elif conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        elif conn.our_state is not h11.IDLE:
            return None
        event = self._next_event()
        self.request = event if isinstance(event, h11.Request) else None
        if self.request is not None and conn.they_are_waiting_for_100_continue:
            self.send([h11.InformationalResponse(status_code=100, headers=[])])
        return self.request

    def header(self, name: bytes) -> str:
        """A header of the current request by its lower-case name, '' if absent."""
        for key, value in self.request.headers if self.request is not None else ():
            if key == name:
                return value.decode("latin-1")
        return ""

    def body(self, trailers: Headers | None = None) -> Iterator[bytes]:
        """The request body as h11 parses it, each piece as it arrives; trailers (lower-cased
        names) go into `trailers`. Raises h11.RemoteProtocolError if the framing is broken."""
        while True:
            event = self._next_event()
            if isinstance(event, h11.Data):
                yield event.data
            elif isinstance(event, h11.EndOfMessage):
                if trailers is not None:
                    trailers += decode_headers(event.headers)
                return
            else:
                raise _protocol_error(f"unexpected {event!r} in a body")

    def read_body(self, limit: int) -> bytes:
        return collect(self.body(), limit)

    def relay_body(self, trailers: Headers) -> Iterator[memoryview]:
        """The request body read zero-copy: each view is valid until the next one is asked
        for. Starts with what h11 has buffered; hands what follows the body back to h11."""
        request = self.request
        assert request is not None
        buffered, _ = self.h11.trailing_data
        reader = _Reader(self, buffered)
        chunked = any(
            k == b"transfer-encoding" and b"chunked" in v.lower() for k, v in request.headers
        )
        if chunked:
            yield from reader.chunked(trailers)
        else:
            remaining = int(self.header(b"content-length") or 0)
            while remaining:
                view = reader.read_some(remaining)
                remaining -= len(view)
                yield view
        self._carry = reader.rest()

    @property
    def reusable(self) -> bool:
        """True if the exchange ended cleanly and both sides keep the connection alive."""
        if self.h11.our_state is not h11.DONE:
            return False
        return self._carry is not None or self.h11.their_state is h11.DONE

    def frame(self, events: Iterable[h11.Event]) -> list[bytes]:
        """`events` framed by h11, data passed through uncopied."""
        parts: list[bytes] = []
        for event in events:
            parts += self.h11.send_with_data_passthrough(event) or ()
        return parts

    def send(self, events: Iterable[h11.Event]) -> None:
        """Frame and write `events`; OSError if the peer is gone."""
        sendv(self.sock, self.frame(events))

    def respond(self, status: int, headers: Headers, body: bytes = b"") -> None:
        """A complete response with a Content-Length; errors writing it are ignored."""
        head = [*headers, ("Content-Length", str(len(body)))]
        events: list[h11.Event] = [
            h11.Response(status_code=status, headers=head, reason=reason(status))
        ]
        if body:
            events.append(h11.Data(data=body))
        events.append(h11.EndOfMessage())
        with contextlib.suppress(OSError, h11.LocalProtocolError):
            self.send(events)

    def reply_json(self, status: int, body: dict[str, Any], *, close: bool = False) -> None:
        headers = [JSON]
        if close:
            headers.append(("Connection", "close"))
        self.respond(status, headers, json.dumps(body).encode())


class _Reader:
    """Chunked or sized body bytes straight off the socket into one reused buffer."""

    def __init__(self, conn: ServerConnection, buffered: bytes) -> None:
        self._conn = conn
        self._buf = bytearray(max(RELAY_BUFFER, len(buffered)))
        self._view = memoryview(self._buf)
        self._buf[: len(buffered)] = buffered
        self._start, self._end = 0, len(buffered)

    def _fill(self) -> None:
        if self._start == self._end:
            self._start = self._end = 0
        elif self._end == len(self._buf):  # keep the unread tail, at the front
            pending = self._end - self._start
            self._buf[:pending] = self._buf[self._start : self._end]
            self._start, self._end = 0, pending
        try:
            n = self._conn.sock.recv_into(self._view[self._end :])
        except OSError:
            n = 0
        self._conn.last_recv_at = time.perf_counter()
        if n == 0:
            raise _protocol_error("the connection closed inside a body")
        if self._conn.tap is not None:
            self._conn.tap(bytes(self._view[self._end : self._end + n]))
        self._end += n

    def read_some(self, limit: int) -> memoryview:
        if self._start == self._end:
            self._fill()
        n = min(limit, self._end - self._start)
        view = self._view[self._start : self._start + n]
        self._start += n
        return view

    def line(self) -> bytes:
        """One CRLF-terminated line, without its CRLF."""
        while True:
            i = self._buf.find(b"\r\n", self._start, self._end)
            if i >= 0:
                line = bytes(self._view[self._start : i])
                self._start = i + 2
                return line
            if self._end - self._start > MAX_HEAD:
                raise _protocol_error(f"a chunk-size or trailer line over {MAX_HEAD} bytes")
            self._fill()

    def chunked(self, trailers: Headers) -> Iterator[memoryview]:
        while True:
            size_line = self.line()
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _protocol_error(f"invalid chunk size line {size_line[:40]!r}") from None
            if size == 0:
                break
            while size:
                view = self.read_some(size)
                size -= len(view)
                yield view
            if self.line():
                raise _protocol_error("a chunk is not followed by CRLF")
        while line := self.line():
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep or not name.strip() or len(trailers) >= MAX_TRAILERS:
                raise _protocol_error(f"malformed trailer line {line[:100]!r}")
            trailers.append((name.strip().lower(), value.strip()))

    def rest(self) -> bytes:
        return bytes(self._view[self._start : self._end])


def collect(pieces: Iterable[bytes], limit: int) -> bytes:
    """A whole body; BodyTooLarge past `limit` bytes."""
    out = bytearray()
    for piece in pieces:
        out += piece
        if len(out) > limit:
            raise BodyTooLarge(limit)
    return bytes(out)


def reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b"Unknown"


def decode_headers(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    return [(bytes(k).decode("latin-1"), bytes(v).decode("latin-1")) for k, v in headers]


def raw_headers(request: h11.Request) -> Headers:
    """A request's headers with their names as the client sent them."""
    return decode_headers(request.headers.raw_items())


def data_event(data: bytes | memoryview) -> h11.Data:
    """h11 passes the data through to `send_with_data_passthrough` untouched, views too."""
    return h11.Data(data=cast(bytes, data))


def sendv(sock: socket.socket, parts: list[bytes]) -> None:
    """Vectored sendall: one syscall for chunk framing + data in the common case."""
    total = sum(len(p) for p in parts)
    if not total:
        return
    sent = sock.sendmsg(parts)
    if sent == total:
        return
    sock.sendall(b"".join(parts)[sent:])


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody uses now, for a process about to bind it.

    Drawn from outside the kernel's ephemeral range where it can be, never with `bind(0)`: a
    port `bind(0)` hands out is an ephemeral one, and any connection opened before the process
    binds it may take it as its local port (the upstream then fails with EADDRINUSE, as it did
    in CI). No port is handed out twice by one process.
    """
    ranges = port_ranges(*_ephemeral_range())
    size = sum(stop - start for start, stop in ranges)
    for _ in range(200 if size else 0):
        port = _nth_port(ranges, secrets.randbelow(size))
        with _HANDED_OUT_LOCK:
            if port in _HANDED_OUT:
                continue
            with socket.socket() as s:
                try:
                    s.bind((host, port))
                except OSError:
                    continue
            _HANDED_OUT.add(port)
            return port
    with socket.socket() as s:  # no room outside the range (e.g. 1024-65535): the kernel's pick
        s.bind((host, 0))
        port = int(s.getsockname()[1])
    return port


_HANDED_OUT: set[int] = set()
_HANDED_OUT_LOCK = threading.Lock()


def port_ranges(low: int, high: int) -> list[tuple[int, int]]:
    """The unprivileged ports outside the ephemeral range [low, high], as [start, stop) pairs."""
    below = (max(1024, low - 12_000), low)
    above = (high + 1, 65536)
    return [(start, stop) for start, stop in (below, above) if stop - start >= 100]


def _nth_port(ranges: list[tuple[int, int]], n: int) -> int:
    for start, stop in ranges:
        if n < stop - start:
            return start + n
        n -= stop - start
    raise IndexError(n)


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[:2]
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default; macOS uses 49152-65535


class TcpServer:
    """Accept loop in a daemon thread; one daemon thread per connection."""

    def __init__(
        self,
        host: str,
        port: int,
        handler: Callable[[socket.socket, tuple[str, int]], None],
        name: str,
    ) -> None:
        self._sock = socket.create_server((host, port), backlog=256)
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        self._handler = handler
        self._name = name
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(
            target=self._accept_loop, name=f"{name}-accept", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, addr = self._sock.accept()
            except OSError:
                return
            if self._closed:
                conn.close()
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.add(conn)
            threading.Thread(
                target=self._serve, args=(conn, addr), name=f"{self._name}-conn", daemon=True
            ).start()

    def _serve(self, conn: socket.socket, addr: tuple[str, int]) -> None:
        try:
            self._handler(conn, addr)
        except Exception:
            if not self._closed:
                log.exception("%s: connection handler failed", self._name)
        finally:
            with self._lock:
                self._conns.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._sock.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
