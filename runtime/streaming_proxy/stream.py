"""The streamed response to the Runtime API, and the relay of an upstream body into it.

Lambda's response streaming is one chunked POST per invocation: the prelude (responses.py)
and 8 NUL bytes, then the body as it comes, then the end, which carries error trailers on a
failure after the start (httpx cannot send trailers, encode/httpx#1149). Every body chunk
goes out as soon as it is read, with one vectored ``sendmsg`` and no copy; nothing buffers.
"""

from __future__ import annotations

import base64
import itertools
import socket
import threading
import time
from collections.abc import Iterator, Sequence

from streaming_proxy.errors import BodyBroke, RequestError
from streaming_proxy.outcome import Outcome
from streaming_proxy.responses import Head
from streaming_proxy.runtime_api import (
    API_VERSION,
    Connection,
    RuntimeApiError,
    checked_type,
    error_json,
)
from streaming_proxy.transport import UpstreamResponse
from streaming_proxy.watchdog import Watchdog

PRELUDE_DELIMITER = b"\x00" * 8
ERROR_TYPE_TRAILER = b"Lambda-Runtime-Function-Error-Type"
ERROR_BODY_TRAILER = b"Lambda-Runtime-Function-Error-Body"

Trailers = Sequence[tuple[bytes, bytes]]


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
            pieces.append(_last_chunk(end))
        send_all(self._sock, pieces)

    def send_data(self, data: bytes | memoryview) -> None:
        if data:
            send_all(self._sock, (b"%x\r\n" % len(data), data, b"\r\n"))

    def send_eom(self, trailers: Trailers = ()) -> None:
        """The last chunk, with ``trailers`` (fields sent after the body)."""
        self._sock.sendall(_last_chunk(trailers))


def _last_chunk(trailers: Trailers) -> bytes:
    return b"0\r\n" + b"".join(b"%s: %s\r\n" % field for field in trailers) + b"\r\n"


class ResponseStream:
    """One streamed response: prelude, 8 NULs, body chunks, then the end or error trailers.

    ``write`` may be called from the watchdog thread (SSE keep-alives) as well as the worker,
    so every write holds the lock; ``last_write`` and ``at_event_boundary`` tell the watchdog
    when a comment may be inserted without splitting an event. The socket is bound at
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
        self._head = (
            f"POST /{API_VERSION}/runtime/invocation/{request_id}/response HTTP/1.1\r\n"
            f"Host: {connection.host}\r\n"
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


def relay(
    stream: ResponseStream,
    head: Head,
    response: UpstreamResponse,
    watchdog: Watchdog,
    cutoff: float,
    outcome: Outcome,
    keep: int,
) -> list[bytes]:
    """Relay the upstream's body into the stream under the watchdog, then end the stream.

    Returns the chunks that hold the body's first ``keep`` bytes (the background rule reads
    them after the response), none if the response broke. A failure before anything was sent
    raises RequestError instead, which becomes a clean error response.
    """
    watch = watchdog.watch(stream, cutoff, head.sse, response.socket)
    error: tuple[str, str] | None = None
    accepted: int | None = None
    kept: list[bytes] = []
    try:
        accepted = _copy(stream, head, response.body(), kept, keep)
    except BodyBroke as exc:
        error = (exc.error_type, exc.message)
    finally:
        cut = watchdog.unwatch(watch)
        response.close()
    if cut is not None:
        error = (cut.error_type, cut.message)
    if error and not stream.started:  # nothing sent yet: a clean error response instead
        raise RequestError(cut.status if cut else 502, error[1])
    end(stream, outcome, response.status, error, accepted)
    return [] if error else kept


def end(
    stream: ResponseStream,
    outcome: Outcome,
    status: int,
    error: tuple[str, str] | None,
    accepted: int | None = None,
) -> None:
    """End a started stream (with ``error``'s trailers) unless it went out whole (``accepted``),
    and record the response in the outcome."""
    outcome.status, outcome.bytes_sent = status, stream.bytes_sent
    if error:
        outcome.error = f"{error[0]}: {error[1]}"
    if accepted is None:
        accepted = stream.finish(*error) if error else stream.finish()
    if accepted != 202:
        outcome.error = outcome.error or "response not accepted"
        outcome.runtime_api = accepted


def _copy(
    stream: ResponseStream, head: Head, chunks: Iterator[bytes], kept: list[bytes], keep: int
) -> int | None:
    """Copy the body to the stream; returns the Runtime API's status if it sent it whole.

    A streamed body (chunked: SSE above all) gets its prelude at once and every chunk as
    it comes. A sized body is coming now, not as a stream, so one chunk is read ahead:
    a small response, the usual API answer, then goes out as one write instead of three.
    The chunks that hold the first ``keep`` bytes are kept (references, no copy).
    """
    first = b""
    if head.sized:
        first = next(chunks, None) or b""
        following = next(chunks, None) if first else None
        if following is None:
            if keep:
                kept.append(first)
            return stream.start(head.prelude, first, last=True)
        chunks = itertools.chain((following,), chunks)
    stream.start(head.prelude, first)
    if keep:
        kept.append(first)
    size = len(first)
    for chunk in chunks:
        stream.write(chunk)
        if size < keep:
            kept.append(chunk)
            size += len(chunk)
    return None


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
