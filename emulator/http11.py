"""Server-side HTTP/1.1 for the Runtime API and the gateway: h11 on blocking sockets.

h11 parses and frames every message (chunked bodies and trailers included), so the emulator
checks the runtime's HTTP independently of the runtime's own hand-written client. Bodies are
handed out chunk by chunk as they arrive, each stamped with the moment its bytes were
received, and writes go out vectored (framing + data in one syscall) with TCP_NODELAY.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus

import h11

log = logging.getLogger("emulator")

RECV_SIZE = 64 * 1024  # h11 parses 64 KB pieces about twice as fast as 256 KB ones
MAX_HEAD = 64 * 1024  # request line + headers (h11's default is 16 KB)

Headers = list[tuple[str, str]]


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"body larger than {limit} bytes")
        self.limit = limit


class ServerConnection:
    """One server-side connection: h11's state machine fed from a blocking socket.

    A connection is used by one thread at a time; a request's handler may pass it to another
    thread while it waits (the Runtime API answers /next from the thread that submits an event).
    """

    __slots__ = ("h11", "last_recv_at", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.last_recv_at = 0.0  # time.perf_counter() of the last bytes received

    def _next_event(self) -> h11.Event | None:
        """The next event, receiving as needed (None: h11 paused, which a server that reads
        each request to its end never sees); raises h11.RemoteProtocolError."""
        conn = self.h11
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Event):
                return event
            if event is h11.PAUSED:
                return None
            try:
                data = self.sock.recv(RECV_SIZE)
            except OSError:
                data = b""
            self.last_recv_at = time.perf_counter()
            conn.receive_data(data)  # b"" is EOF: h11 reports it as an event or an error

    def next_request(self) -> h11.Request | None:
        """The next request's head (after the previous exchange); None when the client closed
        the connection between requests or it cannot carry another one."""
        conn = self.h11
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        elif conn.our_state is not h11.IDLE:
            return None
        event = self._next_event()
        if not isinstance(event, h11.Request):
            return None  # ConnectionClosed
        if conn.they_are_waiting_for_100_continue:
            self.send([h11.InformationalResponse(status_code=100, headers=[])])
        return event

    def body(self, trailers: Headers | None = None) -> Iterator[bytes]:
        """The request body, each piece as it arrives; trailers (lower-cased names) go into
        `trailers`. Raises h11.RemoteProtocolError if the framing is broken or cut short."""
        while True:
            event = self._next_event()
            if isinstance(event, h11.Data):
                yield event.data
            elif isinstance(event, h11.EndOfMessage):
                if trailers is not None:
                    trailers += decode_headers(event.headers)
                return
            else:
                raise h11.RemoteProtocolError(f"unexpected {event!r} in a body")

    def read_body(self, limit: int) -> bytes:
        return collect(self.body(), limit)

    def send(self, events: Iterable[h11.Event]) -> None:
        """Frame `events` with h11 and write them; OSError if the peer is gone."""
        parts: list[bytes] = []
        for event in events:
            parts += self.h11.send_with_data_passthrough(event) or ()
        sendv(self.sock, parts)

    def respond(self, status: int, headers: Headers, body: bytes = b"") -> None:
        """A complete response with a Content-Length; errors writing it are ignored."""
        events: list[h11.Event] = [
            h11.Response(
                status_code=status,
                headers=[*headers, ("Content-Length", str(len(body)))],
                reason=reason(status),
            )
        ]
        if body:
            events.append(h11.Data(data=body))
        events.append(h11.EndOfMessage())
        with contextlib.suppress(OSError, h11.LocalProtocolError):
            self.send(events)

    @property
    def reusable(self) -> bool:
        """True if the exchange ended cleanly and both sides keep the connection alive."""
        return self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE


def collect(pieces: Iterable[bytes], limit: int) -> bytes:
    """A whole body; BodyTooLarge past `limit` bytes."""
    out = bytearray()
    for piece in pieces:
        out += piece
        if len(out) > limit:
            raise BodyTooLarge(limit)
    return bytes(out)


def reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b"Unknown"


def decode_headers(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    return [(bytes(k).decode("latin-1"), bytes(v).decode("latin-1")) for k, v in headers]


def raw_headers(request: h11.Request) -> Headers:
    """A request's headers with their names as the client sent them."""
    return decode_headers(request.headers.raw_items())


def sendv(sock: socket.socket, parts: list[bytes]) -> None:
    """Vectored sendall: one syscall for chunk framing + data in the common case."""
    total = sum(len(p) for p in parts)
    if not total:
        return
    sent = sock.sendmsg(parts)
    if sent == total:
        return
    sock.sendall(b"".join(parts)[sent:])


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now, for a process about to bind it."""
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class TcpServer:
    """Accept loop in a daemon thread; one daemon thread per connection."""

    def __init__(
        self,
        host: str,
        port: int,
        handler: Callable[[socket.socket, tuple[str, int]], None],
        name: str,
    ) -> None:
        self._sock = socket.create_server((host, port), backlog=256)
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        self._handler = handler
        self._name = name
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(
            target=self._accept_loop, name=f"{name}-accept", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, addr = self._sock.accept()
            except OSError:
                return
            if self._closed:
                conn.close()
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.add(conn)
            threading.Thread(
                target=self._serve, args=(conn, addr), name=f"{self._name}-conn", daemon=True
            ).start()

    def _serve(self, conn: socket.socket, addr: tuple[str, int]) -> None:
        try:
            self._handler(conn, addr)
        except Exception:
            if not self._closed:
                log.exception("%s: connection handler failed", self._name)
        finally:
            with self._lock:
                self._conns.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._sock.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
