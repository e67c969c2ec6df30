"""The emulator scales out as Lambda does: a request that finds every environment busy (or
holding after its response) gets a new environment with its own runtime process, up to
`max_environments`; beyond that the invoke is throttled. Idle environments are reused most
recently idle first, and each is frozen on its own.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from emulator import LocalStack
from emulator import pool as pool_module
from emulator.http11 import free_port
from emulator.sandbox import process_state
from tests.emulator_support import (
    EMULATOR_UPSTREAM,
    END,
    EventStream,
    Latch,
    latch,
    round_gate,
    wait_until,
)
from tests.test_emulator import FAKE_RUNTIME, wait_for_state

pytestmark = pytest.mark.slow  # starts the runtime or the emulator (tests/conftest.py)

NAMES = "AWS_LAMBDA_RUNTIME_API,UPSTREAM_PORT,AWS_LAMBDA_LOG_STREAM_NAME,SHARED_SETTING"


@pytest.fixture(autouse=True)
def _short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scale-out waits RETURN_GRACE for a busy environment first; these tests hold theirs
    with a latch, so a shorter wait only makes them quicker."""
    monkeypatch.setattr(pool_module, "RETURN_GRACE", 0.5)


@contextmanager
def stack_of(max_environments: int, **kwargs: Any) -> Iterator[LocalStack]:
    env = {"UPSTREAM_PORT": str(free_port()), "SHARED_SETTING": "same-everywhere"}
    env.update(kwargs.pop("env", {}))
    stack = LocalStack(
        kwargs.pop("command", FAKE_RUNTIME),
        env=env,
        function_timeout=30,
        max_environments=max_environments,
        **kwargs,
    )
    try:
        stack.start(init_timeout=15)
        yield stack
    finally:
        stack.stop()


def get(stack: LocalStack, target: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", stack.gateway.port, timeout=20)
    conn.request("GET", target)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


class HeldStream:
    """A request whose runtime stops after its first chunk (the fake runtime's handshake
    action) until the latch releases it: its environment is busy meanwhile."""

    def __init__(self, stack: LocalStack, control: Latch) -> None:
        self.sock = socket.create_connection(("127.0.0.1", stack.gateway.port), timeout=20)
        self.sock.sendall(
            f"GET /handshake?port={control.port} HTTP/1.1\r\nHost: t\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        self.received = b""
        while b"first" not in self.received:
            chunk = self.sock.recv(65536)
            assert chunk, "the held stream ended before its first chunk"
            self.received += chunk

    def finish(self) -> bytes:
        while chunk := self.sock.recv(65536):
            self.received += chunk
        self.sock.close()
        return self.received


def settled(stack: LocalStack) -> None:
    """Until every environment's runtime is back in /next: then the next request goes to the
    one that came back last, whatever the timing."""
    wait_until(
        lambda: all(env.runtime.waiting == env.capacity for env in stack.environments),
        what="every environment idle",
    )


def whoami(stack: LocalStack) -> dict[str, Any]:
    status, _, body = get(stack, f"/whoami?names={NAMES}")
    assert status == 200
    return json.loads(body)


def test_a_request_that_finds_every_environment_busy_gets_a_new_one_up_to_the_limit() -> None:
    with stack_of(2) as stack, latch() as control:
        first = HeldStream(stack, control)  # environment 1 is busy
        control.wait_for(1)
        second_env = whoami(stack)  # starts environment 2
        second = HeldStream(stack, control)  # environment 2, idle again, takes it: busy too
        control.wait_for(2)
        status, headers, body = get(stack, "/whoami")  # no environment left
        throttled = stack.invocations[-1]
        control.release(0)
        control.release(1)
        ends = [first.finish(), second.finish()]
        records = stack.invocations
        pids = [env.process.pid for env in stack.environments if env.process is not None]
    assert second_env["pid"] == pids[1] != pids[0]
    assert [r.environment for r in records[:3]] == [1, 2, 2]
    # API Gateway answers an invoke Lambda throttled with its generic 500; the emulator adds why.
    assert (status, json.loads(body)) == (
        500,
        {
            "message": "Internal server error",
            "emulator": "throttled: all 2 environment(s) busy; raise --max-environments "
            "(make local ENVIRONMENTS=N) to let Lambda start more",
        },
    )
    assert headers["x-amzn-errortype"] == "InternalServerErrorException"
    assert throttled.environment is None
    assert throttled.error is not None
    assert throttled.error["errorType"] == "TooManyRequestsException"
    assert stack.pool.throttled == 1
    assert all(end.endswith(b"0\r\n\r\n") and b"second" in end for end in ends)


def test_idle_environments_are_reused_most_recently_idle_first() -> None:
    with stack_of(2) as stack, latch() as control:
        on_one = HeldStream(stack, control)
        control.wait_for(1)
        on_two = HeldStream(stack, control)
        control.wait_for(2)
        control.release(1)  # environment 2 comes back to /next first ...
        on_two.finish()
        wait_until(lambda: stack.environments[1].runtime.waiting == 1, what="environment 2 idle")
        control.release(0)  # ... then environment 1
        on_one.finish()
        wait_until(lambda: stack.environments[0].runtime.waiting == 1, what="environment 1 idle")
        get(stack, "/stream")  # environment 1: the one idle most recently
        wait_until(lambda: stack.environments[0].runtime.waiting == 1, what="environment 1 idle")
        get(stack, "/stream")  # environment 1 again, not the one idle longer
        served_by = [inv.environment for inv in stack.invocations]
    assert served_by == [1, 2, 1, 1]


@pytest.mark.parametrize("max_environments", [1, 2])
def test_an_environment_holding_after_its_response_counts_as_busy(max_environments: int) -> None:
    with stack_of(max_environments) as stack, latch() as control:
        status, _, body = get(stack, f"/hold?port={control.port}")
        control.wait_for(1)  # answered, and holding: no /next
        status2, _, _ = get(stack, "/stream")
        if max_environments == 2:  # environment 2 back in /next before environment 1
            wait_until(lambda: stack.environments[1].runtime.waiting == 1, what="env 2 idle")
        control.release(0)
        settled(stack)
        status3, _, _ = get(stack, "/stream")
        served_by = [inv.environment for inv in stack.invocations]
    assert (status, body) == (200, b"held")
    if max_environments == 1:
        assert status2 == 500  # throttled, as reserved concurrency 1 would
        assert served_by == [1, None, 1]
    else:
        assert status2 == 201
        assert served_by == [1, 2, 1]  # environment 1 came back to /next last
    assert status3 == 201


def test_a_runtime_coming_back_to_next_within_the_grace_keeps_the_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pool_module, "RETURN_GRACE", 5.0)
    with stack_of(2) as stack, latch() as control:
        get(stack, f"/hold?port={control.port}")
        control.wait_for(1)
        result: list[int] = []
        asking = threading.Thread(target=lambda: result.append(get(stack, "/stream")[0]))
        asking.start()
        wait_until(lambda: len(stack.invocations) == 2, what="the second request")
        control.release(0)  # well within RETURN_GRACE: the environment returns to /next
        asking.join(20)
        environments = len(stack.environments)
        served_by = [inv.environment for inv in stack.invocations]
    assert result == [201]
    assert served_by == [1, 1]
    assert environments == 1


def test_each_environment_has_its_own_runtime_api_and_upstream_port_and_the_same_config() -> None:
    with stack_of(2) as stack, latch() as control:
        first = whoami(stack)
        held = HeldStream(stack, control)
        control.wait_for(1)
        second = whoami(stack)
        control.release(0)
        held.finish()
    assert first["pid"] != second["pid"]
    one, two = first["env"], second["env"]
    assert one["AWS_LAMBDA_RUNTIME_API"] != two["AWS_LAMBDA_RUNTIME_API"]
    assert one["UPSTREAM_PORT"] != two["UPSTREAM_PORT"]
    assert (one["AWS_LAMBDA_LOG_STREAM_NAME"], two["AWS_LAMBDA_LOG_STREAM_NAME"]) == (
        "local-1",
        "local-2",
    )
    assert one["SHARED_SETTING"] == two["SHARED_SETTING"] == "same-everywhere"


def test_direct_invoke_is_throttled_with_429_when_every_environment_is_busy() -> None:
    with stack_of(1) as stack, latch() as control:
        held = threading.Thread(
            target=stack.invoke, args=({"action": "handshake", "port": control.port},)
        )
        held.start()
        control.wait_for(1)
        result = stack.invoke({"action": "echo"}, timeout=20)
        control.release(0)
        held.join(20)
    assert result.status == 429
    assert result.error is not None
    assert result.error["errorType"] == "TooManyRequestsException"
    assert result.record.environment is None


def test_each_environment_is_frozen_on_its_own() -> None:
    with stack_of(2) as stack, latch() as control:
        one = HeldStream(stack, control)
        control.wait_for(1)
        two = HeldStream(stack, control)  # environment 2, started for it
        control.wait_for(2)
        control.release(0)
        one.finish()
        first, second = (env.process for env in stack.environments)
        assert first is not None and second is not None
        assert wait_for_state(first.pid, "T") == "T"  # idle: frozen
        assert process_state(second.pid) != "T"  # still serving
        control.release(1)
        two.finish()
        assert wait_for_state(second.pid, "T") == "T"


def test_environments_run_their_own_upstream_and_share_the_backing_services(
    tmp_path: Path,
) -> None:
    """Real runtime and upstream processes: what one environment's upstream writes to the
    shared store, another's reads (a resumable chat: POST on one, stream GET on another)."""
    with round_gate() as gate:
        env = {
            "UPSTREAM_COMMAND": EMULATOR_UPSTREAM,
            "UPSTREAM_DIRS": "",
            "STORE_DIR": str(tmp_path),
            "GATE_URL": gate.url,
        }
        with stack_of(2, command=None, env=env) as stack:
            stream = EventStream(stack.gateway.port, "/sse?stream=a&n=2")
            assert stream.next()["i"] == 0  # its upstream now waits at the gate: busy
            conn = http.client.HTTPConnection("127.0.0.1", stack.gateway.port, timeout=30)
            conn.request("PUT", "/store/job-1", body=b"generated on environment 2")
            assert conn.getresponse().status == 204
            conn.close()
            upstream_two = whoami(stack)
            errors = [inv.error for inv in stack.invocations]
            wait_until(lambda: stack.environments[1].runtime.waiting == 1, what="env 2 idle")
            gate.open(1)  # environment 1 comes back to /next last
            assert [stream.next()["i"], stream.next()] == [1, END]
            settled(stack)
            status, _, stored = get(stack, "/store/job-1")
            settled(stack)
            upstream_one = whoami(stack)
            served_by = [inv.environment for inv in stack.invocations]
    assert errors == [None, None, None]
    assert (status, stored) == (200, b"generated on environment 2")
    assert upstream_one["pid"] != upstream_two["pid"]
    assert upstream_one["port"] != upstream_two["port"]
    assert served_by == [1, 2, 2, 1, 1]
