"""The API Gateway side: HTTP requests in as Lambda events, streamed responses out.

Behaves like a REST API with a `{proxy+}` resource + root, method ANY, an AWS_PROXY
integration in STREAM mode and binaryMediaTypes ["*/*"] (design.md §3; the event itself is
built in `emulator.events`, which can also build Function URL events):
- an optional stage prefix is required and stripped from `path`;
- the response starts as soon as the prelude arrives and each body chunk is written to the
  client (chunked encoding, TCP_NODELAY) as soon as the runtime sends it; a mid-stream
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
from http import HTTPStatus
from typing import Any

from emulator.events import HOP_BY_HOP, build_function_url_event, build_rest_event
from emulator.http11 import (
    BodyTooLarge,
    ProtocolError,
    RequestHead,
    SocketReader,
    TcpServer,
    http_response,
    read_body,
    read_request_head,
    sendv,
)
from emulator.invocation import Invocation
from emulator.timers import Scheduler

MAX_REQUEST_BODY = 10 * 1024 * 1024  # API Gateway's payload limit
MAX_EVENT_BYTES = 6_291_556  # Lambda's invocation payload limit (the body travels base64)
IDLE_TIMEOUT = 300.0  # REST API streaming idle timeout, REGIONAL endpoints
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
        if any(c in value for c in "\r\n\x00"):
            raise ValueError(f"prelude header {name!r} has a CR, LF or NUL in its value")
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


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class ClientSink:
    """Streams a response to the gateway's HTTP client."""

    def __init__(
        self,
        sock: socket.socket,
        head: RequestHead,
        gateway_request_id: str,
        *,
        idle_timeout: float | None = None,
        scheduler: Scheduler | None = None,
    ) -> None:
        self.sock = sock
        self.invocation: Invocation | None = None
        self._idle_timeout = idle_timeout if scheduler is not None else None
        self._scheduler = scheduler
        self._last_activity = 0.0
        self.status: int | None = None
        self.reusable = False
        self._method = head.method
        self._http10 = head.version == "HTTP/1.0"
        self._client_keep_alive = head.keep_alive
        self._request_id = gateway_request_id
        self._lock = threading.Lock()
        self._state = "new"  # new -> open -> done | cut | gone
        self._mode = "chunked"  # chunked | length | close | none
        self._remaining = 0
        self._keep_alive = False

    @property
    def started(self) -> bool:
        return self._state != "new"

    def _common_headers(self) -> list[tuple[str, str]]:
        return [
            ("Date", time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())),
            ("x-amzn-RequestId", self._request_id),
        ]

    def start(self, prelude: dict[str, Any], first: bytes | memoryview = b"") -> None:
        status, headers = prelude_headers(prelude)
        length: int | None = None
        kept: list[tuple[str, str]] = []
        for name, value in headers:
            lower = name.lower()
            if lower in HOP_BY_HOP:
                continue
            if lower == "content-length":
                if length is not None or not value.strip().isdigit():
                    continue  # invalid or repeated: fall back to chunked framing
                length = int(value)
            kept.append((name, value))
        no_body = self._method == "HEAD" or status in (204, 304) or status < 200
        if no_body:
            mode = "none"
        elif length is not None:
            mode = "length"
        elif self._http10:
            mode = "close"
            kept = [(n, v) for n, v in kept if n.lower() != "content-length"]
        else:
            mode = "chunked"
        keep_alive = self._client_keep_alive and mode != "close"
        common = self._common_headers()
        if any(n.lower() == "date" for n, _ in kept):
            common = common[1:]
        lines = [f"HTTP/1.1 {status} {_reason(status)}".encode()]
        lines += [_encode_header(f"{n}: {v}") for n, v in [*common, *kept]]
        if mode == "chunked":
            lines.append(b"Transfer-Encoding: chunked")
        lines.append(b"Connection: keep-alive" if keep_alive else b"Connection: close")
        head = b"\r\n".join(lines) + b"\r\n\r\n"
        with self._lock:
            if self._state != "new":
                return
            self.status = status
            self._mode = mode
            self._remaining = length or 0
            self._keep_alive = keep_alive
            self._state = "open"
            # Headers and the first body bytes in one segment when they arrived together.
            parts: list[bytes | memoryview] = [head]
            n = len(first)
            if n and mode == "chunked":
                parts += [b"%X\r\n" % n, first, b"\r\n"]
            elif n and mode == "length":
                take = min(n, self._remaining)
                parts.append(first[:take])
                self._remaining = self._remaining - take if take == n else -1
            elif n and mode == "close":
                parts.append(first)
            try:
                sendv(self.sock, parts)
            except OSError:
                self._state = "gone"
            self._last_activity = time.perf_counter()
        if self._idle_timeout and self._scheduler is not None and mode != "none":
            self._schedule_idle_check()

    def _schedule_idle_check(self) -> None:
        assert self._scheduler is not None and self._idle_timeout is not None
        self._scheduler.call_at(
            self._last_activity + self._idle_timeout,
            self._idle_check,
            lambda: self._state != "open",
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

    def _send(self, data: bytes | memoryview) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            self._state = "gone"

    def write(self, data: bytes | memoryview) -> None:
        n = len(data)
        if not n:
            return
        with self._lock:
            if self._state != "open":
                return
            self._last_activity = time.perf_counter()
            mode = self._mode
            if mode == "chunked":
                try:
                    sendv(self.sock, [b"%X\r\n" % n, data, b"\r\n"])
                except OSError:
                    self._state = "gone"
            elif mode == "length":
                take = min(n, self._remaining)
                if take:
                    self._send(data[:take])
                    self._remaining -= take
                if take < n:  # more bytes than Content-Length promised
                    self._remaining = -1
            elif mode == "close":
                self._send(data)

    def finish(self) -> None:
        with self._lock:
            if self._state != "open":
                return
            if self._mode == "chunked":
                self._send(b"0\r\n\r\n")
            elif self._mode == "length" and self._remaining != 0:
                self._cut_locked()
                return
            if self._state == "open":
                self._state = "done"
                self.reusable = self._keep_alive

    def abort(self) -> None:
        # Shut the socket down first (outside the lock) to unblock a send stuck on a slow client.
        if self._state in ("open", "new"):
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
        with self._lock:
            if self._state in ("open", "new"):
                self._state = "cut"

    def _cut_locked(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self._state = "cut"

    def fail(self, status: int, body: dict[str, Any]) -> None:
        if self._state != "new":
            self.abort()
            return
        payload = json.dumps(body).encode()
        headers = [
            *self._common_headers(),
            ("Content-Type", "application/json"),
            ("x-amzn-ErrorType", _error_type(status)),
            ("Connection", "keep-alive" if self._client_keep_alive else "close"),
        ]
        data = http_response(status, _reason(status), headers, payload)
        if self._method == "HEAD":  # same headers, no body
            data = data[: data.index(b"\r\n\r\n") + 4]
        with self._lock:
            if self._state != "new":
                return
            self.status = status
            self._state = "open"
            self._send(data)
            if self._state == "open":
                self._state = "done"
                self.reusable = self._client_keep_alive


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
        reader = SocketReader(sock)
        with contextlib.suppress(OSError):  # the client went away: nothing to answer
            while True:
                try:
                    head = read_request_head(reader)
                except ProtocolError:
                    sock.sendall(_plain_error(400, "Bad Request"))
                    return
                if head is None:
                    return
                if head.get("expect").lower() == "100-continue":
                    sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                try:
                    body = read_body(reader, head, MAX_REQUEST_BODY)
                except BodyTooLarge:
                    message = f"HTTP content length exceeded {MAX_REQUEST_BODY} bytes."
                    sock.sendall(
                        http_response(
                            413,
                            _reason(413),
                            [("Content-Type", "text/plain"), ("Connection", "close")],
                            message.encode(),
                        )
                    )
                    return
                except ProtocolError:
                    return
                if not self._handle(sock, addr, head, body):
                    return

    def _handle(
        self, sock: socket.socket, addr: tuple[str, int], head: RequestHead, body: bytes
    ) -> bool:
        gateway_request_id = str(uuid.uuid4())
        sink = ClientSink(
            sock,
            head,
            gateway_request_id,
            idle_timeout=self.idle_timeout,
            scheduler=self._scheduler,
        )
        strip = False
        if self.stage:
            path = head.target.split("?", 1)[0]
            if path != f"/{self.stage}" and not path.startswith(f"/{self.stage}/"):
                sink.fail(403, {"message": "Forbidden"})
                return sink.reusable
            strip = True
        if self.event_format == "function-url":
            event = build_function_url_event(
                method=head.method,
                target=head.target,
                headers=head.headers,
                body=body,
                source_ip=addr[0],
                request_id=gateway_request_id,
                forwarded_proto=self.forwarded_proto,
                forwarded_port=self.port,
            )
        else:
            event = build_rest_event(
                method=head.method,
                target=head.target,
                headers=head.headers,
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
            if inv.claim_completion():
                inv.error = {
                    "errorType": "RequestEntityTooLargeException",
                    "errorMessage": (
                        f"{len(inv.payload)} byte payload is too large for the "
                        f"RequestResponse invocation type (limit {MAX_EVENT_BYTES} bytes)"
                    ),
                }
                sink.fail(413, {"message": "Request Too Long"})
                inv.response_done_at = time.perf_counter()
                inv.done.set()
            return sink.reusable
        self._submit(inv)
        inv.done.wait()
        return sink.reusable


def _plain_error(status: int, message: str) -> bytes:
    body = json.dumps({"message": message}).encode()
    return http_response(
        status,
        _reason(status),
        [("Content-Type", "application/json"), ("Connection", "close")],
        body,
    )
