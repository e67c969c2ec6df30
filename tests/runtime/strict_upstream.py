"""A strict HTTP/1.1 upstream for the event fuzz, started by the runtime as UPSTREAM_COMMAND.

Every request is parsed with h11 (which rejects what RFC 9112 forbids) and checked for what
h11 lets through but the runtime must not send: a request target that is not printable
ASCII starting with '/', a Host header missing or repeated, forwarding headers the runtime
does not own, CONNECT/TRACE. Each malformed request is appended as a JSON line to the file
named by $VIOLATIONS and answered 400; a well-formed one gets 200 ``{"ok": true}``.
"""

from __future__ import annotations

import json
import os
import socket
import threading

import h11

VIOLATIONS = os.environ["VIOLATIONS"]
LOCK = threading.Lock()


def problems(request: h11.Request) -> list[str]:
    found = []
    target = request.target
    if not target.startswith(b"/") or any(b < 0x21 or b > 0x7E for b in target):
        found.append(f"request target is not printable ASCII from '/': {target[:200]!r}")
    names = [name for name, _ in request.headers]
    if names.count(b"host") != 1:
        found.append(f"{names.count(b'host')} Host headers")
    if names.count(b"x-forwarded-host") != 1:
        found.append(f"{names.count(b'x-forwarded-host')} X-Forwarded-Host headers")
    proto = [value for name, value in request.headers if name == b"x-forwarded-proto"]
    if proto != [b"https"]:
        found.append(f"X-Forwarded-Proto is {proto!r}")
    if request.method in (b"CONNECT", b"TRACE"):
        found.append(f"method {request.method!r} was forwarded")
    return found


def record(found: list[str]) -> None:
    with LOCK, open(VIOLATIONS, "a") as fh:
        fh.write(json.dumps(found) + "\n")


def respond(conn: h11.Connection, sock: socket.socket, status: int, body: bytes) -> None:
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    sock.sendall(conn.send(h11.Response(status_code=status, headers=headers)))
    sock.sendall(conn.send(h11.Data(data=body)))
    sock.sendall(conn.send(h11.EndOfMessage()))


def serve(sock: socket.socket) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=16 * 1024 * 1024)
    request: h11.Request | None = None
    with sock:
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                record([f"h11 rejected the request: {exc}"])
                return
            if event is h11.NEED_DATA:
                conn.receive_data(sock.recv(65536))
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.EndOfMessage) and request is not None:
                found = (
                    [] if request.target in (b"/health", b"/readyz") else problems(request)
                )  # probes
                if found:
                    record(found)
                body = b'{"ok": false}' if found else b'{"ok": true}'
                respond(conn, sock, 400 if found else 200, body)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
                request = None
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return


def main() -> None:
    listener = socket.create_server((os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"])))
    while True:
        sock, _ = listener.accept()
        threading.Thread(target=serve, args=(sock,), daemon=True).start()


if __name__ == "__main__":
    main()
