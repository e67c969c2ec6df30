"""A tiny Lambda runtime speaking the Runtime API over a raw socket, for emulator tests.

The behaviour of each invocation comes from the event: the last path segment of a gateway
event (`/echo`, `/stream`, ...) or `event["action"]` for direct invokes. FAKE_INIT=error posts
/init/error and exits; FAKE_INIT=exit exits during init; FAKE_CHILD=1 starts a `sleep` child
in a session of its own (to check that freezing reaches it) and logs its pid;
FAKE_INIT=slow_once hangs in its first init only (FAKE_MARKER names the marker file).
Actions that speak of the environment: `whoami?names=A,B` answers the pid and those variables;
`hold?port=P` answers, then holds (no /next) until the test's control socket on P lets go.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time

PREFIX = "/2018-06-01/runtime"
DELIM = b"\x00" * 8


class Api:
    def __init__(self, address: str | None = None) -> None:
        host, port = (address or os.environ["AWS_LAMBDA_RUNTIME_API"]).split(":")
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file = self.sock.makefile("rb")

    def read_response(self) -> tuple[int, dict[str, str], bytes]:
        status = int(self.file.readline().split()[1])
        headers: dict[str, str] = {}
        while (line := self.file.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = self.file.read(int(headers.get("content-length", "0")))
        return status, headers, body

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        lines = [f"{method} {PREFIX}{path} HTTP/1.1", "Host: runtime"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        lines.append(f"Content-Length: {len(body)}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        return self.read_response()

    def start_stream(self, request_id: str, prelude: dict) -> None:
        head = (
            f"POST {PREFIX}/invocation/{request_id}/response HTTP/1.1\r\n"
            "Host: runtime\r\n"
            "Lambda-Runtime-Function-Response-Mode: streaming\r\n"
            "Content-Type: application/vnd.awslambda.http-integration-response\r\n"
            "Transfer-Encoding: chunked\r\n"
            "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n"
            "\r\n"
        )
        self.sock.sendall(head.encode())
        self.chunk(json.dumps(prelude).encode() + DELIM)

    def chunk(self, data: bytes) -> None:
        self.sock.sendall(b"%X\r\n%s\r\n" % (len(data), data))

    def end_stream(self, trailers: dict[str, str] | None = None) -> int:
        tail = "".join(f"{k}: {v}\r\n" for k, v in (trailers or {}).items())
        self.sock.sendall(f"0\r\n{tail}\r\n".encode())
        return self.read_response()[0]


def action_of(event: object) -> tuple[str, dict[str, list[str]]]:
    if isinstance(event, dict) and "httpMethod" in event:
        return event["path"].rstrip("/").rsplit("/", 1)[-1], event.get(
            "multiValueQueryStringParameters"
        ) or {}
    if isinstance(event, dict):
        return str(event.get("action", "echo")), {
            k: [str(v)] for k, v in event.items() if k != "action"
        }
    return "echo", {}


def handle(api: Api, request_id: str, raw: bytes) -> None:
    try:
        event = json.loads(raw)
    except ValueError:
        event = None
    action, query = action_of(event)
    ok = {"statusCode": 200, "headers": {"content-type": "text/plain"}}
    if action == "echo":
        api.start_stream(request_id, {"statusCode": 200, "headers": {"x-echo": "1"}})
        api.chunk(raw)
        api.end_stream()
    elif action == "stream":
        api.start_stream(
            request_id,
            {
                "statusCode": 201,
                "headers": {"content-type": "text/plain", "x-single": "a", "x-both": "single"},
                "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"], "x-both": ["m1", "m2"]},
                "cookies": ["c=3"],
            },
        )
        for part in (b"one ", b"two ", b"three"):
            api.chunk(part)
        api.end_stream()
    elif action == "handshake":
        api.start_stream(request_id, ok)
        api.chunk(b"first")
        control = socket.create_connection(("127.0.0.1", int(query["port"][0])))
        control.recv(1)  # the test answers only once its client has read "first"
        control.close()
        api.chunk(b"second")
        api.end_stream()
    elif action == "trailer_error":
        api.start_stream(request_id, ok)
        api.chunk(b"partial")
        body = base64.b64encode(
            json.dumps({"errorType": "Upstream.Reset", "errorMessage": "upstream reset"}).encode()
        ).decode()
        api.end_stream(
            {
                "Lambda-Runtime-Function-Error-Type": "Runtime.StreamError",
                "Lambda-Runtime-Function-Error-Body": body,
            }
        )
    elif action == "invoke_error":
        api.request(
            "POST",
            f"/invocation/{request_id}/error",
            json.dumps({"errorType": "Handler.Failed", "errorMessage": "boom"}).encode(),
            {"Lambda-Runtime-Function-Error-Type": "Handler.Failed"},
        )
    elif action == "buffered":
        payload = {
            "statusCode": 202,
            "multiValueHeaders": {"x-m": ["1", "2"]},
            "body": base64.b64encode(b"\x00\xffbin").decode(),
            "isBase64Encoded": True,
        }
        api.request("POST", f"/invocation/{request_id}/response", json.dumps(payload).encode())
    elif action == "no_delimiter":
        head = (
            f"POST {PREFIX}/invocation/{request_id}/response HTTP/1.1\r\nHost: runtime\r\n"
            "Lambda-Runtime-Function-Response-Mode: streaming\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        )
        api.sock.sendall(head.encode())
        api.chunk(b"x" * 17000)
        api.end_stream()
    elif action == "big":
        size = int(query["size"][0])
        block = b"z" * (256 * 1024)
        api.start_stream(request_id, {"statusCode": 200})
        sent = 0
        while sent < size:
            piece = block[: size - sent]
            api.chunk(piece)
            sent += len(piece)
        api.end_stream()
    elif action == "trickle":
        api.start_stream(request_id, ok)
        for i in range(int(query["n"][0])):
            time.sleep(float(query["gap"][0]))
            api.chunk(f"tick {i}\n".encode())
        api.end_stream()
    elif action == "whoami":
        names = [n for n in query.get("names", [""])[0].split(",") if n]
        doc = {"pid": os.getpid(), "env": {n: os.environ.get(n) for n in names}}
        api.start_stream(request_id, {"statusCode": 200})
        api.chunk(json.dumps(doc).encode())
        api.end_stream()
    elif action == "hold":
        api.start_stream(request_id, ok)
        api.chunk(b"held")
        api.end_stream()
        control = socket.create_connection(("127.0.0.1", int(query["port"][0])))
        control.recv(1)  # like the runtime's background hold: no /next until this returns
        control.close()
    elif action == "bad_chunk":
        head = (
            f"POST {PREFIX}/invocation/{request_id}/response HTTP/1.1\r\nHost: runtime\r\n"
            "Lambda-Runtime-Function-Response-Mode: streaming\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        )
        api.sock.sendall(head.encode() + b"zz\r\nnot a chunk size\r\n")
        time.sleep(3600)  # this connection is unusable now
    elif action == "hang":
        time.sleep(3600)
    elif action == "hang_after_prelude":
        api.start_stream(request_id, ok)
        api.chunk(b"partial")
        time.sleep(3600)
    elif action == "crash":
        os._exit(7)
    else:
        api.start_stream(request_id, {"statusCode": 404})
        api.chunk(f"unknown action {action}".encode())
        api.end_stream()


def main() -> None:
    api = Api()
    mode = os.environ.get("FAKE_INIT", "")
    print(f"fake runtime pid={os.getpid()} init={mode or 'ok'}", flush=True)
    if os.environ.get("FAKE_CHILD"):
        child = subprocess.Popen(["sleep", "300"], start_new_session=True)
        print(f"child pid={child.pid}", flush=True)
    if mode == "error":
        error = {"errorType": "Init.ConfigMissing", "errorMessage": "config s3://b/k missing"}
        api.request(
            "POST",
            "/init/error",
            json.dumps(error).encode(),
            {"Lambda-Runtime-Function-Error-Type": "Init.ConfigMissing"},
        )
        sys.exit(1)
    if mode == "slow_once":
        marker = os.environ["FAKE_MARKER"]
        if not os.path.exists(marker):
            open(marker, "w").close()
            print("first init: hanging", flush=True)
            time.sleep(60)
    if mode == "exit":
        print("giving up during init", flush=True)
        sys.exit(3)
    while True:
        status, headers, body = api.request("GET", "/invocation/next")
        assert status == 200, status
        print(f"invoke {headers['lambda-runtime-aws-request-id']}", flush=True)
        handle(api, headers["lambda-runtime-aws-request-id"], body)


if __name__ == "__main__":
    main()
