"""The API Gateway side: HTTP requests in as Lambda events, streamed responses out.

Behaves like a REST API with a `{proxy+}` resource + root, method ANY, an AWS_PROXY
integration in STREAM mode and binaryMediaTypes ["*/*"] (design.md §3; the event itself is
built in `emulator.events`, which can also build Function URL events):
- an optional stage prefix is required and stripped from `path`;
- the response starts as soon as the prelude arrives and each body chunk is written to the
  client (h11 frames it, TCP_NODELAY) as soon as the runtime sends it; a mid-stream
  failure cuts the connection without the terminating chunk.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import h11

from emulator.events import HOP_BY_HOP, build_function_url_event, build_rest_event
from emulator.http11 import (
    BodyTooLarge,
    Headers,
    ServerConnection,
    TcpServer,
    data_event,
    raw_headers,
    reason,
)
from emulator.invocation import Invocation
from emulator.timers import Scheduler

MAX_REQUEST_BODY = 10 * 1024 * 1024  # API Gateway's payload limit
MAX_EVENT_BYTES = 6_291_556  # Lambda's invocation payload limit (the body travels base64)
IDLE_TIMEOUT = 300.0  # REST API streaming idle timeout, REGIONAL endpoints
JSON = ("Content-Type", "application/json")
CLOSE = ("Connection", "close")
_TCHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def prelude_headers(prelude: dict[str, Any]) -> tuple[int, list[tuple[str, str]]]:
    """Status and header list from a prelude; ValueError names what is malformed."""
    status = prelude.get("statusCode", 200)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(f"prelude statusCode {status!r} is not an HTTP status code")
    single = prelude.get("headers") or {}
    multi = prelude.get("multiValueHeaders") or {}
    cookies = prelude.get("cookies") or []
    if not isinstance(single, dict) or not isinstance(multi, dict):
        raise ValueError("prelude headers/multiValueHeaders must be JSON objects")
    if not isinstance(cookies, list):
        raise ValueError("prelude cookies must be a list of strings")
    in_multi = {k.lower() for k in multi}
    out: list[tuple[str, str]] = []
    for name, value in single.items():
        if name.lower() not in in_multi and value is not None:
            out.append((name, _header_text(value)))
    for name, values in multi.items():
        if not isinstance(values, list):
            raise ValueError(f"prelude multiValueHeaders[{name!r}] must be a list")
        out += [(name, _header_text(v)) for v in values if v is not None]
    out += [("Set-Cookie", _header_text(c)) for c in cookies]
    for name, value in out:
        if not name or not set(name) <= _TCHARS:
            raise ValueError(f"prelude header name {name!r} is not a valid HTTP token")
        if any((c < " " and c != "\t") or c == "\x7f" for c in value):
            raise ValueError(f"prelude header {name!r} has a control character in its value")
    return status, out


def _header_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _encode_header(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


class ClientSink:
    """Streams a response to the gateway's HTTP client; h11 frames it (chunked for HTTP/1.1,
    close-delimited for HTTP/1.0, Content-Length when the prelude gives one, none for HEAD)."""

    def __init__(
        self,
        conn: ServerConnection,
        request: h11.Request,
        gateway_request_id: str,
        *,
        idle_timeout: float | None = None,
        scheduler: Scheduler | None = None,
    ) -> None:
        self._conn = conn
        self.invocation: Invocation | None = None
        self._idle_timeout = idle_timeout if scheduler is not None else None
        self._scheduler = scheduler
        self._last_activity = 0.0
        self.status: int | None = None
        self._head_only = request.method == b"HEAD"
        self._request_id = gateway_request_id
        self._lock = threading.Lock()
        self._started = False  # a status line went out (or an error answer did)
        self._streaming = False  # between the headers and the end of the body
        self._bodyless = False
        self._cut = False

    @property
    def started(self) -> bool:
        return self._started

    @property
    def reusable(self) -> bool:
        """The client can send its next request on this connection."""
        return not self._cut and self._conn.reusable

    def _common_headers(self) -> Headers:
        return [
            ("Date", time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())),
            ("x-amzn-RequestId", self._request_id),
        ]

    def start(self, prelude: dict[str, Any], first: bytes | memoryview = b"") -> None:
        status, headers = prelude_headers(prelude)
        length: str | None = None
        kept: Headers = []
        for name, value in headers:
            lower = name.lower()
            if lower in HOP_BY_HOP:
                continue
            if lower == "content-length":
                if length is not None or not value.strip().isdigit():
                    continue  # invalid or repeated: fall back to chunked framing
                length = value.strip()
            kept.append((name, value))
        common = self._common_headers()
        if any(n.lower() == "date" for n, _ in kept):
            common = common[1:]
        try:
            response = h11.Response(
                status_code=status,
                headers=[
                    (n.encode("latin-1"), _encode_header(v.strip())) for n, v in [*common, *kept]
                ],
                reason=reason(status),
            )
        except h11.LocalProtocolError as exc:
            raise ValueError(f"prelude headers are not valid HTTP: {exc}") from None
        bodyless = self._head_only or status in (204, 304) or status < 200
        with self._lock:
            if self._started:
                return
            self._started = self._streaming = True
            self.status = status
            self._bodyless = bodyless
            # Headers and the first body bytes in one segment when they arrived together.
            events: list[h11.Event] = [response]
            if first and not bodyless:
                events.append(data_event(first))
            self._send_locked(events)
            self._last_activity = time.perf_counter()
        if self._idle_timeout and self._scheduler is not None and not bodyless:
            self._schedule_idle_check()

    def _send_locked(self, events: list[h11.Event]) -> None:
        try:
            self._conn.send(events)
        except h11.LocalProtocolError:  # e.g. more bytes than the Content-Length promised
            self._cut_locked()
        except OSError:
            self._cut = True  # the client is gone
            self._streaming = False

    def _schedule_idle_check(self) -> None:
        assert self._scheduler is not None and self._idle_timeout is not None
        self._scheduler.call_at(
            self._last_activity + self._idle_timeout,
            self._idle_check,
            lambda: not self._streaming,
        )

    def _idle_check(self) -> None:
        """Cut the stream like API Gateway when no byte went out for the idle timeout."""
        assert self._idle_timeout is not None
        if time.perf_counter() - self._last_activity < self._idle_timeout:
            self._schedule_idle_check()
            return
        if self.invocation is not None:
            self.invocation.gateway_error = (
                f"idle timeout: no response bytes for {self._idle_timeout:g} s"
            )
        self.abort()

    def write(self, data: bytes | memoryview) -> None:
        if not data:
            return
        with self._lock:
            if not self._streaming:
                return
            self._last_activity = time.perf_counter()
            if not self._bodyless:
                self._send_locked([data_event(data)])

    def finish(self) -> None:
        with self._lock:
            if self._streaming:
                self._send_locked([h11.EndOfMessage()])
                self._streaming = False

    def abort(self) -> None:
        # Shut the socket down first (outside the lock) to unblock a send stuck on a slow client.
        if not self._cut and (self._streaming or not self._started):
            with contextlib.suppress(OSError):
                self._conn.sock.shutdown(socket.SHUT_RDWR)
        with self._lock:
            if self._streaming or not self._started:
                self._cut = True
                self._streaming = False
                self._started = True

    def _cut_locked(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.sock.shutdown(socket.SHUT_RDWR)
        self._cut = True
        self._streaming = False

    def fail(self, status: int, body: dict[str, Any]) -> None:
        if self._started:
            self.abort()
            return
        payload = json.dumps(body).encode()
        headers = [
            *self._common_headers(),
            ("Content-Type", "application/json"),
            ("x-amzn-ErrorType", _error_type(status)),
            ("Content-Length", str(len(payload))),
        ]
        events: list[h11.Event] = [
            h11.Response(status_code=status, headers=headers, reason=reason(status))
        ]
        if not self._head_only:  # a HEAD answer has the same headers and no body
            events.append(h11.Data(data=payload))
        events.append(h11.EndOfMessage())
        with self._lock:
            if self._started:  # another thread may have started the answer meanwhile
                return  # type: ignore[unreachable]
            self._started = True
            self.status = status
            self._send_locked(events)


def _error_type(status: int) -> str:
    return {
        413: "BadRequestException",
        504: "IntegrationTimeoutException",
        403: "ForbiddenException",
    }.get(status, "InternalServerErrorException")


class Gateway:
    """HTTP server turning requests into REST v1 events for `submit`."""

    def __init__(
        self,
        submit: Callable[[Invocation], None],
        make_invocation: Callable[[Any, ClientSink, str], Invocation],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        stage: str | None = None,
        forwarded_proto: str = "http",
        idle_timeout: float | None = IDLE_TIMEOUT,
        scheduler: Scheduler | None = None,
        event_format: str = "rest",
    ) -> None:
        if event_format not in ("rest", "function-url"):
            raise ValueError(f"event_format must be 'rest' or 'function-url', not {event_format!r}")
        self.event_format = event_format
        self._submit = submit
        self._make_invocation = make_invocation
        self.idle_timeout = idle_timeout
        self._scheduler = scheduler
        self.stage = stage
        self.forwarded_proto = forwarded_proto
        self._server = TcpServer(host, port, self._serve, "gateway")
        self.port = self._server.port
        self.url = f"http://{host}:{self.port}"

    def start(self) -> None:
        self._server.start()

    def close(self) -> None:
        self._server.close()

    def _serve(self, sock: socket.socket, addr: tuple[str, int]) -> None:
        conn = ServerConnection(sock)
        with contextlib.suppress(OSError):  # the client went away: nothing to answer
            while True:
                try:
                    request = conn.next_request()
                except h11.RemoteProtocolError as exc:
                    status = exc.error_status_hint
                    message = reason(status).decode()
                    conn.respond(status, [JSON, CLOSE], json.dumps({"message": message}).encode())
                    return
                if request is None:
                    return
                try:
                    body = conn.read_body(MAX_REQUEST_BODY)
                except BodyTooLarge:
                    message = f"HTTP content length exceeded {MAX_REQUEST_BODY} bytes."
                    conn.respond(413, [("Content-Type", "text/plain"), CLOSE], message.encode())
                    return
                except h11.RemoteProtocolError:
                    return
                if not self._handle(conn, addr, request, body):
                    return

    def _handle(
        self, conn: ServerConnection, addr: tuple[str, int], request: h11.Request, body: bytes
    ) -> bool:
        gateway_request_id = str(uuid.uuid4())
        sink = ClientSink(
            conn,
            request,
            gateway_request_id,
            idle_timeout=self.idle_timeout,
            scheduler=self._scheduler,
        )
        method = request.method.decode("latin-1")
        target = request.target.decode("latin-1")
        headers = raw_headers(request)
        strip = False
        if self.stage:
            path = target.split("?", 1)[0]
            if path != f"/{self.stage}" and not path.startswith(f"/{self.stage}/"):
                sink.fail(403, {"message": "Forbidden"})
                return sink.reusable
            strip = True
        if self.event_format == "function-url":
            event = build_function_url_event(
                method=method,
                target=target,
                headers=headers,
                body=body,
                source_ip=addr[0],
                request_id=gateway_request_id,
                forwarded_proto=self.forwarded_proto,
                forwarded_port=self.port,
            )
        else:
            event = build_rest_event(
                method=method,
                target=target,
                headers=headers,
                body=body,
                source_ip=addr[0],
                request_id=gateway_request_id,
                stage=self.stage or "local",
                strip_stage=strip,
                forwarded_proto=self.forwarded_proto,
                forwarded_port=self.port,
            )
        inv = self._make_invocation(event, sink, "gateway")
        sink.invocation = inv
        if len(inv.payload) > MAX_EVENT_BYTES:
            # Lambda refuses the invoke; API Gateway answers 413 (BadRequestException).
            error = {
                "errorType": "RequestEntityTooLargeException",
                "errorMessage": (
                    f"{len(inv.payload)} byte payload is too large for the "
                    f"RequestResponse invocation type (limit {MAX_EVENT_BYTES} bytes)"
                ),
            }
            inv.refuse(413, {"message": "Request Too Long"}, error)
            return sink.reusable
        self._submit(inv)
        inv.done.wait()
        return sink.reusable
