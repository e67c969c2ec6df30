"""Client of the Lambda Runtime API, all of it: the next event, the streamed response, the
init error, and SnapStart's restore/next and restore error; one keep-alive connection per
worker (http11.Connection).

Lambda's response streaming is one chunked POST per invocation: the prelude (responses.py)
and 8 NUL bytes, then the body as it comes, then the end, which carries error trailers on a
failure after the start (httpx cannot send trailers, encode/httpx#1149). Every body chunk
goes out as soon as it is read, with one vectored ``sendmsg`` and no copy; nothing buffers.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import dataclass

from streaming_proxy.http11 import ChunkedWriter, Connection, ProtocolError, Trailers, request_head

API_VERSION = "2018-06-01"
PRELUDE_DELIMITER = b"\x00" * 8
ERROR_TYPE_TRAILER = b"Lambda-Runtime-Function-Error-Type"
ERROR_BODY_TRAILER = b"Lambda-Runtime-Function-Error-Body"
_ERROR_TYPE = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


class RuntimeApiError(ProtocolError):
    """The Runtime API answered unexpectedly or went away."""


@dataclass(frozen=True, slots=True)
class Invocation:
    request_id: str
    deadline_ms: int
    trace_id: str | None
    body: bytes


class RuntimeApiClient:
    """The protocol steps of one worker: the next event, an init error, SnapStart's restore
    steps; its connection's owner."""

    def __init__(self, address: str) -> None:
        self.connection = Connection(address, "the Runtime API")
        self._next_request = request_head("GET", f"/{API_VERSION}/runtime/invocation/next", address)

    def _post(self, path: str, body: bytes, error_type: str) -> None:
        head = request_head(
            "POST",
            path,
            self.connection.host,
            (
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Lambda-Runtime-Function-Error-Type", error_type),
            ),
        )
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

    def response_stream(self, request_id: str) -> ResponseStream:
        """The invocation's response, streamed (nothing is sent before ``start``)."""
        return ResponseStream(self.connection, request_id)

    def init_error(self, error_type: str, message: str) -> None:
        path = f"/{API_VERSION}/runtime/init/error"
        self._post(path, error_json(error_type, message), checked_type(error_type))

    def restore_next(self) -> None:
        """SnapStart: block until Lambda restores this environment from its snapshot."""
        path = f"/{API_VERSION}/runtime/restore/next"
        status, _, body = self.connection.exchange(request_head("GET", path, self.connection.host))
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


_STREAM_HEADERS = (
    ("Lambda-Runtime-Function-Response-Mode", "streaming"),
    ("Transfer-Encoding", "chunked"),
    ("Content-Type", "application/vnd.awslambda.http-integration-response"),
    ("Trailer", "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body"),
)


class ResponseStream:
    """One streamed response: prelude, 8 NULs, body chunks, then the end or error trailers.

    ``write`` may be called from the watchdog thread (SSE keep-alives) as well as the worker,
    so every write holds the lock; ``write_if_idle`` inserts a comment only where it splits
    no event. The socket is bound at
    ``start``: a stream never reconnects, so bytes of a broken stream cannot land on a new
    connection as a bogus request.
    """

    __slots__ = (
        "_connection",
        "_head",
        "_tail",
        "_writer",
        "bytes_sent",
        "finished",
        "last_write",
        "lock",
        "started",
    )

    def __init__(self, connection: Connection, request_id: str) -> None:
        self._connection = connection
        self._writer: ChunkedWriter | None = None
        self.lock = threading.Lock()
        self._head = request_head(
            "POST", f"/{API_VERSION}/runtime/invocation/{request_id}/response", connection.host,
            _STREAM_HEADERS,
        )  # fmt: skip
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
        with self.lock:
            self._writer = ChunkedWriter(self._connection.socket())
            self.started = True
            self.finished = last
            framed = prelude + PRELUDE_DELIMITER
            self._writer.send_head(self._head, framed, body, end=() if last else None)
            self.bytes_sent += len(body)
            self.last_write = time.monotonic()
            if body:
                self._tail = (self._tail + body[-4:])[-4:]
        if last:
            return self._connection.read_response()[0]
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
        if self._writer is None or self.finished:
            raise RuntimeApiError("the response stream is not open")
        self._writer.send_data(data)
        self.last_write = time.monotonic()

    def end(self, error: tuple[str, str] | None) -> int:
        """End the body, with ``error``'s (type, message) trailers if given; the status."""
        return self.finish(*error) if error else self.finish()

    def finish(self, error_type: str | None = None, message: str = "") -> int:
        """End the body (with error trailers when ``error_type`` is set); returns the status."""
        trailers: Trailers = ()
        if error_type:
            trailers = (
                (ERROR_TYPE_TRAILER, checked_type(error_type).encode()),
                (ERROR_BODY_TRAILER, base64.b64encode(error_json(error_type, message))),
            )
        with self.lock:
            if self._writer is None or self.finished:
                raise RuntimeApiError("the response stream is not open")
            self.finished = True
            self._writer.send_eom(trailers)
        return self._connection.read_response()[0]

    def abandon(self) -> str:
        """The stream broke: say what the Runtime API answered, if anything, and drop the link.

        Lambda answers an oversized or late response with an error status before closing;
        without reading it, that would look like a bare connection reset.
        """
        with self.lock:
            self.finished = True
            detail = "no answer"
            if self._writer is not None:
                try:
                    status, _, body = self._connection.read_response(timeout=0.2)
                    detail = f"{status} {body[:200].decode('utf-8', 'replace')}"
                except (OSError, ValueError):
                    pass
            self._connection.close()
            return detail
