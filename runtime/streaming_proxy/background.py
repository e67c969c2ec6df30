"""Hold the invocation while LibreChat finishes work a chat answer started in the background.

Lambda freezes the environment as soon as the runtime asks for the next event, so anything
the upstream still does after the response freezes with it. A chat POST leaves two kinds of
such work, both found in LibreChat's source and both observable with the caller's own
credentials:

- From v0.8.2, ``POST /api/agents/chat[/:endpoint]`` answers at once with
  ``{streamId, conversationId, status: "started"}`` and generates the answer in the same Node
  process: the hold polls ``GET /api/agents/chat/status/{id}`` until the job is no longer
  active.
- The first answer of a new conversation (``parentMessageId`` all zeros, no conversation id,
  not temporary) makes LibreChat generate a title after the job completes (or after the
  streamed response ends, up to v0.8.2-rc1); the browser then asks
  ``/api/convos/gen_title/{id}``, which consumes the title, so the hold instead polls
  ``GET /api/convos/{id}`` until the conversation's title is no longer the default
  ``New Chat``, for at most BACKGROUND_TITLE_WAIT seconds (the browser gives up after 15.5 s).

Every wait ends at the invocation's cutoff. On Lambda Managed Instances nothing freezes, so
there is no hold at all: the worker is back in ``/next`` as soon as the response ends.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from streaming_proxy import log, metrics
from streaming_proxy.events import UpstreamRequest
from streaming_proxy.settings import Settings

CAPTURE_LIMIT = 64 * 1024
TITLE_PATH = "/api/convos/{id}"
# librechat-data-provider: Constants.NO_PARENT, and the schema default of a conversation title.
NO_PARENT = "00000000-0000-0000-0000-000000000000"
DEFAULT_TITLE = "New Chat"
_TERMINAL = {"complete", "completed", "error", "aborted", "requires_action"}
# Job outcomes after which LibreChat generates no title. A job whose state could not be read
# (the status endpoint refused, say) may still be running: the title wait covers it too.
_NO_TITLE = {"error", "aborted", "requires_action", "deadline"}
_REQUEST_LIMIT = 1024 * 1024  # chat request bodies are read for title eligibility up to this

# (method, target, headers, timeout) -> (status, body)
Fetch = Callable[[bytes, bytes, list[tuple[bytes, bytes]], float], tuple[int, bytes]]


@dataclass(frozen=True, slots=True)
class Work:
    """Work a response left running: a job to wait for, a title to wait for, or both."""

    conversation_id: str
    job: bool
    title: bool


@dataclass(frozen=True, slots=True)
class BackgroundRule:
    settings: Settings

    def may_start_work(self, request: UpstreamRequest) -> bool:
        """Whether the request's answer may leave work running (a chat POST, where it freezes)."""
        s = self.settings
        return (
            s.background_hold
            and not s.managed_instances
            and request.method == "POST"
            and s.background_hold_path.match(request.path) is not None
        )

    def started_work(
        self, request: UpstreamRequest, status: int, body_start: Sequence[bytes]
    ) -> Work | None:
        """The work a successful chat response leaves running, if any; ``body_start`` is the
        chunks that hold the first CAPTURE_LIMIT bytes of the response body."""
        if status != 200 or not self.may_start_work(request):
            return None
        body = b"".join(body_start)[:CAPTURE_LIMIT]
        if not body:
            return None
        job = _started_job(body)
        title = self.settings.background_title_wait > 0 and _starts_conversation(request.body)
        if job:
            return Work(job, job=True, title=title)
        conversation = _conversation_in_events(body) if title else None
        return Work(conversation, job=False, title=True) if conversation else None

    def hold(
        self,
        request: UpstreamRequest,
        work: Work,
        cutoff: float,
        fetch: Fetch,
        request_id: str,
        publish: Callable[[float], str] | None = None,
    ) -> None:
        """Wait for the job, then for the title, each until it is done or the cutoff comes.

        With ``publish`` (the stream relay, resumable.py) the job is followed by reading its
        stream to the end; should the relay stop early, the status is polled as without it.
        """
        s = self.settings
        headers = request.headers_without_body()
        quoted = quote(work.conversation_id, safe="")
        poller = _Poller(fetch, headers, s.background_poll_interval)
        started = time.monotonic()
        fields: dict[str, object] = {}
        if work.job:
            target = s.background_status_path.replace("{id}", quoted).encode()
            state = publish(cutoff) if publish else None
            if state is not None:
                fields["relay"] = state
            if state != "finished":
                state = poller.until(target, _job_state, cutoff, "deadline")
            fields["outcome"] = state
        if work.title and fields.get("outcome") not in _NO_TITLE:
            wait_over = time.monotonic() + s.background_title_wait
            target = TITLE_PATH.replace("{id}", quoted).encode()
            fields["title"] = (
                poller.until(target, _title_state, wait_over, "not saved in BACKGROUND_TITLE_WAIT")
                if wait_over < cutoff
                else poller.until(target, _title_state, cutoff, "deadline")
            )
        waited_ms = round((time.monotonic() - started) * 1000, 1)
        log.info(
            "background hold",
            emf=metrics.background_hold(waited_ms),
            requestId=request_id,
            conversationId=work.conversation_id,
            polls=poller.polls,
            waitedMs=waited_ms,
            **fields,
        )


class _Poller:
    """Polls one path with the caller's headers until its state is no longer "running"."""

    def __init__(self, fetch: Fetch, headers: list[tuple[bytes, bytes]], interval: float) -> None:
        self._fetch = fetch
        self._headers = headers
        self._interval = interval
        self._pause = threading.Event()
        self.polls = 0

    def until(
        self, target: bytes, state_of: Callable[[int, bytes], str], cutoff: float, late: str
    ) -> str:
        """The first state other than "running", or ``late`` once the cutoff comes."""
        while time.monotonic() < cutoff:
            self.polls += 1
            try:
                status, body = self._fetch(
                    b"GET", target, self._headers, max(cutoff - time.monotonic(), 0.01)
                )
            except Exception as exc:
                return f"poll failed: {type(exc).__name__}"
            state = state_of(status, body)
            if state != "running":
                return state
            self._pause.wait(min(self._interval, max(cutoff - time.monotonic(), 0)))
        return late


def _json(body: bytes) -> object:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _started_job(body: bytes) -> str | None:
    """The conversation id of a job the response says was started (LibreChat >= v0.8.2)."""
    if len(body) >= CAPTURE_LIMIT:
        return None
    data = _json(body)
    if isinstance(data, dict) and data.get("status") == "started":
        conversation = data.get("conversationId") or data.get("streamId")
        if isinstance(conversation, str) and conversation:
            return conversation
    return None


def _starts_conversation(body: bytes) -> bool:
    """Whether the chat request is the first message of a new, saved conversation: the only
    one after which LibreChat generates a title (its condition, request.js)."""
    data = _json(body) if body and len(body) <= _REQUEST_LIMIT else None
    return (
        isinstance(data, dict)
        and data.get("parentMessageId") == NO_PARENT
        and data.get("conversationId") in (None, "", "new")
        and not data.get("isTemporary")
    )


def _conversation_in_events(body: bytes) -> str | None:
    """The conversation id in the first SSE events of a streamed answer (<= v0.8.2-rc1: the
    ``created`` event carries the user message, with the id the server gave the conversation)."""
    for line in body.split(b"\n"):
        if not line.startswith(b"data:"):
            continue
        data = _json(line[5:])
        if not isinstance(data, dict):
            continue
        for holder in (data.get("message"), data.get("conversation"), data):
            if isinstance(holder, dict):
                conversation = holder.get("conversationId")
                if isinstance(conversation, str) and conversation not in ("", "new"):
                    return conversation
    return None


def _job_state(status: int, body: bytes) -> str:
    if status != 200:
        return f"status endpoint answered {status}"
    data = _json(body)
    if data is None:
        return "status endpoint answered non-JSON"
    if not isinstance(data, dict) or not data.get("active"):
        return "finished"
    job_status = data.get("status")
    if isinstance(job_status, str) and job_status in _TERMINAL:
        return job_status
    return "running"


def _title_state(status: int, body: bytes) -> str:
    if status == 404:  # not saved yet
        return "running"
    if status != 200:
        return f"conversation endpoint answered {status}"
    data = _json(body)
    if not isinstance(data, dict):
        return "conversation endpoint answered non-JSON"
    title = data.get("title")
    return "saved" if isinstance(title, str) and title not in ("", DEFAULT_TITLE) else "running"
