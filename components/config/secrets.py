"""`secrets`: SSM parameters that become variables, read at deploy time or at cold start."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Annotated, Literal

from pydantic import Field

from components import aws_rules
from components.config.base import Problem, Section, rule
from components.config.environment import variable_problem


class SecretsConfig(Section):
    mode: Literal["deploy", "runtime"] = Field(
        "runtime",
        description="`runtime`: only the names (`SSM_SECRETS`) in the function and the state, "
        "read by the runtime at cold start; `deploy`: values read at deploy time into the "
        "environment (needs `function.kmsKeyArn`; see [Secrets](#secrets-two-modes))",
    )
    parameters: Mapping[str, Annotated[str, rule(aws_rules.check_ssm_name)]] = Field(
        {},
        description="`{ENV_NAME: /ssm/parameter/name}` (see [Secrets](#secrets-two-modes))",
    )
    kms_key_arn: Annotated[str, rule(aws_rules.check_kms_key_arn)] | None = Field(
        None,
        description="customer-managed KMS key of the parameters (runtime mode grants "
        "`kms:Decrypt` on it through SSM)",
    )

    def related_problems(self) -> Iterator[Problem]:
        for name in self.parameters:
            problem = variable_problem(name)
            if problem is not None:
                yield (f"parameters.{name}", problem)
