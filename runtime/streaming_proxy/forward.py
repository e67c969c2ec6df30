"""Requests about a running job go to the environment generating it.

Where the runtime carries resumable streams, each LibreChat keeps its generation jobs in its
own memory (``USE_REDIS_STREAMS=false``, upstream.py), so only the environment holding the
chat POST knows the job. What the browser asks about the job lands on any environment: the
stop button (``POST /chat/abort``), the job's status (``GET /chat/status/{id}``: on a reload,
and for a reconnect's sync), v0.8.8's steering (``POST /chat/steer``, ``/steer/cancel``,
``/steer/arm``). The runtime that receives one finds the job's live turn in Redis and sends
the request, as it came, on the turn's channel (redis_stream.py); the holding runtime sends it
to its own LibreChat, which authenticates and authorizes it as always, and the answer comes
back the same way. With no live turn, or nobody listening, the local LibreChat answers.

``GET /chat/active`` (the sidebar's "generating" marks, and the stop button's fallback) asks
every environment at once in LibreChat; here Redis answers it: the caller's turns still
generating.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable
from types import TracebackType
from typing import Protocol

from streaming_proxy import log
from streaming_proxy.caller import user_of
from streaming_proxy.errors import RequestError
from streaming_proxy.events import UpstreamRequest
from streaming_proxy.outcome import Outcome
from streaming_proxy.redis_stream import STREAM_ID, Listener, RedisError, RelayStore, Turn
from streaming_proxy.responses import prelude
from streaming_proxy.runtime_api import ResponseStream

# The job routes of LibreChat's agents router (api/server/routes/agents/index.js, v0.8.2 to
# v0.8.8-rc1), by method: only these cross to another environment.
JOB_ROUTES = {
    "POST": re.compile(r"^/api/agents/chat/(?:abort|steer|steer/cancel|steer/arm)$"),
    "GET": re.compile(r"^/api/agents/chat/status/([^/]+)$"),
}
ACTIVE_PATH = "/api/agents/chat/active"
ASK_TIMEOUT = 10.0  # LibreChat's abort saves the partial answer before it answers
_REQUEST_LIMIT = 256 * 1024  # abort and steer bodies are small JSON documents
_ANSWER_LIMIT = 4 * 1024 * 1024  # a status holds the answer so far
_JSON = [(b"Content-Type", b"application/json; charset=utf-8")]


class UpstreamResponse(Protocol):
    """What forwarding reads of an upstream response (transport.UpstreamResponse)."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> list[tuple[bytes, bytes]]: ...

    def read(self) -> bytes: ...

    def __enter__(self) -> UpstreamResponse: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


class Transport(Protocol):
    """The requests forwarding makes to its own LibreChat (transport.Transport)."""

    def send(self, request: UpstreamRequest, cutoff: float) -> UpstreamResponse: ...

    def fetch(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], timeout: float
    ) -> tuple[int, bytes]: ...


def job_of(request: UpstreamRequest) -> str | None:
    """The stream id a job request is about, as LibreChat's routes read it (the path, or the
    body's ``streamId``, ``conversationId`` other than "new", or ``abortKey``'s prefix)."""
    route = JOB_ROUTES.get(request.method)
    match = route.match(request.path) if route else None
    if match is None:
        return None
    if match.lastindex:
        candidate: object = match.group(1)
    else:
        try:
            body = json.loads(request.body) if len(request.body) <= _REQUEST_LIMIT else None
        except (ValueError, RecursionError):
            body = None
        if not isinstance(body, dict):
            return None
        conversation = body.get("conversationId")
        abort_key = body.get("abortKey")
        candidate = (
            body.get("streamId")
            or (conversation if conversation != "new" else None)
            or (abort_key.split(":", 1)[0] if isinstance(abort_key, str) else None)
        )
    return candidate if isinstance(candidate, str) and STREAM_ID.match(candidate) else None


class Forwarding:
    def __init__(self, store: RelayStore, transport: Transport) -> None:
        self._store = store
        self._transport = transport

    def handles(self, request: UpstreamRequest) -> bool:
        return (request.method == "GET" and request.path == ACTIVE_PATH) or job_of(
            request
        ) is not None

    # -- any environment: a request about a job --------------------------------------------

    def serve(
        self, request: UpstreamRequest, stream: ResponseStream, cutoff: float, outcome: Outcome
    ) -> bool:
        """Answer from the job's environment (or Redis); False leaves it to LibreChat here."""
        if request.path == ACTIVE_PATH:
            answer = self._active(request, cutoff)
        else:
            stream_id = job_of(request)
            assert stream_id is not None
            answer = self._forwarded(request, stream_id, cutoff)
        if answer is None:
            return False
        status, headers, body = answer
        outcome.relay = "forwarded"
        stream.start(prelude(status, headers), body, last=True)
        outcome.responded(status, len(body), None)
        return True

    def _active(
        self, request: UpstreamRequest, cutoff: float
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        user = user_of(self._transport.fetch, request, cutoff)
        if user is None:
            return None
        try:
            ids = self._store.active(user)
        except RedisError as exc:
            log.warning(
                "stream relay: Redis unavailable for /chat/active", error=type(exc).__name__
            )
            return None
        body = json.dumps({"activeJobIds": ids}).encode()
        return 200, [*_JSON, (b"Content-Length", str(len(body)).encode())], body

    def _forwarded(
        self, request: UpstreamRequest, stream_id: str, cutoff: float
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        try:
            current = self._store.current(stream_id)
            if current is None or not self._store.alive(current[0]):
                return None  # no job generating anywhere: LibreChat here answers as it would
            return self.ask(current[0], request, cutoff)
        except RedisError as exc:
            log.warning(
                "stream relay: Redis unavailable; LibreChat here answers the job request",
                error=type(exc).__name__,
            )
            return None

    def ask(
        self, turn: Turn, request: UpstreamRequest, cutoff: float
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """The answer of the environment generating ``turn`` to ``request``; None when nobody
        listens any more. RedisError propagates."""
        if len(request.body) > _REQUEST_LIMIT:
            return None
        message = {
            "method": request.method,
            "target": request.target,
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.headers],
            "body": base64.b64encode(request.body).decode(),
        }
        timeout = max(min(cutoff - time.monotonic(), ASK_TIMEOUT), 0.01)
        try:
            raw = self._store.ask(turn, message, timeout)
        except TimeoutError:
            raise RequestError(
                504, "the environment generating this answer did not answer in time"
            ) from None
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in data["headers"]]
            return int(data["status"]), headers, base64.b64decode(data["body"], validate=True)
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise RequestError(
                502, "the environment generating this answer sent an answer that is not one"
            ) from None

    # -- the environment generating the job ------------------------------------------------

    def listen(self, turn: Turn, cutoff: float) -> Listener:
        """Answer the turn's job requests with the local LibreChat until stopped."""
        return self._store.listen(turn, self._answerer(cutoff))

    def _answerer(self, cutoff: float) -> Callable[[bytes], bytes]:
        def answer(raw: bytes) -> bytes:
            try:
                status, headers, body = self._local(_request_from(raw), cutoff)
            except RequestError as exc:
                status, body = exc.status, json.dumps({"message": exc.message}).encode()
                headers = _JSON
            except Exception as exc:  # the upstream broke off mid-answer, say
                message = f"the job's environment could not ask its upstream ({type(exc).__name__})"
                status, body, headers = 502, json.dumps({"message": message}).encode(), _JSON
            fields = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in headers]
            encoded = base64.b64encode(body).decode()
            return json.dumps({"status": status, "headers": fields, "body": encoded}).encode()

        return answer

    def _local(
        self, request: UpstreamRequest, cutoff: float
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        until = min(cutoff, time.monotonic() + ASK_TIMEOUT)
        with self._transport.send(request, until) as response:
            body = response.read()
        if len(body) > _ANSWER_LIMIT:
            raise RequestError(502, f"the job's answer has {len(body)} bytes; at most 4 MiB cross")
        kept = [
            (k, v)
            for k, v in response.headers
            if k.lower() not in (b"transfer-encoding", b"connection", b"keep-alive")
        ]
        return response.status, kept, body


def _request_from(raw: bytes) -> UpstreamRequest:
    """A forwarded request, checked: only the job routes cross, whatever Redis carries."""
    try:
        data = json.loads(raw)
        method, target = str(data["method"]), str(data["target"])
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in data["headers"]]
        body = base64.b64decode(data["body"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise RequestError(400, "the forwarded request is malformed") from None
    path = target.split("?", 1)[0]
    request = UpstreamRequest(method, target, path, headers, body)
    if job_of(request) is None:
        raise RequestError(403, "only LibreChat's job requests are forwarded")
    return request
