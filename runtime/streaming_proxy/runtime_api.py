"""Client of the Lambda Runtime API, including the response-streaming protocol.

Each worker owns one keep-alive connection to one known peer and makes four kinds of request,
so the HTTP/1.1 framing is written here directly: h11's general state machine measured ~150 us
per invocation on the hot path, most of the runtime's turnaround budget. The streamed
response is a chunked body whose end carries the error trailers on a mid-stream failure
(which httpx cannot send, encode/httpx#1149); body chunks go out with one vectored
``sendmsg`` and no copy.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

API_VERSION = "2018-06-01"
PRELUDE_DELIMITER = b"\x00" * 8
ERROR_TYPE_TRAILER = b"Lambda-Runtime-Function-Error-Type"
ERROR_BODY_TRAILER = b"Lambda-Runtime-Function-Error-Body"
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


class RuntimeApiClient:
    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self._address = (host or "127.0.0.1", int(port))
        self._host = address.encode("ascii")
        self._sock: socket.socket | None = None
        self._buf = bytearray()
        self._next_request = (
            f"GET /{API_VERSION}/runtime/invocation/next HTTP/1.1\r\nHost: {address}\r\n\r\n"
        ).encode()

    # -- connection -------------------------------------------------------------------------

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

    def _fill(self) -> None:
        data = self.socket().recv(_RECV)
        if not data:
            raise RuntimeApiError("the Runtime API closed the connection")
        self._buf += data

    def read_response(self) -> tuple[int, dict[bytes, bytes], bytes]:
        """Read one response: status, headers (lower-case names), body."""
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

    def _exchange(self, request: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
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

    def _post(self, path: str, body: bytes, error_type: str) -> None:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self._host.decode()}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Lambda-Runtime-Function-Error-Type: {error_type}\r\n\r\n"
        ).encode()
        status, _, answer = self._exchange(head + body)
        if status >= 300:
            detail = answer[:300].decode("utf-8", "replace")
            raise RuntimeApiError(f"Runtime API POST {path} answered {status}: {detail}")

    # -- protocol steps ---------------------------------------------------------------------

    def next(self) -> Invocation:
        """Block until Lambda hands out the next event (the environment may freeze here)."""
        status, headers, body = self._exchange(self._next_request)
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
        self._post(path, error_json(error_type, message), _checked_type(error_type))

    def stream(self, request_id: str) -> ResponseStream:
        return ResponseStream(self, request_id)


class ResponseStream:
    """One streamed response: prelude, 8 NULs, body chunks, then the end or error trailers.

    ``write`` may be called from the watchdog thread (SSE keep-alives) as well as the worker,
    so every write holds the lock; ``last_write`` and ``at_event_boundary`` tell the watchdog
    when a comment may be inserted without splitting an event. The socket is bound at
    ``start``: a stream never reconnects, so bytes of a broken stream cannot land on a new
    connection as a bogus request.
    """

    __slots__ = (
        "_client",
        "_head",
        "_sock",
        "_tail",
        "bytes_sent",
        "finished",
        "last_write",
        "lock",
        "started",
    )

    def __init__(self, client: RuntimeApiClient, request_id: str) -> None:
        self._client = client
        self._sock: socket.socket | None = None
        self.lock = threading.Lock()
        self._head = (
            f"POST /{API_VERSION}/runtime/invocation/{request_id}/response HTTP/1.1\r\n"
            f"Host: {client._host.decode()}\r\n"
            "Lambda-Runtime-Function-Response-Mode: streaming\r\n"
            "Transfer-Encoding: chunked\r\n"
            "Content-Type: application/vnd.awslambda.http-integration-response\r\n"
            "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n"
            "\r\n"
        ).encode()
        self.started = False
        self.finished = False
        self.bytes_sent = 0
        self.last_write = time.monotonic()
        self._tail = b"\n\n"

    @property
    def at_event_boundary(self) -> bool:
        """Whether the bytes so far end an SSE event (a comment here splits nothing)."""
        return self._tail.endswith((b"\n\n", b"\r\n\r\n", b"\r\r"))

    def start(self, prelude: bytes, body: bytes = b"", *, last: bool = False) -> int | None:
        """Send the request head, the prelude chunk and ``body``, in one write.

        With ``last`` the end goes out in the same write (a small response whole) and the
        Runtime API's status is returned; otherwise body chunks may follow at once.
        """
        framed = prelude + PRELUDE_DELIMITER
        pieces = [self._head, b"%x\r\n" % len(framed), framed, b"\r\n"]
        if body:
            pieces += [b"%x\r\n" % len(body), body, b"\r\n"]
        if last:
            pieces.append(b"0\r\n\r\n")
        with self.lock:
            self._sock = self._client.socket()
            self.started = True
            self.finished = last
            send_all(self._sock, pieces)
            self.bytes_sent += len(body)
            self.last_write = time.monotonic()
            if body:
                self._tail = (self._tail + body[-4:])[-4:]
        if last:
            status, _, _ = self._client.read_response()
            return status
        return None

    def write(self, data: bytes | memoryview) -> None:
        if not data:
            return
        with self.lock:
            self._send_chunk(data)
            self.bytes_sent += len(data)
            self._tail = (self._tail + bytes(data[-4:]))[-4:]

    def write_if_idle(self, data: bytes, idle_since: float) -> bool:
        """Write ``data`` unless something was written since ``idle_since`` or an event is open.

        Never waits for the lock: a worker stuck writing must not stall the watchdog.
        """
        if not self.lock.acquire(blocking=False):
            return False
        try:
            if self.finished or self.last_write > idle_since or not self.at_event_boundary:
                return False
            self._send_chunk(data)
            return True
        finally:
            self.lock.release()

    def _send_chunk(self, data: bytes | memoryview) -> None:
        if self._sock is None or self.finished:
            raise RuntimeApiError("the response stream is not open")
        send_all(self._sock, [b"%x\r\n" % len(data), data, b"\r\n"])
        self.last_write = time.monotonic()

    def finish(self, error_type: str | None = None, message: str = "") -> int:
        """End the body (with error trailers when ``error_type`` is set); returns the status."""
        end = b"0\r\n\r\n"
        if error_type:
            encoded = base64.b64encode(error_json(error_type, message))
            end = b"0\r\n%s: %s\r\n%s: %s\r\n\r\n" % (
                ERROR_TYPE_TRAILER,
                _checked_type(error_type).encode(),
                ERROR_BODY_TRAILER,
                encoded,
            )
        with self.lock:
            if self._sock is None or self.finished:
                raise RuntimeApiError("the response stream is not open")
            self.finished = True
            self._sock.sendall(end)
        status, _, _ = self._client.read_response()
        return status

    def abandon(self) -> str:
        """The stream broke: say what the Runtime API answered, if anything, and drop the link.

        Lambda answers an oversized or late response with an error status before closing;
        without reading it, that would look like a bare connection reset.
        """
        with self.lock:
            self.finished = True
            detail = "no answer"
            if self._sock is not None:
                try:
                    self._sock.settimeout(0.2)
                    status, _, body = self._client.read_response()
                    detail = f"{status} {body[:200].decode('utf-8', 'replace')}"
                except (OSError, ValueError):
                    pass
            self._client.close()
            return detail


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


def error_json(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": []}).encode()


def _checked_type(error_type: str) -> str:
    """Error types travel in header fields: keep them to a safe token."""
    return error_type if _ERROR_TYPE.match(error_type) else "Runtime.Error"
