"""The Lambda Runtime API, server side (docs: lambda/latest/dg/runtimes-api.html,
runtimes-custom.html "Implementing response streaming").

Events are handed to waiting `/next` calls directly from the submitting thread (no queue
hop), so the handed-out timestamp is taken right before the bytes leave. Streamed responses
are parsed incrementally: prelude JSON up to 8 NUL bytes (within 16 KB), then every body
chunk is written to the invocation's sink as soon as it is received; error trailers cut it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import socket
import threading
import time
from collections import deque
from typing import Any, Protocol

from emulator.http11 import (
    BodyTooLarge,
    ProtocolError,
    RequestHead,
    SocketReader,
    TcpServer,
    http_response,
    iter_body,
    read_body,
    read_request_head,
    sendv,
)
from emulator.invocation import GATEWAY_ERROR, TIMEOUT_ERROR, Invocation
from emulator.timers import Scheduler

API_PREFIX = "/2018-06-01/runtime/"
DELIMITER = b"\x00" * 8
PRELUDE_LIMIT = 16 * 1024
MAX_BUFFERED_RESPONSE = 6_291_556  # Lambda's synchronous payload limit, bytes
MAX_STREAMED_RESPONSE = 200 * 1024 * 1024
ERROR_TYPE_TRAILER = "lambda-runtime-function-error-type"
ERROR_BODY_TRAILER = "lambda-runtime-function-error-body"


class RuntimeHooks(Protocol):
    """What the Runtime API tells the sandbox owner (LocalStack)."""

    def on_init_done(self) -> None: ...

    def on_init_error(self, error: dict[str, Any]) -> None: ...

    def on_idle(self) -> None:
        """Every worker waits in /next and nothing is pending (called under the dispatch
        lock, so it cannot race with `on_busy`)."""

    def on_busy(self) -> None:
        """An event is about to be written to a waiting /next (under the dispatch lock)."""

    def on_timeout(self, inv: Invocation) -> None: ...

    def on_finished(self, inv: Invocation) -> None: ...


class _Conn:
    __slots__ = ("generation", "sock")

    def __init__(self, sock: socket.socket, generation: int) -> None:
        self.sock = sock
        self.generation = generation


class _Slot:
    """A /next call waiting for an event."""

    __slots__ = ("conn", "dead", "ready")

    def __init__(self, conn: _Conn) -> None:
        self.conn = conn
        self.ready = threading.Event()
        self.dead = False


class RuntimeApi:
    """Serves one runtime process (and its successors after restarts)."""

    def __init__(
        self,
        hooks: RuntimeHooks,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        function_timeout: float = 900.0,
        function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:librechat-local",
        concurrency: int = 1,
        scheduler: Scheduler | None = None,
    ) -> None:
        self.hooks = hooks
        self.function_timeout = function_timeout
        self.function_arn = function_arn
        self.concurrency = max(1, concurrency)
        self._lock = threading.Lock()
        self._pending: deque[Invocation] = deque()
        self._slots: deque[_Slot] = deque()
        self._active: dict[str, Invocation] = {}
        self._conns: set[_Conn] = set()
        self._generation = 0
        self._initialized = False
        self._broken: dict[str, Any] | None = None
        self._closed = False
        self._owns_scheduler = scheduler is None
        self.scheduler = scheduler or Scheduler()
        self._server = TcpServer(host, port, self._serve, "runtime-api")
        self.address = f"{host}:{self._server.port}"

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self._owns_scheduler:
            self.scheduler.start()
        self._server.start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self.reset({"errorType": "Emulator.Stopped", "errorMessage": "The emulator stopped."})
        self._fail_pending(
            {"errorType": "Emulator.Stopped", "errorMessage": "The emulator stopped."}
        )
        if self._owns_scheduler:
            self.scheduler.stop()
        self._server.close()

    def reset(self, error: dict[str, Any]) -> None:
        """The runtime process is gone: fail what it was serving, forget its connections."""
        with self._lock:
            self._generation += 1
            self._initialized = False
            slots = list(self._slots)
            self._slots.clear()
            active = list(self._active.values())
            self._active.clear()
            stale = [c for c in self._conns if c.generation < self._generation]
        for slot in slots:
            slot.dead = True
            slot.ready.set()
        for conn in stale:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
        for inv in active:
            self._complete(inv, error=error, status=502)

    def set_broken(self, error: dict[str, Any] | None) -> None:
        """Init failed: fail what waits and everything submitted until `set_broken(None)`."""
        with self._lock:
            self._broken = error
        if error is not None:
            self._fail_pending(error)

    def _fail_pending(self, error: dict[str, Any]) -> None:
        with self._lock:
            pending = list(self._pending)
            self._pending.clear()
        for inv in pending:
            self._complete(inv, error=error, status=502)

    # -- dispatch --------------------------------------------------------------------------

    def submit(self, inv: Invocation) -> None:
        """Hand the event to a waiting /next, or queue it."""
        while True:
            with self._lock:
                failure = self._broken
                if failure is None and self._closed:
                    failure = {"errorType": "Emulator.Stopped", "errorMessage": "stopped"}
                if failure is None:
                    if not self._slots:
                        self._pending.append(inv)
                        return
                    slot = self._slots.popleft()
                    self.hooks.on_busy()
            if failure is not None:
                self._complete(inv, error=failure, status=502)
                return
            delivered = self._deliver(slot.conn, inv)
            if not delivered:
                slot.dead = True
            slot.ready.set()
            if delivered:
                return

    def _deliver(self, conn: _Conn, inv: Invocation) -> bool:
        wall_ms = time.time() * 1000.0
        inv.deadline = time.perf_counter() + self.function_timeout
        inv.deadline_ms = int(wall_ms + self.function_timeout * 1000.0)
        head = (
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: application/json\r\n"
            f"Lambda-Runtime-Aws-Request-Id: {inv.request_id}\r\n"
            f"Lambda-Runtime-Deadline-Ms: {inv.deadline_ms}\r\n"
            f"Lambda-Runtime-Invoked-Function-Arn: {self.function_arn}\r\n"
            f"Lambda-Runtime-Trace-Id: {_trace_id(wall_ms)}\r\n"
            f"Content-Length: {len(inv.payload)}\r\n\r\n"
        ).encode("latin-1")
        with self._lock:
            if conn.generation != self._generation:
                return False  # that runtime process is gone
            self._active[inv.request_id] = inv
        try:
            if _peer_closed(conn.sock):
                raise ConnectionResetError("the runtime closed this /next connection")
            inv.next_handed_out_at = time.perf_counter()
            sendv(conn.sock, [head, inv.payload])
        except OSError:
            with self._lock:
                self._active.pop(inv.request_id, None)
            inv.next_handed_out_at = None
            return False
        self.scheduler.call_at(inv.deadline, lambda: self._on_deadline(inv), lambda: inv.finished)
        return True

    def _complete(
        self,
        inv: Invocation,
        *,
        error: dict[str, Any] | None = None,
        status: int = 502,
        body: dict[str, Any] | None = None,
        timed_out: bool = False,
        done_at: float | None = None,
    ) -> bool:
        """End an invocation once: finish the sink, or fail it (502/504, or cut if started)."""
        if not inv.claim_completion():
            return False
        inv.response_done_at = done_at if done_at is not None else time.perf_counter()
        inv.timed_out = timed_out
        if error is not None:
            inv.error = error
            inv.sink.fail(status, body if body is not None else GATEWAY_ERROR)
        else:
            inv.sink.finish()
        with self._lock:
            self._active.pop(inv.request_id, None)
        inv.done.set()
        self.hooks.on_finished(inv)
        return True

    def _on_deadline(self, inv: Invocation) -> None:
        error = {
            "errorType": "Sandbox.Timedout",
            "errorMessage": (
                f"RequestId: {inv.request_id} Error: Task timed out after "
                f"{self.function_timeout:.2f} seconds"
            ),
        }
        if self._complete(inv, error=error, status=504, body=TIMEOUT_ERROR, timed_out=True):
            self.hooks.on_timeout(inv)

    # -- connections -----------------------------------------------------------------------

    def _serve(self, sock: socket.socket, _addr: tuple[str, int]) -> None:
        with self._lock:
            conn = _Conn(sock, self._generation)
            self._conns.add(conn)
        try:
            reader = SocketReader(sock)
            while True:
                head = read_request_head(reader)
                if head is None or conn.generation != self._generation:
                    return
                if not self._route(conn, reader, head) or not head.keep_alive:
                    return
        except ProtocolError:
            return
        finally:
            with self._lock:
                self._conns.discard(conn)

    def _route(self, conn: _Conn, reader: SocketReader, head: RequestHead) -> bool:
        """Handle one request; False closes the connection."""
        path = head.target.split("?", 1)[0]
        if not path.startswith(API_PREFIX):
            return self._reject(conn, reader, head, 404, "InvalidRequest", f"unknown path {path}")
        route = path[len(API_PREFIX) :]
        if head.get("expect").lower() == "100-continue":
            conn.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if route == "invocation/next" and head.method == "GET":
            return self._next(conn)
        if route == "init/error" and head.method == "POST":
            return self._init_error(conn, reader, head)
        parts = route.split("/")
        if len(parts) == 3 and parts[0] == "invocation" and head.method == "POST":
            request_id, action = parts[1], parts[2]
            with self._lock:
                inv = self._active.get(request_id)
            if inv is None or inv.finished:
                return self._reject(
                    conn,
                    reader,
                    head,
                    400,
                    "InvalidRequestID",
                    f"request id {request_id} is not an invocation in progress",
                )
            if action == "response":
                return self._response(conn, reader, head, inv)
            if action == "error":
                return self._invocation_error(conn, reader, head, inv)
        return self._reject(
            conn, reader, head, 404, "InvalidRequest", f"unknown route {head.method} {path}"
        )

    def _reject(
        self,
        conn: _Conn,
        reader: SocketReader,
        head: RequestHead,
        status: int,
        error_type: str,
        message: str,
    ) -> bool:
        body = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
        reason = "Not Found" if status == 404 else "Bad Request"
        _send(
            conn,
            http_response(
                status,
                reason,
                [("Content-Type", "application/json"), ("Connection", "close")],
                body,
            ),
        )
        return False

    def _next(self, conn: _Conn) -> bool:
        first = False
        inv: Invocation | None = None
        slot = _Slot(conn)
        with self._lock:
            if conn.generation != self._generation or self._closed:
                return False
            if not self._initialized:
                self._initialized = first = True
        if first:
            self.hooks.on_init_done()
        with self._lock:
            if self._pending:
                inv = self._pending.popleft()
            else:
                self._slots.append(slot)
                if len(self._slots) >= self.concurrency and not self._active:
                    self.hooks.on_idle()
        if inv is not None:
            if self._deliver(conn, inv):
                return True
            with self._lock:
                self._pending.appendleft(inv)
            return False
        slot.ready.wait()
        return not slot.dead

    def _init_error(self, conn: _Conn, reader: SocketReader, head: RequestHead) -> bool:
        error = _read_error(reader, head)
        _send(conn, _ACCEPTED)
        self.hooks.on_init_error(error)
        return True

    def _invocation_error(
        self, conn: _Conn, reader: SocketReader, head: RequestHead, inv: Invocation
    ) -> bool:
        error = _read_error(reader, head)
        self._complete(inv, error=error, status=502, done_at=reader.last_recv_at)
        _send(conn, _ACCEPTED)
        return True

    def _response(
        self, conn: _Conn, reader: SocketReader, head: RequestHead, inv: Invocation
    ) -> bool:
        streaming = head.get("lambda-runtime-function-response-mode").lower() == "streaming"
        try:
            if streaming:
                self._streamed(reader, head, inv)
            else:
                reply = self._buffered(reader, head, inv)
                if reply is not None:
                    _send(conn, reply)
                    return False
        except ProtocolError as exc:
            self._complete(
                inv,
                error={
                    "errorType": "Runtime.IncompleteResponse",
                    "errorMessage": f"The runtime's response ended abruptly: {exc}",
                },
            )
            return False
        _send(conn, _ACCEPTED)
        return True

    def _streamed(self, reader: SocketReader, head: RequestHead, inv: Invocation) -> None:
        """Parse the prelude, then forward each body chunk the moment it is received."""
        sink = inv.sink
        trailers: dict[str, str] = {}
        prelude_buf = bytearray()
        state = "prelude"  # -> "body", or "drain" once the invocation failed
        total = 0
        for view in iter_body(reader, head, trailers):
            if state == "body":
                if inv.first_body_byte_at is None:
                    inv.first_body_byte_at = reader.last_recv_at
                total += len(view)
                if total > MAX_STREAMED_RESPONSE:
                    self._complete(inv, error=_too_large(MAX_STREAMED_RESPONSE))
                    state = "drain"
                elif not inv.finished:
                    sink.write(view)
                continue
            if state == "drain" or inv.finished:
                continue
            before = len(prelude_buf)
            prelude_buf += view[: PRELUDE_LIMIT + len(DELIMITER) - before]
            idx = prelude_buf.find(DELIMITER, max(0, before - len(DELIMITER) + 1))
            if idx < 0:
                if len(prelude_buf) >= PRELUDE_LIMIT + len(DELIMITER):
                    self._invalid_prelude(inv, "no 8-byte NUL delimiter within the first 16 KB")
                    state = "drain"
                continue
            inv.prelude_at = reader.last_recv_at
            rest = view[idx + len(DELIMITER) - before :]
            if self._start_body(inv, bytes(prelude_buf[:idx]), rest, reader.last_recv_at):
                state = "body"
                total += len(rest)
            else:
                state = "drain"
        inv.bytes = total
        done_at = reader.last_recv_at
        if ERROR_TYPE_TRAILER in trailers:
            error = _decode_error_body(trailers.get(ERROR_BODY_TRAILER, ""))
            error.setdefault("errorType", trailers[ERROR_TYPE_TRAILER])
            error["trailerErrorType"] = trailers[ERROR_TYPE_TRAILER]
            self._complete(inv, error=error, status=502, done_at=done_at)
        elif state == "prelude":
            self._invalid_prelude(inv, "the stream ended before the 8-byte NUL delimiter")
        else:
            self._complete(inv, done_at=done_at)

    def _start_body(
        self, inv: Invocation, raw_prelude: bytes, first: memoryview, arrived: float
    ) -> bool:
        """Send status and headers (with the first body bytes); False if the prelude is bad."""
        prelude = _parse_prelude(raw_prelude)
        if isinstance(prelude, str):
            self._invalid_prelude(inv, prelude)
            return False
        inv.prelude = prelude
        if first:
            inv.first_body_byte_at = arrived
        try:
            inv.sink.start(prelude, first)
        except ValueError as exc:
            inv.first_body_byte_at = None
            self._invalid_prelude(inv, str(exc))
            return False
        return True

    def _invalid_prelude(self, inv: Invocation, reason: str) -> None:
        self._complete(
            inv,
            error={"errorType": "Emulator.InvalidPrelude", "errorMessage": reason},
            status=500,
        )

    def _buffered(self, reader: SocketReader, head: RequestHead, inv: Invocation) -> bytes | None:
        """A non-streaming response: Lambda proxy JSON. Returns a reply for oversize bodies."""
        try:
            raw = read_body(reader, head, MAX_BUFFERED_RESPONSE)
        except BodyTooLarge:
            self._complete(inv, error=_too_large(MAX_BUFFERED_RESPONSE))
            body = json.dumps(
                {
                    "errorMessage": (
                        f"Exceeded maximum allowed payload size ({MAX_BUFFERED_RESPONSE} bytes)."
                    ),
                    "errorType": "RequestEntityTooLarge",
                }
            ).encode()
            return http_response(
                413,
                "Request Entity Too Large",
                [("Content-Type", "application/json"), ("Connection", "close")],
                body,
            )
        arrived = reader.last_recv_at
        inv.prelude_at = arrived
        parsed = _parse_proxy_response(raw)
        if isinstance(parsed, str):
            self._complete(
                inv,
                error={"errorType": "Emulator.MalformedProxyResponse", "errorMessage": parsed},
                done_at=arrived,
            )
            return None
        prelude, body_bytes = parsed
        inv.prelude = prelude
        if body_bytes:
            inv.first_body_byte_at = arrived
        try:
            inv.sink.start(prelude, body_bytes)
        except ValueError as exc:
            self._complete(
                inv,
                error={"errorType": "Emulator.MalformedProxyResponse", "errorMessage": str(exc)},
                done_at=arrived,
            )
            return None
        inv.bytes = len(body_bytes)
        self._complete(inv, done_at=arrived)
        return None


# -- helpers -------------------------------------------------------------------------------

_ACCEPTED = http_response(
    202, "Accepted", [("Content-Type", "application/json")], b'{"status":"OK"}'
)


def _send(conn: _Conn, data: bytes) -> None:
    with contextlib.suppress(OSError):
        conn.sock.sendall(data)


def _peer_closed(sock: socket.socket) -> bool:
    """True if the runtime closed a waiting /next connection (an event sent there is lost)."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False


def _trace_id(wall_ms: float) -> str:
    return (
        f"Root=1-{int(wall_ms / 1000):08x}-{os.urandom(12).hex()};"
        f"Parent={os.urandom(8).hex()};Sampled=0"
    )


def _too_large(limit: int) -> dict[str, Any]:
    return {
        "errorType": "Function.ResponseSizeTooLarge",
        "errorMessage": f"The response is larger than {limit} bytes.",
    }


def _parse_prelude(raw: bytes) -> dict[str, Any] | str:
    """The prelude dict, or a sentence saying why it is not one."""
    try:
        prelude = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return f"the prelude before the NUL delimiter is not valid JSON ({exc})"
    if not isinstance(prelude, dict):
        return "the prelude must be a JSON object"
    return prelude


def _parse_proxy_response(raw: bytes) -> tuple[dict[str, Any], bytes] | str:
    try:
        data = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError) as exc:
        return f"the buffered response is not valid JSON ({exc})"
    if not isinstance(data, dict) or "statusCode" not in data:
        return "the buffered response is not a Lambda proxy response (no statusCode)"
    prelude = {
        k: data[k] for k in ("statusCode", "headers", "multiValueHeaders", "cookies") if k in data
    }
    body = data.get("body")
    if body is None:
        return prelude, b""
    if not isinstance(body, str):
        return "the buffered response's body must be a string"
    if data.get("isBase64Encoded"):
        try:
            return prelude, base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return "the buffered response's body is not valid base64"
    return prelude, body.encode("utf-8")


def _read_error(reader: SocketReader, head: RequestHead) -> dict[str, Any]:
    """An /error or /init/error body as a dict (raw text kept if it is not JSON)."""
    try:
        raw = read_body(reader, head, MAX_BUFFERED_RESPONSE)
    except BodyTooLarge:
        raw = b'{"errorMessage": "error body too large"}'
    try:
        error = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        error = {"errorMessage": raw.decode("utf-8", "replace")}
    if not isinstance(error, dict):
        error = {"errorMessage": error}
    error_type = head.get("lambda-runtime-function-error-type")
    if error_type:
        error.setdefault("errorType", error_type)
    return error


def _decode_error_body(value: str) -> dict[str, Any]:
    try:
        decoded = json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return {"errorMessage": value, "rawErrorBody": value}
    return decoded if isinstance(decoded, dict) else {"errorMessage": decoded}
