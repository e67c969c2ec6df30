"""Client of the Lambda Runtime API: the next event, init and restore errors, SnapStart's
restore/next, and their connection.

Each worker owns one keep-alive connection to one known peer and makes four kinds of request,
so the HTTP/1.1 framing is written by hand, here and in stream.py (the streamed response):
h11's general state machine measured ~150 us per invocation on the hot path, most of the
runtime's turnaround budget. tests/runtime/test_stream_writer.py checks the chunked framing
against h11.
"""

from __future__ import annotations

import json
import re
import socket
import time
from dataclasses import dataclass

API_VERSION = "2018-06-01"
_RECV = 256 * 1024
_MAX_HEAD = 64 * 1024
_ERROR_TYPE = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


class RuntimeApiError(ConnectionError):
    """The Runtime API answered unexpectedly or went away."""


@dataclass(frozen=True, slots=True)
class Invocation:
    request_id: str
    deadline_ms: int
    trace_id: str | None
    body: bytes


class Connection:
    """A worker's keep-alive connection to the Runtime API, and the one owner of its socket.

    It opens on first use and again after ``close``. A streamed response holds on to the
    socket it started on (ResponseStream), so a broken stream never continues on a new one.
    """

    __slots__ = ("_address", "_buf", "_sock", "host")

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self._address = (host or "127.0.0.1", int(port))
        self.host = address  # for the Host header
        self._sock: socket.socket | None = None
        self._buf = bytearray()

    def socket(self) -> socket.socket:
        if self._sock is None:
            sock = socket.create_connection(self._address)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
            self._buf.clear()
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def exchange(self, request: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
        """Send a whole request and read its response, reconnecting once if the link broke."""
        for attempt in (1, 2):
            try:
                self.socket().sendall(request)
                return self.read_response()
            except (OSError, ValueError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def read_response(self, timeout: float | None = None) -> tuple[int, dict[bytes, bytes], bytes]:
        """Read one response: status, headers (lower-case names), body; ``timeout`` bounds
        each read (the socket is closed afterwards)."""
        if timeout is not None:
            self.socket().settimeout(timeout)
        while (end := self._buf.find(b"\r\n\r\n")) < 0:
            if len(self._buf) > _MAX_HEAD:
                raise RuntimeApiError("the Runtime API sent a response head over 64 KB")
            self._fill()
        lines = bytes(self._buf[:end]).split(b"\r\n")
        del self._buf[: end + 4]
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise RuntimeApiError(
                f"the Runtime API sent a malformed status line: {lines[0][:80]!r}"
            )
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            body = self._read_chunked()
        else:
            length = int(headers.get(b"content-length", b"0"))
            while len(self._buf) < length:
                self._fill()
            body = bytes(self._buf[:length])
            del self._buf[:length]
        if headers.get(b"connection", b"").lower() == b"close":
            self.close()
        return int(parts[1]), headers, body

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            while (eol := self._buf.find(b"\r\n")) < 0:
                self._fill()
            size = int(bytes(self._buf[:eol]).split(b";", 1)[0], 16)
            del self._buf[: eol + 2]
            if size == 0:  # skip trailers up to the empty line
                while (end := self._buf.find(b"\r\n")) != 0:
                    if end > 0:
                        del self._buf[: end + 2]
                    else:
                        self._fill()
                del self._buf[:2]
                return bytes(body)
            while len(self._buf) < size + 2:
                self._fill()
            body += self._buf[:size]
            del self._buf[: size + 2]

    def _fill(self) -> None:
        data = self.socket().recv(_RECV)
        if not data:
            raise RuntimeApiError("the Runtime API closed the connection")
        self._buf += data


class RuntimeApiClient:
    """The protocol steps of one worker: the next event, an init error; its connection's owner."""

    def __init__(self, address: str) -> None:
        self.connection = Connection(address)
        self._next_request = (
            f"GET /{API_VERSION}/runtime/invocation/next HTTP/1.1\r\nHost: {address}\r\n\r\n"
        ).encode()

    def _post(self, path: str, body: bytes, error_type: str) -> None:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.connection.host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Lambda-Runtime-Function-Error-Type: {error_type}\r\n\r\n"
        ).encode()
        status, _, answer = self.connection.exchange(head + body)
        if status >= 300:
            detail = answer[:300].decode("utf-8", "replace")
            raise RuntimeApiError(f"Runtime API POST {path} answered {status}: {detail}")

    # -- protocol steps ---------------------------------------------------------------------

    def next(self) -> Invocation:
        """Block until Lambda hands out the next event (the environment may freeze here)."""
        status, headers, body = self.connection.exchange(self._next_request)
        if status != 200:
            raise RuntimeApiError(f"Runtime API /next answered {status}")
        request_id = headers.get(b"lambda-runtime-aws-request-id")
        if not request_id:
            raise RuntimeApiError("Runtime API /next sent no Lambda-Runtime-Aws-Request-Id")
        deadline = headers.get(b"lambda-runtime-deadline-ms", b"")
        trace = headers.get(b"lambda-runtime-trace-id")
        return Invocation(
            request_id=request_id.decode(),
            deadline_ms=int(deadline) if deadline.isdigit() else int(time.time() * 1000) + 900_000,
            trace_id=trace.decode() if trace else None,
            body=body,
        )

    def init_error(self, error_type: str, message: str) -> None:
        path = f"/{API_VERSION}/runtime/init/error"
        self._post(path, error_json(error_type, message), checked_type(error_type))

    def restore_next(self) -> None:
        """SnapStart: block until Lambda restores this environment from its snapshot."""
        request = (
            f"GET /{API_VERSION}/runtime/restore/next HTTP/1.1\r\n"
            f"Host: {self.connection.host}\r\n\r\n"
        ).encode()
        status, _, body = self.connection.exchange(request)
        if status != 200:
            detail = body[:300].decode("utf-8", "replace")
            raise RuntimeApiError(f"Runtime API /restore/next answered {status}: {detail}")

    def restore_error(self, error_type: str, message: str) -> None:
        """SnapStart: the after-restore work failed (Lambda then ends the environment)."""
        path = f"/{API_VERSION}/runtime/restore/error"
        self._post(path, error_json(error_type, message), checked_type(error_type))


def error_json(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": []}).encode()


def checked_type(error_type: str) -> str:
    """Error types travel in header fields: keep them to a safe token."""
    return error_type if _ERROR_TYPE.match(error_type) else "Runtime.Error"
