"""Resumable LibreChat (v0.8.2+) across Lambda environments: the runtime carries the stream.

From v0.8.2 the chat POST answers ``{streamId, status: "started"}`` and the browser reads the
answer from ``GET /api/agents/chat/stream/{streamId}``. On standard Lambda that GET lands on
another environment than the one holding the POST, so LibreChat's own cross-process transport
(Redis pub/sub, a shared sequence and a reorder timeout) would carry every token; follow-ups
in a conversation reuse the stream id and lose tokens or their final event that way
(docs/decisions.md has the figures). The runtime owns both ends, so it carries the stream:

- Environment A, holding the POST (``register``, then ``publish`` from the background hold):
  before the POST's answer leaves, the runtime asks its LibreChat who the caller is
  (``GET /api/user``) and registers a new turn of the stream id with that owner; the GET
  cannot arrive before the answer, so it always finds the turn it belongs to. Then it reads
  the job's stream from its own LibreChat (in-process there: ordered, no reorder wait) with
  the POST's credentials and appends each event to the turn's Redis stream (redis_stream.py).
- Environment B, serving the GET (``serve``): it asks its own LibreChat who the caller is,
  with the GET's credentials, refuses anyone but the owner, and relays the turn from its
  first entry with XREAD BLOCK. It ends on the end entry, when the producer's heartbeat
  expires (A died: an ``error`` event, then a clean end), or at its own deadline.

LibreChat keeps its jobs in its own memory here (``USE_REDIS_STREAMS=false``, upstream.py):
its reader on A gets each event in order at once, where its Redis transport waited out
reorder timeouts on follow-ups. What else concerns the job goes to A (forward.py): the stop
button from a third environment, the job's status, steering, the sidebar's active jobs.

A reconnect (``?resume=true``) gets LibreChat's own ``sync`` event first: the resume state
A's LibreChat builds from the job (its status path, asked through forward.py). The relay then
skips the turn's events up to as much text as that state holds and relays the rest, so
nothing is said twice on screen.

A stream nobody registered (registering failed, a runtime without the relay) and Redis down
are left to LibreChat here, which does not know the job: the browser gets LibreChat's "stream
not found" at once instead of a hang, and the answer is saved as always.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import NamedTuple, Protocol
from urllib.parse import parse_qsl, quote, urlsplit

from streaming_proxy import log
from streaming_proxy.caller import user_of
from streaming_proxy.errors import BodyBroke, RequestError
from streaming_proxy.events import UpstreamRequest
from streaming_proxy.forward import Forwarding
from streaming_proxy.outcome import Outcome
from streaming_proxy.redis_stream import STREAM_ID, Listener, RedisError, RelayStore, Turn
from streaming_proxy.responses import prelude
from streaming_proxy.runtime_api import ResponseStream
from streaming_proxy.settings import Settings
from streaming_proxy.watchdog import Watchdog

STREAM_PATH = re.compile(r"^/api/agents/chat/stream/([^/]*)$")
STREAM_TARGET = "/api/agents/chat/stream/{id}"
_ANSWER_LIMIT = 64 * 1024  # a "started" answer is ~100 bytes; larger ones are not read ahead
_SSE_HEAD = [
    (b"Content-Type", b"text/event-stream"),
    (b"Cache-Control", b"no-cache, no-transform"),
    (b"X-Accel-Buffering", b"no"),
]
_PRODUCER_GONE = (
    b"event: error\ndata: "
    + json.dumps(
        {"error": "The environment generating this answer stopped; reload to see what was saved."}
    ).encode()
    + b"\n\n"
)


class UpstreamResponse(Protocol):
    """What the relay reads of an upstream response (transport.UpstreamResponse)."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> list[tuple[bytes, bytes]]: ...

    @property
    def socket(self) -> socket.socket | None: ...

    def body(self) -> Iterator[bytes]: ...

    def read(self) -> bytes: ...

    def read_ahead(self) -> bytes: ...

    def close(self) -> None: ...

    def __enter__(self) -> UpstreamResponse: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


class Transport(Protocol):
    """The requests the relay makes to its own LibreChat (transport.Transport)."""

    def send(self, request: UpstreamRequest, cutoff: float) -> UpstreamResponse: ...

    def fetch(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], timeout: float
    ) -> tuple[int, bytes]: ...


class Resumable:
    def __init__(
        self,
        store: RelayStore,
        transport: Transport,
        watchdog: Watchdog,
        start_wait: float,
        status_path: str = "/api/agents/chat/status/{id}",
    ) -> None:
        self.store = store
        self.forwarding = Forwarding(store, transport)
        self._status_path = status_path
        self._transport = transport
        self._watchdog = watchdog
        self._start_wait = start_wait
        self._listeners: dict[Turn, Listener] = {}

    # -- environment A: the chat POST ---------------------------------------------------------

    def register(
        self, request: UpstreamRequest, response: UpstreamResponse, cutoff: float
    ) -> Turn | None:
        """Read a small chat answer ahead (``response`` then relays it as it was) and, if it
        started a job, register the job's turn before the answer leaves. Any failure leaves
        the answer as it was (no relay)."""
        length = _content_length(response)
        if response.status != 200 or length is None or length > _ANSWER_LIMIT:
            return None
        data = response.read_ahead()  # its connection goes back to the pool for the question below
        stream_id = _started_stream(data)
        if stream_id is None:
            return None
        try:
            owner = user_of(self._transport.fetch, request, cutoff)
            if owner is None:
                return None
            turn = self.store.begin(stream_id, owner)
            # Listening before the answer leaves: the stop button cannot come before it.
            self._listeners[turn] = self.forwarding.listen(turn, cutoff)
        except (RedisError, OSError, RequestError) as exc:
            log.warning(
                "stream relay: turn not registered; LibreChat's own transport carries it",
                error=type(exc).__name__,
            )
            return None
        return turn

    def publish(self, request: UpstreamRequest, turn: Turn, cutoff: float) -> str:
        """Append the job's events, as the local LibreChat streams them, until the job ends.

        Returns the job's outcome for the hold: "finished", or why the relay stopped early
        (then the hold polls the job's status instead, as without the relay).
        """
        target = STREAM_TARGET.replace("{id}", quote(turn.stream_id, safe=""))
        get = UpstreamRequest("GET", target, target, request.headers_without_body(), b"")
        done = threading.Event()
        beat = threading.Thread(
            target=self._beat, args=(turn, done), name="relay-heartbeat", daemon=True
        )
        beat.start()
        events = 0
        reason = "finished"
        try:
            with self._transport.send(get, cutoff) as response:
                self.store.head(turn, response.status, list(response.headers))
                pending = b""
                for chunk in response.body():
                    pending += chunk
                    cut = pending.rfind(b"\n\n")
                    if cut < 0:
                        continue
                    complete, pending = pending[: cut + 2], pending[cut + 2 :]
                    batch = [e + b"\n\n" for e in complete.split(b"\n\n") if _is_event(e)]
                    self.store.append(turn, batch)
                    events += len(batch)
                if pending.strip():
                    self.store.append(turn, [pending])
            self.store.end(turn, "done")
        except BodyBroke as exc:
            reason = f"relay stopped: {exc.message}"
            self._end_quietly(turn, "upstream broke off")
        except RequestError as exc:
            reason = f"relay stopped: {exc.detail}"
            self._end_quietly(turn, "upstream refused")
        except RedisError as exc:
            reason = f"relay stopped: Redis {type(exc).__name__}"
        finally:
            done.set()
            self._stop_listening(turn)
        log.info("stream relay published", streamId=turn.stream_id, turn=turn.turn, events=events)
        return reason

    def release(self, turn: Turn) -> None:
        """A registered turn whose answer never reached the client: nothing will publish it."""
        self._stop_listening(turn)
        self._end_quietly(turn, "the chat answer did not reach the client")

    def _stop_listening(self, turn: Turn) -> None:
        listener = self._listeners.pop(turn, None)
        if listener is not None:
            listener.stop()

    def _beat(self, turn: Turn, done: threading.Event) -> None:
        interval = self.store.heartbeat / 3
        while not done.wait(interval):
            with contextlib.suppress(RedisError):  # the appends report Redis failures
                self.store.beat(turn)

    def _end_quietly(self, turn: Turn, reason: str) -> None:
        with contextlib.suppress(RedisError):  # else the heartbeat expires, and the reader ends
            self.store.end(turn, reason)

    # -- environment B: the stream GET ---------------------------------------------------------

    def handles(self, request: UpstreamRequest) -> bool:
        return self._is_stream(request) or self.forwarding.handles(request)

    def _is_stream(self, request: UpstreamRequest) -> bool:
        return request.method == "GET" and STREAM_PATH.match(request.path) is not None

    def serve(
        self, request: UpstreamRequest, stream: ResponseStream, cutoff: float, outcome: Outcome
    ) -> bool:
        """Relay the stream's current turn, or send a job request to the environment running
        the job; False leaves the request to LibreChat itself."""
        if not self._is_stream(request):
            return self.forwarding.serve(request, stream, cutoff, outcome)
        match = STREAM_PATH.match(request.path)
        assert match is not None
        stream_id = match.group(1)
        if not STREAM_ID.match(stream_id):
            raise RequestError(
                400,
                f"the stream id in the path ({len(stream_id)} characters) is not a LibreChat "
                "stream id: letters, digits, '-' and '_' only, at most 128",
            )
        query = dict(parse_qsl(urlsplit(request.target).query))
        resume = query.get("resume") == "true"
        try:
            current = self.store.current(stream_id)
        except RedisError as exc:
            log.warning(
                "stream relay: Redis unavailable; LibreChat's own transport serves the stream",
                error=type(exc).__name__,
            )
            return False
        if current is None:
            return False
        turn, owner = current
        user = user_of(self._transport.fetch, request, cutoff)
        if user != owner:
            raise RequestError(403, "this stream belongs to another user")
        outcome.relay, outcome.turn = "redis", turn.turn
        sync = self._sync(request, turn, cutoff) if resume else None
        self._relay(turn, stream, cutoff, outcome, sync)
        return True

    def _sync(self, request: UpstreamRequest, turn: Turn, cutoff: float) -> Sync:
        """LibreChat's resume state of the job, from the status path of the environment
        generating it, as a sync event."""
        target = self._status_path.replace("{id}", quote(turn.stream_id, safe=""))
        status_request = UpstreamRequest("GET", target, target, request.headers_without_body(), b"")
        try:
            answer = self.forwarding.ask(turn, status_request, cutoff)
            data = json.loads(answer[2]) if answer is not None and answer[0] == 200 else None
        except Exception as exc:
            log.warning("stream relay: no resume state", error=repr(exc))
            data = None
        state = data.get("resumeState") if isinstance(data, dict) else None
        if not isinstance(state, dict):
            return Sync(None, 0)  # nothing to rebuild from: the turn is replayed whole
        event = {"sync": True, "resumeState": state, "pendingEvents": []}
        said = sum(len(t) for t in _content_texts(state.get("aggregatedContent")))
        return Sync(b"event: message\ndata: " + json.dumps(event).encode() + b"\n\n", said)

    def _relay(
        self,
        turn: Turn,
        stream: ResponseStream,
        cutoff: float,
        outcome: Outcome,
        sync: Sync | None = None,
    ) -> None:
        after = b"0"
        first = (sync.event if sync else None) or b""  # a resume's sync event goes first
        # After a sync, the events it stands for are not resent: every event until the text
        # it holds is passed (its deltas), then from the first delta beyond it.
        skipping, said = bool(first), sync.said if sync else 0
        status = 200
        error: tuple[str, str] | None = None
        start_by = time.monotonic() + self._start_wait
        watch = None
        try:
            while True:
                remaining = cutoff - time.monotonic()
                if remaining <= 0 or (watch is not None and watch.expired):
                    error = ("Runtime.Timeout", "the invocation deadline came during the relay")
                    break
                entries = self.store.read(turn, after, min(1.0, remaining))
                if not entries:
                    if not self.store.alive(turn):
                        if not stream.started:
                            raise RequestError(
                                502, "the environment generating this answer stopped"
                            )
                        stream.write(_PRODUCER_GONE)
                        outcome.error = "stream relay: the producer's heartbeat expired"
                        break
                    if not stream.started and time.monotonic() > start_by:
                        raise RequestError(504, "the answer's stream did not start in time")
                    continue
                events: list[bytes] = []
                finished = False
                for entry_id, fields in entries:
                    after = entry_id
                    if b"h" in fields:
                        status, headers = _head(fields[b"h"])
                        stream.start(prelude(status, headers), first)
                        watch = self._watchdog.watch(stream, cutoff, True, None)
                    elif b"e" in fields:
                        event = fields[b"e"]
                        if skipping and not _final(event):
                            length = _delta_length(event)
                            if not length or said > 0:
                                said -= length
                                continue
                        skipping = False
                        events.append(event)
                    elif b"end" in fields:
                        finished = True
                if events:
                    if not stream.started:
                        stream.start(prelude(200, _SSE_HEAD), first)
                        watch = self._watchdog.watch(stream, cutoff, True, None)
                    stream.write(b"".join(events))
                if finished:
                    break
        except RedisError as exc:
            if not stream.started:
                raise RequestError(503, "the stream relay's Redis is unavailable") from None
            error = (
                "Runtime.StreamError",
                f"the stream relay's Redis failed ({type(exc).__name__})",
            )
        finally:
            if watch is not None:
                self._watchdog.unwatch(watch)
        if not stream.started:
            stream.start(prelude(200, _SSE_HEAD), first)
        outcome.responded(status, stream.bytes_sent, error)
        outcome.answered(stream.end(error))


class Sync(NamedTuple):
    """A resume's first event (None: no state to send) and how much text it already holds."""

    event: bytes | None
    said: int


def _content_texts(content: object) -> list[str]:
    """The text of LibreChat content parts (``text`` and ``think``), in order."""
    texts: list[str] = []
    for part in content if isinstance(content, list) else []:
        if isinstance(part, dict):
            for key in ("text", "think"):
                value = part.get(key)
                if isinstance(value, dict):
                    value = value.get("value")
                if isinstance(value, str):
                    texts.append(value)
    return texts


def _event_data(event: bytes) -> object:
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            try:
                return json.loads(line[5:])
            except ValueError:
                return None
    return None


def _delta_length(event: bytes) -> int:
    """How much text a streamed event adds (0 for events that are not text deltas)."""
    if b"_delta" not in event:
        return 0
    data = _event_data(event)
    if not isinstance(data, dict) or not str(data.get("event", "")).endswith("_delta"):
        return 0
    delta = (data.get("data") or {}).get("delta") if isinstance(data.get("data"), dict) else None
    content = delta.get("content") if isinstance(delta, dict) else None
    return sum(len(t) for t in _content_texts(content))


def _final(event: bytes) -> bool:
    data = _event_data(event) if b'"final"' in event else None
    return isinstance(data, dict) and bool(data.get("final"))


def _content_length(response: UpstreamResponse) -> int | None:
    for name, value in response.headers:
        if name.lower() == b"content-length":
            return int(value) if value.strip().isdigit() else None
    return None


def _started_stream(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("status") != "started":
        return None
    stream_id = data.get("streamId")
    return stream_id if isinstance(stream_id, str) and STREAM_ID.match(stream_id) else None


def _is_event(block: bytes) -> bool:
    """Events only: comment-only blocks (LibreChat's heartbeats) are the reader's own business."""
    return any(line and not line.startswith(b":") for line in block.split(b"\n"))


def _head(raw: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
    data = json.loads(raw)
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in data["headers"]]
    return int(data["status"]), headers


def resumable_for(settings: Settings, transport: Transport, watchdog: Watchdog) -> Resumable | None:
    """The relay, where it is needed: environments that freeze (standard Lambda), with a Redis."""
    s = settings
    if not s.carries_streams or s.stream_relay_redis is None:
        return None
    store = RelayStore(
        s.stream_relay_redis,
        s.stream_relay_retention,
        s.stream_relay_max_events,
        s.stream_relay_heartbeat,
    )
    return Resumable(
        store, transport, watchdog, s.stream_relay_heartbeat * 2, s.background_status_path
    )
