"""One invocation: event -> upstream request -> streamed response through the Runtime API.

The upstream is reached through httpcore, the connection pool underneath httpx: the same
pooled HTTP/1.1 connections, no automatic decompression, no redirects followed, and none of
httpx's request-model work, which measured ~250 us per request here against a
sub-millisecond turnaround budget. Every body chunk goes to the Runtime API as soon as it
is read; nothing buffers.

A pooled connection carries one response at a time: a connection on which the upstream sent
more than the response it framed is closed instead of pooled, or those bytes would become
the next request's response (another user's).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterable
from typing import Any, cast

import h11
import httpcore

from streaming_proxy import events, log
from streaming_proxy.background import CAPTURE_LIMIT, BackgroundRule, Work
from streaming_proxy.errors import BadEvent, RequestError
from streaming_proxy.runtime_api import Invocation, ResponseStream, RuntimeApiClient
from streaming_proxy.settings import Settings
from streaming_proxy.stream_check import HEADERS as STREAM_CHECK_HEADERS
from streaming_proxy.stream_check import StreamCheck
from streaming_proxy.upstream import Upstream, UpstreamFailed, UpstreamStarting
from streaming_proxy.watchdog import Watchdog

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_RESPONSE_DROP = events.HOP_BY_HOP
_UPSTREAM_GONE = (
    httpcore.ConnectError,
    httpcore.RemoteProtocolError,
    httpcore.ReadError,
    httpcore.WriteError,
)
# API Gateway needs the 8 NUL delimiter within the first 16 KB of the stream.
MAX_PRELUDE = 16 * 1024 - 8
# Node closes idle keep-alive connections after 5 s; retire ours before that.
KEEPALIVE_EXPIRY = 4.0


class Proxy:
    def __init__(self, settings: Settings, upstream: Upstream) -> None:
        self.settings = settings
        self.upstream = upstream
        self.pool = httpcore.ConnectionPool(
            max_connections=settings.max_concurrency,
            max_keepalive_connections=settings.max_concurrency,
            keepalive_expiry=KEEPALIVE_EXPIRY,
        )
        self._host = settings.upstream_host.encode()
        self._port = settings.upstream_port
        self._host_header = f"{settings.upstream_host}:{settings.upstream_port}".encode()
        self.watchdog = Watchdog(settings.sse_keepalive_interval, settings.stream_idle_timeout)
        self.background = BackgroundRule(settings)
        self.stream_check = StreamCheck(
            settings.stream_check_path, prelude(200, STREAM_CHECK_HEADERS)
        )

    # -- entry point ------------------------------------------------------------------------

    def handle(self, api: RuntimeApiClient, inv: Invocation) -> None:
        """Serve one invocation; never raises, so no event can stop the runtime."""
        started = time.monotonic()
        cutoff = started + (inv.deadline_ms / 1000 - time.time()) - self.settings.deadline_margin
        stream = api.stream(inv.request_id)
        fields: dict[str, Any] = {"requestId": inv.request_id}
        try:
            request = self._request(inv)
            fields.update(method=request.method, path=request.path)
            if self.stream_check.handles(request):  # answered here, never by the upstream
                self.stream_check.serve(request, stream, cutoff, fields)
            elif work := self._forward(request, stream, cutoff, fields, started):
                fields["streamMs"] = round((time.monotonic() - started) * 1000, 2)
                self.background.hold(request, work, cutoff, self._fetch, inv.request_id)
        except RequestError as exc:
            fields.update(status=exc.status, error=exc.detail)
            try:
                self._respond_error(stream, exc.status, exc.message, exc.headers)
            except OSError:
                fields["runtimeApi"] = stream.abandon()
        except OSError as exc:  # the Runtime API connection broke mid-response
            fields.update(
                error=f"Runtime API connection broke: {exc.strerror or type(exc).__name__}"
            )
            fields["runtimeApi"] = stream.abandon()
        except Exception as exc:
            fields.update(error=f"internal error: {type(exc).__name__}")
            try:
                if stream.started and not stream.finished:
                    stream.finish("Runtime.InternalError", f"{type(exc).__name__} in the runtime")
                elif not stream.started:
                    self._respond_error(
                        stream, 500, f"internal error in the runtime: {type(exc).__name__}"
                    )
            except OSError:
                fields["runtimeApi"] = stream.abandon()
        fields["durationMs"] = round((time.monotonic() - started) * 1000, 2)
        failed = "error" in fields and (fields.get("status", 500) >= 500 or "runtimeApi" in fields)
        log.log("ERROR" if failed else "INFO", "request", **fields)

    def _request(self, inv: Invocation) -> events.UpstreamRequest:
        try:
            event = json.loads(inv.body)
        except (ValueError, RecursionError) as exc:
            if isinstance(exc, UnicodeDecodeError):
                raise BadEvent("event is not valid JSON: its bytes are not UTF-8") from None
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            raise BadEvent(f"event is not valid JSON: {reason}") from None
        request = events.to_request(event, self.settings.base_path, self._host_header)
        if inv.trace_id and request.header(b"x-amzn-trace-id") is None:
            request.headers.append((b"X-Amzn-Trace-Id", inv.trace_id.encode("latin-1", "replace")))
        return request

    # -- forwarding -------------------------------------------------------------------------

    def _forward(
        self,
        request: events.UpstreamRequest,
        stream: ResponseStream,
        cutoff: float,
        fields: dict[str, Any],
        started: float,
    ) -> Work | None:
        """Stream the upstream's response; returns the work it left running in the background."""
        self._ensure_upstream(cutoff)
        response = self._send(request, cutoff)
        fields["upstreamHeadersMs"] = round((time.monotonic() - started) * 1000, 3)
        if not 200 <= response.status <= 599:
            response.close()
            raise RequestError(
                502,
                f"the upstream answered with status {response.status}; an HTTP response needs "
                "a status from 200 to 599",
            )
        headers = response.headers
        head = prelude(response.status, headers)
        if len(head) > MAX_PRELUDE:
            response.close()
            names = sorted({k.decode("latin-1").lower() for k, _ in headers})
            raise RequestError(
                502,
                f"the upstream's response headers need a {len(head)}-byte prelude; API Gateway "
                f"accepts at most {MAX_PRELUDE} (header names: {', '.join(names)})",
            )
        capture = bytearray() if self.background.may_start_work(request) else None
        network = response.extensions.get("network_stream")
        watch = self.watchdog.watch(
            stream,
            cutoff,
            is_plain_sse(headers),
            network.get_extra_info("socket") if network else None,
        )
        error: tuple[str, str] | None = None
        accepted: int | None = None
        try:
            accepted = self._relay(
                stream, head, response, has_sized_body(request.method, response), capture
            )
        except httpcore.TimeoutException:
            error = ("Runtime.Timeout", "the invocation deadline came before the upstream finished")
        except (httpcore.ProtocolError, httpcore.NetworkError) as exc:
            # httpcore's text may quote header lines: only the type goes out.
            error = (
                "Runtime.StreamError",
                f"the upstream response broke off ({type(exc).__name__})",
            )
        finally:
            self.watchdog.unwatch(watch)
            discard_if_surplus(response)
            response.close()
        if watch.expired:
            error = (
                "Runtime.Timeout",
                "the invocation deadline came while the upstream was still sending; response ended",
            )
        elif watch.idle:
            error = (
                "Runtime.StreamError",
                f"the upstream sent nothing for {self.settings.stream_idle_timeout:g} s "
                "(STREAM_IDLE_TIMEOUT); response ended",
            )
        if error and not stream.started:  # nothing sent yet: a clean error response instead
            raise RequestError(504 if watch.expired else 502, error[1])
        fields.update(status=response.status, bytes=stream.bytes_sent)
        if error:
            fields["error"] = f"{error[0]}: {error[1]}"
        if accepted is None:
            accepted = stream.finish(*error) if error else stream.finish()
        if accepted != 202:
            fields.update(error=fields.get("error", "response not accepted"), runtimeApi=accepted)
        if capture is None or error:
            return None
        return self.background.started_work(request, response.status, bytes(capture))

    @staticmethod
    def _relay(
        stream: ResponseStream,
        head: bytes,
        response: httpcore.Response,
        sized: bool,
        capture: bytearray | None,
    ) -> int | None:
        """Copy the body to the stream; returns the Runtime API's status if it sent it whole.

        A streamed body (chunked: SSE above all) gets its prelude at once and every chunk as
        it comes. A sized body is coming now, not as a stream, so one chunk is read ahead:
        a small response, the usual API answer, then goes out as one write instead of three.
        """
        chunks = iter(cast(Iterable[bytes], response.stream))  # the sync pool's: never async
        first = b""
        if sized:
            first = next(chunks, None) or b""
            following = next(chunks, None) if first else None
            if following is None:
                keep(capture, first)
                return stream.start(head, first, last=True)
            chunks = itertools.chain((following,), chunks)
        stream.start(head, first)
        keep(capture, first)
        for chunk in chunks:
            stream.write(chunk)
            keep(capture, chunk)
        return None

    def _ensure_upstream(self, cutoff: float) -> None:
        try:
            self.upstream.ensure_ready(cutoff, self.settings.ready_timeout)
        except UpstreamStarting as exc:
            raise RequestError(504, f"upstream not ready yet: {exc.summary}", str(exc)) from None
        except UpstreamFailed as exc:
            raise RequestError(502, f"upstream unavailable: {exc.summary}", str(exc)) from None

    def _send(self, request: events.UpstreamRequest, cutoff: float) -> httpcore.Response:
        """Send the request; on a dead upstream restart it and try once more."""
        for attempt in (1, 2):
            remaining = cutoff - time.monotonic()
            if remaining <= 0:
                raise RequestError(504, "the invocation deadline came before the upstream answered")
            url = httpcore.URL(
                scheme=b"http", host=self._host, port=self._port, target=request.target.encode()
            )
            timeout = {
                "connect": min(remaining, 5.0),
                "read": remaining,
                "write": remaining,
                "pool": remaining,
            }
            try:
                return self.pool.handle_request(
                    httpcore.Request(
                        request.method.encode(),
                        url,
                        headers=request.headers,
                        content=request.body,
                        extensions={"timeout": timeout},
                    )
                )
            except httpcore.TimeoutException:
                raise RequestError(
                    504,
                    f"the upstream did not answer {request.method} {request.path} "
                    "before the invocation deadline",
                ) from None
            except httpcore.LocalProtocolError:
                raise RequestError(
                    400, "the request is not valid HTTP and cannot be forwarded"
                ) from None
            except _UPSTREAM_GONE as exc:
                retry = attempt == 1 and (
                    isinstance(exc, httpcore.ConnectError) or request.method in _IDEMPOTENT
                )
                if not retry:
                    # httpcore's text may quote the upstream's bytes: only the type goes out.
                    what = (
                        "the upstream closed the connection or answered with something that is "
                        "not valid HTTP/1.1"
                        if isinstance(exc, httpcore.RemoteProtocolError)
                        else "upstream unreachable"
                    )
                    raise RequestError(502, f"{what} ({type(exc).__name__})") from None
                self.upstream.mark_unhealthy()
                self._ensure_upstream(cutoff)
        raise AssertionError("unreachable")

    def _fetch(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], timeout: float
    ) -> tuple[int, bytes]:
        """A small buffered request to the upstream (status polls)."""
        url = httpcore.URL(scheme=b"http", host=self._host, port=self._port, target=target)
        t = {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
        response = self.pool.handle_request(
            httpcore.Request(method, url, headers=headers, extensions={"timeout": t})
        )
        try:
            content = response.read()
        finally:
            discard_if_surplus(response)
            response.close()
        return response.status, content

    def _respond_error(
        self,
        stream: ResponseStream,
        status: int,
        message: str,
        extra: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        body = json.dumps({"message": message}).encode()
        head = [
            (b"Content-Type", b"application/json"),
            (b"Content-Length", str(len(body)).encode()),
            *extra,
        ]
        stream.start(prelude(status, head), body, last=True)


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


def keep(capture: bytearray | None, chunk: bytes) -> None:
    """Keep the start of a body that may announce background work."""
    if capture is not None and len(capture) < CAPTURE_LIMIT:
        capture += chunk[: CAPTURE_LIMIT - len(capture)]


def has_sized_body(method: str, response: httpcore.Response) -> bool:
    """Whether the body's length is known up front (Content-Length, or no body at all)."""
    if method == "HEAD" or response.status in (204, 304) or response.status < 200:
        return True
    sized = False
    for name, _ in response.headers:
        lower = name.lower()
        if lower == b"transfer-encoding":
            return False  # it wins over Content-Length (RFC 9112 6.3)
        sized = sized or lower == b"content-length"
    return sized


def is_plain_sse(headers: list[tuple[bytes, bytes]]) -> bool:
    """An uncompressed event stream: only there may keep-alive comments be inserted."""
    sse = encoded = False
    for name, value in headers:
        lower = name.lower()
        if lower == b"content-type":
            sse = value.lower().startswith(b"text/event-stream")
        elif lower == b"content-encoding":
            encoded = value.strip().lower() not in {b"", b"identity"}
    return sse and not encoded


def prelude(status: int, headers: list[tuple[bytes, bytes]]) -> bytes:
    """The JSON prelude: repeated headers and every Set-Cookie in multiValueHeaders.

    Content-Length goes when Transfer-Encoding came too: the chunked framing is the one
    that was read (RFC 9112 6.3), and the client would stop at the stated length.
    """
    connection_tokens = {
        t.strip().lower()
        for k, v in headers
        if k.lower() == b"connection"
        for t in v.decode("latin-1").split(",")
    }
    grouped: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    chunked = False
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1")
        lower = name.lower()
        if lower in _RESPONSE_DROP or lower in connection_tokens:
            chunked = chunked or lower == "transfer-encoding"
            continue
        try:
            value = raw_value.decode("utf-8")
        except UnicodeDecodeError:
            value = raw_value.decode("latin-1")
        names.setdefault(lower, name)
        grouped.setdefault(lower, []).append(value)
    if chunked:
        grouped.pop("content-length", None)
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for lower, values in grouped.items():
        if len(values) > 1 or lower == "set-cookie":
            multi[names[lower]] = values
        else:
            single[names[lower]] = values[0]
    return json.dumps(
        {"statusCode": status, "headers": single, "multiValueHeaders": multi}, separators=(",", ":")
    ).encode()
