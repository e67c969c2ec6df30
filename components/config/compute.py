"""`compute`: standard Lambda, or Lambda Managed Instances (docs/compute-modes.md).

`snapStart` is read in `standard` mode only (docs/compute-modes.md, SnapStart); the other keys
but `mode` in `managedInstances` mode only. Their AWS limits are in
the Lambda API reference (CapacityProviderScalingConfig, InstanceRequirements,
FunctionScalingConfig, LambdaManagedInstancesCapacityProviderConfig); the checks that involve
other sections (function, network) are the stack's (stack.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from components import aws_rules
from components.config.base import Problem, Section, rule

#: The most /tmp Lambda SnapStart allows, in MB (snapstart-activate).
SNAP_START_MAX_EPHEMERAL_MB = 512

InstanceType = Annotated[str, rule(aws_rules.check_instance_type)]


def _whole_number_text(value: object) -> object:
    """Digits as a number: the CLI hands `pulumi config set --path ... 4` over as text."""
    return int(value) if isinstance(value, str) and value.strip().isdigit() else value


#: GiB of memory per vCPU of a managed-instances environment: C, M and R instance families.
MemoryPerVcpu = Annotated[Literal[2, 4, 8], BeforeValidator(_whole_number_text)]


class ComputeConfig(Section):
    mode: Literal["standard", "managedInstances"] = Field(
        "standard",
        description="`standard`: one request per environment, scales to zero; "
        "`managedInstances`: Lambda Managed Instances, many streams per environment on EC2 "
        "capacity in the VPC (see [Choosing a compute mode](compute-modes.md))",
    )
    snap_start: bool = Field(
        False,
        description="standard mode: Lambda SnapStart. Every deploy publishes a version whose "
        "booted LibreChat is snapshotted, the API calls it through alias `live`, and new "
        "environments restore the snapshot instead of booting "
        "(see [SnapStart](compute-modes.md#snapstart))",
    )
    memory_per_vcpu_gib: MemoryPerVcpu = Field(
        2,
        description="managed instances: GiB of `function.memoryMb` per vCPU (2: C, 4: M, "
        "8: R instance families); the default gives LibreChat 1 vCPU at 2048 MB",
    )
    max_concurrency: int = Field(
        32,
        ge=1,
        le=1600,
        description="managed instances: requests one environment serves at once (Lambda sets "
        "`AWS_LAMBDA_MAX_CONCURRENCY` from it); 32 keeps one LibreChat process, I/O-bound "
        "while it streams, clear of CPU saturation",
    )
    min_environments: int = Field(
        3,
        ge=3,
        le=15_000,
        description="managed instances: environments kept running (AWS wants 3, one per "
        "availability zone; there is no scale to zero)",
    )
    max_environments: int = Field(
        12, ge=3, le=15_000, description="managed instances: most environments Lambda may run"
    )
    allowed_instance_types: tuple[InstanceType, ...] = Field(
        (),
        max_length=aws_rules.MAX_INSTANCE_TYPES,
        description="managed instances: EC2 types the capacity provider may launch, of "
        "`function.architecture`; empty: Lambda chooses",
        examples=["c7g.xlarge"],
    )
    max_vcpus: int | None = Field(
        None,
        ge=2,
        le=15_000,
        description="managed instances: vCPU ceiling of the whole fleet, the cost limit "
        "(none: AWS's default)",
    )
    target_cpu_utilization: float | None = Field(
        None,
        ge=1,
        le=100,
        description="managed instances: average CPU percent the fleet scales to "
        "(none: AWS scales automatically)",
    )
    kms_key_arn: Annotated[str, rule(aws_rules.check_kms_key_arn)] | None = Field(
        None, description="managed instances: customer-managed KMS key of the capacity provider"
    )

    @property
    def managed(self) -> bool:
        return self.mode == "managedInstances"

    def related_problems(self) -> Iterator[Problem]:
        if self.managed and self.snap_start:
            yield (
                "snapStart",
                "does not exist with compute.mode managedInstances (its environments are never "
                "frozen and start before traffic arrives); remove it or use compute.mode standard",
            )
        if self.max_environments < self.min_environments:
            yield (
                "maxEnvironments",
                f"{self.max_environments} is below compute.minEnvironments {self.min_environments}",
            )
