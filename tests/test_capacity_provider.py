"""CapacityProvider: the operator role holds AWS's managed policy alone, the provider sits on the
stack's network with the function's architecture, scaling and KMS are optional, and a change AWS
can only make by replacement gives the provider a new name."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pulumi
import pytest

from components.capacity_provider import (
    CapacityProvider,
    CapacityProviderArgs,
    physical_name,
)
from tests.pulumi_mocks import ACCOUNT_ID, DEFAULT_REGION, PulumiMocks, T, run_program

SUBNETS = ("subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2", "subnet-0aaaaaaaaaaaaaaa3")
SECURITY_GROUPS = ("sg-0bbbbbbbbbbbbbbb1",)
KMS_KEY = f"arn:aws:kms:{DEFAULT_REGION}:{ACCOUNT_ID}:key/0a1b2c3d-4e5f-4a1b-8c2d-3e4f5a6b7c8d"
BASE = CapacityProviderArgs(
    name="librechat-test", subnet_ids=SUBNETS, security_group_ids=SECURITY_GROUPS
)


def deploy(mocks: PulumiMocks, **overrides: Any) -> dict[str, Any]:
    """Run a CapacityProvider under the mocks; its outputs and the provider's inputs."""

    def build() -> dict[str, pulumi.Input[Any]]:
        cp = CapacityProvider("compute", dataclasses.replace(BASE, **overrides))
        return {"provider_name": cp.provider_name, "arn": cp.arn}

    out = run_program(build)
    out["inputs"] = mocks.inputs_of(T.CAPACITY_PROVIDER)
    return out


def test_operator_role_trusts_lambda_and_holds_only_the_aws_managed_policy(mocks: PulumiMocks):
    out = deploy(mocks)

    inputs = out["inputs"]
    role = mocks.inputs_of(T.ROLE)
    assert role["name"] == "librechat-test-capacity-operator"
    trust = json.loads(role["assumeRolePolicy"])
    assert trust["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    attachment = mocks.inputs_of(T.ROLE_POLICY_ATTACHMENT)
    assert attachment["policyArn"] == "arn:aws:iam::aws:policy/AWSLambdaManagedEC2ResourceOperator"
    assert attachment["role"] == mocks.outputs["compute-operator"]["name"]
    assert mocks.of_type(T.ROLE_POLICY) == []
    assert inputs["permissionsConfig"] == {
        "capacityProviderOperatorRoleArn": mocks.outputs["compute-operator"]["arn"]
    }


def test_provider_runs_on_the_stacks_subnets_and_security_groups(mocks: PulumiMocks):
    out = deploy(mocks, tags={"Stack": "test"})

    inputs = out["inputs"]
    assert inputs["vpcConfig"] == {
        "subnetIds": list(SUBNETS),
        "securityGroupIds": list(SECURITY_GROUPS),
    }
    assert inputs["tags"] == {"Stack": "test"}


def test_instance_requirements_carry_the_architecture_and_the_allowed_types(mocks: PulumiMocks):
    out = deploy(mocks, architecture="arm64", allowed_instance_types=("c7g.large", "m7g.large"))

    inputs = out["inputs"]
    assert inputs["instanceRequirements"] == [
        {"architectures": ["arm64"], "allowedInstanceTypes": ["c7g.large", "m7g.large"]}
    ]


def test_without_allowed_types_lambda_chooses_among_all_of_the_architecture(mocks: PulumiMocks):
    out = deploy(mocks)

    inputs = out["inputs"]
    assert inputs["instanceRequirements"] == [{"architectures": ["x86_64"]}]
    assert "capacityProviderScalingConfigs" not in inputs
    assert "kmsKeyArn" not in inputs


def test_a_vcpu_ceiling_alone_keeps_automatic_scaling(mocks: PulumiMocks):
    out = deploy(mocks, max_vcpu_count=24)

    inputs = out["inputs"]
    assert inputs["capacityProviderScalingConfigs"] == [{"scalingMode": "Auto", "maxVcpuCount": 24}]


def test_a_cpu_target_switches_to_manual_target_tracking(mocks: PulumiMocks):
    out = deploy(mocks, max_vcpu_count=48, target_cpu_utilization=60)

    inputs = out["inputs"]
    assert inputs["capacityProviderScalingConfigs"] == [
        {
            "scalingMode": "Manual",
            "maxVcpuCount": 48,
            "scalingPolicies": [
                {
                    "predefinedMetricType": "LambdaCapacityProviderAverageCPUUtilization",
                    "targetValue": 60,
                }
            ],
        }
    ]


def test_kms_key_is_passed_when_given_and_the_arn_is_the_providers(mocks: PulumiMocks):
    out = deploy(mocks, kms_key_arn=KMS_KEY)

    inputs = out["inputs"]
    assert inputs["kmsKeyArn"] == KMS_KEY
    name = physical_name(dataclasses.replace(BASE, kms_key_arn=KMS_KEY))
    assert inputs["name"] == name
    assert out["provider_name"] == name
    assert out["arn"] == (f"arn:aws:lambda:{DEFAULT_REGION}:{ACCOUNT_ID}:capacity-provider:{name}")


@pytest.mark.parametrize(
    "change",
    [
        {"architecture": "arm64"},
        {"allowed_instance_types": ("m7i.large",)},
        {"subnet_ids": SUBNETS[:2]},
        {"security_group_ids": ("sg-0ccccccccccccccc1",)},
        {"kms_key_arn": KMS_KEY},
    ],
)
def test_a_replace_only_setting_changes_the_name(change: dict[str, Any]):
    before = physical_name(BASE)
    assert before.startswith("librechat-test-")
    assert physical_name(dataclasses.replace(BASE, **change)) != before


@pytest.mark.parametrize(
    "change",
    [
        {"max_vcpu_count": 100},
        {"target_cpu_utilization": 50.0},
        {"tags": {"Owner": "x"}},
        {"subnet_ids": tuple(reversed(SUBNETS))},
    ],
)
def test_an_in_place_setting_keeps_the_name(change: dict[str, Any]):
    assert physical_name(dataclasses.replace(BASE, **change)) == physical_name(BASE)
