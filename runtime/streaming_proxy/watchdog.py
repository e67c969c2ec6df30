"""One thread that watches every running response for its deadline and for SSE silence.

A worker blocked reading the upstream cannot watch the clock itself. At the cutoff the
watchdog shuts the upstream socket down, which wakes the worker's read so it can end the
response with an error instead of letting the invocation time out silently. A
``text/event-stream`` response that has been silent for the keep-alive interval, at an event
boundary, gets an SSE comment so gateways in between do not cut it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from streaming_proxy.runtime_api import ResponseStream

KEEPALIVE_COMMENT = b": keep-alive\n\n"


class Watch:
    __slots__ = ("cutoff", "expired", "sock", "sse", "stream")

    def __init__(
        self, stream: ResponseStream, cutoff: float, sse: bool, sock: socket.socket | None
    ) -> None:
        self.stream = stream
        self.cutoff = cutoff
        self.sse = sse
        self.sock = sock
        self.expired = False


class Watchdog:
    def __init__(self, keepalive_interval: float) -> None:
        self._interval = keepalive_interval
        self._cond = threading.Condition()
        self._watches: set[Watch] = set()
        threading.Thread(target=self._run, name="watchdog", daemon=True).start()

    def watch(
        self, stream: ResponseStream, cutoff: float, sse: bool, sock: socket.socket | None
    ) -> Watch:
        watch = Watch(stream, cutoff, sse and self._interval > 0, sock)
        with self._cond:
            self._watches.add(watch)
            self._cond.notify()
        return watch

    def unwatch(self, watch: Watch) -> None:
        with self._cond:
            self._watches.discard(watch)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._watches:
                    self._cond.wait()
                now = time.monotonic()
                due = min(self._due(w) for w in self._watches)
                if due > now:
                    self._cond.wait(due - now)
                    continue
                now = time.monotonic()
                expired = [w for w in self._watches if not w.expired and now >= w.cutoff]
                for w in expired:
                    w.expired = True
                idle = [
                    w
                    for w in self._watches
                    if w.sse and not w.expired and now - w.stream.last_write >= self._interval
                ]
            for w in expired:  # socket calls happen outside the lock
                if w.sock is not None:
                    with contextlib.suppress(OSError):
                        w.sock.shutdown(socket.SHUT_RDWR)
            for w in idle:
                try:
                    if not w.stream.write_if_idle(KEEPALIVE_COMMENT, now - self._interval):
                        # Mid-event or just written to: look again one interval from now.
                        w.stream.last_write = max(w.stream.last_write, now)
                except OSError:
                    w.sse = False

    def _due(self, w: Watch) -> float:
        due = w.cutoff if not w.expired else float("inf")
        if w.sse and not w.expired:
            due = min(due, w.stream.last_write + self._interval)
        return due if due != float("inf") else time.monotonic() + 3600
