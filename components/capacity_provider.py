"""The capacity a Lambda Managed Instances function runs on: a capacity provider and its operator.

A capacity provider (docs: lambda-managed-instances-capacity-providers.html) tells Lambda where
to launch the EC2 instances that host a managed-mode function's execution environments: the
stack's subnets and security groups, the architecture (it must match the function's), optionally
which instance types, how far it may scale (a vCPU ceiling, and either AWS's automatic scaling
or a CPU utilisation target) and a customer-managed KMS key.

Lambda launches and manages those instances by assuming the operator role. The role trusts
`lambda.amazonaws.com` and carries AWS's managed policy `AWSLambdaManagedEC2ResourceOperator`
and nothing else, as lambda-managed-instances-operator-role.html prescribes; the trust policy is
the documented one (Lambda sends no source condition keys for this role that AWS documents).

The provider's name carries a digest of the settings AWS can only change by replacement
(instance requirements, network, KMS key; AWS::Lambda::CapacityProvider "Update requires:
Replacement"): a change gives a new name, so Pulumi creates the new provider, moves the function
to it and deletes the old one, instead of failing on a name that is still taken. The values are
checked by the stack configuration (components/config/compute.py, components/aws_rules.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

import pulumi
import pulumi_aws as aws

from components import aws_rules, names
from components.aws_rules import Architecture

#: The one metric a capacity provider's target-tracking policy can follow.
CPU_METRIC = "LambdaCapacityProviderAverageCPUUtilization"
InstanceRequirement = aws.lambda_.CapacityProviderInstanceRequirementArgsDict
ScalingConfig = aws.lambda_.CapacityProviderCapacityProviderScalingConfigArgsDict


@dataclass(frozen=True)
class CapacityProviderArgs:
    """Inputs of `CapacityProvider`."""

    name: str
    """Prefix of the provider's and its operator role's names (the stack's `name`)."""
    subnet_ids: Sequence[str]
    """Where the instances run; they need egress (NAT or VPC endpoints) for logs and images."""
    security_group_ids: Sequence[str]
    architecture: Architecture = "x86_64"
    """The function attached must have the same."""
    allowed_instance_types: Sequence[str] = ()
    """Empty: Lambda picks among every compatible type (C, M and R families, .large and up)."""
    max_vcpu_count: int | None = None
    """Ceiling on vCPUs across all instances, the hard cost limit; None: AWS's default."""
    target_cpu_utilization: float | None = None
    """Percent; None lets AWS scale automatically, a value tracks that CPU target instead."""
    kms_key_arn: str | None = None
    """Customer-managed key for the provider's data; None: an AWS-owned key."""
    tags: Mapping[str, str] = field(default_factory=dict)


def physical_name(args: CapacityProviderArgs) -> str:
    """`<name>-<digest>`: the digest changes exactly when AWS must replace the provider."""
    replace_only = {
        "architecture": args.architecture,
        "allowed_instance_types": sorted(args.allowed_instance_types),
        "subnet_ids": sorted(args.subnet_ids),
        "security_group_ids": sorted(args.security_group_ids),
        "kms_key_arn": args.kms_key_arn,
    }
    digest = hashlib.sha256(json.dumps(replace_only, sort_keys=True).encode()).hexdigest()
    return names.capacity_provider_name(args.name, digest)


# The SDK's TypedDicts mark every key of these two blocks required; AWS's API and the provider
# schema take each one as optional (Lambda API reference: InstanceRequirements,
# CapacityProviderScalingConfig), and only the keys set here are sent.
def instance_requirements(args: CapacityProviderArgs) -> InstanceRequirement:
    """The architecture, and the allowed types when some are given (Lambda chooses otherwise)."""
    block: dict[str, list[str]] = {"architectures": [args.architecture]}
    if args.allowed_instance_types:
        block["allowed_instance_types"] = list(args.allowed_instance_types)
    return cast(InstanceRequirement, block)


def scaling_config(args: CapacityProviderArgs) -> ScalingConfig | None:
    """The provider's scaling block, or None to leave AWS's automatic scaling untouched."""
    if args.max_vcpu_count is None and args.target_cpu_utilization is None:
        return None
    block: dict[str, object] = {"scaling_mode": "Auto"}
    if args.max_vcpu_count is not None:
        block["max_vcpu_count"] = args.max_vcpu_count
    if args.target_cpu_utilization is not None:
        block["scaling_mode"] = "Manual"
        block["scaling_policies"] = [
            {"predefined_metric_type": CPU_METRIC, "target_value": args.target_cpu_utilization}
        ]
    return cast(ScalingConfig, block)


class CapacityProvider(pulumi.ComponentResource):
    """Operator role (AWS managed policy only) and the capacity provider in the stack's VPC."""

    operator_role: aws.iam.Role
    capacity_provider: aws.lambda_.CapacityProvider
    arn: pulumi.Output[str]
    provider_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: CapacityProviderArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("librechat:components:CapacityProvider", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        partition = aws.get_partition(opts=pulumi.InvokeOptions(parent=self)).partition
        tags = dict(args.tags)

        # 1. The role Lambda assumes to run instances; AWS's managed policy is all it holds, and
        #    its permissions boundary too (the CI deploy roles require that boundary).
        operator_policy_arn = f"arn:{partition}:iam::aws:policy/{names.OPERATOR_POLICY_NAME}"
        self.operator_role = aws.iam.Role(
            f"{name}-operator",
            name=names.operator_role_name(args.name),
            assume_role_policy=aws_rules.LAMBDA_TRUST_POLICY,
            permissions_boundary=operator_policy_arn,
            tags=tags,
            opts=child,
        )
        operator_policy = aws.iam.RolePolicyAttachment(
            f"{name}-operator-policy",
            role=self.operator_role.name,
            policy_arn=operator_policy_arn,
            opts=child,
        )

        # 2. The provider on the stack's network; it waits for the role to hold its policy.
        scaling = scaling_config(args)
        self.capacity_provider = aws.lambda_.CapacityProvider(
            f"{name}-provider",
            name=physical_name(args),
            vpc_config={
                "subnet_ids": list(args.subnet_ids),
                "security_group_ids": list(args.security_group_ids),
            },
            permissions_config={"capacity_provider_operator_role_arn": self.operator_role.arn},
            instance_requirements=[instance_requirements(args)],
            capacity_provider_scaling_configs=[scaling] if scaling else None,
            kms_key_arn=args.kms_key_arn,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[operator_policy]),
        )

        self.arn = self.capacity_provider.arn
        self.provider_name = self.capacity_provider.name
        self.register_outputs({"arn": self.arn, "provider_name": self.provider_name})
