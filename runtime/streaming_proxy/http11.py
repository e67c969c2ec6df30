"""HTTP/1.1 as the runtime speaks it to peers it knows, laid out like h11: the writer (request
heads, the chunked body), the reader (responses framed by Content-Length, the chunked coding or
the connection's close), and the client connection that owns one socket and uses both.

The Runtime API client (runtime_api.py) and the upstream's readiness probes (readiness.py) are
its users. It is hand-written rather than h11 because each worker makes four kinds of request
on one keep-alive connection to one known peer, and h11's general state machine measured
~150 us per invocation on the hot path, most of the runtime's turnaround budget.
tests/runtime/test_http11.py has h11 read what the writer writes and write what the reader
reads.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

#: Connection-level headers a proxy must not forward (RFC 9110 §7.6.1).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

Trailers = Sequence[tuple[bytes, bytes]]
#: A whole response: status, headers (lower-case names), body.
Response = tuple[int, dict[bytes, bytes], bytes]

_RECV = 256 * 1024
_MAX_HEAD = 64 * 1024


class ProtocolError(ConnectionError):
    """The peer sent something that is not HTTP/1.1, or went away mid-response."""


# -- the writer -------------------------------------------------------------------------------


def request_head(
    method: str, target: str, host: str, headers: Sequence[tuple[str, str]] = ()
) -> bytes:
    """A request's head (request line, Host, then ``headers``), ended by the empty line."""
    fields = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n{fields}\r\n".encode()


class ChunkedWriter:
    """The chunked transfer coding of one body (RFC 9112 7.1), after h11's ChunkedWriter.

    Each call is one write; ``send_head`` puts the message head, the first chunks and, for a
    small body, the end into the same one. An empty chunk is never framed: its size, 0, would
    end the body.
    """

    __slots__ = ("_sock",)

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def send_head(
        self, head: bytes, *chunks: bytes | memoryview, end: Trailers | None = None
    ) -> None:
        """The message head and its first chunks, then the end if ``end`` (trailers) is given."""
        pieces: list[bytes | memoryview] = [head]
        for data in chunks:
            if data:
                pieces += (b"%x\r\n" % len(data), data, b"\r\n")
        if end is not None:
            pieces.append(last_chunk(end))
        send_all(self._sock, pieces)

    def send_data(self, data: bytes | memoryview) -> None:
        if data:
            send_all(self._sock, (b"%x\r\n" % len(data), data, b"\r\n"))

    def send_eom(self, trailers: Trailers = ()) -> None:
        """The last chunk, with ``trailers`` (fields sent after the body)."""
        self._sock.sendall(last_chunk(trailers))


def last_chunk(trailers: Trailers) -> bytes:
    return b"0\r\n" + b"".join(b"%s: %s\r\n" % field for field in trailers) + b"\r\n"


def send_all(sock: socket.socket, pieces: Sequence[bytes | memoryview]) -> None:
    """Vectored sendall: one syscall for size line + data + CRLF, coping with partial sends."""
    buffers = [memoryview(p) for p in pieces]
    while buffers:
        sent = sock.sendmsg(buffers)
        while sent:
            first = buffers[0]
            if sent >= len(first):
                sent -= len(first)
                buffers.pop(0)
            else:
                buffers[0] = first[sent:]
                sent = 0
        while buffers and not len(buffers[0]):
            buffers.pop(0)


# -- the reader -------------------------------------------------------------------------------


class Reader:
    """Responses read from one socket, one after another (bytes past one stay for the next)."""

    __slots__ = ("_buf", "_sock", "peer")

    def __init__(self, sock: socket.socket, peer: str) -> None:
        self._sock = sock
        self._buf = bytearray()
        self.peer = peer  # who is named in errors: "the Runtime API"

    def read_response(self) -> Response:
        """Read one response: status, headers (lower-case names), body."""
        while (end := self._buf.find(b"\r\n\r\n")) < 0:
            if len(self._buf) > _MAX_HEAD:
                raise ProtocolError(f"{self.peer} sent a response head over 64 KB")
            self._fill()
        lines = bytes(self._buf[:end]).split(b"\r\n")
        del self._buf[: end + 4]
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"{self.peer} sent a malformed status line: {lines[0][:80]!r}")
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            body = self._read_chunked()
        elif b"content-length" in headers:
            body = self._read_exactly(self._number(headers[b"content-length"], 10))
        elif parts[1] in (b"204", b"304") or parts[1].startswith(b"1"):
            body = b""
        else:
            body = self._read_to_close()  # neither length nor chunked (RFC 9112 6.3, item 8)
        return int(parts[1]), headers, body

    def _read_exactly(self, length: int) -> bytes:
        while len(self._buf) < length:
            self._fill()
        body = bytes(self._buf[:length])
        del self._buf[:length]
        return body

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            while (eol := self._buf.find(b"\r\n")) < 0:
                self._fill()
            size = self._number(bytes(self._buf[:eol]).split(b";", 1)[0], 16)
            del self._buf[: eol + 2]
            if size == 0:  # skip trailers up to the empty line
                while (end := self._buf.find(b"\r\n")) != 0:
                    if end > 0:
                        del self._buf[: end + 2]
                    else:
                        self._fill()
                del self._buf[:2]
                return bytes(body)
            body += self._read_exactly(size + 2)[:size]

    def _read_to_close(self) -> bytes:
        while data := self._sock.recv(_RECV):
            self._buf += data
        body = bytes(self._buf)
        self._buf.clear()
        return body

    def _number(self, text: bytes, base: int) -> int:
        try:
            return int(text.strip(), base)
        except ValueError:
            raise ProtocolError(f"{self.peer} sent a malformed length: {text[:20]!r}") from None

    def _fill(self) -> None:
        data = self._sock.recv(_RECV)
        if not data:
            raise ProtocolError(f"{self.peer} closed the connection")
        self._buf += data


# -- the connection ---------------------------------------------------------------------------


class Connection:
    """A keep-alive client connection to one peer, and the one owner of its socket.

    It opens on first use and again after ``close``. A streamed request holds on to the socket
    it started on (runtime_api.ResponseStream), so a broken stream never continues on a new one.
    """

    __slots__ = ("_address", "_reader", "_sock", "_timeout", "host", "peer")

    def __init__(self, address: str, peer: str, timeout: float | None = None) -> None:
        host, _, port = address.rpartition(":")
        self._address = (host or "127.0.0.1", int(port))
        self._timeout = timeout  # of connecting and of each read; None: wait as long as it takes
        self.host = address  # for the Host header
        self.peer = peer
        self._sock: socket.socket | None = None
        self._reader: Reader | None = None

    def socket(self) -> socket.socket:
        if self._sock is None:
            sock = socket.create_connection(self._address, self._timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
            self._reader = Reader(sock, self.peer)
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = self._reader = None

    def exchange(self, request: bytes) -> Response:
        """Send a whole request and read its response, reconnecting once if the link broke."""
        for attempt in (1, 2):
            try:
                self.socket().sendall(request)
                return self.read_response()
            except OSError:
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def read_response(self, timeout: float | None = None) -> Response:
        """Read one response; ``timeout`` bounds each read (the socket is closed afterwards)."""
        sock = self.socket()
        if timeout is not None:
            sock.settimeout(timeout)
        assert self._reader is not None  # set with the socket
        response = self._reader.read_response()
        if response[1].get(b"connection", b"").lower() == b"close":
            self.close()
        return response
