"""The local API Gateway + Lambda Runtime API emulator, driven by a fake raw-socket runtime.

These tests do not depend on the real runtime: `tests/fake_runtime.py` speaks the Runtime
API by hand, and some tests play the runtime themselves on a socket.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from emulator import LocalStack
from emulator import responses as responses_module
from emulator import sandbox as sandbox_module
from emulator.events import build_function_url_event, build_rest_event, parse_query
from emulator.http11 import free_port
from emulator.sandbox import Sandbox, process_state
from tests.fake_runtime import Api

pytestmark = pytest.mark.slow  # starts the runtime or the emulator (tests/conftest.py)

FAKE_RUNTIME = [sys.executable, str(Path(__file__).with_name("fake_runtime.py"))]
REPO = Path(__file__).resolve().parent.parent


@contextmanager
def fake_stack(env: dict[str, str] | None = None, **kwargs: Any) -> Iterator[LocalStack]:
    kwargs.setdefault("function_timeout", 10.0)
    stack = LocalStack(FAKE_RUNTIME, env=env or {}, **kwargs)
    try:
        stack.start(
            init_timeout=60
        )  # only a failing init waits it out; a loaded machine needs room
        yield stack
    finally:
        stack.stop()


@contextmanager
def socket_stack(**kwargs: Any) -> Iterator[LocalStack]:
    """A stack whose "runtime" is this test, speaking on a socket (the process just sleeps)."""
    stack = LocalStack(["sleep", "30"], **kwargs)
    try:
        stack.start(wait_init=False)
        yield stack
    finally:
        stack.stop()


def request(
    stack: LocalStack,
    method: str,
    target: str,
    body: bytes | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> tuple[int, list[tuple[str, str]], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", stack.gateway.port, timeout=10)
    conn.putrequest(method, target, skip_accept_encoding=True)
    for name, value in headers or []:
        conn.putheader(name, value)
    if body is not None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, resp.getheaders(), data


def echoed_event(stack: LocalStack, method: str, target: str, **kwargs: Any) -> dict[str, Any]:
    status, _, body = request(stack, method, target, **kwargs)
    assert status == 200
    return json.loads(body)


def wait_for_state(pid: int, wanted: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    state = process_state(pid)
    while state != wanted and time.monotonic() < deadline:
        time.sleep(0.01)
        state = process_state(pid)
    return state


def wait_for_exit(pid: int, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while process_state(pid) not in ("", "Z") and time.monotonic() < deadline:
        time.sleep(0.01)
    return process_state(pid)


# -- event mapping -----------------------------------------------------------------------


def test_query_is_percent_decoded_with_plus_literal_and_repeated_keys_in_order() -> None:
    single, multi = parse_query("a=1&b=x+y%20z&a=2&flag&c=%2F%3D&&a=3")
    assert multi == {"a": ["1", "2", "3"], "b": ["x+y z"], "flag": [""], "c": ["/="]}
    assert single == {"a": "3", "b": "x+y z", "flag": "", "c": "/="}


def test_missing_or_empty_query_gives_null_maps() -> None:
    assert parse_query(None) == (None, None)
    assert parse_query("") == (None, None)


def test_gateway_event_keeps_raw_path_and_all_header_and_query_values() -> None:
    with fake_stack() as stack:
        event = echoed_event(
            stack,
            "GET",
            "/api/files/a%2Fb%20c/echo?tag=x&tag=y&q=a+b%26",
            headers=[("Accept", "a"), ("X-Multi", "1"), ("X-Multi", "2"), ("User-Agent", "t/1")],
        )
    assert event["path"] == "/api/files/a%2Fb%20c/echo"
    assert event["resource"] == "/{proxy+}"
    assert event["pathParameters"] == {"proxy": "api/files/a/b c/echo"}
    assert event["httpMethod"] == "GET"
    assert event["multiValueQueryStringParameters"] == {"tag": ["x", "y"], "q": ["a+b&"]}
    assert event["queryStringParameters"] == {"tag": "y", "q": "a+b&"}
    assert event["multiValueHeaders"]["X-Multi"] == ["1", "2"]
    assert event["headers"]["X-Multi"] == "2"
    assert event["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert event["headers"]["X-Forwarded-Proto"] == "http"
    assert event["headers"]["X-Forwarded-Port"] == str(stack.gateway.port)
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx["identity"]["sourceIp"] == "127.0.0.1"
    assert ctx["identity"]["userAgent"] == "t/1"
    assert ctx["httpMethod"] == "GET"
    assert ctx["resourcePath"] == "/{proxy+}"
    assert ctx["path"] == "/api/files/a%2Fb%20c/echo"
    assert abs(ctx["requestTimeEpoch"] / 1000 - time.time()) < 60


def test_request_body_arrives_base64_encoded() -> None:
    payload = b'{"text": "hi"}\x00\xff'
    with fake_stack() as stack:
        event = echoed_event(stack, "POST", "/echo", body=payload)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload


def raw_exchange(stack: LocalStack, request_bytes: bytes) -> bytes:
    """Send raw bytes to the gateway and read until it closes the connection."""
    sock = socket.create_connection(("127.0.0.1", stack.gateway.port), timeout=10)
    sock.sendall(request_bytes)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    sock.close()
    return received


def test_chunked_request_body_is_reassembled_into_the_event() -> None:
    with fake_stack() as stack:
        reply = raw_exchange(
            stack,
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
    body = reply.split(b"\r\n\r\n", 1)[1]
    event = json.loads(body.split(b"\r\n", 1)[1].rsplit(b"\r\n0\r\n", 1)[0])
    assert base64.b64decode(event["body"]) == b"abcde"
    assert "Transfer-Encoding" not in event["headers"]


def test_http10_client_gets_a_close_delimited_body() -> None:
    with fake_stack() as stack:
        reply = raw_exchange(stack, b"GET /stream HTTP/1.0\r\nHost: t\r\n\r\n")
    head, body = reply.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 201 ")
    assert b"Transfer-Encoding" not in head
    assert b"Connection: close" in head
    assert body == b"one two three"


def test_root_path_uses_the_root_resource() -> None:
    event = build_rest_event(
        method="GET",
        target="/",
        headers=[("Host", "h")],
        body=b"",
        source_ip="1.2.3.4",
        request_id="r",
    )
    assert (event["resource"], event["path"], event["pathParameters"]) == ("/", "/", None)


def test_client_x_forwarded_for_is_extended_with_the_source_ip() -> None:
    event = build_rest_event(
        method="GET",
        target="/x",
        headers=[("x-forwarded-for", "9.9.9.9")],
        body=b"",
        source_ip="1.2.3.4",
        request_id="r",
    )
    assert event["multiValueHeaders"]["x-forwarded-for"] == ["9.9.9.9, 1.2.3.4"]


def test_function_url_event_has_raw_path_joined_headers_and_cookies() -> None:
    event = build_function_url_event(
        method="POST",
        target="/a%2Fb/c?x=1&x=2&y=%20",
        headers=[
            ("Host", "h"),
            ("X-Multi", "1"),
            ("x-multi", "2"),
            ("Cookie", "a=1; b=2"),
            ("Content-Type", "application/json"),
        ],
        body=b'{"k": "v"}',
        source_ip="1.2.3.4",
        request_id="r",
    )
    assert event["version"] == "2.0"
    assert event["rawPath"] == "/a%2Fb/c"
    assert event["rawQueryString"] == "x=1&x=2&y=%20"
    assert event["queryStringParameters"] == {"x": "1,2", "y": " "}
    assert event["headers"]["x-multi"] == "1,2"
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["a=1", "b=2"]
    assert (event["body"], event["isBase64Encoded"]) == ('{"k": "v"}', False)
    assert event["requestContext"]["http"]["method"] == "POST"
    assert ".lambda-url." in event["requestContext"]["domainName"]


def test_function_url_binary_body_is_base64() -> None:
    event = build_function_url_event(
        method="PUT",
        target="/f",
        headers=[("Content-Type", "image/png")],
        body=b"\x89PNG",
        source_ip="1.2.3.4",
        request_id="r",
    )
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x89PNG"


def test_gateway_can_send_function_url_events() -> None:
    with fake_stack(event_format="function-url") as stack:
        event = echoed_event(stack, "GET", "/x/echo?q=1", headers=[("Cookie", "s=1")])
    assert event["version"] == "2.0"
    assert event["rawPath"] == "/x/echo"
    assert event["cookies"] == ["s=1"]


def test_stage_prefix_is_stripped_from_path_and_other_paths_are_forbidden() -> None:
    with fake_stack(stage="prod") as stack:
        event = echoed_event(stack, "GET", "/prod/x/echo")
        status, _, _ = request(stack, "GET", "/other/echo")
    assert event["path"] == "/x/echo"
    assert event["requestContext"]["path"] == "/prod/x/echo"
    assert event["requestContext"]["stage"] == "prod"
    assert status == 403


# -- responses -----------------------------------------------------------------------------


def test_prelude_status_headers_and_cookies_reach_the_client() -> None:
    with fake_stack() as stack:
        status, headers, body = request(stack, "GET", "/stream")
    assert status == 201
    assert body == b"one two three"
    names = [(k.lower(), v) for k, v in headers]
    assert [v for k, v in names if k == "set-cookie"] == ["a=1", "b=2", "c=3"]
    # A header in both maps keeps only its multi-value form.
    assert [v for k, v in names if k == "x-both"] == ["m1", "m2"]
    assert ("x-single", "a") in names
    assert ("transfer-encoding", "chunked") in names


def test_head_request_gets_the_get_headers_and_no_body_and_the_connection_serves_on() -> None:
    with fake_stack() as stack:
        conn = http.client.HTTPConnection("127.0.0.1", stack.gateway.port, timeout=10)
        conn.request("HEAD", "/stream")
        head = conn.getresponse()
        head_body = head.read()
        conn.request("GET", "/stream")  # the same connection
        get = conn.getresponse()
        get_body = get.read()
        conn.close()
    assert (head.status, head_body) == (201, b"")
    # RFC 9110 9.3.2: the headers a GET would get, framing included.
    assert head.getheader("Transfer-Encoding") == "chunked"
    assert head.getheader("x-single") == "a"
    assert (get.status, get_body) == (201, b"one two three")


def test_body_chunks_reach_the_client_before_the_runtime_sends_the_next() -> None:
    client_saw_first = threading.Event()
    control = socket.create_server(("127.0.0.1", 0))
    control_port = control.getsockname()[1]

    def release_runtime() -> None:
        conn, _ = control.accept()  # the fake runtime waits here after its first chunk
        client_saw_first.wait(10)
        conn.sendall(b"go")
        conn.close()

    releaser = threading.Thread(target=release_runtime, daemon=True)
    releaser.start()
    with fake_stack() as stack:
        sock = socket.create_connection(("127.0.0.1", stack.gateway.port), timeout=5)
        sock.sendall(f"GET /handshake?port={control_port} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        received = b""
        while b"first" not in received:
            chunk = sock.recv(65536)  # times out (fails) if "first" is held back
            assert chunk, "connection closed before the first chunk"
            received += chunk
        assert b"second" not in received
        client_saw_first.set()
        while not received.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            assert chunk
            received += chunk
        sock.close()
    control.close()
    assert b"5\r\nfirst\r\n" in received
    assert b"6\r\nsecond\r\n" in received


def test_head_request_to_a_failing_function_gets_the_error_status_without_a_body() -> None:
    with fake_stack() as stack:
        status, headers, body = request(stack, "HEAD", "/invoke_error")
        status2, _, _ = request(stack, "GET", "/stream")  # the runtime serves on
    assert (status, body) == (502, b"")
    assert ("content-length", "36") in [(k.lower(), v) for k, v in headers]
    assert status2 == 201


def test_malformed_request_gets_400() -> None:
    with fake_stack() as stack:
        reply = raw_exchange(stack, b"NONSENSE\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert stack.invocations == []


def test_error_trailers_cut_the_client_and_are_recorded() -> None:
    with fake_stack() as stack:
        conn = http.client.HTTPConnection("127.0.0.1", stack.gateway.port, timeout=10)
        conn.request("GET", "/trailer_error")
        resp = conn.getresponse()
        assert resp.status == 200
        with pytest.raises(http.client.IncompleteRead) as info:
            resp.read()
        inv = stack.invocations[-1]
    assert info.value.partial == b"partial"
    assert inv.error == {
        "errorType": "Upstream.Reset",
        "errorMessage": "upstream reset",
        "trailerErrorType": "Runtime.StreamError",
    }
    assert inv.bytes == len(b"partial")


def test_invocation_error_gives_502_and_is_recorded() -> None:
    with fake_stack() as stack:
        status, headers, body = request(stack, "GET", "/invoke_error")
        inv = stack.invocations[-1]
    assert status == 502
    assert json.loads(body) == {"message": "Internal server error"}
    assert ("content-type", "application/json") in [(k.lower(), v) for k, v in headers]
    assert inv.error == {"errorType": "Handler.Failed", "errorMessage": "boom"}


def test_missing_delimiter_within_16_kb_gives_500() -> None:
    with fake_stack() as stack:
        status, _, body = request(stack, "GET", "/no_delimiter")
        inv = stack.invocations[-1]
        # The runtime got its 202 and serves the next event normally.
        status2, _, _ = request(stack, "GET", "/stream")
    assert status == 500
    assert json.loads(body) == {"message": "Internal server error"}
    assert inv.error is not None
    assert inv.error["errorType"] == "Emulator.InvalidPrelude"
    assert status2 == 201


def test_buffered_proxy_response_is_accepted() -> None:
    with fake_stack() as stack:
        status, headers, body = request(stack, "GET", "/buffered")
    assert status == 202
    assert body == b"\x00\xffbin"
    assert [v for k, v in headers if k.lower() == "x-m"] == ["1", "2"]


def test_direct_invoke_sends_arbitrary_payloads() -> None:
    with fake_stack() as stack:
        result = stack.invoke(b"not json {", timeout=10)
        streamed = stack.invoke({"action": "stream"}, timeout=10)
    assert result.body == b"not json {"
    assert result.prelude == {"statusCode": 200, "headers": {"x-echo": "1"}}
    assert result.error is None
    assert streamed.prelude is not None
    assert streamed.prelude["multiValueHeaders"]["Set-Cookie"] == ["a=1", "b=2"]
    assert streamed.body == b"one two three"


def test_invocation_timestamps_are_ordered() -> None:
    with fake_stack() as stack:
        request(stack, "GET", "/stream")
        inv = stack.invocations[-1]
    assert inv.next_handed_out_at is not None
    assert inv.prelude_at is not None
    assert inv.first_body_byte_at is not None
    assert inv.response_done_at is not None
    assert inv.submitted_at <= inv.next_handed_out_at
    assert inv.next_handed_out_at < inv.prelude_at <= inv.first_body_byte_at
    assert inv.first_body_byte_at <= inv.response_done_at
    assert inv.prelude == {
        "statusCode": 201,
        "headers": {"content-type": "text/plain", "x-single": "a", "x-both": "single"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"], "x-both": ["m1", "m2"]},
        "cookies": ["c=3"],
    }
    assert inv.bytes == len(b"one two three")


def test_large_streams_cross_the_emulator_whole() -> None:
    size = 64 * 1024 * 1024
    with fake_stack() as stack:
        sock = socket.create_connection(("127.0.0.1", stack.gateway.port), timeout=10)
        sock.sendall(
            f"GET /big?size={size} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode()
        )
        buf = bytearray(1 << 20)
        received = 0
        while n := sock.recv_into(buf):
            received += n
        sock.close()
        inv = stack.invocations[-1]
    assert inv.bytes == size
    assert received > size  # body plus chunk framing
    assert inv.first_body_byte_at is not None
    assert inv.response_done_at is not None  # speed is make bench's business, not a test's


def test_silent_stream_is_cut_after_the_idle_timeout_but_the_function_runs_on() -> None:
    with fake_stack(idle_timeout=0.3, function_timeout=1.5) as stack:
        conn = http.client.HTTPConnection("127.0.0.1", stack.gateway.port, timeout=10)
        started = time.monotonic()
        conn.request("GET", "/hang_after_prelude")
        resp = conn.getresponse()
        with pytest.raises(http.client.IncompleteRead):
            resp.read()
        cut_after = time.monotonic() - started
        inv = stack.invocations[-1]
        assert not inv.finished  # Lambda keeps running after the client is gone
        assert inv.done.wait(5)
    assert cut_after > 0.25  # not before the idle timeout; which timeout cut it is said below
    assert inv.gateway_error is not None
    assert "idle timeout" in inv.gateway_error
    assert inv.timed_out


def test_stream_with_regular_bytes_outlives_the_idle_timeout() -> None:
    with fake_stack(idle_timeout=0.3) as stack:
        status, _, body = request(stack, "GET", "/trickle?n=5&gap=0.15")
        inv = stack.invocations[-1]
    assert status == 200
    assert body == b"".join(f"tick {i}\n".encode() for i in range(5))
    assert inv.gateway_error is None


def test_body_too_big_for_the_lambda_payload_gets_413_without_an_invocation() -> None:
    with fake_stack() as stack:
        status, headers, body = request(stack, "POST", "/echo", body=b"x" * 5_000_000)
        assert ("x-amzn-errortype", "BadRequestException") in [(k.lower(), v) for k, v in headers]
        inv = stack.invocations[-1]
    assert status == 413
    assert json.loads(body) == {"message": "Request Too Long"}
    assert inv.next_handed_out_at is None
    assert inv.error is not None
    assert inv.error["errorType"] == "RequestEntityTooLargeException"


def test_body_over_the_gateway_limit_gets_413() -> None:
    with fake_stack() as stack:
        status, _, body = request(stack, "POST", "/echo", body=b"x" * (10 * 1024 * 1024 + 1))
    assert status == 413
    assert b"exceeded 10485760 bytes" in body
    assert stack.invocations == []


def test_stream_over_the_response_limit_is_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(responses_module, "MAX_STREAMED_RESPONSE", 1_000_000)
    with fake_stack() as stack:
        conn = http.client.HTTPConnection("127.0.0.1", stack.gateway.port, timeout=10)
        conn.request("GET", "/big?size=3000000")
        resp = conn.getresponse()
        with pytest.raises(http.client.IncompleteRead):
            resp.read()
        inv = stack.invocations[-1]
        assert inv.done.wait(5)
        status, _, _ = request(stack, "GET", "/stream")  # the runtime got its 202
    assert inv.error is not None
    assert inv.error["errorType"] == "Function.ResponseSizeTooLarge"
    assert status == 201


# -- init ----------------------------------------------------------------------------------


def test_init_error_is_recorded_and_requests_fail_with_502() -> None:
    with fake_stack(env={"FAKE_INIT": "error"}) as stack:
        status, _, body = request(stack, "GET", "/echo")
        assert stack.process.wait(5) == 1
    assert stack.init_error == {
        "errorType": "Init.ConfigMissing",
        "errorMessage": "config s3://b/k missing",
    }
    assert status == 502
    assert json.loads(body) == {"message": "Internal server error"}


def test_runtime_exiting_during_init_is_an_init_error_with_its_log_tail() -> None:
    with fake_stack(env={"FAKE_INIT": "exit"}) as stack:
        pass
    assert stack.init_error is not None
    assert stack.init_error["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in stack.init_error["errorMessage"]
    assert "giving up during init" in stack.init_error["logTail"]


def test_init_duration_and_logs_are_recorded() -> None:
    with fake_stack() as stack:
        line = stack.wait_for_log("fake runtime pid=")
    assert stack.init_duration is not None
    assert 0 < stack.init_duration < 10
    assert f"pid={stack.process.pid}" in line


def test_init_over_the_limit_is_started_again_like_lambda(tmp_path: Path) -> None:
    env = {"FAKE_INIT": "slow_once", "FAKE_MARKER": str(tmp_path / "marker")}
    # The limit must pass after the first runtime wrote its marker: a runtime started under
    # coverage (make test) takes most of a second to get there, and one killed before it would
    # leave the second to hang instead.
    with fake_stack(env=env, init_limit=3.0) as stack:
        status, _, _ = request(stack, "GET", "/stream")
    assert stack.init_limit_exceeded
    assert stack.restarts == 1
    assert stack.init_error is None
    assert status == 201
    assert any("first init: hanging" in line for line in stack.logs)


# -- freezing ------------------------------------------------------------------------------


def test_idle_runtime_and_its_children_are_frozen_until_an_event_arrives() -> None:
    with fake_stack(env={"FAKE_CHILD": "1"}) as stack:
        child = int(stack.wait_for_log("child pid=").split("=")[1])
        assert wait_for_state(stack.process.pid, "T") == "T"
        assert wait_for_state(child, "T") == "T"
        status, _, _ = request(stack, "GET", "/stream")
        assert status == 201  # it was thawed to serve the event
        assert wait_for_state(stack.process.pid, "T") == "T"
        pid = stack.process.pid
    assert wait_for_exit(pid) in ("", "Z")
    assert wait_for_exit(child) in ("", "Z")  # stop() reaches the child of its own session


def test_a_runtime_being_stopped_is_not_frozen_again() -> None:
    # A /next can arrive after stop() sent SIGTERM; freezing then would make it miss it.
    script = "trap 'sleep 0.3; exit 0' TERM; while :; do sleep 0.05; done"
    sandbox = Sandbox(["bash", "-c", script], dict(os.environ), None, lambda *_: None, print)
    sandbox.spawn()
    time.sleep(0.1)  # let bash install its trap
    stopper = threading.Thread(target=sandbox.stop)
    started = time.monotonic()
    stopper.start()
    time.sleep(0.1)
    sandbox.freeze()
    stopper.join(5)
    assert not sandbox.frozen
    assert time.monotonic() - started < 2  # it exited on SIGTERM, no kill after the grace
    assert sandbox.process is not None
    assert sandbox.process.returncode == 0


def test_descendants_are_found_with_or_without_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    parent = subprocess.Popen(["bash", "-c", "sleep 30 & sleep 30 & wait"])
    try:
        deadline = time.monotonic() + 5
        while len(sandbox_module.descendants(parent.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        from_proc = sorted(sandbox_module.descendants(parent.pid))
        monkeypatch.setattr(sandbox_module, "HAS_PROC", False)  # macOS: `ps` instead
        from_ps = sorted(sandbox_module.descendants(parent.pid))
    finally:
        for pid in sandbox_module.descendants(parent.pid):
            os.kill(pid, signal.SIGKILL)
        parent.kill()
        parent.wait()
    assert len(from_proc) == 2
    assert from_ps == from_proc


def test_runtime_is_not_frozen_when_freezing_is_off() -> None:
    with fake_stack(freeze=False) as stack:
        request(stack, "GET", "/stream")
        time.sleep(0.05)
        assert not stack.frozen
        assert process_state(stack.process.pid) == "S"


# -- deadlines and crashes -----------------------------------------------------------------


def test_deadline_before_any_response_gives_504_and_restarts_the_runtime() -> None:
    with fake_stack(function_timeout=0.5) as stack:
        first_pid = stack.process.pid
        status, _, body = request(stack, "GET", "/hang")
        inv = stack.invocations[-1]
        assert stack.wait_init(5)
        status2, _, _ = request(stack, "GET", "/stream")
        assert stack.process.pid != first_pid
    assert status == 504
    assert json.loads(body) == {"message": "Endpoint request timed out"}
    assert inv.timed_out
    assert inv.error is not None
    assert inv.error["errorType"] == "Sandbox.Timedout"
    assert stack.restarts == 1
    assert status2 == 201


def test_deadline_after_the_prelude_cuts_the_client() -> None:
    with fake_stack(function_timeout=0.5) as stack:
        conn = http.client.HTTPConnection("127.0.0.1", stack.gateway.port, timeout=10)
        conn.request("GET", "/hang_after_prelude")
        resp = conn.getresponse()
        assert resp.status == 200
        with pytest.raises(http.client.IncompleteRead):
            resp.read()
        assert stack.invocations[-1].timed_out


def test_deadline_header_matches_the_function_timeout() -> None:
    with socket_stack(function_timeout=42.0) as stack:
        api = Api(stack.runtime_api)
        threading.Thread(target=stack.invoke, args=({"x": 1},), daemon=True).start()
        status, headers, body = api.request("GET", "/invocation/next")
    assert status == 200
    assert json.loads(body) == {"x": 1}
    deadline_s = int(headers["lambda-runtime-deadline-ms"]) / 1000
    assert abs(deadline_s - (time.time() + 42.0)) < 5
    assert headers["lambda-runtime-invoked-function-arn"].startswith("arn:aws:lambda:")
    assert headers["lambda-runtime-trace-id"].startswith("Root=1-")


def test_runtime_crash_mid_invocation_gives_502_and_a_fresh_runtime() -> None:
    with fake_stack() as stack:
        first_pid = stack.process.pid
        status, _, _ = request(stack, "GET", "/crash")
        inv = stack.invocations[-1]
        status2, _, _ = request(stack, "GET", "/stream")
        second_pid = stack.process.pid
    assert status == 502
    assert inv.error is not None
    assert inv.error["errorType"] == "Runtime.ExitError"
    assert "exit status 7" in inv.error["errorMessage"]
    assert status2 == 201
    assert second_pid != first_pid


# -- concurrency ---------------------------------------------------------------------------


def test_concurrent_next_calls_each_get_exactly_one_event() -> None:
    with socket_stack(env={"AWS_LAMBDA_MAX_CONCURRENCY": "2"}) as stack:
        workers = [Api(stack.runtime_api), Api(stack.runtime_api)]
        results: list[Any] = [None, None]

        def invoke(i: int) -> None:
            results[i] = stack.invoke({"action": "echo", "n": i}, timeout=10)

        callers = [threading.Thread(target=invoke, args=(i,)) for i in range(2)]
        for t in callers:
            t.start()
        seen = []
        for api in workers:
            status, headers, body = api.request("GET", "/invocation/next")
            assert status == 200
            seen.append((headers["lambda-runtime-aws-request-id"], json.loads(body)["n"]))
        assert len({rid for rid, _ in seen}) == 2
        assert sorted(n for _, n in seen) == [0, 1]
        # Answer in reverse order: each response goes to its own caller.
        for api, (rid, n) in reversed(list(zip(workers, seen, strict=True))):
            api.start_stream(rid, {"statusCode": 200})
            api.chunk(f"answer {n}".encode())
            assert api.end_stream() == 202
        for t in callers:
            t.join(10)
    assert [r.body for r in results] == [b"answer 0", b"answer 1"]


def test_event_is_not_lost_on_a_next_connection_the_runtime_closed() -> None:
    with socket_stack() as stack:
        quitter = Api(stack.runtime_api)
        quitter.sock.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: r\r\n\r\n")
        deadline = time.monotonic() + 5
        while not stack.frozen and time.monotonic() < deadline:  # its /next is waiting
            time.sleep(0.01)
        quitter.file.close()
        quitter.sock.close()
        worker = Api(stack.runtime_api)
        worker.sock.settimeout(5)
        worker.sock.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: r\r\n\r\n")
        time.sleep(0.05)
        threading.Thread(target=stack.invoke, args=({"n": 7},), daemon=True).start()
        status, _, body = worker.read_response()
    assert status == 200
    assert json.loads(body) == {"n": 7}


def test_unknown_request_id_is_rejected() -> None:
    with socket_stack() as stack:
        status, _, body = Api(stack.runtime_api).request("POST", "/invocation/nope/response", b"{}")
    assert status == 400
    assert json.loads(body)["errorType"] == "InvalidRequestID"


# -- demo upstream and CLI -----------------------------------------------------------------


def test_demo_upstream_is_healthy_and_streams_tokens_as_events() -> None:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "DEMO_TOKEN_DELAY": "0", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator.demo_upstream"], env=env, stderr=subprocess.PIPE
    )
    try:
        assert proc.stderr is not None
        assert b"listening" in proc.stderr.readline()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
            assert (resp.status, resp.read()) == (200, b"OK")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/demo/chat?q=hey", timeout=5) as r:
            assert r.headers["Content-Type"] == "text/event-stream"
            events = r.read().decode().split("\n\n")
    finally:
        proc.terminate()
        proc.wait(5)
    tokens = [json.loads(e[6:])["token"] for e in events if e.startswith('data: {"token')]
    assert len(tokens) > 10
    assert tokens[0] == "You said: 'hey'."
    assert "event: done" in events[-2]


def run_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "emulator", "--runtime-command", " ".join(FAKE_RUNTIME), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_cli_prints_the_ready_line_serves_requests_and_stops_on_ctrl_c() -> None:
    port = free_port()
    proc = run_cli("--port", str(port))
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "Local API Gateway ready" in line
        assert f"http://127.0.0.1:{port}/" in line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stream", timeout=5) as resp:
            assert resp.read() == b"one two three"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.wait()


def test_cli_exits_non_zero_and_prints_the_init_error() -> None:
    proc = run_cli("--port", str(free_port()), "--env", "FAKE_INIT=error")
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 1
    assert "config s3://b/k missing" in err


def test_local_demo_streams_chat_tokens_one_by_one_through_the_runtime() -> None:
    """`make local` end to end: demo upstream -> streaming_proxy -> emulator -> client."""
    env = {
        "UPSTREAM_COMMAND": f"{sys.executable} -m emulator.demo_upstream",
        "UPSTREAM_PORT": str(free_port()),
        "DEMO_TOKEN_DELAY": "0.02",
    }
    with LocalStack(env=env, function_timeout=30) as stack:
        assert stack.init_error is None
        sock = socket.create_connection(("127.0.0.1", stack.gateway.port), timeout=10)
        sock.sendall(b"GET /api/demo/chat?q=hi HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        arrivals: list[float] = []
        received = b""
        while chunk := sock.recv(65536):
            arrivals += [time.monotonic()] * chunk.count(b'data: {"token"')
            received += chunk
        sock.close()
    assert b"HTTP/1.1 200" in received
    assert b"text/event-stream" in received
    assert len(arrivals) > 20
    # Tokens are written 20 ms apart: they must arrive spread out, not in one burst.
    assert arrivals[-1] - arrivals[0] > 0.3
    assert len(set(arrivals)) > len(arrivals) // 2


def test_cli_names_a_busy_port() -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        proc = run_cli("--port", str(busy.getsockname()[1]))
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert "pick another port with --port" in err
