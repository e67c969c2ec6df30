"""A tiny upstream for the local demo: streams chat tokens as Server-Sent Events.

Stands in for LibreChat (same contract: listens on $HOST:$PORT, default 127.0.0.1:3080;
`GET /health` answers 200 "OK"). `GET|POST /api/demo/chat?q=...` (or a JSON body
`{"text": ...}`) streams one `data:` event per token with $DEMO_TOKEN_DELAY seconds
(default 0.08) between them, then `event: done`. `GET /` serves a page that shows it.
Under SnapStart (SNAPSTART_HOOK_FD set) it answers the runtime's before/after steps the way
runtime/preload/snapstart.cjs does inside LibreChat, with nothing to close or refresh.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ANSWER = (
    "Hello from the Lambda emulator! Each of these words left the demo upstream as its own "
    "Server-Sent Event, crossed the streaming runtime and the local API Gateway, and reached "
    "you as soon as it was written."
)

PAGE = b"""<!doctype html><meta charset="utf-8"><title>librechat-lambda demo</title>
<h1>Streaming demo</h1><form id="f"><input id="q" value="Hi there" size="40">
<button>Send</button></form><pre id="out"></pre>
<script>
document.getElementById("f").onsubmit = async (e) => {
  e.preventDefault();
  const out = document.getElementById("out"); out.textContent = "";
  const res = await fetch("api/demo/chat", {method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({text: document.getElementById("q").value})});
  const reader = res.body.getReader(); const dec = new TextDecoder();
  for (;;) { const {done, value} = await reader.read(); if (done) break;
    for (const line of dec.decode(value).split("\\n"))
      if (line.startsWith("data: ")) out.textContent += JSON.parse(line.slice(6)).token ?? ""; }
};
</script>
"""


class DemoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "demo-upstream/1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"demo-upstream: {format % args}\n")

    def _plain(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/health":
            self._plain(200, b"OK")
        elif path == "/":
            self._plain(200, PAGE, "text/html; charset=utf-8")
        elif path == "/api/demo/chat":
            query = parse_qs(urlsplit(self.path).query)
            self._chat(query.get("q", [""])[0])
        else:
            self._plain(404, b"Not Found")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if urlsplit(self.path).path != "/api/demo/chat":
            self._plain(404, b"Not Found")
            return
        try:
            text = str(json.loads(raw).get("text", "")) if raw else ""
        except (ValueError, AttributeError):
            text = raw.decode("utf-8", "replace")
        self._chat(text)

    def _chat(self, prompt: str) -> None:
        delay = float(os.environ.get("DEMO_TOKEN_DELAY", "0.08"))
        words = ([f"You said: {prompt!r}."] if prompt else []) + ANSWER.split()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD":
            return
        try:
            for i, word in enumerate(words):
                token = word if i == 0 else " " + word
                self._chunk(f"data: {json.dumps({'token': token})}\n\n".encode())
                time.sleep(delay)
            self._chunk(b'event: done\ndata: {"done": true}\n\n')
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))


def serve_snapstart_hooks(fd: int) -> None:
    """The preload's protocol (one JSON line each way), for an upstream with no state."""
    with socket.socket(fileno=fd) as channel, channel.makefile("rwb") as stream:
        stream.write(b'{"ok": true, "preload": "demo-upstream"}\n')
        stream.flush()
        for line in stream:
            step = json.loads(line).get("step")
            ok = step in ("before", "after")
            answer = {"ok": ok, "step": step} if ok else {"ok": False, "error": "unknown step"}
            stream.write(json.dumps(answer).encode() + b"\n")
            stream.flush()


def main() -> None:
    hook_fd = os.environ.pop("SNAPSTART_HOOK_FD", None)
    if hook_fd and hook_fd.isdigit():
        threading.Thread(target=serve_snapstart_hooks, args=(int(hook_fd),), daemon=True).start()
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "3080"))
    server = ThreadingHTTPServer((host, port), DemoHandler)
    server.daemon_threads = True
    sys.stderr.write(f"demo-upstream: listening on http://{host}:{port}\n")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
