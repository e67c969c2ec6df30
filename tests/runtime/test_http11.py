"""The runtime's HTTP/1.1 (runtime/streaming_proxy/http11.py), checked against h11: h11 reads
what the writer writes, as the server side of the Runtime API would, and writes what the
reader reads, as any server would frame it.

Both are hand-written for speed; h11 is the independent check that chunks, ends, trailers and
each way of framing a response body are what HTTP/1.1 says.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import h11
import pytest
from streaming_proxy.http11 import ChunkedWriter, ProtocolError, Reader, request_head

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


def test_request_heads_are_what_h11_reads():
    head = request_head("POST", "/2018-06-01/runtime/init/error", "x:1", (("Content-Length", "2"),))
    server = h11.Connection(h11.SERVER)
    server.receive_data(head + b"{}")
    request, data, end = server.next_event(), server.next_event(), server.next_event()
    assert isinstance(request, h11.Request) and request.method == b"POST"
    assert request.target == b"/2018-06-01/runtime/init/error"
    assert (b"host", b"x:1") in list(request.headers)
    assert isinstance(data, h11.Data) and data.data == b"{}" and end == h11.EndOfMessage()


# -- the reader, reading what h11 writes as a server -----------------------------------------


def written_by_h11(
    *answers: tuple[int, list[tuple[bytes, bytes]], list[bytes], list[tuple[bytes, bytes]]],
    http_version: bytes = b"1.1",
) -> bytes:
    """What an h11 server sends for each (status, headers, chunks, trailers), one per request."""
    server = h11.Connection(h11.SERVER)
    sent = b""
    for status, headers, chunks, trailers in answers:
        server.receive_data(b"GET /x HTTP/%s\r\nHost: x\r\n\r\n" % http_version)
        assert isinstance(server.next_event(), h11.Request)
        assert isinstance(server.next_event(), h11.EndOfMessage)
        sent += server.send(h11.Response(status_code=status, headers=headers)) or b""
        for chunk in chunks:
            sent += server.send(h11.Data(data=chunk)) or b""
        sent += server.send(h11.EndOfMessage(headers=trailers)) or b""
        if server.our_state is h11.MUST_CLOSE:
            break
        server.start_next_cycle()
    return sent


def read_back(sent: bytes, count: int = 1) -> list[tuple[int, dict[bytes, bytes], bytes]]:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(sent)
        theirs.shutdown(socket.SHUT_WR)
        reader = Reader(ours, "the peer")
        return [reader.read_response() for _ in range(count)]


def test_a_sized_response_then_a_chunked_one_on_one_connection():
    sent = written_by_h11(
        (200, [(b"Content-Length", b"5"), (b"X-A", b"1")], [b"he", b"llo"], []),
        (202, [(b"Transfer-Encoding", b"chunked")], [b"ab", b"", b"cd"], [(b"X-T", b"t")]),
    )
    first, second = read_back(sent, 2)
    assert first == (200, {b"content-length": b"5", b"x-a": b"1"}, b"hello")
    assert (second[0], second[2]) == (202, b"abcd")


def test_a_body_delimited_by_the_close():
    """An HTTP/1.0 client gets no chunked coding from h11: the close ends the body."""
    sent = written_by_h11((200, [], [b"<html>", b"</html>"], []), http_version=b"1.0")
    [(status, headers, body)] = read_back(sent)
    assert (status, body) == (200, b"<html></html>")
    assert headers.get(b"connection") == b"close"


def test_an_empty_sized_body():
    [(status, _, body)] = read_back(written_by_h11((204, [], [], [])))
    assert (status, body) == (204, b"")


@pytest.mark.parametrize(
    ("sent", "problem"),
    [
        (b"SSH-2.0-OpenSSH\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", "malformed length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "closed the connection"),
        (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 20000, "head over 64 KB"),
    ],
)
def test_what_is_not_http_is_a_protocol_error_naming_the_peer(sent: bytes, problem: str):
    with pytest.raises(ProtocolError, match=f"the peer .*{problem}|the peer {problem}"):
        read_back(sent)
