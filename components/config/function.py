"""`function`: the Lambda function's size, limits, logs and concurrency."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from pydantic import Field

from components import aws_rules
from components.config.base import Problem, Retention, Section, rule

#: Standard mode's reservation when none is set: at 1 to 3 environments per chat answer (its
#: POST, its stream GET, a title), about 20 answers at once; it caps what a flood of requests can
#: hold (each stream holds an environment) and leaves an account's default 1000 to the rest.
DEFAULT_RESERVED_CONCURRENCY = 50


class FunctionConfig(Section):
    architecture: aws_rules.Architecture = Field(
        "x86_64", description="the image is built for the matching single platform"
    )
    memory_mb: int = Field(
        2048,
        ge=aws_rules.STANDARD_MEMORY_MB[0],
        le=aws_rules.MANAGED_MEMORY_MB[1],
        description="memory in MB (LibreChat wants 1 to 2 GB); standard mode takes up to "
        f"{aws_rules.STANDARD_MEMORY_MB[1]}, managed instances "
        f"{aws_rules.MANAGED_MEMORY_MB[0]} and up in whole vCPUs (`compute.memoryPerVcpuGib`)",
    )
    timeout_seconds: int = Field(
        900, ge=1, le=900, description="invocation timeout; also the longest a response can stream"
    )
    ephemeral_storage_mb: int = Field(1024, ge=512, le=10240, description="size of `/tmp` in MB")
    log_retention_days: Retention = Field(
        30, description="retention of the function's log group (a value CloudWatch Logs accepts)"
    )
    tracing: bool = Field(False, description="X-Ray active tracing")
    reserved_concurrency: Annotated[int, Field(ge=1, le=100_000)] | None = Field(
        None,
        description="reserved concurrent executions: the most environments the function (and "
        "so one abusive client) can hold, and a share no other function can take",
        json_schema_extra={"shown_default": f"{DEFAULT_RESERVED_CONCURRENCY} in standard mode"},
    )
    provisioned_concurrency: int = Field(
        0,
        ge=0,
        le=100_000,
        description="> 0: publish a version, alias `live` with that many initialized "
        "environments; the API then calls the alias",
    )

    permissions_boundary: bool = Field(
        True,
        description="the function's role carries the permissions boundary `<name>-boundary` "
        "that ci/ creates, which the CI deploy roles require; false only for a stack deployed "
        "without ci/'s roles",
    )
    kms_key_arn: Annotated[str, rule(aws_rules.check_kms_key_arn)] | None = Field(
        None,
        description="customer-managed KMS key encrypting the function's environment: reading "
        "its configuration then needs `kms:Decrypt` on it; required with `secrets.mode: deploy`",
    )

    @property
    def platform(self) -> str:
        """The Docker platform matching the function's architecture."""
        return aws_rules.PLATFORMS[self.architecture]

    def related_problems(self) -> Iterator[Problem]:
        reserved = self.reserved_concurrency or DEFAULT_RESERVED_CONCURRENCY
        provisioned = self.provisioned_concurrency
        if provisioned > reserved:
            yield (
                "provisionedConcurrency",
                f"{provisioned} exceeds function.reservedConcurrency {reserved}; lower it or "
                "raise the reservation",
            )
