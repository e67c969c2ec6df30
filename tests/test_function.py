"""LambdaFunction: the image function's settings, its environment in both secrets modes, its
least-privilege IAM, and the alias the API calls when provisioned concurrency is on."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from components import names
from components.aws_rules import S3Location
from components.config import RuntimeConfig
from components.function import (
    LambdaFunction,
    LambdaFunctionArgs,
    ManagedCompute,
)
from components.function_policy import UNSCOPABLE_ACTIONS
from tests.config_defaults import function_settings
from tests.pulumi_mocks import (
    ACCOUNT_ID,
    DEFAULT_REGION,
    C,
    PulumiMocks,
    T,
    fake_ssm_value,
    is_secret_input,
    plain,
    run_program,
)

IMAGE_URI = f"{ACCOUNT_ID}.dkr.ecr.{DEFAULT_REGION}.amazonaws.com/repo@sha256:{'a' * 64}"
SECRETS = {"JWT_SECRET": "/ecs/genai/librechat/JWT_SECRET", "MONGO_URI": "/ecs/genai/mongo/DB_URI"}
KMS_KEY = f"arn:aws:kms:{DEFAULT_REGION}:{ACCOUNT_ID}:key/0a1b2c3d-4e5f-4a1b-8c2d-3e4f5a6b7c8d"
SUBNETS = ("subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2")
SECURITY_GROUPS = ("sg-0bbbbbbbbbbbbbbb1",)
FUNCTION_ARN = f"arn:aws:lambda:{DEFAULT_REGION}:{ACCOUNT_ID}:function:librechat-test"
CAPACITY_PROVIDER = f"arn:aws:lambda:{DEFAULT_REGION}:{ACCOUNT_ID}:capacity-provider:cp-1a2b3c4d"
MANAGED = ManagedCompute(
    capacity_provider_arn=CAPACITY_PROVIDER,
    memory_per_vcpu_gib=2,
    max_concurrency=32,
    min_environments=3,
    max_environments=12,
)


def deploy(**overrides: Any) -> dict[str, Any]:
    """Run a LambdaFunction under the mocks; its outputs, with the policy's statements."""
    args: dict[str, Any] = {
        "image_uri": IMAGE_URI,
        "function_name": "librechat-test",
        **function_settings(),
        "environment": {"DOMAIN_SERVER": "https://chat.example.com", "USE_REDIS": "true"},
        "secrets": SECRETS,
        "config_object": S3Location("config-bucket", "lambda/librechat.yaml"),
        "config_domain_from": "old.example.com",
        "files_bucket": "files-bucket",
        "subnet_ids": SUBNETS,
        "security_group_ids": SECURITY_GROUPS,
        **overrides,
    }

    def build() -> dict[str, pulumi.Input[Any]]:
        fn = LambdaFunction("function", LambdaFunctionArgs(**args))
        return {
            "policy": fn.policy_document,
            "log_group_name": fn.log_group_name,
            "streaming_invoke_arn": fn.streaming_invoke_arn,
            "qualifier": fn.qualifier,
        }

    out = run_program(build)
    out["statements"] = {s["Sid"]: s for s in json.loads(out["policy"])["Statement"]}
    return out


def environment(mocks: PulumiMocks) -> dict[str, str]:
    return plain(mocks.one(T.FUNCTION).inputs["environment"])["variables"]


def test_function_runs_the_image_with_the_configured_size_and_limits(mocks: PulumiMocks):
    deploy(memory_mb=3008, timeout_seconds=900, ephemeral_storage_mb=2048, architecture="arm64")

    inputs = mocks.assert_res("function-function", T.FUNCTION)
    assert inputs["packageType"] == "Image"
    assert inputs["imageUri"] == IMAGE_URI
    assert (inputs["memorySize"], inputs["timeout"]) == (3008, 900)
    assert inputs["ephemeralStorage"] == {"size": 2048}
    assert inputs["architectures"] == ["arm64"]
    assert inputs["name"] == "librechat-test"
    assert inputs["role"] == mocks.outputs["function-role"]["arn"]


def test_function_is_placed_in_the_given_subnets_and_security_groups(mocks: PulumiMocks):
    deploy()

    vpc = mocks.inputs_of(T.FUNCTION)["vpcConfig"]
    assert vpc == {"subnetIds": list(SUBNETS), "securityGroupIds": list(SECURITY_GROUPS)}


def test_function_logs_json_into_its_own_log_group_with_retention(mocks: PulumiMocks):
    out = deploy(log_retention_days=14)

    mocks.assert_res(
        "function-logs",
        T.LOG_GROUP,
        {"name": "/aws/lambda/librechat-test", "retentionInDays": 14, "tags": {}},
    )
    assert mocks.inputs_of(T.FUNCTION)["loggingConfig"] == {
        "logFormat": "JSON",
        "logGroup": "/aws/lambda/librechat-test",
    }
    assert out["log_group_name"] == "/aws/lambda/librechat-test"


def test_the_function_waits_for_its_policy_and_log_group(mocks: PulumiMocks):
    """Lambda checks the role's ENI rights when the function is created in a VPC."""
    deploy()

    assert {"function-access", "function-logs"} <= mocks.depends_on("function-function")


def test_environment_has_configured_runtime_and_fixed_variables(mocks: PulumiMocks):
    runtime = RuntimeConfig.model_validate(
        {"readyTimeoutSeconds": 90, "sseKeepaliveSeconds": 15, "backgroundHold": False,
         "logLevel": "DEBUG", "streamIdleTimeoutSeconds": 45, "titleWaitSeconds": 0}
    )  # fmt: skip
    deploy(base_path="chat", runtime=runtime)

    env = environment(mocks)
    expected = {
        "DOMAIN_SERVER": "https://chat.example.com",
        "USE_REDIS": "true",
        "NODE_ENV": "production",
        "LIBRECHAT_LOG_DIR": "/tmp/librechat/logs",
        "UPSTREAM_COMMAND": "node /app/api/server/index.js",
        "UPSTREAM_PORT": "3080",
        "UPSTREAM_HEALTH_PATH": "/health",
        "UPSTREAM_READY_TIMEOUT": "90",
        "SSE_KEEPALIVE_INTERVAL": "15",
        "STREAM_IDLE_TIMEOUT": "45",
        "BACKGROUND_TITLE_WAIT": "0",
        "BACKGROUND_HOLD": "off",
        "LOG_LEVEL": "DEBUG",
        "CONFIG_S3_BUCKET": "config-bucket",
        "CONFIG_S3_KEY": "lambda/librechat.yaml",
        "CONFIG_PATH": "/tmp/librechat.yaml",
        "CONFIG_DOMAIN_FROM": "old.example.com",
        "BASE_PATH": "/chat",
    }
    assert {k: env[k] for k in expected} == expected


def test_deploy_mode_puts_ssm_values_in_the_environment_as_secrets(mocks: PulumiMocks):
    out = deploy(secrets_mode="deploy")

    assert is_secret_input(mocks.one(T.FUNCTION).inputs["environment"])
    env = environment(mocks)
    for name, parameter in SECRETS.items():
        assert env[name] == fake_ssm_value(parameter)
    assert "SSM_SECRETS" not in env
    reads = mocks.calls_to(C.SSM_PARAMETER)
    assert sorted(c["name"] for c in reads) == sorted(SECRETS.values())
    assert all(c["withDecryption"] is True for c in reads)
    actions = {a for s in out["statements"].values() for a in s["Action"]}
    assert not any(a.startswith(("ssm:", "kms:")) for a in actions)


def test_deploy_mode_names_every_parameter_it_cannot_read(mocks: PulumiMocks):
    mocks.call_failures[C.SSM_PARAMETER] = "ParameterNotFound"
    with pytest.raises(pulumi.RunError) as error:
        deploy(secrets_mode="deploy")
    message = str(error.value)
    for env_name, parameter in SECRETS.items():
        assert f"secrets.parameters.{env_name} ({parameter}):" in message
    assert "ParameterNotFound" in message
    mocks.assert_no_res(T.FUNCTION)


def test_runtime_mode_keeps_secret_values_out_of_the_environment(mocks: PulumiMocks):
    deploy(secrets_mode="runtime")

    assert not is_secret_input(mocks.one(T.FUNCTION).inputs["environment"])
    env = environment(mocks)
    assert json.loads(env["SSM_SECRETS"]) == SECRETS
    assert not set(SECRETS) & set(env)
    assert not {fake_ssm_value(p) for p in SECRETS.values()} & set(env.values())
    assert mocks.calls_to(C.SSM_PARAMETER) == []


def test_a_secret_stack_environment_stays_secret_in_runtime_mode(mocks: PulumiMocks):
    deploy(secrets_mode="runtime", environment_is_secret=True)

    assert is_secret_input(mocks.one(T.FUNCTION).inputs["environment"])
    assert environment(mocks)["DOMAIN_SERVER"] == "https://chat.example.com"


def test_runtime_mode_grants_get_parameters_on_exactly_those_parameters(mocks: PulumiMocks):
    found = deploy(secrets_mode="runtime", secrets_kms_key_arn=KMS_KEY)["statements"]

    ssm = found["ReadSecretParameters"]
    assert ssm["Action"] == ["ssm:GetParameters"]
    assert ssm["Resource"] == sorted(
        f"arn:aws:ssm:{DEFAULT_REGION}:{ACCOUNT_ID}:parameter{p}" for p in SECRETS.values()
    )
    kms = found["DecryptSecretParameters"]
    assert kms["Action"] == ["kms:Decrypt"]
    assert kms["Resource"] == [KMS_KEY]
    assert kms["Condition"] == {
        "StringEquals": {"kms:ViaService": f"ssm.{DEFAULT_REGION}.amazonaws.com"}
    }


def test_runtime_mode_without_a_kms_key_grants_no_kms(mocks: PulumiMocks):
    assert "DecryptSecretParameters" not in deploy(secrets_mode="runtime")["statements"]


@pytest.mark.parametrize("mode", ["deploy", "runtime"])
def test_no_statement_uses_a_wildcard_action_or_an_unscoped_resource(mocks: PulumiMocks, mode):
    found = deploy(secrets_mode=mode, secrets_kms_key_arn=KMS_KEY, tracing=True)["statements"]

    assert found
    for statement in found.values():
        assert statement["Effect"] == "Allow"
        for action in statement["Action"]:
            assert "*" not in action, statement
        for resource in statement["Resource"]:
            if resource == "*":
                assert set(statement["Action"]) <= UNSCOPABLE_ACTIONS, statement
            else:
                assert resource.startswith("arn:aws:"), statement
                assert ":*:" not in resource and "::*" not in resource, statement


def test_iam_names_the_exact_log_group_config_object_and_files_bucket(mocks: PulumiMocks):
    found = deploy()["statements"]

    group_arn = mocks.outputs["function-logs"]["arn"]
    assert group_arn == (
        f"arn:aws:logs:{DEFAULT_REGION}:{ACCOUNT_ID}:log-group:/aws/lambda/librechat-test"
    )
    assert found["WriteOwnLogs"]["Resource"] == [group_arn, f"{group_arn}:log-stream:*"]
    assert found["WriteOwnLogs"]["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert found["ReadConfigObject"] == {
        "Sid": "ReadConfigObject",
        "Effect": "Allow",
        "Action": ["s3:GetObject"],
        "Resource": ["arn:aws:s3:::config-bucket/lambda/librechat.yaml"],
    }
    files = found["ReadWriteFiles"]
    assert files["Resource"] == ["arn:aws:s3:::files-bucket/*"]
    assert files["Action"] == ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    assert mocks.inputs_of(T.ROLE_POLICY)["role"] == mocks.outputs["function-role"]["id"]


def test_eni_permissions_are_the_ones_aws_documents_for_a_vpc_function(mocks: PulumiMocks):
    found = deploy()["statements"]

    assert found["CreateFunctionEnis"]["Action"] == ["ec2:CreateNetworkInterface"]
    # Lambda checks this grant at create time; AWS documents it on Resource "*".
    assert found["CreateFunctionEnis"]["Resource"] == ["*"]
    assert found["ManageFunctionEnis"]["Action"] == [
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
    ]
    assert found["ManageFunctionEnis"]["Resource"] == [
        f"arn:aws:ec2:{DEFAULT_REGION}:{ACCOUNT_ID}:*/*"
    ]
    assert found["DescribeNetwork"]["Action"] == [
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
    ]
    assert found["DescribeNetwork"]["Resource"] == ["*"]


def test_without_a_vpc_there_is_no_vpc_config_and_no_ec2_permission(mocks: PulumiMocks):
    found = deploy(subnet_ids=(), security_group_ids=())["statements"]

    assert "vpcConfig" not in mocks.inputs_of(T.FUNCTION)
    actions = {a for s in found.values() for a in s["Action"]}
    assert not any(a.startswith("ec2:") for a in actions)


def test_tracing_and_reserved_concurrency_are_optional(mocks: PulumiMocks):
    found = deploy(tracing=True, reserved_concurrency=20)["statements"]

    inputs = mocks.inputs_of(T.FUNCTION)
    assert inputs["tracingConfig"] == {"mode": "Active"}
    assert inputs["reservedConcurrentExecutions"] == 20
    assert "WriteTraces" in found


def test_defaults_have_no_tracing_reservation_alias_or_published_version(mocks: PulumiMocks):
    out = deploy()

    inputs = mocks.inputs_of(T.FUNCTION)
    assert "tracingConfig" not in inputs
    assert "reservedConcurrentExecutions" not in inputs
    assert inputs["publish"] is False
    assert out["qualifier"] is None
    mocks.assert_no_res(T.ALIAS, T.PROVISIONED_CONCURRENCY)
    streaming = mocks.outputs["function-function"]["responseStreamingInvokeArn"]
    assert out["streaming_invoke_arn"] == streaming


def test_provisioned_concurrency_goes_through_an_alias_that_the_api_targets(mocks: PulumiMocks):
    out = deploy(provisioned_concurrency=3)

    assert mocks.inputs_of(T.FUNCTION)["publish"] is True
    alias = mocks.assert_res("function-alias", T.ALIAS)
    assert (alias["name"], alias["functionVersion"]) == ("live", "1")
    mocks.assert_res(
        "function-provisioned",
        T.PROVISIONED_CONCURRENCY,
        {"qualifier": "live", "provisionedConcurrentExecutions": 3},
        partial=True,
    )
    assert out["streaming_invoke_arn"] == (
        f"arn:aws:apigateway:{DEFAULT_REGION}:lambda:path/2021-11-15/functions/"
        f"{FUNCTION_ARN}:live/response-streaming-invocations"
    )
    assert out["qualifier"] == "live"


def test_an_environment_over_lambdas_limit_fails_with_the_fix(mocks: PulumiMocks):
    with pytest.raises(pulumi.RunError, match=r"set secrets\.mode to runtime"):
        deploy(environment={"BIG": "x" * 4000})
    mocks.assert_no_res(T.FUNCTION)


# -- managed mode (Lambda Managed Instances) -----------------------------------------------


def test_managed_mode_attaches_the_capacity_provider_and_publishes(mocks: PulumiMocks):
    deploy(managed=MANAGED, memory_mb=4096)

    inputs = plain(mocks.inputs_of(T.FUNCTION))
    assert inputs["capacityProviderConfig"] == {
        "lambdaManagedInstancesCapacityProviderConfig": {
            "capacityProviderArn": CAPACITY_PROVIDER,
            "executionEnvironmentMemoryGibPerVcpu": 2,
            "perExecutionEnvironmentMaxConcurrency": 32,
        }
    }
    assert inputs["publish"] is True
    assert inputs["publishTo"] == "LATEST_PUBLISHED"
    assert inputs["memorySize"] == 4096
    assert "AWS_LAMBDA_MAX_CONCURRENCY" not in inputs["environment"]["variables"]
    mocks.assert_no_res(T.ALIAS, T.PROVISIONED_CONCURRENCY)


def test_managed_mode_sets_the_published_versions_environment_limits(mocks: PulumiMocks):
    deploy(managed=MANAGED)

    assert mocks.inputs_of(T.FUNCTION_SCALING_CONFIG) == {
        "functionName": "librechat-test",
        "qualifier": "$LATEST.PUBLISHED",
        "functionScalingConfig": {"minExecutionEnvironments": 3, "maxExecutionEnvironments": 12},
    }


def test_managed_mode_streams_through_the_published_version(mocks: PulumiMocks):
    out = deploy(managed=MANAGED)

    assert out["qualifier"] == "$LATEST.PUBLISHED"
    assert out["streaming_invoke_arn"] == (
        f"arn:aws:apigateway:{DEFAULT_REGION}:lambda:path/2021-11-15/functions/"
        f"{FUNCTION_ARN}:$LATEST.PUBLISHED/response-streaming-invocations"
    )


def test_managed_mode_leaves_the_network_to_the_capacity_provider(mocks: PulumiMocks):
    out = deploy(managed=MANAGED)  # deploy() passes subnets and security groups

    assert "vpcConfig" not in mocks.inputs_of(T.FUNCTION)
    assert not {"CreateFunctionEnis", "ManageFunctionEnis", "DescribeNetwork"} & set(
        out["statements"]
    )


def test_standard_mode_has_no_capacity_provider_or_scaling_config(mocks: PulumiMocks):
    deploy()

    inputs = mocks.inputs_of(T.FUNCTION)
    assert "capacityProviderConfig" not in inputs
    assert "publishTo" not in inputs
    mocks.assert_no_res(T.FUNCTION_SCALING_CONFIG)


def test_the_modes_never_share_a_function_name():
    assert names.function_name("librechat-prod", managed=False) == "librechat-prod"
    assert names.function_name("librechat-prod", managed=True) == "librechat-prod-managed"


def test_a_named_log_group_outlives_a_function_name_change(mocks: PulumiMocks):
    deploy(function_name="librechat-test-managed", log_group_name="/aws/lambda/librechat-test")

    inputs = plain(mocks.inputs_of(T.FUNCTION))
    assert mocks.inputs_of(T.LOG_GROUP)["name"] == "/aws/lambda/librechat-test"
    assert inputs["loggingConfig"]["logGroup"] == "/aws/lambda/librechat-test"
    assert inputs["name"] == "librechat-test-managed"


def test_a_new_function_name_is_a_replacement_not_an_update(mocks: PulumiMocks):
    seen: dict[str, pulumi.ResourceOptions] = {}

    def capture(args: pulumi.ResourceTransformationArgs) -> None:
        seen[args.name] = args.opts

    pulumi.runtime.register_stack_transformation(capture)
    deploy(managed=MANAGED)

    opts = seen["function-function"]
    assert opts.replace_on_changes == ["name"]
    assert not opts.delete_before_replace  # the new function exists before the old goes
