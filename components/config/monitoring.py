"""`monitoring`: alarms, a dashboard and saved queries (components/monitoring.py); on by default."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import Field

from components import aws_rules
from components.config.base import Problem, Section, rule


class MonitoringConfig(Section):
    enabled: bool = Field(
        True,
        description="`false`: no alarms, topic, dashboard, metric filter or saved queries; the "
        "other monitoring keys are then not read",
    )
    alarm_email: Annotated[str, rule(aws_rules.check_email)] | None = Field(
        None,
        description="subscribed to the alarm topic the stack creates (confirm the email AWS sends)",
    )
    alarm_topic_arn: Annotated[str, rule(aws_rules.check_sns_topic_arn)] | None = Field(
        None,
        description="an existing SNS topic for alarm and recovery notices instead of a new one",
    )
    period_seconds: Literal[60, 300, 900, 3600] = Field(
        300, description="the window each alarm evaluates (one window breaching alarms)"
    )
    error_rate_percent: float = Field(
        5.0, gt=0, le=100, description="alarm when more than this share of invocations fail"
    )
    throttles: int = Field(1, ge=1, description="alarm at this many throttled invocations")
    init_failures: int = Field(
        1, ge=1, description="alarm at this many failed cold starts (Lambda's own init reports)"
    )
    mid_stream_failures: int = Field(
        3, ge=1, description="alarm at this many responses that broke off after they started"
    )
    api_5xx_rate_percent: float = Field(
        5.0,
        gt=0,
        le=100,
        alias="api5xxRatePercent",
        description="alarm when more than this share of API requests get a 5XX",
    )
    concurrency_percent: float = Field(
        80.0,
        gt=0,
        le=100,
        description="alarm when concurrent executions reach this share of the limit "
        "(managed instances: `compute.maxEnvironments` x `compute.maxConcurrency`; else "
        "the reservation, `function.reservedConcurrency`)",
    )

    def related_problems(self) -> Iterator[Problem]:
        if self.alarm_email and self.alarm_topic_arn:
            yield (
                "alarmEmail",
                "and monitoring.alarmTopicArn are both set; subscribe the address to that topic "
                "yourself, or drop the topic ARN to have one created",
            )
