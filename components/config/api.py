"""`api`: the REST API stage that streams the function's responses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from pydantic import Field

from components import aws_rules
from components.config.base import Names, Problem, Retention, Section, rule


class ApiConfig(Section):
    stage_name: Annotated[str, rule(aws_rules.check_stage_name)] = Field(
        "live", description="API Gateway stage name"
    )
    endpoint_type: aws_rules.EndpointType = Field(
        "REGIONAL", description="streams may idle 5 min on `REGIONAL`, 30 s on `EDGE`"
    )
    binary_media_types: Names = Field(
        ("*/*",),
        description="request content types passed base64-encoded, so request bodies reach the "
        "function unaltered",
    )
    throttling_burst_limit: int = Field(
        100,
        ge=1,  # 0 refuses every request
        le=5000,
        description="stage burst limit (requests); the default keeps one client from using the "
        "account's whole API Gateway quota",
    )
    throttling_rate_limit: float = Field(
        50, ge=1, le=10_000, description="stage steady-state requests per second"
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
    keep_execute_api_endpoint: bool = Field(
        False,
        description="keep the API's default `execute-api` URL answering beside the custom domain "
        "(for debugging); without a custom domain it always answers",
    )
    web_acl_arn: Annotated[str, rule(aws_rules.check_web_acl_arn)] | None = Field(
        None, description="an existing regional WAFv2 web ACL to associate with the stage"
    )
    rate_limit_per_ip: Annotated[int, Field(ge=10, le=2_000_000_000)] | None = Field(
        None,
        description="a web ACL of the stack's own (`<name>-rate`) blocks a client IP above this "
        "many requests in 5 minutes (stage throttling is per stage, not per client)",
    )
    stream_check_token_parameter: Annotated[str, rule(aws_rules.check_ssm_name)] | None = Field(
        None,
        description="turns the runtime's stream check (`/_runtime/stream-check`, `make smoke`) "
        "on: it answers only requests carrying this SSM parameter's value in "
        "`X-Stream-Check-Token` (the runtime reads it at cold start); unset, the check is off",
    )

    def related_problems(self) -> Iterator[Problem]:
        if self.rate_limit_per_ip is not None and self.web_acl_arn is not None:
            yield (
                "rateLimitPerIp",
                "cannot be set with api.webAclArn (a stage takes one web ACL): add a rate-based "
                "rule to that web ACL instead",
            )
