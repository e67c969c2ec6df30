"""An upstream for the emulator's environment tests, started by the real runtime as
UPSTREAM_COMMAND (it listens on $HOST:$PORT like LibreChat).

- `GET /health`: 200 OK.
- `GET /whoami`: this process's pid and port, and the variables named in `?names=A,B`.
- `GET /sse?stream=S&n=N[&abort_at=K]`: N Server-Sent Events `{"stream", "i", "pid"}`. Before
  event i > 0 it asks the test's gate (`$GATE_URL/wait?i=i`, which answers only once the test
  opens round i), so event i cannot be written before the test has seen event i - 1 of every
  stream. At event K it cuts the connection instead (a stream failing mid-answer).
- `PUT|GET /store/KEY`: a value kept in `$STORE_DIR`, the backing service every environment
  shares (as LibreChat's environments share MongoDB and Redis).
"""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query))
        if url.path == "/health":
            self._send(200, b"OK", "text/plain")
        elif url.path == "/whoami":
            names = [n for n in query.get("names", "").split(",") if n]
            doc = {
                "pid": os.getpid(),
                "port": self.server.server_address[1],
                "env": {name: os.environ.get(name) for name in names},
            }
            self._send(200, json.dumps(doc).encode())
        elif url.path == "/sse":
            abort_at = int(query["abort_at"]) if "abort_at" in query else None
            self._sse(query.get("stream", "0"), int(query.get("n", "3")), abort_at)
        elif url.path.startswith("/store/"):
            path = Path(os.environ["STORE_DIR"], url.path.rsplit("/", 1)[1])
            if path.exists():
                self._send(200, path.read_bytes(), "text/plain")
            else:
                self._send(404, b"no such key", "text/plain")
        else:
            self._send(404, b"not found", "text/plain")

    def do_PUT(self) -> None:
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not url.path.startswith("/store/"):
            self._send(404, b"not found", "text/plain")
            return
        Path(os.environ["STORE_DIR"], url.path.rsplit("/", 1)[1]).write_bytes(body)
        self._send(204, b"", "text/plain")

    def _sse(self, stream: str, n: int, abort_at: int | None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(n):
            if i and os.environ.get("GATE_URL"):
                with urllib.request.urlopen(f"{os.environ['GATE_URL']}/wait?i={i}", timeout=60):
                    pass
            if i == abort_at:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            event = json.dumps({"stream": stream, "i": i, "pid": os.getpid()})
            data = f"data: {event}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


def main() -> None:
    server = ThreadingHTTPServer(
        (os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"])), Handler
    )
    server.daemon_threads = True
    print(f"emulator upstream {os.getpid()} listening on {server.server_address}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
