"""CloudWatch metrics carried on the runtime's own log lines (Embedded Metric Format).

CloudWatch Logs turns a JSON log line with an ``_aws`` block into metrics, so the figures that
matter exist without any API call from the function and without an agent. A line carries
metrics when its writer passes one of the builders below to log.py, made from numbers and
labels the runtime chose (status class, durations, byte counts, outcomes): never a header
value, a path or a secret. Lines that carry metrics are written at any LOG_LEVEL (log.py), or
the metrics would vanish with them.

Per request (``request``, a view of its Outcome): ``Requests`` (also by ``StatusClass``),
``UpstreamHeadersTime``, ``ResponseBytes``, ``StreamDuration`` (to the end of the response,
before any background hold) and ``MidStreamFailures`` (a response that had started and then
broke: error trailers, a rejected or broken Runtime API stream). ``BackgroundHoldTime`` per
background hold. Per cold start: ``ConfigFetchTime`` (config object and secrets),
``UpstreamBootTime`` (also after a restart), ``InitDuration`` and ``ColdStarts`` by
``InitOutcome`` (ready, async, failed).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from streaming_proxy.outcome import Outcome

#: The CloudWatch namespace of every runtime metric (components/monitoring.py alarms on it).
NAMESPACE = "LibreChatLambda"
_function = ["unknown"]


class Measured(NamedTuple):
    """What a line measures: metrics (value, unit) by name, and the labels it is counted by."""

    metrics: dict[str, tuple[float, str]]
    labels: dict[str, str]

    def document(self, timestamp: float) -> dict[str, Any]:
        """The line's members that make it an EMF document (log.py adds them)."""
        return document(self, timestamp)


def configure(function_name: str) -> None:
    """The FunctionName dimension: set once, from the settings, at start."""
    _function[0] = function_name


def document(measured: Measured, timestamp: float) -> dict[str, Any]:
    """``_aws`` metadata plus the target members: metrics by FunctionName, and ``Requests`` /
    ``ColdStarts`` again by their label (one extra dimension set each, not a cross product)."""
    metrics, labels = measured
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


def request(outcome: Outcome) -> Measured:
    metrics: dict[str, tuple[float, str]] = {
        "Requests": (1, "Count"),
        "MidStreamFailures": (int(outcome.broke_mid_stream), "Count"),
    }
    if outcome.upstream_headers_ms is not None:
        metrics["UpstreamHeadersTime"] = (outcome.upstream_headers_ms, "Milliseconds")
    if outcome.bytes_sent is not None:
        metrics["ResponseBytes"] = (outcome.bytes_sent, "Bytes")
    streamed = outcome.duration_ms if outcome.stream_ms is None else outcome.stream_ms
    if streamed is not None:
        metrics["StreamDuration"] = (streamed, "Milliseconds")
    status = outcome.status
    return Measured(metrics, {"StatusClass": "none" if status is None else f"{status // 100}xx"})


def background_hold(waited_ms: float) -> Measured:
    return Measured({"BackgroundHoldTime": (waited_ms, "Milliseconds")}, {})


def config_fetch(elapsed_ms: float) -> Measured:
    return Measured({"ConfigFetchTime": (elapsed_ms, "Milliseconds")}, {})


def upstream_boot(waited_ms: float) -> Measured:
    return Measured({"UpstreamBootTime": (waited_ms, "Milliseconds")}, {})


def cold_start(outcome: str, init_ms: float | None = None) -> Measured:
    """``outcome``: ready, async (init ended before the upstream was ready) or failed."""
    metrics: dict[str, tuple[float, str]] = {"ColdStarts": (1, "Count")}
    if init_ms is not None:
        metrics["InitDuration"] = (init_ms, "Milliseconds")
    return Measured(metrics, {"InitOutcome": outcome})
