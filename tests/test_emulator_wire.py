"""What the runtime sends to the Runtime API, parsed by h11 server-side (an HTTP parser the
runtime's hand-written client was not written against), trailers included."""

from __future__ import annotations

import base64
import http.client
import json

import pytest

from emulator import LocalStack, WireLog
from emulator.http11 import free_port
from emulator.responses import DELIMITER
from tests.emulator_support import EMULATOR_UPSTREAM
from tests.test_emulator import FAKE_RUNTIME

pytestmark = pytest.mark.slow  # starts the runtime or the emulator (tests/conftest.py)


def get(stack: LocalStack, target: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", stack.gateway.port, timeout=30)
    conn.request("GET", target)
    response = conn.getresponse()
    try:
        body = response.read()
    except http.client.IncompleteRead as exc:
        body = exc.partial
    conn.close()
    return response.status, body


def test_every_request_of_the_runtime_is_well_formed_http_trailers_included(
    runtime_wire: WireLog,
) -> None:
    env = {
        "UPSTREAM_COMMAND": EMULATOR_UPSTREAM,
        "UPSTREAM_PORT": str(free_port()),
        "UPSTREAM_DIRS": "",
    }
    with LocalStack(env=env, function_timeout=30, wire=runtime_wire) as stack:
        assert get(stack, "/sse?stream=ok&n=2")[0] == 200
        get(stack, "/sse?stream=broken&n=3&abort_at=1")
        for inv in stack.invocations:
            assert inv.done.wait(10)
    clean, failed = runtime_wire.to("/response")
    for record in (clean, failed):
        assert record.method == "POST"
        assert record.complete  # ended by its terminating chunk
        assert record.header("Lambda-Runtime-Function-Response-Mode") == "streaming"
        assert record.header("Transfer-Encoding") == "chunked"
        declared = {n.strip().lower() for n in (record.header("Trailer") or "").split(",")}
        assert declared == {
            "lambda-runtime-function-error-type",
            "lambda-runtime-function-error-body",
        }
        prelude, _, body = record.body.partition(DELIMITER)
        assert json.loads(prelude)["statusCode"] == 200
        assert body.startswith(b'data: {"stream": ')
        assert len(record.chunks) > 1  # streamed in pieces, not buffered whole
    assert clean.trailers == []
    assert failed.trailer("Lambda-Runtime-Function-Error-Type") == "Runtime.StreamError"
    error = json.loads(base64.b64decode(failed.trailer("Lambda-Runtime-Function-Error-Body") or ""))
    assert error["errorType"] == "Runtime.StreamError"
    nexts = runtime_wire.to("/invocation/next")
    assert len(nexts) >= 3
    assert all(r.method == "GET" and r.body == b"" and r.complete for r in nexts)


def test_broken_chunk_framing_is_caught_and_fails_the_invocation() -> None:
    wire = WireLog()
    with LocalStack(FAKE_RUNTIME, function_timeout=10, wire=wire) as stack:
        status, _ = get(stack, "/bad_chunk")
        inv = stack.invocations[-1]
    assert status == 502
    assert inv.error is not None
    assert inv.error["errorType"] == "Runtime.IncompleteResponse"
    assert len(wire.errors) == 1
    assert "RemoteProtocolError" in wire.errors[0]
    assert wire.to("/response")[-1].complete is False
