"""Alarms, a dashboard and saved Logs Insights queries for the running service.

(Over 400 lines on purpose: the alarm table, the dashboard and the queries read the same
metrics, and keeping them together keeps their names in step.)

Figures come from three places: Lambda's and API Gateway's own metrics (errors, throttles,
concurrency, 5XX), the runtime's log lines in CloudWatch Embedded Metric Format (namespace
`components.contract.METRICS_NAMESPACE`, dimension FunctionName: requests by status class,
time to upstream headers, stream durations, mid-stream failures, cold-start phases), and one
log metric filter for what the runtime cannot report itself: a cold start that fails before
(or without) the runtime logging, counted from Lambda's own `platform.initRuntimeDone` record.

Every alarm treats missing data as not breaching (no traffic is not an incident) and notifies
an SNS topic, created here (optionally with an email subscription) or given, on alarm and on
recovery. docs/operating.md says what each alarm means and what to do.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components import names
from components.config import MonitoringConfig
from components.contract import METRICS_NAMESPACE

#: Lambda's JSON system log record of a failed init (any status but success: error, failure,
#: timeout), whether the runtime got to report it or not.
INIT_FAILURE_PATTERN = '{ $.type = "platform.initRuntimeDone" && $.record.status != "success" }'
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx", "none")
INIT_OUTCOMES = ("ready", "async", "failed")


@dataclass(frozen=True)
class MonitoringArgs:
    """Inputs of `Monitoring`."""

    name: str
    """The stack's `name`: alarms `<name>-*`, topic `<name>-alarms`, dashboard
    `<name>-operations`, queries `<name>/...` (the names the CI deploy roles allow), the same in
    either compute mode, so a mode switch keeps the topic and its confirmed subscriptions."""
    function_name: pulumi.Input[str]
    log_group_name: pulumi.Input[str]
    api_name: pulumi.Input[str]
    """The REST API's name (API Gateway's metrics are dimensioned by ApiName and Stage)."""
    stage_name: pulumi.Input[str]
    concurrency_limit: int
    """Most concurrent executions the function gets (`StackConfig.concurrency_limit`)."""
    settings: MonitoringConfig
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm: what it watches, when it fires, and the sentence that opens its notice."""

    key: str
    description: str
    threshold: float
    comparison: str
    metric_queries: Sequence[aws.cloudwatch.MetricAlarmMetricQueryArgsDict]


class Monitoring(pulumi.ComponentResource):
    """SNS topic (or a given one), six alarms, the init-failure filter, a dashboard, queries."""

    topic_arn: pulumi.Output[str]
    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    dashboard: aws.cloudwatch.Dashboard
    queries: list[aws.cloudwatch.QueryDefinition]

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("librechat:components:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s = args.settings
        tags = dict(args.tags)
        fn = pulumi.Output.from_input(args.function_name)

        # 1. Where notices go: the given topic, or one created here (with the email, if any).
        if s.alarm_topic_arn:
            self.topic_arn = pulumi.Output.from_input(s.alarm_topic_arn)
        else:
            topic = aws.sns.Topic(
                f"{name}-alarms", name=names.alarm_topic_name(args.name), tags=tags, opts=child
            )
            self.topic_arn = topic.arn
            if s.alarm_email:
                aws.sns.TopicSubscription(
                    f"{name}-alarm-email",
                    topic=topic.arn,
                    protocol="email",
                    endpoint=s.alarm_email,
                    opts=child,
                )

        # 2. Init failures from Lambda's own record: the runtime may not have run to say so.
        self.init_failure_namespace = pulumi.Output.concat(METRICS_NAMESPACE, "/", fn)
        self.init_failure_filter = aws.cloudwatch.LogMetricFilter(
            f"{name}-init-failure-filter",
            log_group_name=args.log_group_name,
            pattern=INIT_FAILURE_PATTERN,
            metric_transformation={
                "name": "InitFailures",
                "namespace": self.init_failure_namespace,
                "value": "1",
                "unit": "Count",
            },
            opts=child,
        )

        # 3. The alarms, each on alarm and on recovery to the topic.
        self.alarms = {}
        for spec in alarm_specs(args, fn, self.init_failure_namespace):
            self.alarms[spec.key] = aws.cloudwatch.MetricAlarm(
                f"{name}-{spec.key}",
                name=names.alarm_name(args.name, spec.key),
                alarm_description=spec.description,
                comparison_operator=spec.comparison,
                threshold=spec.threshold,
                evaluation_periods=1,
                datapoints_to_alarm=1,
                metric_queries=list(spec.metric_queries),
                treat_missing_data="notBreaching",
                alarm_actions=[self.topic_arn],
                ok_actions=[self.topic_arn],
                tags=tags,
                opts=child,
            )

        # 4. One dashboard for the questions an operator asks first.
        region = aws.get_region(opts=pulumi.InvokeOptions(parent=self)).region
        body = pulumi.Output.all(
            fn,
            pulumi.Output.from_input(args.api_name),
            pulumi.Output.from_input(args.stage_name),
            self.init_failure_namespace,
            *[alarm.arn for alarm in self.alarms.values()],
        ).apply(
            lambda v: json.dumps(
                dashboard_body(region, v[0], v[1], v[2], v[3], v[4:], args.concurrency_limit, s)
            )
        )
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=names.dashboard_name(args.name),
            dashboard_body=body,
            opts=child,
        )

        # 5. Saved Logs Insights queries, in a folder named after the function.
        self.queries = [
            aws.cloudwatch.QueryDefinition(
                f"{name}-query-{key}",
                name=f"{args.name}/{title}",
                log_group_names=[args.log_group_name],
                query_string=query,
                opts=child,
            )
            for key, title, query in QUERIES
        ]

        self.register_outputs(
            {
                "topic_arn": self.topic_arn,
                "dashboard_name": self.dashboard.dashboard_name,
                "alarm_names": [a.name for a in self.alarms.values()],
            }
        )


def _metric(
    query_id: str,
    namespace: pulumi.Input[str],
    metric: str,
    dimensions: Mapping[str, pulumi.Input[str]],
    stat: str,
    period: int,
    *,
    return_data: bool,
) -> aws.cloudwatch.MetricAlarmMetricQueryArgsDict:
    return {
        "id": query_id,
        "return_data": return_data,
        "metric": {
            "namespace": namespace,
            "metric_name": metric,
            "dimensions": dict(dimensions),
            "stat": stat,
            "period": period,
        },
    }


def alarm_specs(
    args: MonitoringArgs, fn: pulumi.Output[str], init_namespace: pulumi.Output[str]
) -> list[AlarmSpec]:
    """The six alarms of a streaming chat service, thresholds from the stack's settings."""
    s = args.settings
    p = s.period_seconds
    function = {"FunctionName": fn}
    api = {"ApiName": args.api_name, "Stage": args.stage_name}
    at_least = "GreaterThanOrEqualToThreshold"
    concurrency = max(1, math.ceil(args.concurrency_limit * s.concurrency_percent / 100))
    return [
        AlarmSpec(
            "function-errors",
            f"More than {s.error_rate_percent:g}% of invocations failed in {p} s (Lambda Errors "
            "/ Invocations): see the errors-by-type query and the function's ERROR lines.",
            s.error_rate_percent,
            "GreaterThanThreshold",
            [
                _metric("errors", "AWS/Lambda", "Errors", function, "Sum", p, return_data=False),
                _metric(
                    "invocations",
                    "AWS/Lambda",
                    "Invocations",
                    function,
                    "Sum",
                    p,
                    return_data=False,
                ),
                {
                    "id": "rate",
                    "expression": "IF(invocations > 0, 100 * errors / invocations, 0)",
                    "label": "Error rate (%)",
                    "return_data": True,
                },
            ],
        ),
        AlarmSpec(
            "throttles",
            f"{s.throttles}+ invocations throttled in {p} s: concurrency is exhausted; "
            "requests got 429/502. Raise the limit (reserved concurrency, "
            "compute.maxEnvironments or the account quota).",
            s.throttles,
            at_least,
            [_metric("m", "AWS/Lambda", "Throttles", function, "Sum", p, return_data=True)],
        ),
        AlarmSpec(
            "init-failures",
            f"{s.init_failures}+ cold starts failed in {p} s (Lambda's init record): see the "
            "'init failed' lines (config object, secrets, LibreChat exit) and the cold-start "
            "query.",
            s.init_failures,
            at_least,
            [_metric("m", init_namespace, "InitFailures", {}, "Sum", p, return_data=True)],
        ),
        AlarmSpec(
            "mid-stream-failures",
            f"{s.mid_stream_failures}+ responses broke off after they started in {p} s "
            "(runtime MidStreamFailures): upstream crashes, deadline cuts or Runtime API errors.",
            s.mid_stream_failures,
            at_least,
            [
                _metric(
                    "m",
                    METRICS_NAMESPACE,
                    "MidStreamFailures",
                    function,
                    "Sum",
                    p,
                    return_data=True,
                )
            ],
        ),
        AlarmSpec(
            "api-5xx",
            f"More than {s.api_5xx_rate_percent:g}% of API requests got a 5XX in {p} s "
            "(API Gateway 5XXError): the function failed, timed out or was throttled.",
            s.api_5xx_rate_percent,
            "GreaterThanThreshold",
            [
                _metric("m", "AWS/ApiGateway", "5XXError", api, "Average", p, return_data=False),
                {"id": "rate", "expression": "100 * m", "label": "5XX (%)", "return_data": True},
            ],
        ),
        AlarmSpec(
            "concurrency",
            f"Concurrent executions reached {concurrency} ({s.concurrency_percent:g}% of "
            f"{args.concurrency_limit}): throttling is near. Each chat stream counts as "
            "one execution for its whole length.",
            concurrency,
            at_least,
            [
                _metric(
                    "m",
                    "AWS/Lambda",
                    "ConcurrentExecutions",
                    function,
                    "Maximum",
                    p,
                    return_data=True,
                )
            ],
        ),
    ]


def dashboard_body(
    region: str,
    fn: str,
    api_name: str,
    stage: str,
    init_namespace: str,
    alarm_arns: Sequence[str],
    concurrency_limit: int,
    s: MonitoringConfig,
) -> dict[str, Any]:
    """Requests, errors, throttles, concurrency, cold starts and phases, time to first byte,
    stream durations: one row of two widgets each, alarms on top."""
    ns = METRICS_NAMESPACE
    f = ("FunctionName", fn)

    def widget(title: str, metrics: list[list[Any]], **extra: Any) -> dict[str, Any]:
        props: dict[str, Any] = {"title": title, "region": region, "metrics": metrics}
        props["view"] = "timeSeries"
        props.update({"period": s.period_seconds, "stat": "Sum", **extra})
        return {"type": "metric", "width": 12, "height": 6, "properties": props}

    def pct(metric: str, label: str) -> list[list[Any]]:
        return [
            [ns, metric, *f, {"stat": stat, "label": f"{label} {stat}"}]
            for stat in ("p50", "p90", "p99")
        ]

    widgets = [
        {
            "type": "alarm",
            "width": 24,
            "height": 3,
            "properties": {"title": "Alarms", "alarms": list(alarm_arns)},
        },
        widget(
            "Requests (by status class)",
            [["AWS/Lambda", "Invocations", *f, {"label": "Invocations"}]]
            + [[ns, "Requests", *f, "StatusClass", c, {"label": c}] for c in STATUS_CLASSES],
        ),
        widget(
            "Errors",
            [
                ["AWS/Lambda", "Errors", *f, {"label": "Function errors"}],
                [ns, "MidStreamFailures", *f, {"label": "Mid-stream failures"}],
                [
                    "AWS/ApiGateway",
                    "5XXError",
                    "ApiName",
                    api_name,
                    "Stage",
                    stage,
                    {"label": "API 5XX"},
                ],
                [
                    "AWS/ApiGateway",
                    "4XXError",
                    "ApiName",
                    api_name,
                    "Stage",
                    stage,
                    {"label": "API 4XX"},
                ],
            ],
        ),
        widget("Throttles", [["AWS/Lambda", "Throttles", *f, {"label": "Throttles"}]]),
        widget(
            "Concurrency",
            [["AWS/Lambda", "ConcurrentExecutions", *f, {"stat": "Maximum", "label": "Max"}]],
            annotations={
                "horizontal": [
                    {"label": "limit", "value": concurrency_limit},
                    {
                        "label": f"alarm ({s.concurrency_percent:g}%)",
                        "value": math.ceil(concurrency_limit * s.concurrency_percent / 100),
                    },
                ]
            },
        ),
        widget(
            "Cold starts (by init outcome)",
            [[ns, "ColdStarts", *f, "InitOutcome", o, {"label": o}] for o in INIT_OUTCOMES]
            + [[init_namespace, "InitFailures", {"label": "failed (Lambda's record)"}]],
        ),
        widget(
            "Cold-start phases (ms, p90)",
            [
                [ns, "ConfigFetchTime", *f, {"label": "config + secrets fetch"}],
                [ns, "UpstreamBootTime", *f, {"label": "LibreChat boot"}],
                [ns, "InitDuration", *f, {"label": "init (runtime)"}],
            ],
            stat="p90",
        ),
        widget("Time to first byte: upstream headers (ms)", pct("UpstreamHeadersTime", "headers")),
        widget(
            "Stream durations (ms)",
            [
                *pct("StreamDuration", "stream"),
                [ns, "BackgroundHoldTime", *f, {"stat": "p90", "label": "background hold p90"}],
            ],
        ),
    ]
    return {"widgets": widgets}


#: (key, title, query): the common questions, saved in Logs Insights.
QUERIES = (
    (
        "slowest-first-bytes",
        "slowest first bytes",
        'filter message = "request" and ispresent(upstreamHeadersMs)\n'
        "| fields @timestamp, requestId, method, path, status, upstreamHeadersMs, durationMs\n"
        "| sort upstreamHeadersMs desc\n"
        "| limit 50",
    ),
    (
        "errors-by-type",
        "errors by type",
        'filter level = "ERROR" or (type like /^platform\\./ and record.status != "success"'
        " and ispresent(record.status))\n"
        "| parse error /^(?<kind>[^:(]+)/\n"
        "| stats count(*) as errors"
        " by coalesce(errorType, record.errorType, kind, message) as type\n"
        "| sort errors desc",
    ),
    (
        "cold-starts-by-phase",
        "cold starts by phase",
        "filter ispresent(ColdStarts) or ispresent(ConfigFetchTime)"
        " or ispresent(UpstreamBootTime)\n"
        "| stats sum(ColdStarts) as coldStarts, avg(ConfigFetchTime) as configFetchMs,"
        " avg(UpstreamBootTime) as upstreamBootMs, avg(InitDuration) as initMs,"
        " max(InitDuration) as slowestInitMs by bin(1h) as hour\n"
        "| sort hour desc",
    ),
)
