"""What only AWS shows of a deployed stack, for `make acceptance` (ops/acceptance.py).

CloudWatch delivers both a little late, so each check asks until its wait has passed: the
access log records streamed responses, the function's log group has the runtime's lines
(egress works), and CloudWatch extracted the metrics the runtime declared in its log lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from ops.journey import Checks

METRICS_NAMESPACE = "LibreChatLambda"


def log_lines(logs: Any, group: str, pattern: str, since_ms: int) -> list[str]:
    found = logs.filter_log_events(
        logGroupName=group, filterPattern=pattern, startTime=since_ms, limit=50
    )
    return [event["message"] for event in found.get("events", [])]


def wait_for(
    probe: Callable[[], tuple[bool, str]], wait: float, every: float = 10.0
) -> tuple[bool, str]:
    """CloudWatch delivers logs and metrics a little late: ask until `wait` has passed."""
    deadline = time.monotonic() + wait
    while True:
        ok, evidence = probe()
        if ok or time.monotonic() >= deadline:
            return ok, evidence
        time.sleep(min(every, max(wait / 10, 0.2)))


def aws_checks(
    report: Checks, outputs: Mapping[str, Any], name: str, stage: str, aws: Callable[[str], Any],
    since_ms: int, wait: float,
) -> None:  # fmt: skip
    logs = aws("logs")
    access_group = f"/aws/apigateway/{name}/{stage}/access"

    def streamed_in_access_log() -> tuple[bool, str]:
        lines = log_lines(logs, access_group, '"STREAMED"', since_ms)
        return bool(lines), f"{len(lines)} responseTransferMode STREAMED line(s) in {access_group}"

    def runtime_in_function_log() -> tuple[bool, str]:
        group = str(outputs.get("log_group_name"))
        lines = log_lines(logs, group, '"init done"', since_ms)
        return bool(lines), f"{len(lines)} 'init done' line(s) in {group}"

    def metrics_extracted() -> tuple[bool, str]:
        found = aws("cloudwatch").list_metrics(Namespace=METRICS_NAMESPACE)["Metrics"]
        names = sorted({m["MetricName"] for m in found})
        return bool(names), f"{METRICS_NAMESPACE}: {', '.join(names) or 'no metric yet'}"

    report.check("access log: responses streamed", lambda: wait_for(streamed_in_access_log, wait))
    report.check(
        "function log: the runtime's lines arrive (egress works)",
        lambda: wait_for(runtime_in_function_log, wait),
    )
    report.check(
        "CloudWatch extracted the runtime's EMF metrics", lambda: wait_for(metrics_extracted, wait)
    )
