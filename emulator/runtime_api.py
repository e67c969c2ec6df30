"""The Lambda Runtime API of one execution environment, server side (docs:
lambda/latest/dg/runtimes-api.html).

(A little over 400 lines: the endpoints of one Runtime API, which read best side by side.)

Events are handed to waiting `/next` calls directly from the submitting thread (no queue
hop), so the handed-out timestamp is taken right before the bytes leave; what the runtime
answers is read by `emulator.responses`. An invocation that timed out answers the runtime's
late response with 410, as Lambda Managed Instances do (a timeout does not end their
environment; aws-lambda-runtime-interface-emulator renders it so).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, Protocol

import h11

from emulator.http11 import JSON, ServerConnection, TcpServer, data_event, sendv
from emulator.invocation import GATEWAY_ERROR, TIMEOUT_ERROR, Invocation
from emulator.responses import MAX_BUFFERED_RESPONSE, read_buffered, read_error, read_streamed
from emulator.timers import Scheduler
from emulator.wire import WireLog

API_PREFIX = "/2018-06-01/runtime/"
REMEMBERED_TIMEOUTS = 1000  # timed-out request ids kept to answer late responses with 410
STOPPED = {"errorType": "Emulator.Stopped", "errorMessage": "The emulator stopped."}
INVOKE_TIMEOUT = {"errorMessage": "Invoke timeout", "errorType": "InvokeTimeout"}


class RuntimeHooks(Protocol):
    """What the Runtime API tells its execution environment."""

    def on_init_done(self) -> None: ...

    def on_init_error(self, error: dict[str, Any]) -> None: ...

    def on_idle(self) -> None:
        """Every worker waits in /next and nothing is pending (called under the dispatch
        lock, so it cannot race with `on_busy`)."""

    def on_busy(self) -> None:
        """An event is about to be written to a waiting /next (under the dispatch lock)."""

    def on_ready(self) -> None:
        """A worker waits in /next with nothing pending for it (not under the lock)."""

    def on_released(self, inv: Invocation) -> None:
        """`inv` ended: called before its client can see the end, so that the client's next
        request finds the capacity it freed."""

    def on_timeout(self, inv: Invocation) -> None: ...

    def on_finished(self, inv: Invocation) -> None: ...

    def on_restore_next(self) -> bool:
        """SnapStart: the runtime is ready for its snapshot; block until a restore (True),
        or answer False at once when this is not a SnapStart environment or it stops."""

    def on_restore_error(self, error: dict[str, Any]) -> None: ...


class _Conn:
    __slots__ = ("generation", "http", "sock")

    def __init__(
        self, sock: socket.socket, generation: int, tap: Callable[[bytes], None] | None
    ) -> None:
        self.sock = sock
        self.http = ServerConnection(sock, tap)
        self.generation = generation


class _Slot:
    """A /next call waiting for an event."""

    __slots__ = ("conn", "dead", "ready")

    def __init__(self, conn: _Conn) -> None:
        self.conn = conn
        self.ready = threading.Event()
        self.dead = False


class RuntimeApi:
    """Serves one environment's runtime process (and its successors after restarts)."""

    def __init__(
        self,
        hooks: RuntimeHooks,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        function_timeout: float = 900.0,
        function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:librechat-local",
        concurrency: int = 1,
        scheduler: Scheduler | None = None,
        wire: WireLog | None = None,
    ) -> None:
        self.hooks = hooks
        self.function_timeout = function_timeout
        self.function_arn = function_arn
        self.concurrency = max(1, concurrency)
        self.wire = wire
        self._lock = threading.Lock()
        self._pending: deque[Invocation] = deque()
        self._slots: deque[_Slot] = deque()
        self._active: dict[str, Invocation] = {}
        self._timed_out: OrderedDict[str, None] = OrderedDict()
        self._conns: set[_Conn] = set()
        self._generation = 0
        self._initialized = False
        self._broken: dict[str, Any] | None = None
        self._closed = False
        self._owns_scheduler = scheduler is None
        self.scheduler = scheduler or Scheduler()
        self._server = TcpServer(host, port, self._serve, "runtime-api")
        self.address = f"{host}:{self._server.port}"

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self._owns_scheduler:
            self.scheduler.start()
        self._server.start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self.reset(STOPPED)
        self._fail_pending(STOPPED)
        if self._owns_scheduler:
            self.scheduler.stop()
        self._server.close()

    def reset(self, error: dict[str, Any]) -> None:
        """The runtime process is gone: fail what it was serving, forget its connections."""
        with self._lock:
            self._generation += 1
            self._initialized = False
            slots = list(self._slots)
            self._slots.clear()
            active = list(self._active.values())
            self._active.clear()
            stale = [c for c in self._conns if c.generation < self._generation]
        for slot in slots:
            slot.dead = True
            slot.ready.set()
        for conn in stale:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
        for inv in active:
            self._complete(inv, error=error, status=502)

    def set_broken(self, error: dict[str, Any] | None) -> None:
        """Init failed: fail what waits and everything submitted until `set_broken(None)`."""
        with self._lock:
            self._broken = error
        if error is not None:
            self._fail_pending(error)

    def _fail_pending(self, error: dict[str, Any]) -> None:
        with self._lock:
            pending = list(self._pending)
            self._pending.clear()
        for inv in pending:
            self._complete(inv, error=error, status=502)

    # -- load, for the router --------------------------------------------------------------

    @property
    def waiting(self) -> int:
        """Workers waiting in /next right now."""
        with self._lock:
            return len(self._slots)

    @property
    def initialized(self) -> bool:
        """The current runtime process has called /next at least once."""
        return self._initialized

    # -- dispatch --------------------------------------------------------------------------

    def submit(self, inv: Invocation) -> None:
        """Hand the event to a waiting /next, or queue it for the next one."""
        while (claim := self._claim(inv)) is not None:
            if isinstance(claim, dict):
                self._complete(inv, error=claim, status=502)
                return
            delivered = self._deliver(claim.conn, inv)
            claim.dead = not delivered
            claim.ready.set()
            if delivered:
                return

    def _claim(self, inv: Invocation) -> _Slot | dict[str, Any] | None:
        """A waiting /next for `inv`, the error that fails it, or None once it is queued."""
        with self._lock:
            failure = self._broken or (STOPPED if self._closed else None)
            if failure is not None:
                return failure
            if not self._slots:
                self._pending.append(inv)
                return None
            self.hooks.on_busy()
            return self._slots.popleft()

    def _deliver(self, conn: _Conn, inv: Invocation) -> bool:
        wall_ms = time.time() * 1000.0
        inv.deadline = time.perf_counter() + self.function_timeout
        inv.deadline_ms = int(wall_ms + self.function_timeout * 1000.0)
        headers = [
            JSON,
            ("Lambda-Runtime-Aws-Request-Id", inv.request_id),
            ("Lambda-Runtime-Deadline-Ms", str(inv.deadline_ms)),
            ("Lambda-Runtime-Invoked-Function-Arn", self.function_arn),
            ("Lambda-Runtime-Trace-Id", _trace_id(wall_ms)),
            ("Content-Length", str(len(inv.payload))),
        ]
        with self._lock:
            if conn.generation != self._generation:
                return False  # that runtime process is gone
            self._active[inv.request_id] = inv
        try:
            if _peer_closed(conn.sock):
                raise ConnectionResetError("the runtime closed this /next connection")
            frame = conn.http.h11.send_with_data_passthrough
            parts = [
                *(frame(h11.Response(status_code=200, headers=headers, reason=b"OK")) or ()),
                *(frame(data_event(inv.payload)) or ()),
                *(frame(h11.EndOfMessage()) or ()),
            ]
            inv.next_handed_out_at = time.perf_counter()
            sendv(conn.sock, parts)
        except (OSError, h11.LocalProtocolError):
            with self._lock:
                self._active.pop(inv.request_id, None)
            inv.next_handed_out_at = None
            return False
        self.scheduler.call_at(inv.deadline, lambda: self._on_deadline(inv), lambda: inv.finished)
        return True

    def _complete(
        self,
        inv: Invocation,
        *,
        error: dict[str, Any] | None = None,
        status: int = 502,
        body: dict[str, Any] | None = None,
        timed_out: bool = False,
        done_at: float | None = None,
    ) -> bool:
        """End an invocation once: finish the sink, or fail it (502/504, or cut if started)."""
        if not inv.claim_completion():
            return False
        inv.response_done_at = done_at if done_at is not None else time.perf_counter()
        inv.timed_out = timed_out
        if error is not None:
            inv.error = error
        with self._lock:
            self._active.pop(inv.request_id, None)
            if timed_out:
                self._timed_out[inv.request_id] = None
                if len(self._timed_out) > REMEMBERED_TIMEOUTS:
                    self._timed_out.popitem(last=False)
        self.hooks.on_released(inv)
        if error is not None:
            inv.sink.fail(status, body if body is not None else GATEWAY_ERROR)
        else:
            inv.sink.finish()
        inv.done.set()
        self.hooks.on_finished(inv)
        return True

    def _on_deadline(self, inv: Invocation) -> None:
        error = {
            "errorType": "Sandbox.Timedout",
            "errorMessage": (
                f"RequestId: {inv.request_id} Error: Task timed out after "
                f"{self.function_timeout:.2f} seconds"
            ),
        }
        if self._complete(inv, error=error, status=504, body=TIMEOUT_ERROR, timed_out=True):
            self.hooks.on_timeout(inv)

    # -- connections -----------------------------------------------------------------------

    def _serve(self, sock: socket.socket, _addr: tuple[str, int]) -> None:
        tap = self.wire.tap() if self.wire is not None else None
        with self._lock:
            conn = _Conn(sock, self._generation, tap)
            self._conns.add(conn)
        try:
            while True:
                request = conn.http.next_request()
                if request is None or conn.generation != self._generation:
                    return
                if not self._route(conn, request):
                    return
        except h11.RemoteProtocolError:
            return  # the runtime's response ended abruptly or was not HTTP: close
        finally:
            with self._lock:
                self._conns.discard(conn)

    def _route(self, conn: _Conn, request: h11.Request) -> bool:
        """Handle one request; False closes the connection."""
        ex = conn.http
        method = request.method
        path = request.target.decode("latin-1").split("?", 1)[0]
        if not path.startswith(API_PREFIX):
            return _reject(ex, 404, "InvalidRequest", f"unknown path {path}")
        route = path[len(API_PREFIX) :]
        if route == "invocation/next" and method == b"GET":
            ex.read_body(MAX_BUFFERED_RESPONSE)
            return self._next(conn)
        if route == "init/error" and method == b"POST":
            error = read_error(ex)
            ex.reply_json(202, {"status": "OK"})
            self.hooks.on_init_error(error)
            return ex.reusable
        if route == "restore/next" and method == b"GET":
            ex.read_body(MAX_BUFFERED_RESPONSE)
            if not self.hooks.on_restore_next():
                return _reject(ex, 400, "InvalidRequest", "restore/next outside SnapStart")
            ex.reply_json(200, {})
            return ex.reusable
        if route == "restore/error" and method == b"POST":
            error = read_error(ex)
            ex.reply_json(202, {"status": "OK"})
            self.hooks.on_restore_error(error)
            return ex.reusable
        parts = route.split("/")
        if len(parts) == 3 and parts[0] == "invocation" and method == b"POST":
            request_id, action = parts[1], parts[2]
            with self._lock:
                inv = self._active.get(request_id)
                timed_out = request_id in self._timed_out
            if inv is None or inv.finished:
                if timed_out:  # the runtime answers late (Managed Instances): 410, stay open
                    for _ in ex.body():
                        pass
                    ex.reply_json(410, INVOKE_TIMEOUT)
                    return ex.reusable
                return _reject(
                    ex,
                    400,
                    "InvalidRequestID",
                    f"request id {request_id} is not an invocation in progress",
                )
            if action == "response":
                return self._response(ex, inv)
            if action == "error":
                error = read_error(ex)
                self._complete(inv, error=error, status=502, done_at=ex.last_recv_at)
                return self._accepted(ex, inv)
        return _reject(ex, 404, "InvalidRequest", f"unknown route {method.decode()} {path}")

    def _accepted(self, ex: ServerConnection, inv: Invocation) -> bool:
        """202 for a response or error; 410 if the invocation had timed out meanwhile."""
        if inv.timed_out:
            ex.reply_json(410, INVOKE_TIMEOUT)
        else:
            ex.reply_json(202, {"status": "OK"})
        return ex.reusable

    def _next(self, conn: _Conn) -> bool:
        first = False
        inv: Invocation | None = None
        slot = _Slot(conn)
        with self._lock:
            if conn.generation != self._generation or self._closed:
                return False
            if not self._initialized:
                self._initialized = first = True
        if first:
            self.hooks.on_init_done()
        with self._lock:
            if self._pending:
                inv = self._pending.popleft()
            else:
                self._slots.append(slot)
                if len(self._slots) >= self.concurrency and not self._active:
                    self.hooks.on_idle()
        if inv is not None:
            if self._deliver(conn, inv):
                return conn.http.reusable
            with self._lock:
                self._pending.appendleft(inv)
            return False
        self.hooks.on_ready()
        slot.ready.wait()
        return not slot.dead and conn.http.reusable

    def _response(self, ex: ServerConnection, inv: Invocation) -> bool:
        streaming = ex.header(b"lambda-runtime-function-response-mode").lower() == "streaming"
        try:
            if streaming:
                read_streamed(ex, inv, self._complete)
            elif not read_buffered(ex, inv, self._complete):
                return False
        except h11.RemoteProtocolError as exc:
            self._complete(
                inv,
                error={
                    "errorType": "Runtime.IncompleteResponse",
                    "errorMessage": f"The runtime's response ended abruptly: {exc}",
                },
            )
            raise
        return self._accepted(ex, inv)


# -- helpers -------------------------------------------------------------------------------


def _reject(ex: ServerConnection, status: int, error_type: str, message: str) -> bool:
    ex.reply_json(status, {"errorMessage": message, "errorType": error_type}, close=True)
    return False


def _peer_closed(sock: socket.socket) -> bool:
    """True if the runtime closed a waiting /next connection (an event sent there is lost)."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False


def _trace_id(wall_ms: float) -> str:
    return (
        f"Root=1-{int(wall_ms / 1000):08x}-{os.urandom(12).hex()};"
        f"Parent={os.urandom(8).hex()};Sampled=0"
    )
