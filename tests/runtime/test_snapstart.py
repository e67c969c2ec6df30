"""SnapStart lifecycle: init, before-snapshot, restore/next, after-restore, then invocations;
and every failure path, reported to the Runtime API naming what failed.

The runtime runs as a real subprocess, its upstream is a real Node server with the real
preload (runtime/preload/snapstart.cjs); the Redis client in it is a stand-in whose behaviour
each test picks (snapstart_app/node_modules/ioredis).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import HERE, runtime_env
from streaming_proxy import snapstart

from emulator import LocalStack
from emulator.sandbox import descendants, process_state

pytestmark = pytest.mark.slow  # starts the runtime and node (tests/conftest.py)

APP = HERE / "snapstart_app" / "server.cjs"


def snap_env(**extra: str) -> dict[str, str]:
    return runtime_env(UPSTREAM_COMMAND=f"node {APP}", **extra)


def start(env: dict[str, str]) -> LocalStack:
    return LocalStack(env=env, snapstart=True).start(init_timeout=60)


def state(stack: LocalStack) -> dict[str, object]:
    result = stack.invoke({"httpMethod": "GET", "path": "/state", "headers": {}})
    assert result.error is None, result.error
    return json.loads(result.body)


def test_the_image_puts_the_preload_where_the_runtime_looks():
    dockerfile = (HERE.parent.parent / "runtime" / "Dockerfile").read_text()
    assert f"COPY preload/ {snapstart.IMAGE_PRELOAD_DIR}/" in dockerfile
    assert (HERE.parent.parent / "runtime" / "preload" / snapstart.PRELOAD.name).is_file()
    assert (HERE.parent.parent / "runtime" / "preload" / snapstart.OPENSSL_CONFIG.name).is_file()


def test_restore_reconnects_and_serves_with_fresh_randomness():
    with start(snap_env()) as stack:
        assert stack.init_error is None
        env = stack.first
        assert env.snapshot_at is not None and env.sandbox.frozen  # the "snapshot"
        assert env.process is not None
        tree = [env.process.pid, *descendants(env.process.pid)]
        assert len(tree) >= 2  # the runtime and its Node upstream
        assert all(process_state(pid) == "T" for pid in tree)  # the whole tree is stopped
        before = stack.wait_for_log("before-snapshot done")
        assert json.loads(before)["closed"]["ioredis"] == 1
        first = state(stack)  # restores the environment
        after = json.loads(stack.wait_for_log("after-restore done"))
        assert after["reconnected"]["ioredis"] == 1
        assert after["fresh"]["crypto"] is True and after["fresh"]["mathRandom"] is True
        assert first["redisStatus"] == "ready" and first["redisConnects"] == 2
        assert len(env.restore_durations) == 1
        assert env.restore_error is None


def test_a_client_its_owner_reconnected_first_is_left_alone():
    with start(snap_env(FAKE_REDIS="owner-reconnects")) as stack:
        assert stack.init_error is None
        now = state(stack)
        assert stack.first.restore_error is None
        assert now["redisStatus"] == "ready" and now["redisConnects"] == 2  # the owner's only


def test_before_snapshot_failure_is_an_init_error_naming_the_client():
    with start(snap_env(FAKE_REDIS="fail-close")) as stack:
        error = stack.init_error
        assert error is not None
        assert error["errorType"] == "Runtime.BeforeSnapshotError"
        assert "closing an ioredis client did not finish" in error["errorMessage"]
        assert stack.first.snapshot_at is None  # no snapshot was taken


def test_an_upstream_without_the_preload_fails_before_the_snapshot():
    with start(runtime_env()) as stack:  # the Python test upstream: no preload, no answer
        error = stack.init_error
        assert error is not None
        assert error["errorType"] == "Runtime.BeforeSnapshotError"
        assert "snapstart.cjs" in error["errorMessage"]


def test_after_restore_failure_is_a_restore_error_naming_what_failed():
    with start(snap_env(FAKE_REDIS="fail-connect")) as stack:
        assert stack.init_error is None
        result = stack.invoke({"httpMethod": "GET", "path": "/state", "headers": {}})
        assert result.error is not None
        error = stack.first.restore_error
        assert error is not None
        assert error["errorType"] == "Runtime.AfterRestoreError"
        assert "ioredis: ECONNREFUSED" in error["errorMessage"]


def test_after_restore_past_the_budget_is_a_restore_error():
    with start(snap_env(FAKE_REDIS="block-connect")) as stack:
        assert stack.init_error is None
        result = stack.invoke({"httpMethod": "GET", "path": "/state", "headers": {}}, timeout=60)
        assert result.error is not None
        error = stack.first.restore_error
        assert error is not None
        assert error["errorType"] == "Runtime.AfterRestoreError"
        assert "restore budget is 10 s" in error["errorMessage"]


class _RestoreFails(BaseHTTPRequestHandler):
    """A Runtime API whose restore/next fails; records every request."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(f"GET {self.path}")
        self.send_response(500 if self.path.endswith("/restore/next") else 404)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.seen.append(f"POST {self.path}")
        self.send_response(202)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def failing_runtime_api() -> Iterator[ThreadingHTTPServer]:
    _RestoreFails.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RestoreFails)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def test_restore_next_failure_ends_the_runtime_without_serving(failing_runtime_api):
    port = failing_runtime_api.server_address[1]
    env = snap_env(
        AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}", AWS_LAMBDA_INITIALIZATION_TYPE="snap-start"
    )
    done = subprocess.run(
        [sys.executable, "-m", "streaming_proxy"],
        env={**env, "PATH": os.environ["PATH"]},
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent,
    )
    assert done.returncode == 1
    assert "restore/next failed" in done.stdout + done.stderr
    assert _RestoreFails.seen == ["GET /2018-06-01/runtime/restore/next"]
