"""The runtime's chunked writer, read back by h11 as the server side of the Runtime API would.

The writer is hand-written for speed (runtime/streaming_proxy/stream.py); h11 is the
independent check that its chunks, its end and its trailers are what HTTP/1.1 says.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import h11
from streaming_proxy.stream import ChunkedWriter

HEAD = (
    b"POST /2018-06-01/runtime/invocation/req-1/response HTTP/1.1\r\nHost: x\r\n"
    b"Transfer-Encoding: chunked\r\nTrailer: Lambda-Runtime-Function-Error-Type\r\n\r\n"
)


def read_by_h11(write: Callable[[ChunkedWriter], None]) -> list[object]:
    """The events h11 reads from what ``write`` sent through a writer."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        write(ChunkedWriter(ours))
        ours.shutdown(socket.SHUT_WR)
        received = b""
        while data := theirs.recv(65536):
            received += data
    server = h11.Connection(h11.SERVER)
    server.receive_data(received)
    events: list[object] = []
    while (event := server.next_event()) not in (h11.NEED_DATA, h11.PAUSED):
        events.append(event)
    return events


def test_chunks_keep_their_boundaries_and_the_end_closes_the_body():
    def write(writer: ChunkedWriter) -> None:
        writer.send_head(HEAD, b'{"statusCode":200}' + b"\0" * 8, b"data: 1\n\n")
        writer.send_data(memoryview(b"data: 2\n\n"))
        writer.send_eom()

    events = read_by_h11(write)
    request, *body, end = events
    assert isinstance(request, h11.Request) and request.target.endswith(b"/response")
    assert [(e.data, e.chunk_start, e.chunk_end) for e in body] == [
        (b'{"statusCode":200}' + b"\0" * 8, True, True),
        (b"data: 1\n\n", True, True),
        (b"data: 2\n\n", True, True),
    ]
    assert end == h11.EndOfMessage()


def test_error_trailers_arrive_with_the_end_of_the_body():
    trailers = [
        (b"Lambda-Runtime-Function-Error-Type", b"Runtime.StreamError"),
        (
            b"Lambda-Runtime-Function-Error-Body",
            b"eyJlcnJvclR5cGUiOiAiUnVudGltZS5TdHJlYW1FcnJvciJ9",
        ),
    ]

    def write(writer: ChunkedWriter) -> None:
        writer.send_head(HEAD, b"partial")
        writer.send_eom(trailers)

    *_, end = read_by_h11(write)
    assert isinstance(end, h11.EndOfMessage)
    assert list(end.headers) == [(name.lower(), value) for name, value in trailers]


def test_an_empty_chunk_does_not_end_the_body():
    """A zero-size chunk is the end of the body in HTTP/1.1: an empty write must send nothing."""

    def write(writer: ChunkedWriter) -> None:
        writer.send_head(HEAD, b"a", b"", memoryview(b""))
        writer.send_data(b"")
        writer.send_data(b"b")
        writer.send_eom()

    events = read_by_h11(write)
    assert [type(e) for e in events] == [h11.Request, h11.Data, h11.Data, h11.EndOfMessage]
    assert b"".join(e.data for e in events if isinstance(e, h11.Data)) == b"ab"


def test_head_body_and_end_from_one_send_read_as_one_response():
    """Head, prelude, body and end from one call: the runtime's answer to a small response."""
    events = read_by_h11(lambda w: w.send_head(HEAD, b"{}" + b"\0" * 8, b'{"ok":true}', end=()))
    assert [type(e) for e in events] == [h11.Request, h11.Data, h11.Data, h11.EndOfMessage]
