"""Hold the invocation while LibreChat finishes a generation it started in the background.

From LibreChat 0.8.2, ``POST /api/agents/chat[/:endpoint]`` answers at once with
``{streamId, conversationId, status: "started"}`` and generates the answer in the same Node
process. Lambda freezes the environment as soon as the runtime asks for the next event, which
would freeze that generation mid-answer; so the worker polls the job status with the caller's
own credentials and asks for the next event only once the job has finished (or the deadline
nears).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from streaming_proxy import log
from streaming_proxy.events import UpstreamRequest
from streaming_proxy.settings import Settings

CAPTURE_LIMIT = 64 * 1024
_TERMINAL = {"complete", "completed", "error", "aborted", "requires_action"}
# The poll carries the caller's own headers: LibreChat authenticates it like the caller and
# bans clients without a browser User-Agent. Only body and encoding headers are left out.
_NOT_FORWARDED = {b"content-length", b"content-type", b"content-encoding", b"accept-encoding"}

# (method, target, headers, timeout) -> (status, body)
Fetch = Callable[[bytes, bytes, list[tuple[bytes, bytes]], float], tuple[int, bytes]]


@dataclass(frozen=True, slots=True)
class BackgroundRule:
    settings: Settings

    def may_start_work(self, request: UpstreamRequest) -> bool:
        """Whether to keep a copy of the response body to look for a started job."""
        s = self.settings
        return (
            s.background_hold
            and request.method == "POST"
            and s.background_hold_path.match(request.path) is not None
        )

    def started_job(self, status: int, body: bytes) -> str | None:
        """The conversation id of a job the response says was started, if any."""
        if status != 200 or not body or len(body) >= CAPTURE_LIMIT:
            return None
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return None
        if isinstance(data, dict) and data.get("status") == "started":
            conversation = data.get("conversationId") or data.get("streamId")
            if isinstance(conversation, str) and conversation:
                return conversation
        return None

    def hold(
        self,
        request: UpstreamRequest,
        conversation_id: str,
        cutoff: float,
        fetch: Fetch,
        request_id: str,
    ) -> None:
        """Poll the job status until it is no longer active or the cutoff comes."""
        s = self.settings
        target = s.background_status_path.replace("{id}", quote(conversation_id, safe="")).encode()
        headers = [(k, v) for k, v in request.headers if k.lower() not in _NOT_FORWARDED]
        started = time.monotonic()
        outcome = "deadline"
        polls = 0
        pause = threading.Event()
        while time.monotonic() < cutoff:
            polls += 1
            try:
                status, body = fetch(b"GET", target, headers, max(cutoff - time.monotonic(), 0.01))
            except Exception as exc:
                outcome = f"status poll failed: {type(exc).__name__}"
                break
            state = _job_state(status, body)
            if state != "running":
                outcome = state
                break
            pause.wait(min(s.background_poll_interval, max(cutoff - time.monotonic(), 0)))
        log.info(
            "background hold",
            requestId=request_id,
            conversationId=conversation_id,
            outcome=outcome,
            polls=polls,
            waitedMs=round((time.monotonic() - started) * 1000, 1),
        )


def _job_state(status: int, body: bytes) -> str:
    if status != 200:
        return f"status endpoint answered {status}"
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return "status endpoint answered non-JSON"
    if not isinstance(data, dict) or not data.get("active"):
        return "finished"
    job_status = data.get("status")
    if isinstance(job_status, str) and job_status in _TERMINAL:
        return job_status
    return "running"
