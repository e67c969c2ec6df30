"""A LibreChat API client that sends what LibreChat's web client sends, and times each token.

Cookies are kept by hand: LibreChat marks them Secure in production, and a cookie jar would
not send them back over the emulator's plain HTTP, while a browser does for 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

import httpx

from e2e.fake_llm import CHAT_MARKER, ENDPOINT, MODEL

NO_PARENT = "00000000-0000-0000-0000-000000000000"
TOKEN = re.compile(r"\bt(\d+)\b")
# LibreChat bans clients without a browser User-Agent (uaParser middleware).
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) e2e"


@dataclass
class Stream:
    """One answer as the client saw it."""

    how: str  # "direct" (the POST streams) or "resumable" (POST, then GET the stream)
    post_status: int
    stream_status: int | None = None
    post_sent_at: float = 0.0  # epoch seconds
    arrivals: dict[int, float] = field(default_factory=dict)  # token number -> epoch seconds
    chunk_times: list[float] = field(default_factory=list)
    text: str = ""
    final: dict[str, Any] | None = None
    error: str | None = None
    conversation_id: str | None = None
    stream_id: str | None = None
    events: int = 0
    synced: set[int] = field(default_factory=set)  # tokens a resume's sync event carried
    doubled: set[int] = field(default_factory=set)  # tokens on screen twice after a resume

    @property
    def answer_tokens(self) -> set[int]:
        """The tokens of the answer as the final event has it (what LibreChat saved)."""
        message = self.response_message
        texts = [message.get("text") or ""] + [
            part.get("text", "")
            for part in message.get("content") or []
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        ]
        return {int(n) for text in texts for n in TOKEN.findall(text)}

    @property
    def lost(self) -> set[int]:
        """Tokens of the answer the client never saw live (nor in a resume's sync)."""
        return self.answer_tokens - set(self.arrivals) - self.synced

    delta_times: list[float] = field(default_factory=list)  # epoch seconds of each text delta

    @property
    def first_token_ms(self) -> float | None:
        if not self.arrivals:
            return None
        return (min(self.arrivals.values()) - self.post_sent_at) * 1000

    @property
    def response_message(self) -> dict[str, Any]:
        return (self.final or {}).get("responseMessage") or {}


class LibreChat:
    def __init__(self, base_url: str, timeout: float = 30.0, stream_limit: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.stream_limit = stream_limit  # keep-alive comments could keep a stream open forever
        self.http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json, text/plain, */*"},
        )
        self.cookies: dict[str, str] = {}
        self.token: str | None = None
        # What to chat with: the suite's fake model by default; ops/acceptance.py sets a model
        # the deployed stack configures (and no marker, which only the fake model needs).
        self.endpoint: str = ENDPOINT
        self.endpoint_type: str | None = "custom"
        self.model: str = MODEL
        self.marker: str | None = CHAT_MARKER
        self.log: list[str] = []  # one line per request: method, path, status, ms

    def close(self) -> None:
        self.http.close()

    # -- plumbing -----------------------------------------------------------------------------

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _keep_cookies(self, response: httpx.Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                expired = morsel["expires"] and "1970" in morsel["expires"]
                if morsel.value == "" or expired or morsel["max-age"] == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        self.http.cookies.clear()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        started = time.perf_counter()
        response = self.http.request(
            method, path, headers=self._headers(kwargs.pop("headers", None)), **kwargs
        )
        self._keep_cookies(response)
        took = (time.perf_counter() - started) * 1000
        self.log.append(f"{method} {path} -> {response.status_code} ({took:.1f} ms)")
        return response

    # -- auth ---------------------------------------------------------------------------------

    def register(self, email: str, password: str, name: str = "E2E User") -> httpx.Response:
        body = {
            "name": name,
            "username": email.split("@", 1)[0],
            "email": email,
            "password": password,
            "confirm_password": password,
        }
        return self.request("POST", "/api/auth/register", json=body)

    def login(self, email: str, password: str) -> httpx.Response:
        response = self.request(
            "POST", "/api/auth/login", json={"email": email, "password": password}
        )
        if response.status_code == 200:
            self.token = response.json().get("token")
        return response

    def refresh(self) -> httpx.Response:
        response = self.request("POST", "/api/auth/refresh")
        if response.status_code == 200:
            self.token = response.json().get("token") or self.token
        return response

    def logout(self) -> httpx.Response:
        return self.request("POST", "/api/auth/logout")

    # -- chat ---------------------------------------------------------------------------------

    def chat(self, text: str, *args: Any, **kwargs: Any) -> Stream:
        """Send a message the way LibreChat's web client does and read the answer's stream;
        a transport failure (a timeout, a cut connection) is recorded, not raised."""
        result = Stream(how="direct", post_status=0, post_sent_at=time.time())
        try:
            return self._chat(result, text, *args, **kwargs)
        except httpx.HTTPError as exc:
            result.error = f"{type(exc).__name__}: {exc or 'no detail'}"
            self.log.append(f"chat {text!r}: {result.error}")
            return result

    def _chat(
        self,
        result: Stream,
        text: str,
        conversation_id: str | None = None,
        parent_message_id: str | None = None,
        files: list[dict[str, Any]] | None = None,
        read: bool = True,
    ) -> Stream:
        if self.marker and not text.startswith(self.marker):
            text = f"{self.marker}: {text}"
        body: dict[str, Any] = {
            "text": text,
            "sender": "User",
            "clientTimestamp": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "isCreatedByUser": True,
            "parentMessageId": parent_message_id or NO_PARENT,
            "conversationId": conversation_id,
            "messageId": str(uuid.uuid4()),
            "error": False,
            "endpoint": self.endpoint,
            "endpointType": self.endpoint_type,
            "model": self.model,
            "isTemporary": False,
            "isRegenerate": False,
            "isContinued": False,
            "ephemeralAgent": {"mcp": [], "web_search": False, "file_search": False,
                               "execute_code": False},
        }  # fmt: skip
        if files:
            body["files"] = files
        if body["endpointType"] is None:
            del body["endpointType"]
        path = f"/api/agents/chat/{self.endpoint}"
        headers = self._headers({"Content-Type": "application/json", "Accept": "*/*"})
        result.post_sent_at = sent_at = time.time()
        with self.http.stream("POST", path, content=json.dumps(body), headers=headers) as response:
            self._keep_cookies(response)
            result.post_status = response.status_code
            kind = response.headers.get("content-type", "")
            if response.status_code == 200 and kind.startswith("text/event-stream"):
                self._read_sse(response, result)
            else:
                response.read()
                self._log_stream(path, response, sent_at)
                if response.status_code != 200:
                    result.error = (
                        f"POST {path} answered {response.status_code}: {response.text[:300]}"
                    )
                    return result
                started = response.json()
                result.how = "resumable"
                result.stream_id = started.get("streamId")
                result.conversation_id = started.get("conversationId")
        if result.how == "direct":
            self._log_stream(path, None, sent_at, result)
            return result
        if read:
            self.read_stream(result)
        return result

    def read_stream(
        self, result: Stream, *, resume: bool = False, until: Callable[[Stream], bool] | None = None
    ) -> Stream:
        """GET the answer's stream (``resume``: as a reconnecting browser does) until it ends,
        or until ``until`` says the reader goes away (a dropped connection)."""
        stream_path = f"/api/agents/chat/stream/{result.stream_id}"
        get_sent = time.time()
        with self.http.stream(
            "GET",
            stream_path,
            params={"resume": "true"} if resume else None,
            headers=self._headers({"Accept": "text/event-stream"}),
        ) as response:
            result.stream_status = response.status_code
            if response.status_code == 200:
                self._read_sse(response, result, until)
            else:
                response.read()
                result.error = (
                    f"GET {stream_path} answered {response.status_code}: {response.text[:300]}"
                )
        self.log.append(
            f"GET {stream_path}{'?resume=true' if resume else ''} -> {result.stream_status} "
            f"({(time.time() - get_sent) * 1000:.1f} ms, {len(result.arrivals)} tokens)"
        )
        return result

    def abort(self, result: Stream) -> httpx.Response:
        """The stop button: what LibreChat's web client posts for a resumable answer."""
        body = {"streamId": result.stream_id, "conversationId": result.conversation_id}
        return self.request("POST", "/api/agents/chat/abort", json=body)

    def _log_stream(
        self,
        path: str,
        response: httpx.Response | None,
        sent_at: float,
        result: Stream | None = None,
    ) -> None:
        status = response.status_code if response is not None else (result and result.post_status)
        tokens = f", {len(result.arrivals)} tokens" if result is not None else ""
        self.log.append(
            f"POST {path} -> {status} ({(time.time() - sent_at) * 1000:.1f} ms{tokens})"
        )

    def _read_sse(
        self,
        response: httpx.Response,
        result: Stream,
        until: Callable[[Stream], bool] | None = None,
    ) -> None:
        buffer = b""
        for chunk in response.iter_raw():
            now = time.time()
            if now - result.post_sent_at > self.stream_limit:
                result.error = f"the stream did not end within {self.stream_limit:g} s"
                return
            result.chunk_times.append(now)
            buffer += chunk
            while b"\n\n" in buffer:
                raw, buffer = buffer.split(b"\n\n", 1)
                self._handle_event(raw.decode("utf-8", "replace"), now, result)
            if result.final is not None or result.error is not None:
                return
            if until is not None and until(result):
                return

    def _handle_event(self, raw: str, now: float, result: Stream) -> None:
        event_name = "message"
        data_lines = []
        for line in raw.splitlines():
            if line.startswith("event:"):
                event_name = line[6:].strip()
            elif line.startswith("data:"):
                data_lines.append(line[5:].lstrip())
        if not data_lines:
            return  # a comment (keep-alive)
        result.events += 1
        try:
            data = json.loads("\n".join(data_lines))
        except ValueError:
            return
        if event_name == "error" or (
            isinstance(data, dict) and data.get("error") is True and not data.get("final")
        ):
            result.error = f"error event: {json.dumps(data)[:300]}"
            return
        if not isinstance(data, dict):
            return
        if data.get("final"):
            result.final = data
            conversation = data.get("conversation") or {}
            result.conversation_id = conversation.get("conversationId") or result.conversation_id
            return
        if data.get("sync"):  # a resume: what was said so far, as LibreChat rebuilt it
            state = data.get("resumeState") or {}
            for part in state.get("aggregatedContent") or []:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    for match in TOKEN.finditer(part["text"]):
                        n = int(match.group(1))
                        if n in result.synced:
                            result.doubled.add(n)
                        result.synced.add(n)
            return
        if data.get("created"):
            message = data.get("message") or {}
            result.conversation_id = message.get("conversationId") or result.conversation_id
        texts = _delta_texts(data)
        if any(texts):
            result.delta_times.append(now)
        for text in texts:
            result.text += text
            for match in TOKEN.finditer(text):
                n = int(match.group(1))
                if n in result.synced:
                    result.doubled.add(n)  # the sync carried it already: on screen twice
                result.arrivals.setdefault(n, now)


def _delta_texts(data: dict[str, Any]) -> list[str]:
    """Text pieces of a streamed delta, in the shapes LibreChat 0.8 sends."""
    if data.get("event") == "on_message_delta":
        delta = ((data.get("data") or {}).get("delta") or {}).get("content") or []
        return [
            part.get("text", "")
            for part in delta
            if isinstance(part, dict) and part.get("type") == "text"
        ]
    if isinstance(data.get("text"), str) and data.get("message"):
        return [data["text"]]
    return []
