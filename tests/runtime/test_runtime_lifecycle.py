"""Cold start, failures and the work around invocations: each test gets its own runtime."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from conftest import runtime_env

from emulator import LocalStack

pytestmark = pytest.mark.slow  # starts the runtime or the emulator (tests/conftest.py)


def start(env: dict[str, str], **kwargs: object) -> LocalStack:
    return LocalStack(env=env, **kwargs).start(init_timeout=30)


def test_writable_directories_exist_before_the_upstream_starts(tmp_path):
    dirs = [tmp_path / "lc" / "uploads", tmp_path / "lc" / "logs"]
    env = runtime_env(UPSTREAM_DIRS=":".join(map(str, dirs)), ECHO_DIRS=":".join(map(str, dirs)))
    with start(env) as stack:
        assert stack.init_error is None
        for d in dirs:
            stack.wait_for_log(f"dir {d} exists")


def test_cold_start_with_config_and_secrets_passes_secrets_to_the_upstream_only(
    aws, aws_env, tmp_path
):
    s3, ssm = aws("s3"), aws("ssm")
    s3.create_bucket(
        Bucket="cold-cfg", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    s3.put_object(Bucket="cold-cfg", Key="librechat.yaml", Body=b"domain: genai.example.com\n")
    ssm.put_parameter(Name="/t/jwt", Value="jwt-secret-value", Type="SecureString")
    env = runtime_env(
        **aws_env,
        CONFIG_S3_BUCKET="cold-cfg",
        CONFIG_S3_KEY="librechat.yaml",
        CONFIG_PATH=str(tmp_path / "librechat.yaml"),
        CONFIG_DOMAIN_FROM="genai.example.com",
        DOMAIN_SERVER="https://chat.example.com",
        SSM_SECRETS='{"JWT_SECRET": "/t/jwt"}',
        ECHO_ENV="JWT_SECRET,CONFIG_PATH,SSM_SECRETS",
    )
    with start(env) as stack:
        assert stack.init_error is None
        stack.wait_for_log("env JWT_SECRET is set")
        stack.wait_for_log("env CONFIG_PATH is set")
        stack.wait_for_log("env SSM_SECRETS is unset")
        assert (tmp_path / "librechat.yaml").read_bytes() == b"domain: chat.example.com\n"
        assert not any("jwt-secret-value" in line for line in stack.logs)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"EXIT_AT_START": "7"}, ["exited with code 7", "cannot connect to MongoDB"]),
        (
            {"UPSTREAM_COMMAND": "/nonexistent/server"},
            ["cannot start the upstream", "UPSTREAM_COMMAND"],
        ),
        ({"UPSTREAM_PORT": "not-a-port"}, ["UPSTREAM_PORT='not-a-port' is not a number"]),
    ],
)
def test_init_errors_are_reported_with_their_cause(extra, expected):
    with start(runtime_env(**extra)) as stack:
        assert stack.init_error is not None
        message = stack.init_error["errorMessage"]
        for fragment in expected:
            assert fragment in message


def test_missing_config_object_and_ssm_parameter_fail_init_naming_them(aws, aws_env):
    aws("s3").create_bucket(
        Bucket="no-obj", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    with start(
        runtime_env(**aws_env, CONFIG_S3_BUCKET="no-obj", CONFIG_S3_KEY="x/librechat.yaml")
    ) as stack:
        assert "s3://no-obj/x/librechat.yaml" in stack.init_error["errorMessage"]
    with start(runtime_env(**aws_env, SSM_SECRETS='{"MONGO_URI": "/missing/DB_URI"}')) as stack:
        assert "/missing/DB_URI" in stack.init_error["errorMessage"]
        assert "MONGO_URI" in stack.init_error["errorMessage"]


def test_slow_upstream_finishes_init_and_first_invocation_waits():
    # A short init wait stands in for Lambda's 10 s init budget so the test stays quick.
    env = runtime_env(READY_AFTER="1.5", UPSTREAM_INIT_WAIT="0.5")
    with start(env) as stack:
        assert stack.init_error is None
        stack.wait_for_log("init budget spent; the first invocation waits for the upstream")
        response = httpx.get(f"{stack.url}/status/200", timeout=30)
        assert response.status_code == 200


def test_upstream_that_never_becomes_healthy_gets_a_502_naming_the_timeout():
    env = runtime_env(READY_AFTER="60", UPSTREAM_READY_TIMEOUT="1.5", UPSTREAM_INIT_WAIT="0.5")
    with start(env) as stack:
        response = httpx.get(f"{stack.url}/status/200", timeout=30)
        assert response.status_code == 502
        assert "did not become healthy" in response.json()["message"]


def test_readiness_budget_counts_only_time_the_upstream_could_run():
    """Frozen time between invocations must not use up UPSTREAM_READY_TIMEOUT."""
    env = runtime_env(READY_AFTER_RUNNING="2", UPSTREAM_INIT_WAIT="0.5", UPSTREAM_READY_TIMEOUT="3")
    with start(env) as stack:
        time.sleep(4)  # frozen: no boot progress, and longer than the whole budget
        assert stack.frozen
        response = httpx.get(f"{stack.url}/status/200", timeout=30)
        assert response.status_code == 200


def test_upstream_that_died_is_restarted(tmp_path):
    with start(runtime_env()) as stack:
        assert httpx.get(f"{stack.url}/exit", timeout=30).status_code == 200
        time.sleep(0.3)  # let it exit: the next invocation must notice and restart it
        assert httpx.get(f"{stack.url}/status/200", timeout=30).status_code == 200
        stack.wait_for_log("upstream exited; restarting it")


def test_deadline_ends_the_response_before_the_invocation_times_out():
    env = runtime_env(DEADLINE_MARGIN="0.5")
    with start(env, function_timeout=2.0) as stack:
        response = httpx.get(f"{stack.url}/slow", params={"s": 5}, timeout=30)
        assert response.status_code == 504
        # The runtime's own 504 (the emulator's timeout would say "Endpoint request timed out").
        assert "deadline" in response.json()["message"]
        # A stream that outlives the deadline is ended with error trailers, not left to time out.
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(f"{stack.url}/sse", params={"n": 100, "gap": 0.1}, timeout=30)
        record = stack.invocations[-1]
        assert not record.timed_out
        assert "Runtime.Timeout" in json.dumps(record.error)


BROWSER = {
    "Authorization": "Bearer token-1",
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
}


def test_background_generation_is_not_frozen_after_the_response(tmp_path):
    marker = tmp_path / "done"
    with start(runtime_env()) as stack:
        response = httpx.post(
            f"{stack.url}/api/agents/chat/openAI",
            params={"work": 0.6, "marker": str(marker)},
            headers=BROWSER,
            timeout=30,
        )
        assert response.json()["status"] == "started"
        line = stack.wait_for_log('"message":"background hold"')
        assert json.loads(line)["outcome"] == "finished"
        assert marker.exists()
        # The polls looked like the caller's browser: LibreChat recorded no violation.
        assert httpx.get(f"{stack.url}/violations", timeout=30).json() == []


def test_without_the_hold_lambda_would_freeze_background_work(tmp_path):
    marker = tmp_path / "done"
    with start(runtime_env(BACKGROUND_HOLD="off")) as stack:
        httpx.post(
            f"{stack.url}/api/agents/chat",
            params={"work": 0.3, "marker": str(marker)},
            headers=BROWSER,
            timeout=30,
        )
        time.sleep(1.0)
        assert stack.frozen
        assert not marker.exists()


def test_managed_instances_concurrency_serves_invocations_in_parallel():
    with start(runtime_env(AWS_LAMBDA_MAX_CONCURRENCY="4")) as stack:
        results: list[int] = []

        def call() -> None:
            response = httpx.get(f"{stack.url}/barrier", params={"n": 4}, timeout=30)
            results.append(response.status_code)

        threads = [threading.Thread(target=call) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # The upstream answers only when all four wait at once: served one by one, they fail.
        assert results == [200] * 4


# -- upstream supervision (issue 7) ----------------------------------------------------------


def test_transient_upstream_errors_do_not_use_up_the_readiness_budget():
    """Each blip costs 0.4 s of unhealthy probing; together they exceed the 1 s budget."""
    with start(runtime_env(UPSTREAM_READY_TIMEOUT="1")) as stack:
        for n in range(4):
            response = httpx.get(f"{stack.url}/blip", params={"id": n, "s": 0.4}, timeout=30)
            assert (response.status_code, response.text) == (200, "recovered")
        assert httpx.get(f"{stack.url}/status/200", timeout=30).status_code == 200
        # The healthy upstream was never stopped and started again.
        assert sum('"message":"upstream started"' in line for line in stack.logs) == 1


def test_a_readiness_timeout_shorter_than_the_init_wait_fails_init():
    env = runtime_env(READY_AFTER="60", UPSTREAM_READY_TIMEOUT="1", UPSTREAM_INIT_WAIT="8")
    with start(env) as stack:
        assert stack.init_error is not None
        assert stack.init_error["errorType"] == "Runtime.UpstreamError"
        assert "UPSTREAM_READY_TIMEOUT=1 s" in stack.init_error["errorMessage"]


def test_a_secret_the_os_cannot_put_in_an_environment_fails_init_naming_the_variable(aws, aws_env):
    aws("ssm").put_parameter(Name="/t/nul", Value="sec\x00ret-value", Type="SecureString")
    with start(runtime_env(**aws_env, SSM_SECRETS='{"CREDS_KEY": "/t/nul"}')) as stack:
        assert stack.init_error is not None
        assert stack.init_error["errorType"] == "Runtime.SecretsError"
        message = stack.init_error["errorMessage"]
        assert "CREDS_KEY" in message and "NUL" in message
        assert "ret-value" not in message
        failed = json.loads(stack.wait_for_log('"init failed"'))
        assert failed["errorType"] == "Runtime.SecretsError"
        assert not any("Traceback" in line or "ret-value" in line for line in stack.logs)


def test_the_upstream_does_not_inherit_the_runtime_plumbing(aws_env):
    plumbing = ["AWS_LAMBDA_RUNTIME_API", "UPSTREAM_COMMAND", "UPSTREAM_PORT", "LOG_LEVEL"]
    kept = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "DOMAIN_SERVER", "PORT"]
    env = runtime_env(
        **aws_env,
        DOMAIN_SERVER="https://chat.example.com",
        LOG_LEVEL="INFO",
        ECHO_ENV=",".join(plumbing + kept),
    )
    with start(env) as stack:
        for name in plumbing:
            stack.wait_for_log(f"env {name} is unset")
        for name in kept:
            stack.wait_for_log(f"env {name} is set")
        assert httpx.get(f"{stack.url}/status/200", timeout=30).status_code == 200
