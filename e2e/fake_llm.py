"""An OpenAI-compatible model for LibreChat's end-to-end runs: streamed tokens, a known delay.

LibreChat reaches it as a custom endpoint (librechat.yaml `endpoints.custom`). Each streamed
token carries a number unique in this process (`t17 `), and the wall-clock time it was sent is
kept, so a client that sees the token through LibreChat (directly or through the emulated API
Gateway and Lambda) can tell how long the token took to reach it. Requests that ask for a
conversation title get a short title instead of tokens.

    GET  /v1/models
    POST /v1/chat/completions     (stream true or false)
    GET  /_sent?ids=3,4,5         {"3": <epoch seconds>, ...}
    GET  /_requests               what LibreChat sent (model, stream, title or chat)
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

MODEL = "e2e-fake-model"
ENDPOINT = "e2e"  # the custom endpoint serving MODEL in the generated librechat.yaml


class FakeLlm(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, tokens: int = 30, delay: float = 0.05
    ) -> None:
        super().__init__((host, port), _Handler)
        self.port: int = self.server_address[1]
        self.tokens = tokens
        self.delay = delay
        self.sent: dict[int, float] = {}
        self.requests: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._titles = itertools.count(1)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, name="fake-llm", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeLlm:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def next_token(self) -> tuple[int, str]:
        with self._lock:
            n = next(self._ids)
        return n, f"t{n} "

    def title(self) -> str:
        with self._lock:
            return f"E2E title {next(self._titles)}"


CHAT_MARKER = "e2e chat"  # every message the suite sends starts with this


def _is_title_request(body: dict[str, Any]) -> bool:
    """LibreChat's title prompt asks for a title and wraps the conversation, so its last
    message does not start with the suite's own words."""
    messages = body.get("messages") or [{}]
    content = messages[-1].get("content") if isinstance(messages[-1], dict) else ""
    if isinstance(content, list):
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    if isinstance(content, str) and content.lstrip().lower().startswith(CHAT_MARKER):
        return False
    return "title" in json.dumps(messages).lower()


def _chunk(content: str | None, finish: str | None = None) -> bytes:
    delta = {"role": "assistant", "content": content} if content is not None else {}
    data = {
        "id": "chatcmpl-e2e",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(data).encode() + b"\n\n"


class _Handler(BaseHTTPRequestHandler):
    server: FakeLlm
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the run prints its own summary

    def _json(self, status: int, value: Any) -> None:
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path.rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
        elif url.path == "/_sent":
            wanted = parse_qs(url.query).get("ids", [""])[0]
            ids = [int(i) for i in wanted.split(",") if i.isdigit()]
            self._json(200, {str(i): self.server.sent.get(i) for i in ids})
        elif url.path == "/_requests":
            self._json(200, self.server.requests)
        else:
            self._json(404, {"error": {"message": f"no route {url.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._json(400, {"error": {"message": "body is not JSON"}})
            return
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._json(404, {"error": {"message": f"no route {self.path}"}})
            return
        title = _is_title_request(body)
        stream = bool(body.get("stream"))
        record = {"at": time.time(), "stream": stream, "title": title, "model": body.get("model")}
        self.server.requests.append(record)
        if title:
            text = self.server.title()
            if not stream:
                self._json(200, _completion(text))
                return
            self._start_stream()
            self._send_event(_chunk(text))
        else:
            if not stream:
                self._json(200, _completion("".join(self.server.next_token()[1] for _ in range(5))))
                return
            self._start_stream()
            for i in range(self.server.tokens):
                if i and self.server.delay:
                    time.sleep(self.server.delay)
                n, token = self.server.next_token()
                self.server.sent[n] = time.time()
                record.setdefault("tokens", [n, n])[1] = n
                if not self._send_event(_chunk(token)):
                    return
        self._send_event(_chunk(None, "stop"))
        usage = {"prompt_tokens": 10, "completion_tokens": self.server.tokens, "total_tokens": 40}
        if (body.get("stream_options") or {}).get("include_usage"):
            data = {"id": "chatcmpl-e2e", "object": "chat.completion.chunk", "choices": []}
            self._send_event(b"data: " + json.dumps(data | {"usage": usage}).encode() + b"\n\n")
        self._send_event(b"data: [DONE]\n\n")
        self._send_event(b"")

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _send_event(self, data: bytes) -> bool:
        try:
            self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        except OSError:
            return False
        return True


def _completion(text: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }
