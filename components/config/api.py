"""`api`: the REST API stage that streams the function's responses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from pydantic import Field

from components import naming
from components.config.base import Names, Problem, Retention, Section, rule


class ApiConfig(Section):
    stage_name: Annotated[str, rule(naming.check_stage_name)] = Field(
        "live", description="API Gateway stage name"
    )
    endpoint_type: naming.EndpointType = Field(
        "REGIONAL", description="streams may idle 5 min on `REGIONAL`, 30 s on `EDGE`"
    )
    binary_media_types: Names = Field(
        ("*/*",),
        description="request content types passed base64-encoded, so request bodies reach the "
        "function unaltered",
    )
    throttling_burst_limit: Annotated[int, Field(ge=0, le=5000)] | None = Field(
        None, description="stage burst limit (set both limits or neither)"
    )
    throttling_rate_limit: Annotated[float, Field(ge=0, le=10_000)] | None = Field(
        None, description="stage steady-state requests per second (set both limits or neither)"
    )
    log_retention_days: Retention | None = Field(
        None,
        description="access log retention",
        json_schema_extra={"shown_default": "`function.logRetentionDays`"},
    )
    access_logging: bool = Field(
        True,
        description="JSON access logs; needs the account's API Gateway CloudWatch role (set once "
        "per account and region, outside this project)",
    )

    def related_problems(self) -> Iterator[Problem]:
        burst, rate = self.throttling_burst_limit, self.throttling_rate_limit
        if (burst is None) != (rate is None):
            given, missing = (
                ("throttlingBurstLimit", "throttlingRateLimit")
                if rate is None
                else ("throttlingRateLimit", "throttlingBurstLimit")
            )
            yield (
                missing,
                f"is needed with api.{given}: set both, or neither (the provider sends -1, "
                "throttling disabled, for the one left out)",
            )
