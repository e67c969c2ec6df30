"""Client of the Lambda Runtime API, including the response-streaming protocol.

Each worker owns one keep-alive connection. h11 frames the requests: it writes the chunked
body and, on a mid-stream failure, the error trailers that httpx cannot send
(encode/httpx#1149). Body chunks go out with one vectored ``sendmsg`` and no copy.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from dataclasses import dataclass

import h11

API_VERSION = "2018-06-01"
PRELUDE_DELIMITER = b"\x00" * 8
ERROR_TYPE_TRAILER = b"Lambda-Runtime-Function-Error-Type"
ERROR_BODY_TRAILER = b"Lambda-Runtime-Function-Error-Body"
_MAX_EVENT_READ = 256 * 1024


class RuntimeApiError(ConnectionError):
    """The Runtime API answered unexpectedly or went away."""


@dataclass(frozen=True, slots=True)
class Invocation:
    request_id: str
    deadline_ms: int
    trace_id: str | None
    function_arn: str | None
    body: bytes


class RuntimeApiClient:
    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self._address = (host or "127.0.0.1", int(port))
        self._host_header = address.encode("ascii")
        self._sock: socket.socket | None = None
        self._conn = h11.Connection(h11.CLIENT)

    # -- connection -------------------------------------------------------------------------

    def _socket(self) -> socket.socket:
        if self._sock is None:
            sock = socket.create_connection(self._address)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
            self._conn = h11.Connection(h11.CLIENT)
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _send(self, event: h11.Event) -> None:
        sock = self._socket()  # first: a new socket comes with a new h11 connection
        pieces = self._conn.send_with_data_passthrough(event)
        if pieces:
            send_all(sock, pieces)

    def _receive(self) -> tuple[h11.Response, bytes]:
        """Read one whole response (the Runtime API's are small, /next's at most 6 MB)."""
        sock = self._socket()
        response: h11.Response | None = None
        body = bytearray()
        while True:
            event = self._conn.next_event()
            if event is h11.NEED_DATA:
                data = sock.recv(_MAX_EVENT_READ)
                if not data:
                    raise RuntimeApiError("the Runtime API closed the connection mid-response")
                self._conn.receive_data(data)
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise RuntimeApiError("the Runtime API closed the connection")
        assert response is not None
        self._recycle()
        return response, bytes(body)

    def _recycle(self) -> None:
        if self._conn.our_state is h11.DONE and self._conn.their_state is h11.DONE:
            self._conn.start_next_cycle()
        else:
            self.close()

    def _request(self, method: bytes, path: str, body: bytes = b"", **headers: str) -> bytes:
        head = [(b"Host", self._host_header), (b"Content-Length", str(len(body)).encode())]
        head += [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
        for attempt in (1, 2):
            try:
                self._send(h11.Request(method=method, target=path.encode(), headers=head))
                if body:
                    self._send(h11.Data(data=body))
                self._send(h11.EndOfMessage())
                response, data = self._receive()
                break
            except (OSError, h11.ProtocolError, RuntimeApiError):
                self.close()
                if attempt == 2:
                    raise
        if response.status_code >= 300:
            raise RuntimeApiError(
                f"Runtime API {method.decode()} {path} answered {response.status_code}: "
                f"{data[:300].decode('utf-8', 'replace')}"
            )
        return data

    # -- protocol steps ---------------------------------------------------------------------

    def next(self) -> Invocation:
        """Block until Lambda hands out the next event (the environment may freeze here)."""
        path = f"/{API_VERSION}/runtime/invocation/next"
        for attempt in (1, 2):
            try:
                self._send(
                    h11.Request(
                        method=b"GET", target=path.encode(), headers=[(b"Host", self._host_header)]
                    )
                )
                self._send(h11.EndOfMessage())
                response, body = self._receive()
                break
            except (OSError, h11.ProtocolError, RuntimeApiError):
                self.close()
                if attempt == 2:
                    raise
        if response.status_code != 200:
            raise RuntimeApiError(f"Runtime API /next answered {response.status_code}")
        headers = {k.lower(): v for k, v in response.headers}
        request_id = headers.get(b"lambda-runtime-aws-request-id")
        if not request_id:
            raise RuntimeApiError("Runtime API /next sent no Lambda-Runtime-Aws-Request-Id")
        deadline = headers.get(b"lambda-runtime-deadline-ms", b"")
        trace = headers.get(b"lambda-runtime-trace-id")
        arn = headers.get(b"lambda-runtime-invoked-function-arn")
        return Invocation(
            request_id=request_id.decode(),
            deadline_ms=int(deadline) if deadline.isdigit() else int(time.time() * 1000) + 900_000,
            trace_id=trace.decode() if trace else None,
            function_arn=arn.decode() if arn else None,
            body=body,
        )

    def post_error(self, request_id: str, error_type: str, message: str) -> None:
        self._request(
            b"POST",
            f"/{API_VERSION}/runtime/invocation/{request_id}/error",
            _error_json(error_type, message),
            Lambda_Runtime_Function_Error_Type=error_type,
        )

    def init_error(self, error_type: str, message: str) -> None:
        self._request(
            b"POST",
            f"/{API_VERSION}/runtime/init/error",
            _error_json(error_type, message),
            Lambda_Runtime_Function_Error_Type=error_type,
        )

    def stream(self, request_id: str) -> ResponseStream:
        return ResponseStream(self, request_id)


class ResponseStream:
    """One streamed response: prelude, 8 NULs, body chunks, then end or error trailers.

    ``write`` may be called from the watchdog thread (SSE keep-alives) as well as the worker,
    so every write holds the lock; ``last_write`` and ``at_event_boundary`` tell the watchdog
    when a comment may be inserted without splitting an event.
    """

    __slots__ = (
        "_client",
        "_lock",
        "at_event_boundary",
        "bytes_sent",
        "last_write",
        "path",
        "started",
    )

    def __init__(self, client: RuntimeApiClient, request_id: str) -> None:
        self._client = client
        self._lock = threading.Lock()
        self.path = f"/{API_VERSION}/runtime/invocation/{request_id}/response".encode()
        self.started = False
        self.bytes_sent = 0
        self.last_write = time.monotonic()
        self.at_event_boundary = True

    def start(self, prelude: bytes) -> None:
        """Send the request head and the prelude; the first body chunk can follow at once."""
        request = h11.Request(
            method=b"POST",
            target=self.path,
            headers=[
                (b"Host", self._client._host_header),
                (b"Lambda-Runtime-Function-Response-Mode", b"streaming"),
                (b"Transfer-Encoding", b"chunked"),
                (b"Content-Type", b"application/vnd.awslambda.http-integration-response"),
                (b"Trailer", ERROR_TYPE_TRAILER + b", " + ERROR_BODY_TRAILER),
            ],
        )
        client = self._client
        with self._lock:
            head = client._conn.send(request) or b""
            pieces = client._conn.send_with_data_passthrough(
                h11.Data(data=prelude + PRELUDE_DELIMITER)
            )
            send_all(client._socket(), [head, *(pieces or ())])
            self.started = True
            self.last_write = time.monotonic()

    def write(self, data: bytes | memoryview) -> None:
        if not data:
            return
        with self._lock:
            pieces = self._client._conn.send_with_data_passthrough(h11.Data(data=data))
            send_all(self._client._socket(), pieces or ())
            self.bytes_sent += len(data)
            self.last_write = time.monotonic()
            self.at_event_boundary = bytes(data[-2:]) == b"\n\n" or bytes(data[-4:]) == b"\r\n\r\n"

    def write_if_idle(self, data: bytes, idle_since: float) -> bool:
        """Write ``data`` only if nothing was written since ``idle_since`` and no event is open."""
        with self._lock:
            if self.last_write > idle_since or not self.at_event_boundary:
                return False
            pieces = self._client._conn.send_with_data_passthrough(h11.Data(data=data))
            send_all(self._client._socket(), pieces or ())
            self.last_write = time.monotonic()
            return True

    def finish(self, error_type: str | None = None, message: str = "") -> int:
        """End the body (with error trailers when ``error_type`` is set); returns the status."""
        trailers = []
        if error_type:
            trailers = [
                (ERROR_TYPE_TRAILER, error_type.encode()),
                (ERROR_BODY_TRAILER, base64.b64encode(_error_json(error_type, message))),
            ]
        client = self._client
        with self._lock:
            pieces = client._conn.send_with_data_passthrough(h11.EndOfMessage(headers=trailers))
            send_all(client._socket(), pieces or ())
            self.started = False
        response, _ = client._receive()
        return response.status_code

    def abandon(self) -> None:
        """The Runtime API connection broke mid-stream: start over on a new one."""
        self._client.close()


def send_all(sock: socket.socket, pieces: list[bytes] | tuple[bytes, ...]) -> None:
    """Vectored sendall: one syscall for header + data + trailer, coping with partial sends."""
    buffers = [memoryview(p) for p in pieces if len(p)]
    while buffers:
        sent = sock.sendmsg(buffers)
        while sent and buffers:
            first = buffers[0]
            if sent >= len(first):
                sent -= len(first)
                buffers.pop(0)
            else:
                buffers[0] = first[sent:]
                sent = 0


def _error_json(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": []}).encode()
