"""Monitoring: the alarms' metrics, dimensions, thresholds and actions; the topic, the filter,
the dashboard and the saved queries; and nothing of it when a stack switches monitoring off."""

from __future__ import annotations

import json
import math
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from components.config import MonitoringConfig
from components.contract import METRICS_NAMESPACE
from components.monitoring import INIT_FAILURE_PATTERN, Monitoring, MonitoringArgs
from tests.pulumi_mocks import (
    ACCOUNT_ID,
    DEFAULT_REGION,
    PulumiMocks,
    T,
    plain,
    run_main,
    run_program,
)
from tests.stack_files import cli_config

ALARM, TOPIC, SUBSCRIPTION, FILTER = T.ALARM, T.TOPIC, T.SUBSCRIPTION, T.METRIC_FILTER
DASHBOARD, QUERY = T.DASHBOARD, T.QUERY
MONITORING_TYPES = (ALARM, TOPIC, SUBSCRIPTION, FILTER, DASHBOARD, QUERY)
FN = "librechat-lambda-dev"


def settings(**values: Any) -> MonitoringConfig:
    return MonitoringConfig.model_validate(values)


def build(limit: int = 1000, **values: Any):
    def program() -> dict[str, pulumi.Input[Any]]:
        group = aws.cloudwatch.LogGroup("logs", name=f"/aws/lambda/{FN}")
        monitoring = Monitoring(
            "monitoring",
            MonitoringArgs(
                name=FN,
                function_name=FN,
                log_group_name=group.name,
                api_name="chat-api",
                stage_name="live",
                concurrency_limit=limit,
                settings=settings(**values),
            ),
        )
        return {
            "topic": monitoring.topic_arn,
            "dashboard": monitoring.dashboard.dashboard_body,
            "dashboard_name": monitoring.dashboard.dashboard_name,
            "urns": pulumi.Output.all(
                *[a.urn for a in monitoring.alarms.values()],
                *[q.urn for q in monitoring.queries],
                monitoring.dashboard.urn,
                monitoring.init_failure_filter.urn,
            ),
        }

    return program


def alarms(mocks: PulumiMocks) -> dict[str, dict[str, Any]]:
    return {
        plain(a.inputs["name"]).removeprefix(f"{FN}-"): plain(a.inputs)
        for a in mocks.of_type(ALARM)
    }


def metric(alarm: dict[str, Any], query_id: str = "m") -> dict[str, Any]:
    (query,) = [q for q in alarm["metricQueries"] if q["id"] == query_id]
    return query["metric"]


def test_six_alarms_not_breaching_on_missing_data_notify_the_topic(mocks: PulumiMocks):
    out = run_program(build())
    found = alarms(mocks)
    assert sorted(found) == sorted(
        [
            "function-errors",
            "throttles",
            "init-failures",
            "mid-stream-failures",
            "api-5xx",
            "concurrency",
        ]
    )
    topic = mocks.one(TOPIC)
    assert out["topic"] == mocks.outputs[topic.name]["arn"]
    for alarm in found.values():
        assert alarm["treatMissingData"] == "notBreaching"
        assert alarm["alarmActions"] == [out["topic"]] == alarm["okActions"]
        assert alarm["evaluationPeriods"] == 1
        assert alarm["alarmDescription"]
        returned = [q for q in alarm["metricQueries"] if q.get("returnData")]
        assert len(returned) == 1, "an alarm evaluates exactly one series"
    assert not mocks.of_type(SUBSCRIPTION)


def test_function_error_rate_is_errors_over_invocations_of_this_function(mocks: PulumiMocks):
    run_program(build())
    alarm = alarms(mocks)["function-errors"]
    for query_id, name in (("errors", "Errors"), ("invocations", "Invocations")):
        m = metric(alarm, query_id)
        assert (m["namespace"], m["metricName"], m["stat"]) == ("AWS/Lambda", name, "Sum")
        assert m["dimensions"] == {"FunctionName": FN}
        assert m["period"] == 300
    (rate,) = [q for q in alarm["metricQueries"] if q["id"] == "rate"]
    assert rate["expression"] == "IF(invocations > 0, 100 * errors / invocations, 0)"
    assert (alarm["comparisonOperator"], alarm["threshold"]) == ("GreaterThanThreshold", 5.0)


@pytest.mark.parametrize(
    ("key", "namespace", "name", "stat", "threshold"),
    [
        ("throttles", "AWS/Lambda", "Throttles", "Sum", 1),
        ("mid-stream-failures", METRICS_NAMESPACE, "MidStreamFailures", "Sum", 3),
        ("concurrency", "AWS/Lambda", "ConcurrentExecutions", "Maximum", 800),
    ],
)
def test_count_alarms_watch_the_function(mocks: PulumiMocks, key, namespace, name, stat, threshold):
    run_program(build())
    alarm = alarms(mocks)[key]
    m = metric(alarm)
    assert (m["namespace"], m["metricName"], m["stat"]) == (namespace, name, stat)
    assert m["dimensions"] == {"FunctionName": FN}
    assert alarm["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["threshold"] == threshold


def test_api_5xx_rate_watches_the_api_stage(mocks: PulumiMocks):
    run_program(build())
    alarm = alarms(mocks)["api-5xx"]
    m = metric(alarm)
    assert (m["namespace"], m["metricName"], m["stat"]) == ("AWS/ApiGateway", "5XXError", "Average")
    assert m["dimensions"] == {"ApiName": "chat-api", "Stage": "live"}
    (rate,) = [q for q in alarm["metricQueries"] if q["id"] == "rate"]
    assert rate["expression"] == "100 * m"
    assert alarm["threshold"] == 5.0


def test_init_failures_are_counted_from_lambdas_own_record(mocks: PulumiMocks):
    run_program(build())
    log_filter = plain(mocks.one(FILTER).inputs)
    assert log_filter["logGroupName"] == f"/aws/lambda/{FN}"
    assert log_filter["pattern"] == INIT_FAILURE_PATTERN
    transformation = log_filter["metricTransformation"]
    assert transformation["name"] == "InitFailures" and transformation["value"] == "1"
    assert transformation["namespace"] == f"{METRICS_NAMESPACE}/{FN}"
    m = metric(alarms(mocks)["init-failures"])
    assert (m["namespace"], m["metricName"]) == (f"{METRICS_NAMESPACE}/{FN}", "InitFailures")
    assert alarms(mocks)["init-failures"]["threshold"] == 1


def test_thresholds_and_period_come_from_the_stack(mocks: PulumiMocks):
    run_program(
        build(
            limit=50,
            periodSeconds=60,
            errorRatePercent=2.5,
            throttles=10,
            initFailures=2,
            midStreamFailures=7,
            api5xxRatePercent=1,
            concurrencyPercent=90,
        )
    )
    found = alarms(mocks)
    assert found["function-errors"]["threshold"] == 2.5
    assert found["throttles"]["threshold"] == 10
    assert found["init-failures"]["threshold"] == 2
    assert found["mid-stream-failures"]["threshold"] == 7
    assert found["api-5xx"]["threshold"] == 1
    assert found["concurrency"]["threshold"] == 45  # 90 % of a reservation of 50
    assert {
        metric(a, q["id"])["period"]
        for a in found.values()
        for q in a["metricQueries"]
        if "metric" in q
    } == {60}


def test_an_email_subscribes_to_the_created_topic(mocks: PulumiMocks):
    out = run_program(build(alarmEmail="ops@example.com"))
    subscription = plain(mocks.one(SUBSCRIPTION).inputs)
    assert subscription == {
        "topic": out["topic"],
        "protocol": "email",
        "endpoint": "ops@example.com",
    }


def test_an_existing_topic_is_used_instead_of_a_new_one(mocks: PulumiMocks):
    arn = f"arn:aws:sns:{DEFAULT_REGION}:{ACCOUNT_ID}:oncall"
    out = run_program(build(alarmTopicArn=arn))
    assert out["topic"] == arn
    assert not mocks.of_type(TOPIC) and not mocks.of_type(SUBSCRIPTION)
    assert all(a["alarmActions"] == [arn] == a["okActions"] for a in alarms(mocks).values())


def test_the_dashboard_shows_what_an_operator_asks_first(mocks: PulumiMocks):
    out = run_program(build())
    assert out["dashboard_name"] == f"{FN}-operations"
    body = json.loads(out["dashboard"])
    titles = [w["properties"]["title"] for w in body["widgets"]]
    for word in ("Alarms", "Requests", "Errors", "Throttles", "Concurrency", "Cold starts",
                 "Cold-start phases", "Time to first byte", "Stream durations"):  # fmt: skip
        assert any(t.startswith(word) for t in titles), word
    alarm_widget = body["widgets"][0]["properties"]
    assert sorted(alarm_widget["alarms"]) == sorted(
        mocks.outputs[a.name]["arn"] for a in mocks.of_type(ALARM)
    )
    metrics = [m for w in body["widgets"][1:] for m in w["properties"]["metrics"]]
    assert all(w["properties"]["region"] == DEFAULT_REGION for w in body["widgets"][1:])
    by_name = {m[1] for m in metrics}
    assert {"Requests", "ColdStarts", "ConfigFetchTime", "UpstreamBootTime", "UpstreamHeadersTime",
            "StreamDuration", "MidStreamFailures", "Throttles", "ConcurrentExecutions"} <= by_name  # fmt: skip
    runtime_metrics = [m for m in metrics if m[0] == METRICS_NAMESPACE]
    assert all(m[2:4] == ["FunctionName", FN] for m in runtime_metrics)


def test_saved_queries_answer_the_common_questions(mocks: PulumiMocks):
    run_program(build())
    queries = {plain(q.inputs["name"]): plain(q.inputs) for q in mocks.of_type(QUERY)}
    assert sorted(queries) == [
        f"{FN}/cold starts by phase",
        f"{FN}/errors by type",
        f"{FN}/slowest first bytes",
    ]
    for query in queries.values():
        assert query["logGroupNames"] == [f"/aws/lambda/{FN}"]
    assert "sort upstreamHeadersMs desc" in queries[f"{FN}/slowest first bytes"]["queryString"]
    assert "UpstreamBootTime" in queries[f"{FN}/cold starts by phase"]["queryString"]


def test_every_resource_is_a_child_named_after_the_component(mocks: PulumiMocks):
    out = run_program(build())
    assert len(out["urns"]) == 6 + 3 + 2
    for urn in out["urns"]:
        assert "::librechat:components:Monitoring$aws:" in urn
    for typ in (ALARM, TOPIC, FILTER, DASHBOARD, QUERY):
        assert all(r.name.startswith("monitoring-") for r in mocks.of_type(typ))


# -- the program ------------------------------------------------------------------------------


def run_stack(mocks: PulumiMocks, **overrides: Any) -> dict[str, Any]:
    mocks.zones = {"sandbox.data.apro.is": "ZSANDBOXZONE"}
    return run_main(cli_config("dev", **overrides))


@pytest.mark.program
def test_the_dev_stack_is_monitored_by_default(mocks: PulumiMocks):
    out = run_stack(mocks)
    assert len(mocks.of_type(ALARM)) == 6 and mocks.of_type(DASHBOARD)
    assert out["dashboard_name"] == f"{FN}-operations"
    api = mocks.one("aws:apigateway/restApi:RestApi")
    m = metric(alarms(mocks)["api-5xx"])
    assert m["dimensions"] == {"ApiName": mocks.outputs[api.name]["name"], "Stage": "live"}


@pytest.mark.program
def test_the_managed_prod_stack_keeps_the_stack_names_and_its_fleets_concurrency_limit(
    mocks: PulumiMocks,
):
    """On managed instances the function is `<name>-managed`, but the monitoring keeps the
    stack's names (the deploy role's scopes), and the concurrency alarm's limit is what the
    fleet serves (maxEnvironments x maxConcurrency), not the account quota."""
    mocks.zones = {"data.apro.is": "ZDATA"}
    out = run_main(cli_config("prod"))
    name = "librechat-lambda-prod"
    assert out["function_name"] == f"{name}-managed"
    assert out["dashboard_name"] == f"{name}-operations"
    assert plain(mocks.one(TOPIC).inputs["name"]) == f"{name}-alarms"
    found = {plain(a.inputs["name"]) for a in mocks.of_type(ALARM)}
    assert found == {f"{name}-{key}" for key in (
        "function-errors", "throttles", "init-failures", "mid-stream-failures", "api-5xx",
        "concurrency")}  # fmt: skip
    (concurrency,) = [plain(a.inputs) for a in mocks.of_type(ALARM) if "concurrency" in
                      plain(a.inputs["name"])]  # fmt: skip
    assert concurrency["threshold"] == math.ceil(12 * 32 * 0.8)


@pytest.mark.program
def test_disabling_monitoring_removes_all_of_it(mocks: PulumiMocks):
    out = run_stack(mocks, monitoring={"enabled": False})
    for typ in MONITORING_TYPES:
        assert not mocks.of_type(typ), typ
    assert "dashboard_name" not in out and "alarm_topic_arn" not in out


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("monitoring", "phrase"),
    [
        ({"alarmEmail": "ops@", "enabled": True}, "monitoring.alarmEmail 'ops@' is not an email"),
        ({"alarmTopicArn": "oncall"}, "monitoring.alarmTopicArn 'oncall' is not an SNS topic ARN"),
        (
            {
                "alarmEmail": "ops@example.com",
                "alarmTopicArn": f"arn:aws:sns:eu-west-1:{ACCOUNT_ID}:t",
            },
            "monitoring.alarmEmail and monitoring.alarmTopicArn are both set",
        ),
        ({"periodSeconds": 120}, "monitoring.periodSeconds"),
        ({"concurrencyPercent": 0}, "monitoring.concurrencyPercent"),
        ({"thresholds": 3}, "monitoring.thresholds is not a known key"),
    ],
)
def test_bad_monitoring_keys_are_named(monitoring, phrase):
    from components.config import ConfigError, parse
    from tests.stack_files import stack_file

    raw = {k.split(":", 1)[1]: v for k, v in stack_file("dev").items() if k.startswith("librechat")}
    with pytest.raises(ConfigError) as error:
        parse({**raw, "monitoring": monitoring}, stack="dev")
    assert phrase in str(error.value)
