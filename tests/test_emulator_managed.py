"""Lambda Managed Instances mode: N concurrent invocations into one environment, never
frozen, per-invocation timeouts answered to the caller but not enforced on the environment.

Streams are proven concurrent and incremental by order (a gate in the upstream that only the
test opens), not by timing.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import urllib.request
from typing import Any

import pytest

from emulator import LocalStack
from emulator.environment import MANAGED_INITIALIZATION_TYPE
from emulator.http11 import free_port
from emulator.sandbox import descendants, process_state
from tests.emulator_support import (
    CUT,
    EMULATOR_UPSTREAM,
    END,
    EventStream,
    round_gate,
    wait_until,
)
from tests.fake_runtime import Api
from tests.test_emulator import FAKE_RUNTIME, REPO

pytestmark = pytest.mark.slow  # starts the runtime or the emulator (tests/conftest.py)

STREAMS = 6
ROUNDS = 4
FAILING, FAILS_AT = "s5", 2


def upstream_env(**extra: str) -> dict[str, str]:
    return {
        "UPSTREAM_COMMAND": EMULATOR_UPSTREAM,
        "UPSTREAM_PORT": str(free_port()),
        "UPSTREAM_DIRS": "",
        **extra,
    }


def test_concurrent_sse_streams_share_one_upstream_arrive_incrementally_and_survive_a_failure() -> (
    None
):
    with (
        round_gate() as gate,
        LocalStack(
            env=upstream_env(GATE_URL=gate.url), managed_instances=8, function_timeout=60
        ) as stack,
    ):
        streams: dict[str, EventStream] = {}
        for k in range(STREAMS):
            name = f"s{k}"
            abort = f"&abort_at={FAILS_AT}" if name == FAILING else ""
            streams[name] = EventStream(stack.gateway.port, f"/sse?stream={name}&n={ROUNDS}{abort}")
        seen: dict[str, list[dict[str, Any]]] = {name: [] for name in streams}
        failed_with: Any = None
        for i in range(ROUNDS):
            if i:
                gate.open(i)  # only now may the upstream write event i of any stream
            for name, stream in streams.items():
                if name == FAILING and i >= FAILS_AT:
                    if i == FAILS_AT:
                        failed_with = stream.next()
                    continue
                seen[name].append(stream.next())
            if i < ROUNDS - 1:
                # Every stream delivered event i while the upstream waited at the gate.
                assert [s.pending() for s in streams.values()] == [0] * STREAMS
        ends = [stream.next() for name, stream in streams.items() if name != FAILING]
        upstreams = descendants(stack.first.process.pid) if stack.first.process else []
        environments = len(stack.environments)
        records = {inv.event["queryStringParameters"]["stream"]: inv for inv in stack.invocations}
        for inv in records.values():
            assert inv.done.wait(10)
    assert environments == 1
    for name, events in seen.items():
        expected = FAILS_AT if name == FAILING else ROUNDS
        assert [e["i"] for e in events] == list(range(expected)), name
        assert {e["stream"] for e in events} == {name}
    pids = {e["pid"] for events in seen.values() for e in events}
    assert len(pids) == 1  # one upstream process served every stream ...
    assert pids <= set(upstreams)  # ... the one this environment's runtime started
    assert failed_with == CUT
    assert ends == [END] * (STREAMS - 1)
    failure = records[FAILING].error
    assert failure is not None and "trailerErrorType" in failure
    assert [records[name].error for name in streams if name != FAILING] == [None] * (STREAMS - 1)


def test_the_runtime_gets_the_managed_instances_variables_and_is_never_frozen() -> None:
    names = "AWS_LAMBDA_MAX_CONCURRENCY,AWS_LAMBDA_INITIALIZATION_TYPE"
    with LocalStack(env=upstream_env(), managed_instances=2, function_timeout=30) as stack:
        with urllib.request.urlopen(f"{stack.url}/whoami?names={names}", timeout=30) as r:
            env = json.loads(r.read())["env"]
        # Both workers back in /next: standard Lambda would freeze the environment now.
        wait_until(lambda: stack.runtime.waiting == 2, what="both workers in /next")
        frozen = stack.frozen
        process = stack.process
        assert process is not None
        state = process_state(process.pid)
    # The runtime took AWS_LAMBDA_MAX_CONCURRENCY (two workers waited in /next at once) and keeps
    # it from LibreChat, like the rest of its own variables (settings.RUNTIME_ONLY).
    assert env == {
        "AWS_LAMBDA_MAX_CONCURRENCY": None,
        "AWS_LAMBDA_INITIALIZATION_TYPE": MANAGED_INITIALIZATION_TYPE,
    }
    assert not frozen
    assert state in {"S", "R"}


def test_a_timeout_answers_its_caller_and_leaves_the_environment_running() -> None:
    stack = LocalStack(["sleep", "30"], managed_instances=2, function_timeout=1.0)
    stack.start(wait_init=False)
    try:
        workers = [Api(stack.runtime_api), Api(stack.runtime_api)]
        results: dict[int, Any] = {}

        def invoke(n: int) -> None:
            results[n] = stack.invoke({"n": n}, timeout=20)

        callers = [threading.Thread(target=invoke, args=(n,)) for n in (1, 2)]
        for thread in callers:
            thread.start()
        got = {}
        for api in workers:
            status, headers, body = api.request("GET", "/invocation/next")
            assert status == 200
            got[json.loads(body)["n"]] = (api, headers["lambda-runtime-aws-request-id"])
        slow_api, slow_id = got[1]
        quick_api, quick_id = got[2]
        quick_api.start_stream(quick_id, {"statusCode": 200})
        quick_api.chunk(b"on time")
        assert quick_api.end_stream() == 202
        callers[1].join(20)
        callers[0].join(20)  # invocation 1 reaches its deadline unanswered
        slow_api.start_stream(slow_id, {"statusCode": 200})  # the runtime answers late
        late_status = slow_api.end_stream()
        threading.Thread(target=invoke, args=(3,), daemon=True).start()
        status, headers, body = slow_api.request("GET", "/invocation/next")  # it serves on
        slow_api.start_stream(headers["lambda-runtime-aws-request-id"], {"statusCode": 200})
        slow_api.chunk(b"third")
        assert slow_api.end_stream() == 202
        wait_until(lambda: 3 in results, what="the third invocation")
        process = stack.process
        assert process is not None
        alive = process.poll() is None
    finally:
        stack.stop()
    assert results[1].timed_out
    assert results[1].error["errorType"] == "Sandbox.Timedout"
    assert results[1].status == 504
    assert (results[2].status, results[2].body, results[2].error) == (200, b"on time", None)
    assert late_status == 410  # Lambda's answer to a response for a timed-out invocation
    assert (results[3].status, results[3].body) == (200, b"third")
    assert alive
    assert stack.restarts == 0


def run_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "emulator", "--runtime-command", " ".join(FAKE_RUNTIME), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_cli_runs_managed_instances_with_the_concurrency_it_is_given() -> None:
    port = free_port()
    proc = run_cli("--port", str(port), "--managed-instances", "3")
    try:
        assert proc.stdout is not None
        assert "Local API Gateway ready" in proc.stdout.readline()
        names = "AWS_LAMBDA_MAX_CONCURRENCY,AWS_LAMBDA_INITIALIZATION_TYPE"
        url = f"http://127.0.0.1:{port}/whoami?names={names}"
        with urllib.request.urlopen(url, timeout=10) as response:
            env = json.loads(response.read())["env"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.wait()
    assert env == {
        "AWS_LAMBDA_MAX_CONCURRENCY": "3",
        "AWS_LAMBDA_INITIALIZATION_TYPE": MANAGED_INITIALIZATION_TYPE,
    }


@pytest.mark.parametrize("flag", ["--managed-instances", "--max-environments"])
def test_cli_refuses_a_count_below_one_naming_the_option(flag: str) -> None:
    proc = run_cli(flag, "0")
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert f"argument {flag}: 0 is not at least 1" in err
