"""The runtime's log lines carry valid CloudWatch Embedded Metric Format, and nothing secret.

The lines come from the real runtime behind the local API Gateway + Runtime API, serving real
requests; each is checked against the EMF specification (CloudWatch user guide,
"Specification: Embedded metric format").
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from conftest import runtime_env

from emulator import LocalStack

SECRET = "jwt-secret-value-7f3a"
HEADER_VALUE = "Bearer token-1"
COOKIE_VALUE = "refreshToken=cookie-value-91c2"
BROWSER = {
    "Authorization": HEADER_VALUE,
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
    "Cookie": COOKIE_VALUE,
}
#: Units CloudWatch accepts (MetricDatum.Unit).
UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
    "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second",
    "Terabits/Second", "Count/Second", "None",
}  # fmt: skip


def check_emf(doc: dict[str, Any]) -> list[str]:
    """Every way `doc` breaks the EMF specification (empty when it is a valid EMF document)."""
    problems: list[str] = []
    meta = doc.get("_aws")
    if not isinstance(meta, dict) or set(meta) - {"Timestamp", "CloudWatchMetrics"}:
        return [f"_aws must be an object with Timestamp and CloudWatchMetrics: {meta!r}"]
    stamp = meta.get("Timestamp")
    if not isinstance(stamp, int) or abs(stamp - time.time() * 1000) > 600_000:
        problems.append(f"Timestamp must be epoch milliseconds (an integer), not {stamp!r}")
    directives = meta.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        return [*problems, "CloudWatchMetrics must be a non-empty array"]
    for d in directives:
        if set(d) != {"Namespace", "Dimensions", "Metrics"}:
            problems.append(f"a MetricDirective has members {sorted(d)}")
            continue
        if not isinstance(d["Namespace"], str) or not 1 <= len(d["Namespace"]) <= 1024:
            problems.append(f"Namespace {d['Namespace']!r}")
        for dimension_set in d["Dimensions"]:
            if not isinstance(dimension_set, list) or not 1 <= len(dimension_set) <= 30:
                problems.append(f"DimensionSet {dimension_set!r}")
                continue
            for key in dimension_set:
                if not isinstance(doc.get(key), str) or not doc[key]:
                    problems.append(f"dimension {key} has no string target member")
        names = [m.get("Name") for m in d["Metrics"]]
        if not 1 <= len(names) <= 100 or len(set(names)) != len(names):
            problems.append(f"Metrics {names}")
        for m in d["Metrics"]:
            if set(m) - {"Name", "Unit", "StorageResolution"} or m.get("Unit", "None") not in UNITS:
                problems.append(f"MetricDefinition {m!r}")
            value = doc.get(m.get("Name"))
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                problems.append(f"metric {m.get('Name')} has no number target member: {value!r}")
    return problems


def emf_lines(stack: LocalStack) -> list[dict[str, Any]]:
    lines = []
    for line in stack.logs:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "_aws" in record:
            lines.append(record)
    return lines


def metric_values(lines: list[dict[str, Any]], name: str) -> list[Any]:
    return [line[name] for line in lines if name in line]


def test_check_emf_finds_what_breaks_the_specification():
    """The checker itself: a valid document passes, each kind of breakage is reported."""
    good = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": "N",
                    "Dimensions": [["F"]],
                    "Metrics": [{"Name": "M", "Unit": "Count"}],
                }
            ],
        },
        "F": "fn",
        "M": 1,
    }
    assert check_emf(good) == []
    assert check_emf({**good, "M": "1"})
    assert check_emf({**good, "F": 3})
    assert check_emf({**good, "_aws": {**good["_aws"], "Timestamp": "now"}})
    bad_unit = json.loads(json.dumps(good))
    bad_unit["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = "Millis"
    assert check_emf(bad_unit)


@pytest.fixture(scope="module")
def served(moto_endpoint):
    """One runtime with a config object and a secret, after a mix of requests."""
    import boto3

    endpoint = {"endpoint_url": moto_endpoint, "region_name": "eu-west-1"}
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    s3, ssm = boto3.client("s3", **endpoint, **keys), boto3.client("ssm", **endpoint, **keys)
    s3.create_bucket(
        Bucket="emf-cfg", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    s3.put_object(Bucket="emf-cfg", Key="librechat.yaml", Body=b"version: 1\n")
    ssm.put_parameter(Name="/emf/jwt", Value=SECRET, Type="SecureString", Overwrite=True)
    env = runtime_env(
        AWS_ENDPOINT_URL=moto_endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="eu-west-1",
        CONFIG_S3_BUCKET="emf-cfg",
        CONFIG_S3_KEY="librechat.yaml",
        CONFIG_PATH="/tmp/emf-librechat.yaml",
        SSM_SECRETS='{"JWT_SECRET": "/emf/jwt"}',
        LOG_LEVEL="WARNING",  # metric lines are written whatever the level
    )
    with (
        LocalStack(env=env, function_timeout=30) as stack,
        httpx.Client(base_url=stack.url, timeout=30, headers=BROWSER) as client,
    ):
        assert client.get("/status/200").status_code == 200
        assert client.get("/status/404").status_code == 404
        assert client.get("/sse", params={"n": 2, "gap": 0.05}).status_code == 200
        with pytest.raises(httpx.RemoteProtocolError), client.stream("GET", "/break") as r:
            r.read()
        response = client.post("/api/agents/chat/openAI", params={"work": 0.3})
        assert response.json()["status"] == "started"
        stack.wait_for_log('"message":"background hold"')
        assert client.get("/_runtime/stream-check", params={"n": 2, "interval_ms": 0}).is_success
        stack.wait_for_log("/_runtime/stream-check")
        yield stack


def test_every_metric_line_is_valid_emf(served):
    lines = emf_lines(served)
    assert len(lines) >= 8
    for line in lines:
        assert check_emf(line) == [], line
        assert line["FunctionName"] == "librechat-local"
        assert {d["Namespace"] for d in line["_aws"]["CloudWatchMetrics"]} == {"LibreChatLambda"}


def test_requests_carry_status_class_timings_bytes_and_mid_stream_failures(served):
    requests = [line for line in emf_lines(served) if line["message"] == "request"]
    by_path = {line["path"]: line for line in requests}
    assert by_path["/status/200"]["StatusClass"] == "2xx"
    assert by_path["/status/404"]["StatusClass"] == "4xx"
    for line in requests:
        assert line["Requests"] == 1
        assert line["StreamDuration"] >= 0
    assert by_path["/status/200"]["UpstreamHeadersTime"] > 0
    assert by_path["/sse"]["ResponseBytes"] > 0
    assert by_path["/break"]["MidStreamFailures"] == 1
    assert by_path["/status/200"]["MidStreamFailures"] == 0
    chat = by_path["/api/agents/chat/openAI"]
    # The stream ended before the hold: its duration excludes the background work (0.3 s).
    assert chat["StreamDuration"] < chat["durationMs"]
    holds = metric_values(emf_lines(served), "BackgroundHoldTime")
    assert holds and holds[0] >= 250


def test_cold_start_carries_fetch_boot_and_outcome(served):
    lines = emf_lines(served)
    assert metric_values(lines, "ConfigFetchTime")[0] > 0
    assert metric_values(lines, "UpstreamBootTime")[0] >= 0
    (cold,) = [line for line in lines if "ColdStarts" in line]
    assert cold["InitOutcome"] == "ready" and cold["InitDuration"] > 0
    dimension_sets = [d["Dimensions"] for d in cold["_aws"]["CloudWatchMetrics"]]
    assert [["FunctionName", "InitOutcome"]] in dimension_sets


def test_no_secret_or_header_value_reaches_a_metric_line(served):
    text = "\n".join(json.dumps(line) for line in emf_lines(served))
    for value in (SECRET, HEADER_VALUE, "token-1", "cookie-value-91c2", "Mozilla", "Firefox"):
        assert value not in text


@pytest.mark.slow  # starts the runtime
def test_a_failed_init_counts_a_failed_cold_start():
    with LocalStack(env=runtime_env(EXIT_AT_START="3"), function_timeout=30) as stack:
        stack.wait_for_log('"message":"init failed"')
        (line,) = [line for line in emf_lines(stack) if "ColdStarts" in line]
        assert check_emf(line) == []
        assert line["InitOutcome"] == "failed"
