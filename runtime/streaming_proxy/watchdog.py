"""One thread that watches every running response for its deadline and for silence.

A worker blocked reading the upstream cannot watch the clock itself. At the cutoff the
watchdog shuts the upstream socket down, which wakes the worker's read so it can end the
response with an error instead of letting the invocation time out silently. The same happens
to a response whose upstream has sent nothing for STREAM_IDLE_TIMEOUT seconds: a stream that
never ends (LibreChat v0.8.2 keeps a stream of a job it lost open forever) would otherwise
pin the environment until the deadline, up to 15 minutes. A ``text/event-stream`` response
that has been silent for the keep-alive interval, at an event boundary, gets an SSE comment
so gateways in between do not cut it; those comments are the runtime's, so they do not count
as the upstream sending something (only upstream bytes count: ``ResponseStream.bytes_sent``).

The thread ticks every 50 ms instead of being woken per request: registering a response is
then one uncontended lock, not a thread wake-up on the hot path. Between invocations Lambda
freezes the whole process, ticks included.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import NamedTuple, Protocol

from streaming_proxy import log

KEEPALIVE_COMMENT = b": keep-alive\n\n"
TICK = 0.05


class Watched(Protocol):
    """What the watchdog reads of a response (runtime_api.ResponseStream): the upstream's
    bytes so far, when anything was last written, and a write that splits no event."""

    @property
    def bytes_sent(self) -> int: ...

    @property
    def last_write(self) -> float: ...

    def write_if_idle(self, data: bytes, idle_since: float) -> bool: ...


class Cut(NamedTuple):
    """Why the watchdog ended a response: its status if nothing was sent yet, else its trailer."""

    status: int
    error_type: str
    message: str


class Watch:
    __slots__ = ("cutoff", "expired", "idle", "last_bytes", "last_event", "sock", "sse", "stream")

    def __init__(
        self, stream: Watched, cutoff: float, sse: bool, sock: socket.socket | None
    ) -> None:
        self.stream = stream
        self.cutoff = cutoff
        self.sse = sse
        self.sock = sock
        self.expired = False  # the deadline came
        self.idle = False  # the upstream sent nothing for the idle timeout
        self.last_bytes = stream.bytes_sent
        self.last_event = time.monotonic()


class Watchdog:
    def __init__(self, keepalive_interval: float, idle_timeout: float = 0.0) -> None:
        self._interval = keepalive_interval
        self._idle_timeout = idle_timeout
        self._lock = threading.Lock()
        self._watches: set[Watch] = set()
        threading.Thread(target=self._run, name="watchdog", daemon=True).start()

    def watch(self, stream: Watched, cutoff: float, sse: bool, sock: socket.socket | None) -> Watch:
        watch = Watch(stream, cutoff, sse and self._interval > 0, sock)
        with self._lock:
            self._watches.add(watch)
        return watch

    def unwatch(self, watch: Watch) -> Cut | None:
        """Stop watching the response; returns why the watchdog cut it, if it did."""
        with self._lock:
            self._watches.discard(watch)
        if watch.expired:
            return Cut(
                504,
                "Runtime.Timeout",
                "the invocation deadline came while the upstream was still sending; response ended",
            )
        if watch.idle:
            return Cut(
                502,
                "Runtime.StreamError",
                f"the upstream sent nothing for {self._idle_timeout:g} s (STREAM_IDLE_TIMEOUT); "
                "response ended",
            )
        return None

    def _run(self) -> None:
        while True:
            time.sleep(TICK)
            if self._watches:
                try:
                    self.check(time.monotonic())
                except Exception as exc:
                    log.error("watchdog check failed", error=type(exc).__name__)

    def check(self, now: float) -> None:
        with self._lock:
            for w in self._watches:
                if w.stream.bytes_sent != w.last_bytes:
                    w.last_bytes, w.last_event = w.stream.bytes_sent, now
                if w.expired or w.idle:
                    continue
                if now >= w.cutoff:
                    w.expired = True
                elif self._idle_timeout and now - w.last_event >= self._idle_timeout:
                    w.idle = True
                else:
                    continue
                # Under the lock: once unwatch() returns, the socket may be back in the
                # pool serving another request, and must not be shut down any more.
                if w.sock is not None:
                    with contextlib.suppress(OSError):
                        w.sock.shutdown(socket.SHUT_RDWR)
            idle = [
                w
                for w in self._watches
                if w.sse
                and not (w.expired or w.idle)
                and now - w.stream.last_write >= self._interval
            ]
        for w in idle:
            try:
                w.stream.write_if_idle(KEEPALIVE_COMMENT, now - self._interval)
            except OSError:
                w.sse = False
