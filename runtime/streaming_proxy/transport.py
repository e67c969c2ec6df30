"""The upstream request: httpcore's connection pool, and one table of what its errors mean.

The upstream is reached through httpcore, the connection pool underneath httpx: the same
pooled HTTP/1.1 connections, no automatic decompression, no redirects followed, and none of
httpx's request-model work, which measured ~250 us per request here against a
sub-millisecond turnaround budget.

A pooled connection carries one response at a time: a connection on which the upstream sent
more than the response it framed is closed instead of pooled, or those bytes would become
the next request's response (another user's).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import NamedTuple, Protocol, cast

import h11
import httpcore

from streaming_proxy.errors import BodyBroke, RequestError, UpstreamFailed, UpstreamStarting
from streaming_proxy.events import UpstreamRequest
from streaming_proxy.settings import Settings

# Node closes idle keep-alive connections after 5 s; retire ours before that.
KEEPALIVE_EXPIRY = 4.0
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class Upstream(Protocol):
    """What the transport needs of the upstream's lifecycle (upstream.Upstream)."""

    def ensure_ready(self, until: float, ready_timeout: float) -> None:
        """Return once it answers; raise UpstreamStarting / UpstreamFailed if it cannot."""

    def mark_unhealthy(self) -> None:
        """A request could not reach it."""


class Answer(NamedTuple):
    """What an httpcore error means for the request (a row of TRANSPORT_ERRORS)."""

    retry: str  # before the response head: "always", "idempotent" (methods) or "never";
    status: int  # then, without a retry, an error response with this status
    message: str  # and this message
    broke_off: tuple[str, str]  # once the body flows: the stream's error type and message


_DEADLINE = ("Runtime.Timeout", "the invocation deadline came before the upstream finished")
_BROKE_OFF = ("Runtime.StreamError", "the upstream response broke off ({name})")
_UNREACHABLE = "upstream unreachable ({name})"
#: httpcore's errors, most specific first, and what each means in each phase (httpx's
#: ``HTTPCORE_EXC_MAP`` is the model). ``{name}`` is the exception's type: httpcore's text may
#: quote the upstream's bytes or header lines, so only the type goes out; ``{request}`` is the
#: method and path. Any other exception is a bug in the runtime.
TRANSPORT_ERRORS: dict[type[Exception], Answer] = {
    httpcore.TimeoutException: Answer(
        "never",
        504,
        "the upstream did not answer {request} before the invocation deadline",
        _DEADLINE,
    ),
    httpcore.LocalProtocolError: Answer(
        "never", 400, "the request is not valid HTTP and cannot be forwarded", _BROKE_OFF
    ),
    httpcore.RemoteProtocolError: Answer(
        "idempotent",
        502,
        "the upstream closed the connection or answered with something that is not valid "
        "HTTP/1.1 ({name})",
        _BROKE_OFF,
    ),
    httpcore.ConnectError: Answer("always", 502, _UNREACHABLE, _BROKE_OFF),
    httpcore.NetworkError: Answer("idempotent", 502, _UNREACHABLE, _BROKE_OFF),
}
_MAPPED = tuple(TRANSPORT_ERRORS)


def answer_for(exc: Exception) -> Answer:
    """The first row of TRANSPORT_ERRORS that ``exc`` (one of ``_MAPPED``) falls under."""
    return next(answer for kind, answer in TRANSPORT_ERRORS.items() if isinstance(exc, kind))


class UpstreamResponse:
    """A response from the upstream: its head, its body as it comes, and its connection.

    ``close`` returns the connection to the pool, unless bytes follow the response; it may be
    called more than once.
    """

    __slots__ = ("_closed", "_read_ahead", "_response", "headers", "status")

    def __init__(self, response: httpcore.Response) -> None:
        self._response = response
        self._closed = False
        self._read_ahead: bytes | None = None
        self.status = response.status
        self.headers = response.headers

    def body(self) -> Iterator[bytes]:
        """The body's chunks as they arrive; a transport error becomes BodyBroke."""
        if self._read_ahead is not None:
            yield self._read_ahead
            return
        try:
            yield from cast(Iterable[bytes], self._response.stream)  # the sync pool's: never async
        except _MAPPED as exc:
            answer = answer_for(exc)
            error_type, message = answer.broke_off
            raise BodyBroke(error_type, message.format(name=type(exc).__name__)) from None

    def read(self) -> bytes:
        """The whole body, for small answers; httpcore's errors propagate as they are."""
        return self._response.read()

    def read_ahead(self) -> bytes:
        """Read the whole (small) body now and give the connection back; ``body`` then yields
        it: an answer looked at before it is relayed."""
        data = self.read()
        self.close()
        self._read_ahead = data
        return data

    @property
    def socket(self) -> socket.socket | None:
        """The connection's socket, for the watchdog to shut down at the cutoff (none once the
        connection went back to the pool)."""
        if self._closed:
            return None
        network = self._response.extensions.get("network_stream")
        return cast(socket.socket, network.get_extra_info("socket")) if network else None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            discard_if_surplus(self._response)
            self._response.close()

    def __enter__(self) -> UpstreamResponse:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class Transport:
    """Requests to the upstream over one shared pool, with the upstream restarted if it died."""

    def __init__(self, settings: Settings, upstream: Upstream) -> None:
        self._upstream = upstream
        self._ready_timeout = settings.ready_timeout
        # Beside each invocation's own request: the relay's read of the job it holds and a
        # job request another environment forwards to it (resumable.py, forward.py).
        connections = settings.max_concurrency + (2 if settings.carries_streams else 0)
        self._pool = httpcore.ConnectionPool(
            max_connections=connections,
            max_keepalive_connections=connections,
            keepalive_expiry=KEEPALIVE_EXPIRY,
        )
        self._host = settings.upstream_host.encode()
        self._port = settings.upstream_port

    def send(self, request: UpstreamRequest, cutoff: float) -> UpstreamResponse:
        """Send the request and read the response head; on a dead upstream restart it and try
        once more. Failures raise RequestError with the answer the caller gets."""
        for attempt in (1, 2):
            self._ensure_upstream(cutoff)
            remaining = cutoff - time.monotonic()
            if remaining <= 0:
                raise RequestError(504, "the invocation deadline came before the upstream answered")
            timeout = {
                "connect": min(remaining, 5.0),
                "read": remaining,
                "write": remaining,
                "pool": remaining,
            }
            try:
                return UpstreamResponse(
                    self._pool.handle_request(
                        httpcore.Request(
                            request.method.encode(),
                            self._url(request.target.encode()),
                            headers=request.headers,
                            content=request.body,
                            extensions={"timeout": timeout},
                        )
                    )
                )
            except _MAPPED as exc:
                answer = answer_for(exc)
                retry = answer.retry == "always" or (
                    answer.retry == "idempotent" and request.method in _IDEMPOTENT
                )
                if attempt == 2 or not retry:
                    name, what = type(exc).__name__, f"{request.method} {request.path}"
                    message = answer.message.format(name=name, request=what)
                    raise RequestError(answer.status, message) from None
                self._upstream.mark_unhealthy()
        raise AssertionError("unreachable")

    def fetch(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], timeout: float
    ) -> tuple[int, bytes]:
        """A small buffered request (the background work's status polls); errors propagate."""
        t = {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
        request = httpcore.Request(
            method, self._url(target), headers=headers, extensions={"timeout": t}
        )
        with UpstreamResponse(self._pool.handle_request(request)) as response:
            return response.status, response.read()

    def _url(self, target: bytes) -> httpcore.URL:
        return httpcore.URL(scheme=b"http", host=self._host, port=self._port, target=target)

    def _ensure_upstream(self, cutoff: float) -> None:
        try:
            self._upstream.ensure_ready(cutoff, self._ready_timeout)
        except UpstreamStarting as exc:
            raise RequestError(504, f"upstream not ready yet: {exc.summary}", str(exc)) from None
        except UpstreamFailed as exc:
            raise RequestError(502, f"upstream unavailable: {exc.summary}", str(exc)) from None


def discard_if_surplus(response: httpcore.Response) -> None:
    """Keep a connection out of the pool if bytes follow its complete response.

    httpcore pools the connection as soon as the response is closed, with whatever h11 read
    past the response's end still buffered: the next request would read it as its answer.
    Failing h11's state makes the close discard the connection instead. Should httpcore's
    internals change shape, every connection is closed instead: slower, never wrong.
    """
    connection = getattr(getattr(response.stream, "_stream", None), "_connection", None)
    state = getattr(connection, "_h11_state", None)
    if isinstance(state, h11.Connection):
        if state.trailing_data[0]:
            state.send_failed()
        return
    network = response.extensions.get("network_stream")
    if network is not None:
        network.close()
