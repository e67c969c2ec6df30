"""Helpers of the emulator's environment tests: gates the test opens, and clients that read
streams event by event.

Concurrency and incremental delivery are proven by order, not by timing: a runtime or
upstream that reaches a gate waits there until the test lets it go, so what the client saw
before the test opened the gate was written before the gate.
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import h11

HERE = Path(__file__).resolve().parent
EMULATOR_UPSTREAM = f"{sys.executable} {HERE / 'emulator_upstream.py'}"


class Latch:
    """A control socket: each fake-runtime connection waits until the test releases it."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._waiting: list[socket.socket] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with self._cond:
                self._waiting.append(conn)
                self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        """Until `count` connections wait here (those released count too)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._waiting) >= count, timeout):
                raise TimeoutError(f"{len(self._waiting)} of {count} runtimes reached the latch")

    def release(self, index: int) -> None:
        """Let the `index`-th connection (0-based, in arrival order) go on."""
        with self._cond:
            conn = self._waiting[index]
        with contextlib.suppress(OSError):
            conn.sendall(b"g")
            conn.close()

    def close(self) -> None:
        with self._cond:
            conns = list(self._waiting)
        for index in range(len(conns)):
            self.release(index)
        self._server.close()


class RoundGate:
    """`$GATE_URL/wait?i=N` answers only once the test opened round N (see emulator_upstream)."""

    def __init__(self) -> None:
        self._opened: dict[int, threading.Event] = {}
        self._lock = threading.Lock()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                round_ = int(dict(parse_qsl(urlsplit(self.path).query))["i"])
                gate._event(round_).wait(60)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _event(self, round_: int) -> threading.Event:
        with self._lock:
            return self._opened.setdefault(round_, threading.Event())

    def open(self, round_: int) -> None:
        self._event(round_).set()

    def close(self) -> None:
        for round_ in range(1000):
            if round_ not in self._opened:
                break
            self.open(round_)
        self._server.shutdown()
        self._server.server_close()


CUT = "cut"  # the stream ended without its terminating chunk
END = "end"  # the stream ended normally


class EventStream:
    """Reads one SSE response through the gateway on a thread of its own, parsed by h11 (which,
    unlike http.client, tells a cut stream from one that ended); `next()` hands out its
    `data:` events (parsed JSON) in order, then END or CUT."""

    def __init__(self, port: int, target: str) -> None:
        self._events: queue.Queue[Any] = queue.Queue()
        self.status: int | None = None
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self._thread = threading.Thread(target=self._read, args=(port, target), daemon=True)
        self._thread.start()

    def _read(self, port: int, target: str) -> None:
        conn = h11.Connection(h11.CLIENT)
        buffer = b""
        try:
            request = h11.Request(method="GET", target=target, headers=[("Host", f"t:{port}")])
            self._sock.sendall(conn.send(request) + conn.send(h11.EndOfMessage()))
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(self._sock.recv(65536))
                elif isinstance(event, h11.Response):
                    self.status = event.status_code
                elif isinstance(event, h11.Data):
                    buffer += event.data
                    while b"\n\n" in buffer:
                        block, buffer = buffer.split(b"\n\n", 1)
                        for line in block.split(b"\n"):
                            if line.startswith(b"data: "):
                                self._events.put(json.loads(line[len(b"data: ") :]))
                elif isinstance(event, h11.EndOfMessage):
                    self._events.put(END)
                    return
        except (h11.RemoteProtocolError, OSError):
            self._events.put(CUT)
        finally:
            self._sock.close()

    def next(self, timeout: float = 20.0) -> Any:
        return self._events.get(timeout=timeout)

    def pending(self) -> int:
        """Events received but not yet handed out."""
        return self._events.qsize()


def wait_until(predicate: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.005)


@contextlib.contextmanager
def round_gate() -> Iterator[RoundGate]:
    gate = RoundGate()
    try:
        yield gate
    finally:
        gate.close()


@contextlib.contextmanager
def latch() -> Iterator[Latch]:
    control = Latch()
    try:
        yield control
    finally:
        control.close()
