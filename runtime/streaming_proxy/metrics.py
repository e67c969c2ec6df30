"""CloudWatch metrics carried on the runtime's own log lines (Embedded Metric Format).

CloudWatch Logs turns a JSON log line with an ``_aws`` block into metrics, so the figures that
matter exist without any API call from the function and without an agent. Only the lines
named in ``_BUILDERS`` carry metrics, built from numbers and labels the runtime chose (status
class, durations, byte counts, outcomes): never a header value, a path or a secret. Lines that
carry metrics are written at any LOG_LEVEL (log.py), or the metrics would vanish with them.

Per request (line ``request``): ``Requests`` (also by ``StatusClass``), ``UpstreamHeadersTime``,
``ResponseBytes``, ``StreamDuration`` (to the end of the response, before any background hold)
and ``MidStreamFailures`` (a response that had started and then broke: error trailers, a
rejected or broken Runtime API stream). ``BackgroundHoldTime`` comes from ``background hold``.
Per cold start: ``ConfigFetchTime`` (config object and secrets), ``UpstreamBootTime`` (also
after a restart), ``InitDuration`` and ``ColdStarts`` by ``InitOutcome`` (ready, async,
failed).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

#: The CloudWatch namespace of every runtime metric (components/contract.py states it too).
NAMESPACE = "LibreChatLambda"
_function = ["unknown"]


def configure(function_name: str) -> None:
    """The FunctionName dimension: set once, from the settings, at start."""
    _function[0] = function_name


def embedded(message: str, fields: Mapping[str, Any], timestamp: float) -> dict[str, Any] | None:
    """The EMF members for a log line, or None when this line carries no metrics."""
    build = _BUILDERS.get(message)
    if build is None:
        return None
    metrics, labels = build(fields)
    return document(metrics, labels, timestamp) if metrics else None


def document(
    metrics: Mapping[str, tuple[float, str]], labels: Mapping[str, str], timestamp: float
) -> dict[str, Any]:
    """``_aws`` metadata plus the target members: metrics by FunctionName, and ``Requests`` /
    ``ColdStarts`` again by their label (one extra dimension set each, not a cross product)."""
    definitions = tuple((name, unit) for name, (_, unit) in metrics.items())
    return {
        "_aws": {
            "Timestamp": int(timestamp * 1000),
            "CloudWatchMetrics": _directives(definitions, tuple(labels)),
        },
        "FunctionName": _function[0],
        **labels,
        **{name: value for name, (value, _) in metrics.items()},
    }


@functools.lru_cache(maxsize=64)
def _directives(
    definitions: tuple[tuple[str, str], ...], labels: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The MetricDirectives for one shape of line; a few shapes recur, so each is built once."""
    names = {name for name, _ in definitions}
    directives = [
        {
            "Namespace": NAMESPACE,
            "Dimensions": [["FunctionName"]],
            "Metrics": [{"Name": name, "Unit": unit} for name, unit in definitions],
        }
    ]
    for label, counted in (("StatusClass", "Requests"), ("InitOutcome", "ColdStarts")):
        if label in labels and counted in names:
            directives.append(
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [["FunctionName", label]],
                    "Metrics": [{"Name": counted, "Unit": "Count"}],
                }
            )
    return directives


Built = tuple[dict[str, tuple[float, str]], dict[str, str]]


def _request(fields: Mapping[str, Any]) -> Built:
    status = fields.get("status")
    metrics: dict[str, tuple[float, str]] = {
        "Requests": (1, "Count"),
        # A response that started (bytes logged) and then failed, or a broken Runtime API link.
        "MidStreamFailures": (
            int("error" in fields and ("bytes" in fields or "runtimeApi" in fields)),
            "Count",
        ),
    }
    _number(metrics, "UpstreamHeadersTime", fields.get("upstreamHeadersMs"), "Milliseconds")
    _number(metrics, "ResponseBytes", fields.get("bytes"), "Bytes")
    _number(
        metrics, "StreamDuration", fields.get("streamMs", fields.get("durationMs")), "Milliseconds"
    )
    status_class = f"{status // 100}xx" if isinstance(status, int) else "none"
    return metrics, {"StatusClass": status_class}


def _hold(fields: Mapping[str, Any]) -> Built:
    metrics: dict[str, tuple[float, str]] = {}
    _number(metrics, "BackgroundHoldTime", fields.get("waitedMs"), "Milliseconds")
    return metrics, {}


def _config_fetched(fields: Mapping[str, Any]) -> Built:
    metrics: dict[str, tuple[float, str]] = {}
    _number(metrics, "ConfigFetchTime", fields.get("elapsedMs"), "Milliseconds")
    return metrics, {}


def _upstream_healthy(fields: Mapping[str, Any]) -> Built:
    metrics: dict[str, tuple[float, str]] = {}
    _number(metrics, "UpstreamBootTime", fields.get("waitedMs"), "Milliseconds")
    return metrics, {}


def _init(outcome: str) -> Callable[[Mapping[str, Any]], Built]:
    def build(fields: Mapping[str, Any]) -> Built:
        metrics: dict[str, tuple[float, str]] = {"ColdStarts": (1, "Count")}
        _number(metrics, "InitDuration", fields.get("initMs"), "Milliseconds")
        return metrics, {"InitOutcome": outcome}

    return build


def _number(metrics: dict[str, tuple[float, str]], name: str, value: object, unit: str) -> None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        metrics[name] = (value, unit)


#: Log message -> the metrics its line carries. The messages are those main.py, proxy.py,
#: upstream.py and background.py write; tests/runtime/test_metrics.py reads them through the
#: real runtime, so a renamed message fails there.
_BUILDERS: dict[str, Callable[[Mapping[str, Any]], Built]] = {
    "request": _request,
    "background hold": _hold,
    "config and secrets fetched": _config_fetched,
    "upstream healthy": _upstream_healthy,
    "init done": _init("ready"),
    "init budget spent; the first invocation waits for the upstream": _init("async"),
    "init failed": _init("failed"),
}
