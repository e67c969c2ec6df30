"""`make smoke` against the local API Gateway + Lambda emulator running the real runtime."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from conftest import runtime_env

from emulator import LocalStack
from ops import smoke

pytestmark = pytest.mark.slow  # starts the runtime or the emulator (tests/conftest.py)


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(env=runtime_env(), function_timeout=30) as st:
        yield st


def buffering_proxy(target: str) -> ThreadingHTTPServer:
    """A real proxy that reads each whole response before sending it: what a buffering hop
    (a REST integration without STREAM mode, a proxy, a CDN) does to a stream."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            answer = httpx.get(target + self.path, timeout=30)
            self.send_response(answer.status_code)
            self.send_header("Content-Type", answer.headers.get("content-type", "text/plain"))
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_streaming_stack_passes_and_the_report_shows_each_arrival(stack, capsys):
    assert smoke.main(["--url", stack.url, "--events", "4", "--interval-ms", "300"]) == 0
    out = capsys.readouterr().out
    assert "ok    /health 200" in out
    assert "ok    time to first byte" in out
    assert out.count("arrived at") == 4
    assert "ok    streaming: first event" in out and "(sent 900 ms apart)" in out
    assert out.strip().endswith("smoke test passed")


def test_a_buffering_hop_fails_the_smoke_test(stack, capsys):
    proxy = buffering_proxy(stack.url)
    try:
        url = f"http://127.0.0.1:{proxy.server_address[1]}"
        assert smoke.main(["--url", url, "--events", "4", "--interval-ms", "300"]) == 1
    finally:
        proxy.shutdown()
    out = capsys.readouterr().out
    assert "ok    /health 200" in out
    assert "FAIL  the events arrived within" in out and "a hop buffers the response" in out


def test_an_event_stream_that_is_not_the_runtimes_fails_cleanly(capsys):
    """A hop that answers the check path with its own event stream gets a FAIL line, not a
    traceback."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"OK" if self.path == "/health" else b"data: <html>gateway error</html>\n\n"
            self.send_response(200)
            kind = "text/plain" if self.path == "/health" else "text/event-stream"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert smoke.main(["--url", url, "--wait", "0"]) == 1
    finally:
        server.shutdown()
    out = capsys.readouterr().out
    assert "FAIL  /_runtime/stream-check event 1 is not the runtime's stream-check JSON" in out


def test_a_stack_without_the_stream_check_fails(capsys):
    with LocalStack(env=runtime_env(STREAM_CHECK_PATH=""), function_timeout=30) as st:
        assert smoke.main(["--url", st.url, "--wait", "0"]) == 1
    assert "FAIL  /_runtime/stream-check answered 404 (expected 200)" in capsys.readouterr().out


def test_an_unhealthy_stack_fails_after_the_wait(capsys):
    env = runtime_env(READY_AFTER="600", UPSTREAM_INIT_WAIT="0.2", UPSTREAM_READY_TIMEOUT="1")
    with LocalStack(env=env, function_timeout=30) as st:
        assert smoke.main(["--url", st.url, "--wait", "0"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  /health answered 50" in out and "(expected 200)" in out


def test_the_url_comes_from_the_stack_domain():
    assert smoke.stack_url("dev") == "https://lambda-test.sandbox.data.apro.is"


def test_a_name_that_does_not_resolve_fails_at_once(capsys):
    """`.invalid` never resolves (RFC 2606): no retry for the whole --wait."""
    started = time.monotonic()
    assert smoke.main(["--url", "https://lambda.invalid", "--wait", "120"]) == 1
    assert time.monotonic() - started < 30
    out = capsys.readouterr().out
    assert "FAIL  lambda.invalid does not resolve" in out
    assert "/health" not in out
