"""No stream can hang: a silent upstream is cut, and the deadline holds on Managed Instances too."""

from __future__ import annotations

import json
import threading

import httpx
import pytest
from conftest import runtime_env
from streaming_proxy.settings import SettingsError, load

from emulator import LocalStack
from emulator.invocation import Invocation

pytestmark = pytest.mark.slow  # starts the runtime or the emulator (tests/conftest.py)


def record_of(stack: LocalStack, path: str) -> Invocation:
    return next(inv for inv in stack.invocations if inv.event.get("path") == path)


def read_until_cut(url: str, **params: object) -> bytes:
    """The bytes a client got before the stream was cut (the gateway breaks it off)."""
    got = b""
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("GET", url, params=params, timeout=30) as response,
    ):
        assert response.status_code == 200
        for chunk in response.iter_raw():
            got += chunk
    return got


def test_a_silent_stream_ends_with_the_error_trailer_and_the_environment_serves_on():
    env = runtime_env(STREAM_IDLE_TIMEOUT="1", SSE_KEEPALIVE_INTERVAL="0.2")
    with LocalStack(env=env, function_timeout=60).start(init_timeout=30) as st:
        got = read_until_cut(f"{st.url}/silent-sse", s=30)
        assert got.startswith(b"data: first\n\n")
        # Keep-alive comments went out meanwhile: they kept the gateway open, not the stream.
        assert b": keep-alive\n\n" in got
        assert b"data: last" not in got
        record = record_of(st, "/silent-sse")
        assert not record.timed_out
        assert record.error["errorType"] == "Runtime.StreamError"
        assert "STREAM_IDLE_TIMEOUT" in record.error["errorMessage"]
        request = json.loads(st.wait_for_log('"path":"/silent-sse"'))
        assert "STREAM_IDLE_TIMEOUT" in request["error"]
        assert httpx.get(f"{st.url}/status/200", timeout=30).status_code == 200
        assert st.restarts == 0


def test_a_stream_whose_events_keep_coming_is_not_cut():
    env = runtime_env(STREAM_IDLE_TIMEOUT="1", SSE_KEEPALIVE_INTERVAL="0.2")
    with LocalStack(env=env, function_timeout=60).start(init_timeout=30) as st:
        response = httpx.get(f"{st.url}/sse", params={"n": 4, "gap": 0.4}, timeout=30)
        assert response.status_code == 200
        assert response.text.count("data: ") == 4
        assert record_of(st, "/sse").error is None


def test_on_managed_instances_the_runtime_s_deadline_still_ends_every_stream():
    """Lambda enforces no per-invocation timeout there: the runtime ends the overdue stream
    with the timeout trailer, the concurrent one finishes, and nothing is restarted."""
    env = runtime_env(
        AWS_LAMBDA_INITIALIZATION_TYPE="lambda-managed-instances",
        AWS_LAMBDA_MAX_CONCURRENCY="2",
        DEADLINE_MARGIN="0.5",
        STREAM_IDLE_TIMEOUT="0",
    )
    with LocalStack(env=env, freeze=False, function_timeout=1.5).start(init_timeout=30) as st:
        results: dict[str, object] = {}

        def long_stream() -> None:
            results["long"] = read_until_cut(f"{st.url}/sse", n=100, gap=0.1)

        overdue = threading.Thread(target=long_stream)
        overdue.start()
        short = httpx.get(f"{st.url}/bytes", params={"n": 1000}, timeout=30)
        overdue.join(30)
        assert short.status_code == 200 and len(short.content) == 1000
        assert b'"token": 0' in results["long"]
        record = record_of(st, "/sse")
        assert not record.timed_out  # the runtime ended it, not the platform
        assert record.error["errorType"] == "Runtime.Timeout"
        assert st.restarts == 0
        assert httpx.get(f"{st.url}/status/200", timeout=30).status_code == 200


def test_the_idle_limit_defaults_well_under_api_gateway_s_idle_timeout():
    assert load({"AWS_LAMBDA_RUNTIME_API": "x:1"}).stream_idle_timeout == 120  # gateway: 300
    assert (
        load({"AWS_LAMBDA_RUNTIME_API": "x:1", "STREAM_IDLE_TIMEOUT": "0"}).stream_idle_timeout == 0
    )
    with pytest.raises(SettingsError, match="STREAM_IDLE_TIMEOUT='soon' is not a number"):
        load({"AWS_LAMBDA_RUNTIME_API": "x:1", "STREAM_IDLE_TIMEOUT": "soon"})
