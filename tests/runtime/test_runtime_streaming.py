"""The real runtime process behind the local API Gateway + Runtime API, against a real upstream."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time

import httpx
import pytest
from conftest import UPSTREAM_APP, runtime_env

from emulator import LocalStack
from emulator.http11 import free_port

pytestmark = pytest.mark.slow  # starts the runtime or the emulator (tests/conftest.py)

IGNORED = {"date", "server", "connection", "keep-alive", "transfer-encoding", "x-amzn-requestid"}


@pytest.fixture(scope="module")
def stack():
    """One warm runtime shared by the tests that do not restart or break it."""
    env = runtime_env(SSE_KEEPALIVE_INTERVAL="0.3")
    with LocalStack(env=env, function_timeout=30) as st:
        yield st


@pytest.fixture(scope="module")
def upstream() -> httpx.Client:
    """The same upstream app, asked directly (the stack's own is frozen between invocations)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(UPSTREAM_APP)], env={**os.environ, "PORT": str(port)}
    )
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.get("/health")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the direct upstream did not start"
                time.sleep(0.02)
        yield client
    process.terminate()
    process.wait()


@pytest.fixture(scope="module")
def gateway(stack) -> httpx.Client:
    with httpx.Client(base_url=stack.url, timeout=30) as c:
        yield c


def comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = sorted(
        (k.lower(), v) for k, v in response.headers.multi_items() if k.lower() not in IGNORED
    )
    return response.status_code, headers, response.content


def test_sse_events_arrive_one_by_one(gateway):
    arrivals = []
    with gateway.stream("GET", "/sse", params={"n": 5, "gap": 0.25}) as response:
        assert response.headers["content-type"] == "text/event-stream"
        buffer = b""
        for chunk in response.iter_raw():
            buffer += chunk
            while b"\n\n" in buffer:
                _, buffer = buffer.split(b"\n\n", 1)
                arrivals.append(time.monotonic())
    assert len(arrivals) == 5
    # Buffering anywhere would deliver all five together at the end.
    assert arrivals[-1] - arrivals[0] > 0.8


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/cookies", {}),
        ("GET", "/binary", {}),
        ("GET", "/gzip", {"Accept-Encoding": "gzip"}),
        ("GET", "/status/201", {}),
        ("GET", "/status/204", {}),
        ("GET", "/status/302", {}),
        ("GET", "/status/304", {}),
        ("GET", "/status/404", {}),
        ("GET", "/status/500", {}),
        ("HEAD", "/binary", {}),
        ("OPTIONS", "/status/200", {}),
        ("GET", "/bytes?n=3000000&chunk=100000", {}),
    ],
)
def test_responses_are_byte_for_byte_those_of_the_upstream(
    gateway, upstream, method, path, headers
):
    direct = upstream.request(method, path, headers=headers)
    proxied = gateway.request(method, path, headers=headers)
    assert comparable(proxied) == comparable(direct)


def test_several_set_cookie_headers_all_arrive(gateway):
    response = gateway.get("/cookies")
    assert response.headers.get_list("set-cookie") == [
        "a=1; Path=/; HttpOnly",
        "b=2; Path=/",
        "c=3; Secure",
    ]
    assert response.headers.get_list("x-multi") == ["one", "two"]


def raw_body(client: httpx.Client, path: str) -> tuple[httpx.Headers, bytes]:
    with client.stream("GET", path, headers={"Accept-Encoding": "gzip"}) as response:
        return response.headers, b"".join(response.iter_raw())


def test_compressed_body_is_passed_through_not_decoded(gateway, upstream):
    headers, raw = raw_body(gateway, "/gzip")
    assert headers["content-encoding"] == "gzip"
    assert raw[:2] == b"\x1f\x8b"
    assert raw == raw_body(upstream, "/gzip")[1]


def test_request_reaches_upstream_intact(gateway):
    body = os.urandom(1_000_000)
    response = gateway.post(
        "/echo/a%2Fb%20c",
        params=[("tag", "x"), ("tag", "y"), ("q", "a+b&c")],
        headers=[
            ("X-Repeat", "1"),
            ("X-Repeat", "2"),
            ("X-Name", "Jón".encode()),
            ("Content-Type", "application/octet-stream"),
        ],
        content=body,
    )
    echo = response.json()
    assert echo["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert echo["target"] == "/echo/a%2Fb%20c?tag=x&tag=y&q=a%2Bb%26c"
    sent = [(k.lower(), v) for k, v in echo["headers"]]
    assert [v for k, v in sent if k == "x-repeat"] == ["1", "2"]
    assert [k for k, _ in sent].count("host") == 1
    assert {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-amzn-trace-id"} <= {
        k for k, _ in sent
    }
    assert [v for k, v in sent if k == "x-name"] == ["Jón".encode().decode("latin-1")]


def test_hundred_megabyte_body_streams_through(gateway):
    total = 0
    digest = hashlib.sha256()
    with gateway.stream("GET", "/bytes", params={"n": 100_000_000}) as response:
        for chunk in response.iter_raw():
            total += len(chunk)
            digest.update(chunk)
    assert total == 100_000_000
    assert digest.hexdigest() == hashlib.sha256(b"x" * 100_000_000).hexdigest()


def test_malformed_events_get_400_and_the_runtime_carries_on(stack, gateway):
    result = stack.invoke({"hello": "world"})
    assert result.prelude["statusCode"] == 400
    assert "not an API Gateway proxy event" in json.loads(result.body)["message"]
    bad_b64 = {"httpMethod": "POST", "path": "/echo", "body": "***", "isBase64Encoded": True}
    result = stack.invoke(bad_b64)
    assert result.prelude["statusCode"] == 400
    assert "not valid base64" in json.loads(result.body)["message"]
    assert stack.invoke(b"not json at all").prelude["statusCode"] == 400
    assert gateway.get("/status/200").status_code == 200


def test_sse_keepalive_comment_fills_silence_between_events(gateway):
    body = gateway.get("/silent-sse", params={"s": 1.0}).content
    first, _, rest = body.partition(b"data: first\n\n")
    assert first == b""
    assert rest.endswith(b"data: last\n\n")
    assert rest.count(b": keep-alive\n\n") >= 2


def test_mid_stream_failure_cuts_the_client_and_reports_the_error(stack, gateway):
    received = b""
    with pytest.raises(httpx.RemoteProtocolError), gateway.stream("GET", "/break") as response:
        for chunk in response.iter_raw():
            received += chunk
    assert received.startswith(b"data: before the break\n\n")
    record = stack.invocations[-1]
    assert record.error is not None and "Runtime.StreamError" in json.dumps(record.error)
    assert gateway.get("/status/200").status_code == 200


def test_logs_are_json_with_request_fields_and_no_header_values(stack, gateway):
    gateway.get("/status/200", headers={"Authorization": "Bearer very-secret-token"})
    line = stack.wait_for_log('"path":"/status/200"')
    record = json.loads(line)
    assert {"requestId", "method", "path", "status", "bytes", "durationMs"} <= record.keys()
    assert not any("very-secret-token" in entry for entry in stack.logs)


def test_headers_too_large_for_the_prelude_get_a_502_naming_the_limit(gateway):
    response = gateway.get("/bigheaders")
    assert response.status_code == 502
    assert "API Gateway accepts at most 16376" in response.json()["message"]
    assert gateway.get("/status/200").status_code == 200


def test_sized_body_cut_short_before_anything_was_sent_is_a_clean_502(stack, gateway):
    response = gateway.get("/short")
    assert response.status_code == 502
    assert "broke off" in response.json()["message"]
    assert gateway.get("/status/200").status_code == 200


def test_a_post_whose_connection_dropped_unanswered_is_not_sent_again(gateway):
    """Only idempotent methods are retried (transport.TRANSPORT_ERRORS): a chat POST sent twice
    could start two answers."""
    response = gateway.post("/blip", params={"id": "post-once", "s": 0})
    assert response.status_code == 502
    assert response.json()["message"] == (
        "the upstream closed the connection or answered with something that is not valid "
        "HTTP/1.1 (RemoteProtocolError)"
    )
    assert gateway.get("/blip", params={"id": "get-again", "s": 0}).text == "recovered"


def test_http_api_v2_event_is_served(stack):
    event = {
        "version": "2.0",
        "rawPath": "/echo/a b",
        "rawQueryString": "x=1&x=2",
        "cookies": ["s=1", "t=2"],
        "headers": {"host": "abc.execute-api.eu-west-1.amazonaws.com", "user-agent": "curl/8"},
        "requestContext": {
            "domainName": "abc.execute-api.eu-west-1.amazonaws.com",
            "http": {"method": "POST", "sourceIp": "198.51.100.7"},
        },
        "body": "aGVsbG8=",
        "isBase64Encoded": True,
    }
    result = stack.invoke(event)
    assert result.prelude["statusCode"] == 200
    echo = json.loads(result.body)
    assert echo["method"] == "POST" and echo["target"] == "/echo/a%20b?x=1&x=2"
    assert ["cookie", "s=1; t=2"] in echo["headers"]
    assert echo["body_sha256"] == hashlib.sha256(b"hello").hexdigest()


# -- hostile upstream answers (issue 7) ---------------------------------------------------------


def test_bytes_after_a_complete_response_never_reach_the_next_request(gateway):
    assert gateway.get("/raw/surplus").content == b"hello"
    # The surplus is a whole second response; a reused connection would hand it on.
    response = gateway.get("/status/200")
    assert response.status_code == 200
    assert response.content == b"status 200"


def test_kept_alive_connections_are_still_reused(gateway):
    first = gateway.get("/echo/a").json()["peer_port"]
    assert gateway.get("/echo/b").json()["peer_port"] == first


def test_content_length_next_to_a_chunked_body_is_dropped(gateway):
    response = gateway.get("/raw/te-and-cl")
    assert response.content == b"first second"
    assert "content-length" not in response.headers or response.headers["content-length"] == "12"
    assert gateway.get("/status/200").status_code == 200


@pytest.mark.parametrize(
    ("status", "named"),
    [("600", "status 600"), ("999", "status 999"), ("099", "not valid HTTP/1.1")],
)
def test_out_of_range_upstream_status_is_a_502_naming_it(gateway, status, named):
    response = gateway.get(f"/raw/status/{status}")
    assert response.status_code == 502
    assert named in response.json()["message"]
    assert gateway.get("/status/200").status_code == 200


# -- hostile events (issue 7) -----------------------------------------------------------------

SECRET = "tok3n-do-not-log"


def v1_event(**overrides: object) -> dict:
    event: dict = {
        "httpMethod": "GET",
        "path": "/echo",
        "multiValueHeaders": {"Host": ["chat.example.com"]},
        "body": None,
        "isBase64Encoded": False,
        "requestContext": {"identity": {"sourceIp": "203.0.113.9"}},
    }
    event.update(overrides)
    return event


@pytest.mark.parametrize(
    ("overrides", "status", "names"),
    [
        ({"path": "/echo/\ud800"}, 400, "path"),
        ({"multiValueHeaders": {"Host": ["h"], "X-A": ["\udfff"]}}, 400, "X-A"),
        ({"httpMethod": "POST", "body": "text \ud800"}, 400, "body"),
        (
            {"httpMethod": "POST", "body": "aGk=", "isBase64Encoded": "false"},
            400,
            "isBase64Encoded",
        ),
        ({"httpMethod": "CONNECT"}, 405, "CONNECT"),
        ({"httpMethod": "TRACE"}, 405, "TRACE"),
        ({"httpMethod": f"Bearer {SECRET}"}, 400, "httpMethod"),
        ({"multiValueHeaders": {"Host": ["h"], f"Bearer {SECRET}": ["x"]}}, 400, "header name"),
    ],
)
def test_bad_events_get_a_clean_error_and_the_runtime_carries_on(
    stack, gateway, overrides, status, names
):
    result = stack.invoke(v1_event(**overrides))
    assert result.prelude["statusCode"] == status
    message = json.loads(result.body)["message"]
    assert names in message
    assert SECRET not in message
    assert not any(SECRET in line for line in stack.logs)
    assert stack.invoke(v1_event()).prelude["statusCode"] == 200
    assert gateway.get("/status/200").status_code == 200


def test_event_that_is_not_utf8_is_named_as_such(stack):
    result = stack.invoke(b'{"httpMethod": "GET", "path": "/\xff"}')
    assert result.prelude["statusCode"] == 400
    assert "UTF-8" in json.loads(result.body)["message"]


def test_refused_methods_name_the_allowed_ones(stack):
    result = stack.invoke(v1_event(httpMethod="TRACE"))
    headers = {k.lower(): v for k, v in result.prelude["headers"].items()}
    assert "GET" in headers["allow"] and "TRACE" not in headers["allow"]


def test_client_sent_forwarding_headers_are_replaced(gateway, stack):
    echo = gateway.get(
        "/echo", headers={"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "gopher"}
    ).json()
    sent = [(k.lower(), v) for k, v in echo["headers"]]
    host = [v for k, v in sent if k == "host"]
    assert [v for k, v in sent if k == "x-forwarded-host"] == host
    assert [v for k, v in sent if k == "x-forwarded-proto"] == ["https"]
