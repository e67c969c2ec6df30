"""`make acceptance` (ops/acceptance.py): its orchestration, against the emulator and moto.

No Pulumi CLI or AWS here, so the deploy goes through `EmulatorDriver`: `up` creates what a
deploy creates first (the ECR repository, in moto) and starts the local API Gateway + Lambda
emulator with the real runtime in front of an upstream; while it runs, a shipper plays
CloudWatch Logs for it (the runtime's real log lines into the function's log group, one
access-log line per request the gateway streamed, the EMF metrics those lines declare);
`destroy` stops it all and deletes what `up` created. The journey, the stream check and the
AWS checks run for real against it; the tests look at what the run printed and left behind.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from emulator import LocalStack
from emulator.http11 import free_port
from ops import acceptance
from ops.acceptance import AcceptanceError, Steps, run, throwaway_config

pytestmark = pytest.mark.slow  # the emulator and moto

HERE = Path(__file__).resolve().parent
REGION = "eu-west-1"
LIBRECHAT_STAND_IN = f"{sys.executable} {HERE / 'librechat_api_upstream.py'}"
DEMO_UPSTREAM = f"{sys.executable} -m emulator.demo_upstream"


class EmulatorDriver:
    def __init__(self, upstream_command: str, calls: list[str], fail_up: bool = False) -> None:
        self.upstream_command = upstream_command
        self.calls = calls
        self.fail_up = fail_up
        self.stack: LocalStack | None = None
        self.name = ""
        self._stop = threading.Event()
        self._shipper: threading.Thread | None = None

    def up(self, config: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append("up")
        self.name = str(config["librechat-lambda:name"])
        boto3.client("ecr", region_name=REGION).create_repository(repositoryName=self.name)
        if self.fail_up:
            msg = "error: 1 error occurred: creating Lambda function: AccessDeniedException"
            raise RuntimeError(msg)
        env = {"UPSTREAM_COMMAND": self.upstream_command, "UPSTREAM_PORT": str(free_port())}
        self.stack = LocalStack(env={**env, "UPSTREAM_DIRS": ""}, function_timeout=60)
        self.stack.start(init_timeout=60)
        self._shipper = threading.Thread(target=self._ship_logs, daemon=True)
        self._shipper.start()
        return {"url": self.stack.url, "log_group_name": f"/aws/lambda/{self.name}"}

    def destroy(self) -> None:
        self.calls.append("destroy")
        self._stop.set()
        if self._shipper is not None:
            self._shipper.join(5)
        if self.stack is not None:
            self.stack.stop()
        logs = boto3.client("logs", region_name=REGION)
        for group in logs.describe_log_groups()["logGroups"]:
            logs.delete_log_group(logGroupName=group["logGroupName"])
        boto3.client("ecr", region_name=REGION).delete_repository(
            repositoryName=self.name, force=True
        )

    def _ship_logs(self) -> None:
        """What CloudWatch does for a deployed stack, from what the emulator really did."""
        logs = boto3.client("logs", region_name=REGION)
        metrics = boto3.client("cloudwatch", region_name=REGION)
        function, access = f"/aws/lambda/{self.name}", f"/aws/apigateway/{self.name}/live/access"
        for group in (function, access):
            logs.create_log_group(logGroupName=group)
            logs.create_log_stream(logGroupName=group, logStreamName="s")
        shipped_lines = shipped_requests = 0
        while not self._stop.wait(0.2):
            assert self.stack is not None
            lines, requests = list(self.stack.logs), list(self.stack.invocations)
            now = int(time.time() * 1000)
            for line in lines[shipped_lines:]:
                logs.put_log_events(
                    logGroupName=function,
                    logStreamName="s",
                    logEvents=[{"timestamp": now, "message": line}],
                )
                declared = json.loads(line).get("_aws", {}) if line.startswith("{") else {}
                for directive in declared.get("CloudWatchMetrics", []):
                    data = [{"MetricName": m["Name"], "Value": 1.0} for m in directive["Metrics"]]
                    metrics.put_metric_data(Namespace=directive["Namespace"], MetricData=data)
            for inv in requests[shipped_requests:]:
                if inv.source == "gateway" and inv.status is not None:
                    record = {"status": inv.status, "responseTransferMode": "STREAMED"}
                    logs.put_log_events(
                        logGroupName=access,
                        logStreamName="s",
                        logEvents=[{"timestamp": now, "message": json.dumps(record)}],
                    )
            shipped_lines, shipped_requests = len(lines), len(requests)


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def steps(calls: list[str], preflight_rc: int = 0) -> Steps:
    def check(stack: str) -> int:
        calls.append("check")
        return acceptance.check.main(["--stack", stack])

    def preflight(stack: str) -> int:
        calls.append("preflight")
        return preflight_rc

    return Steps(
        check=check,
        preflight=preflight,
        aws=lambda service: boto3.client(service, region_name=REGION),
        wait=10.0,
    )


def leftovers() -> dict[str, list[str]]:
    repositories = boto3.client("ecr", region_name=REGION).describe_repositories()
    groups = boto3.client("logs", region_name=REGION).describe_log_groups()["logGroups"]
    return {
        "ecr": [r["repositoryName"] for r in repositories["repositories"]],
        "logs": [g["logGroupName"] for g in groups],
    }


def test_a_good_deploy_passes_every_item_prints_the_figures_and_is_destroyed(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[str] = []
    config = throwaway_config("dev", "abc123")
    driver = EmulatorDriver(LIBRECHAT_STAND_IN, calls)
    assert run("dev", driver, config, steps(calls)) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert calls == ["check", "preflight", "up", "destroy"]
    assert leftovers() == {"ecr": [], "logs": []}
    for item in (
        "pulumi up with your credentials",
        "streaming through API Gateway and the domain (smoke)",
        "journey: register",
        "journey: log in (token and refreshToken cookie)",
        "journey: a model the stack configures: acceptance/acceptance-model (custom)",
        "journey: chat streams live tokens",
        "journey: follow-up streams in the same conversation",
        "journey: the conversation gets a title: 'A stand-in title'",
        "journey: log out (the refresh cookie refused afterwards)",
        "access log: responses streamed",
        "function log: the runtime's lines arrive (egress works)",
        "CloudWatch extracted the runtime's EMF metrics",
        "pulumi destroy",
    ):
        assert f"PASS    {item}" in out, item
    assert "FAIL" not in out
    assert "MANUAL  the execute-api endpoint behind the custom domain answers 403" in out
    for figure in (
        "cold start (deploy done to first /health 200)",
        "first token, first chat",
        "first token, follow-up",
        "gap between live tokens p50",
        "per-token relay (stream check, beyond the first event) p50 / max",
    ):
        assert figure in out, figure
    assert "acceptance passed" in out
    figures = out.split("\nfigures:\n")[1].split("\n\n")[0]
    assert len(figures.splitlines()) == 5
    assert not re.search(r"(?<![\w-])-\d", figures), f"no negative figure:\n{figures}"


def test_a_failing_journey_is_reported_and_the_stack_still_destroyed(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo upstream streams, but it is not LibreChat: the journey fails, the rest runs."""
    calls: list[str] = []
    driver = EmulatorDriver(DEMO_UPSTREAM, calls)
    assert run("dev", driver, throwaway_config("dev", "def456"), steps(calls)) == 1
    out = capsys.readouterr().out
    assert "PASS    streaming through API Gateway and the domain (smoke)" in out
    assert "FAIL    journey: register: 404 (ALLOW_REGISTRATION on the stack?)" in out
    assert "PASS    pulumi destroy" in out
    assert calls[-1] == "destroy"
    assert leftovers() == {"ecr": [], "logs": []}
    assert out.rstrip().splitlines()[-1].startswith("acceptance FAILED")


def test_a_failed_up_still_destroys_what_it_created(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[str] = []
    driver = EmulatorDriver(DEMO_UPSTREAM, calls, fail_up=True)
    assert run("dev", driver, throwaway_config("dev", "0f0f0f"), steps(calls)) == 1
    out = capsys.readouterr().out
    assert "FAIL    deploy: RuntimeError: error: 1 error occurred" in out
    assert calls == ["check", "preflight", "up", "destroy"]
    assert leftovers()["ecr"] == []


def test_a_failed_preflight_deploys_nothing(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[str] = []
    driver = EmulatorDriver(DEMO_UPSTREAM, calls)
    assert run("dev", driver, throwaway_config("dev", "111111"), steps(calls, 1)) == 1
    assert calls == ["check", "preflight"]
    assert "FAIL    the account: make preflight found problems" in capsys.readouterr().out


def test_the_throwaway_copy_has_its_own_name_and_a_subdomain_of_the_stack() -> None:
    config = throwaway_config("dev", "abc123")
    assert config["librechat-lambda:name"] == "librechat-lambda-dev-accabc123"
    domain = config["librechat-lambda:domain"]
    assert domain["name"] == "accabc123-lambda-test.sandbox.data.apro.is"
    assert "certificateArn" not in domain
    assert config["librechat-lambda:image"]["forceDelete"] is True
    environment = config["librechat-lambda:environment"]
    assert environment["DOMAIN_SERVER"] == "https://accabc123-lambda-test.sandbox.data.apro.is"
    assert config["aws:region"] == "eu-west-1"
    prod = throwaway_config("prod", "abc123")
    assert "alarmEmail" not in prod.get("librechat-lambda:monitoring", {})


def test_a_stack_with_encrypted_values_cannot_be_copied(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.x.yaml").write_text(
        "config:\n  librechat-lambda:environment:\n    KEY:\n      secure: v1:abc\n"
    )
    with pytest.raises(AcceptanceError, match="librechat-lambda:environment"):
        throwaway_config("x", "abc123", tmp_path)
