"""The runtime's stream-check path, through the local API Gateway + Runtime API emulator."""

from __future__ import annotations

import itertools
import json
import time

import httpx
import pytest
from conftest import runtime_env

from emulator import LocalStack

pytestmark = pytest.mark.slow  # starts the runtime or the emulator (tests/conftest.py)

CHECK = "/_runtime/stream-check"


@pytest.fixture(scope="module")
def gateway():
    with (
        LocalStack(env=runtime_env(), function_timeout=30) as stack,
        httpx.Client(base_url=stack.url, timeout=30) as client,
    ):
        yield client


def read_events(client: httpx.Client, path: str, **params: object) -> list[tuple[float, dict]]:
    """(arrival time, data) of each event, as the client sees them arrive."""
    arrivals = []
    with client.stream("GET", path, params=params) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        buffer = b""
        for chunk in response.iter_raw():
            buffer += chunk
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                data = next(line for line in block.split(b"\n") if line.startswith(b"data: "))
                arrivals.append((time.monotonic(), json.loads(data[6:])))
    return arrivals


def test_events_arrive_one_by_one_spaced_by_the_interval(gateway):
    events = read_events(gateway, CHECK, n=4, interval_ms=300)
    assert [data["seq"] for _, data in events] == [1, 2, 3, 4]
    assert all(data["of"] == 4 for _, data in events)
    # Buffering anywhere would deliver all four together at the end.
    assert events[-1][0] - events[0][0] > 0.6
    stamps = [data["runtimeEpochMs"] for _, data in events]
    assert all(b - a >= 290 for a, b in itertools.pairwise(stamps))
    assert events[0][1]["runtimeTime"].endswith("Z")


def test_defaults_are_five_events(gateway):
    events = read_events(gateway, CHECK)
    assert len(events) == 5
    stamps = [data["runtimeEpochMs"] for _, data in events]
    assert stamps[-1] - stamps[0] >= 4 * 200 - 10


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("n=0", "n"),
        ("n=21", "n"),
        ("n=abc", "n"),
        ("n=", "n"),
        ("interval_ms=1001", "interval_ms"),
        ("interval_ms=-5", "interval_ms"),
        ("n=3&interval_ms=1.5", "interval_ms"),
        ("n=" + "9" * 5000, "n"),  # past Python's int() digit limit: still a 400, never a 500
        ("n=0000000000000000005", "n"),
        ("interval_ms=sk-live-token-pasted-here", "interval_ms"),
    ],
)
def test_an_invalid_parameter_is_a_400_naming_it_not_quoting_it(gateway, query, name):
    response = gateway.get(f"{CHECK}?{query}")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    message = response.json()["message"]
    assert f"query parameter {name} must be" in message
    value = query.rpartition("=")[2]
    if len(value) >= 4:  # short values are indistinguishable from the bounds in the text
        assert value not in message
        assert value[:4] not in message


def test_other_methods_are_refused_with_the_allowed_one(gateway):
    response = gateway.post(CHECK, content=b"x")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    assert "GET only" in response.json()["message"]


def test_the_check_answers_while_the_upstream_is_not_ready():
    """The upstream is never asked: the check streams while /health fails."""
    env = runtime_env(READY_AFTER="600", UPSTREAM_INIT_WAIT="0.2", UPSTREAM_READY_TIMEOUT="1")
    with (
        LocalStack(env=env, function_timeout=30) as stack,
        httpx.Client(base_url=stack.url, timeout=30) as client,
    ):
        assert client.get("/health").status_code in {502, 504}  # not ready, given up
        assert len(read_events(client, CHECK, n=2, interval_ms=0)) == 2


def test_an_empty_path_switches_it_off_and_another_path_moves_it():
    env = runtime_env(STREAM_CHECK_PATH="")
    with (
        LocalStack(env=env, function_timeout=30) as stack,
        httpx.Client(base_url=stack.url, timeout=30) as client,
    ):
        assert client.get(CHECK).status_code == 404  # the upstream's own answer
    env = runtime_env(STREAM_CHECK_PATH="/ops/check", BASE_PATH="/chat")
    with (
        LocalStack(env=env, function_timeout=30) as stack,
        httpx.Client(base_url=stack.url, timeout=30) as client,
    ):
        assert len(read_events(client, "/chat/ops/check", n=2, interval_ms=0)) == 2
        assert client.get(f"/chat{CHECK}").status_code == 404


# -- a deployed stack's check: a token, and a few seconds at most (issue 17) --------------


def check_request(target: str, headers: list[tuple[bytes, bytes]]) -> object:
    from streaming_proxy.events import UpstreamRequest

    return UpstreamRequest("GET", target, target.split("?", maxsplit=1)[0], headers, b"")


@pytest.mark.parametrize(
    "headers",
    [[], [(b"x-stream-check-token", b"wrong")], [(b"x-stream-check-token", b"t0k")] * 2],
)
def test_with_a_token_a_request_without_it_is_refused_before_any_event(headers):
    from streaming_proxy.errors import RequestError
    from streaming_proxy.stream_check import StreamCheck

    check = StreamCheck(CHECK, token="t0k")
    with pytest.raises(RequestError) as refused:
        check.serve(check_request(CHECK, headers), stream=None, cutoff=0.0, outcome=None)  # type: ignore[arg-type]
    assert refused.value.status == 403
    assert "t0k" not in str(refused.value)


def test_a_check_longer_than_the_cap_is_a_400_before_any_event():
    from streaming_proxy.errors import RequestError
    from streaming_proxy.stream_check import MAX_DURATION_MS, StreamCheck

    check = StreamCheck(CHECK, token="t0k")
    headers = [(b"X-Stream-Check-Token", b"t0k")]
    target = f"{CHECK}?n=20&interval_ms=1000"  # 19 s: within each bound, over the cap
    with pytest.raises(RequestError) as refused:
        check.serve(check_request(target, headers), stream=None, cutoff=0.0, outcome=None)  # type: ignore[arg-type]
    assert refused.value.status == 400
    assert str(MAX_DURATION_MS) in str(refused.value)
