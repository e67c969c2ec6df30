"""The relay: an upstream response's body streamed into the Runtime API's response stream
under the watchdog, then the stream's end (runtime_api.ResponseStream speaks the protocol).
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator
from typing import Protocol

from streaming_proxy.errors import BodyBroke, RequestError
from streaming_proxy.outcome import Outcome
from streaming_proxy.responses import Head
from streaming_proxy.runtime_api import ResponseStream
from streaming_proxy.watchdog import Watchdog


class UpstreamBody(Protocol):
    """What the relay needs of the upstream's response (transport.UpstreamResponse)."""

    @property
    def status(self) -> int: ...

    @property
    def socket(self) -> socket.socket | None: ...

    def body(self) -> Iterator[bytes]: ...

    def close(self) -> None: ...


def relay(
    stream: ResponseStream,
    head: Head,
    response: UpstreamBody,
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
    outcome.responded(response.status, stream.bytes_sent, error)
    outcome.answered(stream.end(error) if accepted is None else accepted)
    return [] if error else kept


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
