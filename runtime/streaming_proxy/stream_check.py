"""The runtime's own diagnostic stream: proof after a deploy that every hop really streams.

``GET <STREAM_CHECK_PATH>?n=5&interval_ms=200`` answers ``text/event-stream`` with ``n``
events ``interval_ms`` apart, each carrying the runtime's clock. A gateway or function that
buffers still delivers every event, but all at once at the end; a client that sees the first
event long before the last has proof that the domain, API Gateway's STREAM mode and the
function stream end to end. The upstream is never asked, so the check works while LibreChat
boots or is down, and the bounds (``n`` <= 20, ``interval_ms`` <= 1000, the whole check
<= ``MAX_DURATION_MS``) keep one check no dearer than an ordinary request.

A deployed stack turns the check on only with a token (its `api.streamCheckTokenParameter`,
an SSM parameter the runtime reads at cold start as SSM_SECRETS' ``STREAM_CHECK_TOKEN``): a
request without that value in ``X-Stream-Check-Token`` is refused before any event, so nobody
else can hold environments with it.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from urllib.parse import parse_qsl, urlsplit

from streaming_proxy.errors import RequestError
from streaming_proxy.events import UpstreamRequest
from streaming_proxy.log import iso_time
from streaming_proxy.outcome import Outcome
from streaming_proxy.responses import prelude
from streaming_proxy.runtime_api import ResponseStream

#: (default, maximum) of each query parameter; the minimum is 1 event and 0 ms.
LIMITS = {"n": (5, 20), "interval_ms": (200, 1000)}
#: The longest a check may hold its environment: (n - 1) x interval_ms.
MAX_DURATION_MS = 3000
#: The SSM_SECRETS key the token arrives under, and the header a caller sends it in.
STREAM_CHECK_TOKEN = "STREAM_CHECK_TOKEN"  # noqa: S105 (a variable name, not a secret)
TOKEN_HEADER = b"x-stream-check-token"
HEADERS = [
    (b"Content-Type", b"text/event-stream; charset=utf-8"),
    (b"Cache-Control", b"no-cache, no-store"),
]


class StreamCheck:
    """Serves the check on ``path`` (an empty path switches it off)."""

    def __init__(self, path: str, token: str | None = None) -> None:
        self.path = path
        self.token = token
        self.head = prelude(200, HEADERS)

    def handles(self, request: UpstreamRequest) -> bool:
        return bool(self.path) and request.path == self.path

    def serve(
        self,
        request: UpstreamRequest,
        stream: ResponseStream,
        cutoff: float,
        outcome: Outcome,
    ) -> None:
        """Send the events; a bad query or method raises RequestError before anything is sent."""
        if request.method != "GET":
            raise RequestError(405, f"{self.path} answers GET only", headers=((b"Allow", b"GET"),))
        if self.token is not None and not _token_matches(request, self.token):
            raise RequestError(403, f"{self.path} needs its token in X-Stream-Check-Token")
        count, interval_ms = parameters(request.target)
        if (count - 1) * interval_ms > MAX_DURATION_MS:
            raise RequestError(
                400, f"n x interval_ms may span at most {MAX_DURATION_MS} ms (n - 1 intervals)"
            )
        pause = threading.Event()
        stream.start(self.head, event(1, count))
        error: tuple[str, str] | None = None
        for seq in range(2, count + 1):
            remaining = cutoff - time.monotonic()
            if remaining <= interval_ms / 1000:
                error = ("Runtime.Timeout", "the invocation deadline came during the stream check")
                break
            pause.wait(interval_ms / 1000)
            stream.write(event(seq, count))
        outcome.stream_check_events = count
        outcome.responded(200, stream.bytes_sent, error)
        outcome.answered(stream.end(error))


def parameters(target: str) -> tuple[int, int]:
    """``n`` and ``interval_ms`` from the query; a bad value is a 400 naming the parameter."""
    query = dict(parse_qsl(urlsplit(target).query, keep_blank_values=True))
    values: list[int] = []
    for name, (default, maximum) in LIMITS.items():
        raw = query.get(name)
        low = 1 if name == "n" else 0
        if raw is None:
            values.append(default)
            continue
        # The length first: int() of thousands of digits raises (and costs). The value itself
        # is never quoted back: a token pasted into the query must not reach the logs.
        digits = len(raw) <= len(str(maximum)) and raw.isascii() and raw.isdigit()
        if not digits or not low <= int(raw) <= maximum:
            raise RequestError(
                400,
                f"query parameter {name} must be a whole number from {low} to {maximum} "
                f"(default {default}); the value given ({len(raw)} characters) is not",
            )
        values.append(int(raw))
    return values[0], values[1]


def event(seq: int, count: int) -> bytes:
    """One SSE event stamped with the runtime's clock (epoch ms and ISO 8601 UTC)."""
    now = time.time()
    data = {
        "seq": seq,
        "of": count,
        "runtimeTime": iso_time(now),
        "runtimeEpochMs": int(now * 1000),
    }
    return b"id: %d\nevent: stream-check\ndata: %s\n\n" % (
        seq,
        json.dumps(data, separators=(",", ":")).encode(),
    )


def _token_matches(request: UpstreamRequest, token: str) -> bool:
    sent = [v for k, v in request.headers if k.lower() == TOKEN_HEADER]
    return len(sent) == 1 and hmac.compare_digest(sent[0], token.encode())
