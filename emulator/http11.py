"""Minimal HTTP/1.1 primitives on blocking sockets, shared by the Runtime API and the gateway.

Hand-written instead of http.server because both sides must stream: bodies are read
incrementally (chunked, with trailers) into one reused 256 KB buffer and forwarded as
memoryviews, so large responses cross the emulator without copies and small ones without
added latency (TCP_NODELAY, no polling, one thread per connection).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

log = logging.getLogger("emulator")

RECV_SIZE = 256 * 1024
MAX_LINE = 64 * 1024
MAX_HEADERS = 200
CRLF = b"\r\n"


class ProtocolError(Exception):
    """The peer sent something that is not HTTP/1.1 we understand."""


class IncompleteBody(ProtocolError):
    """The connection ended before the body (or its chunked framing) was complete."""


class SocketReader:
    """Buffered reader over a blocking socket that remembers when the last bytes arrived.

    `read_some` hands out memoryviews into the shared buffer: they are valid only until the
    next call, which is what lets the forwarding path avoid copies.
    """

    __slots__ = ("_buf", "_end", "_start", "_view", "last_recv_at", "sock")

    def __init__(self, sock: socket.socket, bufsize: int = RECV_SIZE) -> None:
        self.sock = sock
        self._buf = bytearray(bufsize)
        self._view = memoryview(self._buf)
        self._start = 0
        self._end = 0
        self.last_recv_at = 0.0

    def _fill(self) -> bool:
        """Receive more bytes; False on EOF."""
        if self._start == self._end:
            self._start = self._end = 0
        elif self._end == len(self._buf):
            pending = self._end - self._start
            if pending == len(self._buf):
                raise ProtocolError("line longer than the receive buffer")
            self._buf[:pending] = self._buf[self._start : self._end]
            self._start, self._end = 0, pending
        try:
            n = self.sock.recv_into(self._view[self._end :])
        except (ConnectionError, TimeoutError, OSError):
            return False
        self.last_recv_at = time.perf_counter()
        if n == 0:
            return False
        self._end += n
        return True

    def readline(self, limit: int = MAX_LINE) -> bytes | None:
        """One line including its newline; None if the connection ends before any byte."""
        scanned = self._start
        while True:
            i = self._buf.find(b"\n", scanned, self._end)
            if i >= 0:
                line = bytes(self._view[self._start : i + 1])
                self._start = i + 1
                return line
            if self._end - self._start > limit:
                raise ProtocolError(f"line longer than {limit} bytes")
            had = self._end - self._start
            if not self._fill():
                if self._end - self._start:
                    raise IncompleteBody("connection closed in the middle of a line")
                return None
            scanned = self._start + had

    def read_some(self, limit: int) -> memoryview | None:
        """Up to `limit` buffered (or freshly received) bytes; None on EOF."""
        if self._start == self._end and not self._fill():
            return None
        n = min(limit, self._end - self._start)
        view = self._view[self._start : self._start + n]
        self._start += n
        return view


@dataclass(slots=True)
class RequestHead:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    lower: dict[str, str] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        return self.lower.get(name, default)

    @property
    def keep_alive(self) -> bool:
        conn = self.get("connection").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in conn
        return "close" not in conn

    @property
    def is_chunked(self) -> bool:
        return "chunked" in self.get("transfer-encoding").lower()


def read_request_head(reader: SocketReader) -> RequestHead | None:
    """Parse a request line and headers; None on a clean EOF between requests."""
    line = reader.readline()
    while line in (b"\r\n", b"\n"):
        line = reader.readline()
    if line is None:
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ProtocolError(f"malformed request line {line[:100]!r}")
    method, target, version = parts
    headers = _read_fields(reader, "request headers")
    lower = {name.lower(): value for name, value in headers}
    return RequestHead(method, target, version, headers, lower)


def _read_fields(reader: SocketReader, where: str) -> list[tuple[str, str]]:
    """Header (or trailer) fields up to the blank line, names as sent."""
    fields: list[tuple[str, str]] = []
    while True:
        line = reader.readline()
        if line is None:
            raise IncompleteBody(f"connection closed inside the {where}")
        if line in (b"\r\n", b"\n"):
            return fields
        name, sep, value = line.decode("latin-1").partition(":")
        name = name.strip()
        if not sep or not name or " " in name:
            raise ProtocolError(f"malformed line in the {where}: {line[:100]!r}")
        fields.append((name, value.strip()))
        if len(fields) > MAX_HEADERS:
            raise ProtocolError(f"more than {MAX_HEADERS} fields in the {where}")


def content_length(head: RequestHead) -> int:
    raw = head.get("content-length")
    if not raw:
        return 0
    try:
        n = int(raw)
    except ValueError:
        raise ProtocolError(f"invalid Content-Length {raw!r}") from None
    if n < 0:
        raise ProtocolError(f"invalid Content-Length {raw!r}")
    return n


def iter_body(
    reader: SocketReader, head: RequestHead, trailers: dict[str, str] | None = None
) -> Iterator[memoryview]:
    """Yield the request body as it arrives (each view valid until the next one).

    Chunked trailers, if any, are stored lower-cased into `trailers`.
    """
    if head.is_chunked:
        yield from _iter_chunked(reader, trailers if trailers is not None else {})
        return
    remaining = content_length(head)
    while remaining:
        view = reader.read_some(min(remaining, RECV_SIZE))
        if view is None:
            raise IncompleteBody(f"connection closed with {remaining} body bytes missing")
        remaining -= len(view)
        yield view


def _iter_chunked(reader: SocketReader, trailers: dict[str, str]) -> Iterator[memoryview]:
    while True:
        line = reader.readline()
        if line is None:
            raise IncompleteBody("connection closed before the terminating chunk")
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProtocolError(f"invalid chunk size line {line[:40]!r}") from None
        if size == 0:
            break
        while size:
            view = reader.read_some(size)
            if view is None:
                raise IncompleteBody("connection closed inside a chunk")
            size -= len(view)
            yield view
        if reader.readline() not in (b"\r\n", b"\n"):
            raise ProtocolError("chunk not followed by CRLF")
    for name, value in _read_fields(reader, "chunked trailers"):
        trailers[name.lower()] = value


def read_body(reader: SocketReader, head: RequestHead, limit: int) -> bytes:
    """The whole body; ProtocolError if it exceeds `limit` bytes."""
    out = bytearray()
    for view in iter_body(reader, head):
        out += view
        if len(out) > limit:
            raise BodyTooLarge(limit)
    return bytes(out)


class BodyTooLarge(ProtocolError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"body larger than {limit} bytes")
        self.limit = limit


def sendv(sock: socket.socket, parts: list[bytes | memoryview]) -> None:
    """Vectored sendall: one syscall for chunk framing + data in the common case."""
    total = sum(len(p) for p in parts)
    sent = sock.sendmsg(parts)
    if sent == total:
        return
    rest = b"".join(bytes(p) for p in parts)[sent:]
    sock.sendall(rest)


def http_response(
    status: int,
    reason: str,
    headers: list[tuple[str, str]],
    body: bytes = b"",
    *,
    with_length: bool = True,
) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if with_length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


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
