"""The slice of LibreChat's API `make acceptance`'s journey walks, for its orchestration test.

Run as the runtime's UPSTREAM_COMMAND behind the emulator (HOST/PORT as the runtime gives
them): register, log in (a token and a `refreshToken` cookie), refresh, log out (the cookie
revoked), `/api/models` and `/api/endpoints` listing one custom endpoint, a chat `POST` that
streams its answer as LibreChat 0.8's `on_message_delta` events (refused unless it names that
endpoint's model), and the conversation's title once answered. State lives in memory.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ENDPOINT, MODEL = "acceptance", "acceptance-model"
WORDS = ["a", "stand-in", "answer", "streamed", "word", "by", "word"]
USERS: dict[str, str] = {}  # email -> password
REFRESH: set[str] = set()
TITLES: dict[str, str] = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"librechat-stand-in: {format % args}\n")

    def _json(self, status: int, body: Any, cookie: str | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if cookie is not None:
            self.send_header("Set-Cookie", cookie)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else {}

    def _cookie(self) -> str | None:
        for part in (self.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "refreshToken":
                return value
        return None

    def do_GET(self) -> None:
        if self.path == "/health":
            self._json(200, {"ok": True})
        elif self.path == "/api/models":
            self._json(200, {ENDPOINT: [MODEL], "openAI": []})
        elif self.path == "/api/endpoints":
            self._json(200, {ENDPOINT: {"type": "custom", "order": 0}})
        elif self.path.startswith("/api/convos/"):
            conversation = self.path.rsplit("/", 1)[1]
            self._json(200, {"conversationId": conversation, "title": TITLES.get(conversation)})
        else:
            self._json(404, {"message": "not found"})

    def do_POST(self) -> None:
        body = self._body()
        if self.path == "/api/auth/register":
            USERS[body["email"]] = body["password"]
            self._json(200, {"message": "registered"})
        elif self.path == "/api/auth/login":
            if USERS.get(body.get("email")) != body.get("password"):
                self._json(401, {"message": "wrong credentials"})
                return
            token = secrets.token_hex(8)
            REFRESH.add(token)
            self._json(200, {"token": "jwt"}, f"refreshToken={token}; Path=/; HttpOnly")
        elif self.path == "/api/auth/refresh":
            if self._cookie() in REFRESH:
                self._json(200, {"token": "jwt"})
            else:
                self._json(401, {"message": "refresh refused"})
        elif self.path == "/api/auth/logout":
            REFRESH.discard(self._cookie() or "")
            expired = "refreshToken=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
            self._json(200, {"message": "logged out"}, expired)
        elif self.path == f"/api/agents/chat/{ENDPOINT}":
            if (body.get("model"), body.get("endpointType")) != (MODEL, "custom"):
                self._json(400, {"message": f"no model {body.get('model')!r} here"})
                return
            self._chat(body)
        else:
            self._json(404, {"message": "not found"})

    def _chat(self, body: dict[str, Any]) -> None:
        conversation = body.get("conversationId") or str(uuid.uuid4())
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        events: list[dict[str, Any]] = [
            {"created": True, "message": {"conversationId": conversation}}
        ]
        for word in WORDS:
            text = {"type": "text", "text": word + " "}
            events.append({"event": "on_message_delta", "data": {"delta": {"content": [text]}}})
        message = {"messageId": str(uuid.uuid4()), "conversationId": conversation}
        events.append(
            {
                "final": True,
                "conversation": {"conversationId": conversation},
                "responseMessage": message,
            }
        )
        for event in events:
            data = f"data: {json.dumps(event)}\n\n".encode()
            self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
            time.sleep(0.05)
        self.wfile.write(b"0\r\n\r\n")
        TITLES.setdefault(conversation, "A stand-in title")


def main() -> None:
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "3080"))
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
