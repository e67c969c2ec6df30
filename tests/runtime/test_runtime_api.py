"""The Runtime API client's wire format, checked byte for byte against a socket server."""

from __future__ import annotations

import base64
import json
import socket
import threading

import pytest
from streaming_proxy.runtime_api import ResponseStream, RuntimeApiClient, RuntimeApiError


class OneShotServer:
    """Accepts one connection, records what arrives, answers with canned responses."""

    def __init__(self, responses: list[bytes]) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.received = b""
        self.responses = responses
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            for response in self.responses:
                while not self._complete():
                    data = conn.recv(65536)
                    if not data:
                        return
                    self.received += data
                self.requests_seen = self.received
                conn.sendall(response)
                self._consumed = len(self.received)

    _consumed = 0

    def _complete(self) -> bool:
        pending = self.received[self._consumed :]
        if b"\r\n\r\n" not in pending:
            return False
        head, _, body = pending.partition(b"\r\n\r\n")
        if b"chunked" in head:
            return body.endswith(b"\r\n\r\n") and b"0\r\n" in body
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                return len(body) >= int(line.split(b":")[1])
        return True


NEXT = (
    b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: req-1\r\n"
    b"Lambda-Runtime-Deadline-Ms: 1800000000000\r\nLambda-Runtime-Trace-Id: Root=1-abc\r\n"
    b'Content-Length: 13\r\n\r\n{"event": 1}\n'
)
ACCEPTED_CHUNKED = b'HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{"status":"OK"}\n\r\n0\r\n\r\n'


def test_next_parses_the_invocation():
    server = OneShotServer([NEXT])
    inv = RuntimeApiClient(server.address).next()
    assert (inv.request_id, inv.deadline_ms, inv.trace_id) == ("req-1", 1800000000000, "Root=1-abc")
    assert inv.body == b'{"event": 1}\n'
    assert server.received.startswith(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n")


def test_streamed_response_is_framed_with_prelude_and_chunks():
    server = OneShotServer([NEXT, ACCEPTED_CHUNKED])
    client = RuntimeApiClient(server.address)
    inv = client.next()
    stream = ResponseStream(client.connection, inv.request_id)
    stream.start(b'{"statusCode":200}')
    stream.write(b"data: 1\n\n")
    assert stream.finish() == 202
    request = server.received.split(b"\r\n\r\n", 2)[1:]  # after the /next request
    head, body = request[0], request[1]
    assert head.startswith(b"POST /2018-06-01/runtime/invocation/req-1/response HTTP/1.1")
    assert b"Lambda-Runtime-Function-Response-Mode: streaming" in head
    assert b"Transfer-Encoding: chunked" in head
    assert b"Content-Type: application/vnd.awslambda.http-integration-response" in head
    assert (
        body
        == b'1a\r\n{"statusCode":200}\x00\x00\x00\x00\x00\x00\x00\x00\r\n9\r\ndata: 1\n\n\r\n0\r\n\r\n'
    )


def test_mid_stream_error_ends_with_trailers():
    server = OneShotServer([NEXT, b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"])
    client = RuntimeApiClient(server.address)
    stream = ResponseStream(client.connection, client.next().request_id)
    stream.start(b"{}")
    stream.finish("Runtime.StreamError", "upstream reset")
    tail = server.received.rsplit(b"\r\n0\r\n", 1)[1]
    fields = dict(line.split(b": ", 1) for line in tail.strip().split(b"\r\n"))
    assert fields[b"Lambda-Runtime-Function-Error-Type"] == b"Runtime.StreamError"
    error = json.loads(base64.b64decode(fields[b"Lambda-Runtime-Function-Error-Body"]))
    assert error == {
        "errorType": "Runtime.StreamError",
        "errorMessage": "upstream reset",
        "stackTrace": [],
    }


def test_non_200_next_raises():
    server = OneShotServer([b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"])
    with pytest.raises(RuntimeApiError, match="answered 500"):
        RuntimeApiClient(server.address).next()


def test_keepalive_is_only_inserted_between_events():
    server = OneShotServer([NEXT, b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"])
    client = RuntimeApiClient(server.address)
    stream = ResponseStream(client.connection, client.next().request_id)
    stream.start(b"{}")
    stream.write(b"data: half an ev")
    assert not stream.write_if_idle(b": keep-alive\n\n", idle_since=float("inf"))
    stream.write(b"ent\n")
    stream.write(b"\n")  # the event ends across two chunks
    assert stream.write_if_idle(b": keep-alive\n\n", idle_since=float("inf"))
    stream.finish()
    body = server.received.split(b"\r\n\r\n", 2)[2]
    assert dechunk(body) == b"{}" + b"\0" * 8 + b"data: half an event\n\n: keep-alive\n\n"


def dechunk(body: bytes) -> bytes:
    out = b""
    while True:
        size, _, body = body.partition(b"\r\n")
        if int(size, 16) == 0:
            return out
        out, body = out + body[: int(size, 16)], body[int(size, 16) + 2 :]
