"""LambdaFunction: the image function's settings, its environment in both secrets modes, its
least-privilege IAM, and the alias the API calls when provisioned concurrency is on."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from components.config import RuntimeConfig
from components.function import UNSCOPABLE_ACTIONS, LambdaFunction, LambdaFunctionArgs
from components.naming import S3Location
from tests.pulumi_mocks import (
    ACCOUNT_ID,
    DEFAULT_REGION,
    C,
    PulumiMocks,
    T,
    fake_ssm_value,
    is_secret_input,
    plain,
    settle,
)

IMAGE_URI = f"{ACCOUNT_ID}.dkr.ecr.{DEFAULT_REGION}.amazonaws.com/repo@sha256:{'a' * 64}"
SECRETS = {"JWT_SECRET": "/ecs/genai/librechat/JWT_SECRET", "MONGO_URI": "/ecs/genai/mongo/DB_URI"}
KMS_KEY = f"arn:aws:kms:{DEFAULT_REGION}:{ACCOUNT_ID}:key/0a1b2c3d-4e5f-4a1b-8c2d-3e4f5a6b7c8d"
SUBNETS = ("subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2")
SECURITY_GROUPS = ("sg-0bbbbbbbbbbbbbbb1",)


def make(**overrides: Any) -> LambdaFunction:
    args: dict[str, Any] = {
        "image_uri": IMAGE_URI,
        "function_name": "librechat-test",
        "environment": {"DOMAIN_SERVER": "https://chat.example.com", "USE_REDIS": "true"},
        "secrets": SECRETS,
        "config_object": S3Location("config-bucket", "lambda/librechat.yaml"),
        "config_domain_from": "old.example.com",
        "files_bucket": "files-bucket",
        "subnet_ids": SUBNETS,
        "security_group_ids": SECURITY_GROUPS,
        **overrides,
    }
    return LambdaFunction("function", LambdaFunctionArgs(**args))


async def statements(fn: LambdaFunction) -> list[dict[str, Any]]:
    return json.loads(await fn.policy_document.future())["Statement"]


def by_sid(found: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in found}


async def registered(fn: LambdaFunction) -> None:
    """Wait until every child of `fn` is registered with the mocks."""
    children = [fn.function, fn.policy, fn.log_group, fn.role, fn.alias, fn.provisioned_concurrency]
    for child in children:
        if child is not None:
            await child.id.future()


async def function_inputs(fn: LambdaFunction, mocks: PulumiMocks) -> dict[str, Any]:
    await registered(fn)
    return mocks.one(T.FUNCTION).inputs


@pulumi.runtime.test
def test_function_runs_the_image_with_the_configured_size_and_limits(mocks: PulumiMocks):
    fn = make(memory_mb=3008, timeout_seconds=900, ephemeral_storage_mb=2048, architecture="arm64")

    async def check() -> None:
        inputs = plain(await function_inputs(fn, mocks))
        assert inputs["packageType"] == "Image"
        assert inputs["imageUri"] == IMAGE_URI
        assert inputs["memorySize"] == 3008
        assert inputs["timeout"] == 900
        assert inputs["ephemeralStorage"] == {"size": 2048}
        assert inputs["architectures"] == ["arm64"]
        assert inputs["name"] == "librechat-test"
        assert inputs["role"] == mocks.outputs["function-role"]["arn"]

    return settle(check())


@pulumi.runtime.test
def test_function_is_placed_in_the_given_subnets_and_security_groups(mocks: PulumiMocks):
    fn = make()

    async def check() -> None:
        vpc = plain(await function_inputs(fn, mocks))["vpcConfig"]
        assert vpc == {"subnetIds": list(SUBNETS), "securityGroupIds": list(SECURITY_GROUPS)}

    return settle(check())


@pulumi.runtime.test
def test_function_logs_json_into_its_own_log_group_with_retention(mocks: PulumiMocks):
    fn = make(log_retention_days=14)

    async def check() -> None:
        inputs = plain(await function_inputs(fn, mocks))
        group = mocks.inputs_of(T.LOG_GROUP)
        assert group == {"name": "/aws/lambda/librechat-test", "retentionInDays": 14, "tags": {}}
        assert inputs["loggingConfig"] == {
            "logFormat": "JSON",
            "logGroup": "/aws/lambda/librechat-test",
        }
        assert await fn.log_group_name.future() == "/aws/lambda/librechat-test"

    return settle(check())


@pulumi.runtime.test
def test_environment_has_configured_runtime_and_fixed_variables(mocks: PulumiMocks):
    fn = make(
        base_path="chat",
        runtime=RuntimeConfig.model_validate(
            {"readyTimeoutSeconds": 90, "sseKeepaliveSeconds": 15, "backgroundHold": False,
             "logLevel": "DEBUG"}
        ),
    )  # fmt: skip

    async def check() -> None:
        env = plain(await function_inputs(fn, mocks))["environment"]["variables"]
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
            "BACKGROUND_HOLD": "off",
            "LOG_LEVEL": "DEBUG",
            "CONFIG_S3_BUCKET": "config-bucket",
            "CONFIG_S3_KEY": "lambda/librechat.yaml",
            "CONFIG_PATH": "/tmp/librechat.yaml",
            "CONFIG_DOMAIN_FROM": "old.example.com",
            "BASE_PATH": "/chat",
        }
        assert {k: env[k] for k in expected} == expected

    return settle(check())


@pulumi.runtime.test
def test_deploy_mode_puts_ssm_values_in_the_environment_as_secrets(mocks: PulumiMocks):
    fn = make(secrets_mode="deploy")

    async def check() -> None:
        recorded = (await function_inputs(fn, mocks))["environment"]
        assert is_secret_input(recorded)
        assert await fn.environment.is_secret()
        assert await fn.function.environment.is_secret()
        env = plain(recorded)["variables"]
        for name, parameter in SECRETS.items():
            assert env[name] == fake_ssm_value(parameter)
        assert "SSM_SECRETS" not in env
        assert sorted(c["name"] for c in mocks.calls_to(C.SSM_PARAMETER)) == sorted(
            SECRETS.values()
        )
        assert all(c["withDecryption"] is True for c in mocks.calls_to(C.SSM_PARAMETER))
        actions = {a for s in await statements(fn) for a in s["Action"]}
        assert not any(a.startswith(("ssm:", "kms:")) for a in actions)

    return settle(check())


@pulumi.runtime.test
def test_deploy_mode_names_every_parameter_it_cannot_read(mocks: PulumiMocks):
    mocks.call_failures[C.SSM_PARAMETER] = "ParameterNotFound"
    with pytest.raises(pulumi.RunError) as error:
        make(secrets_mode="deploy")
    message = str(error.value)
    for env_name, parameter in SECRETS.items():
        assert f"secrets.parameters.{env_name} ({parameter}):" in message
    assert "ParameterNotFound" in message
    assert mocks.of_type(T.FUNCTION) == []


@pulumi.runtime.test
def test_runtime_mode_keeps_secret_values_out_of_the_environment(mocks: PulumiMocks):
    fn = make(secrets_mode="runtime")

    async def check() -> None:
        recorded = (await function_inputs(fn, mocks))["environment"]
        assert not is_secret_input(recorded)
        assert not await fn.environment.is_secret()
        env = recorded["variables"]
        assert json.loads(env["SSM_SECRETS"]) == SECRETS
        assert not set(SECRETS) & set(env)
        values = {fake_ssm_value(p) for p in SECRETS.values()}
        assert not values & set(env.values())
        assert mocks.calls_to(C.SSM_PARAMETER) == []

    return settle(check())


@pulumi.runtime.test
def test_a_secret_stack_environment_stays_secret_in_runtime_mode(mocks: PulumiMocks):
    fn = make(secrets_mode="runtime", environment_is_secret=True)

    async def check() -> None:
        recorded = (await function_inputs(fn, mocks))["environment"]
        assert is_secret_input(recorded)
        assert plain(recorded)["variables"]["DOMAIN_SERVER"] == "https://chat.example.com"

    return settle(check())


@pulumi.runtime.test
def test_runtime_mode_grants_get_parameters_on_exactly_those_parameters(mocks: PulumiMocks):
    fn = make(secrets_mode="runtime", secrets_kms_key_arn=KMS_KEY)

    async def check() -> None:
        found = by_sid(await statements(fn))
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

    return settle(check())


@pulumi.runtime.test
def test_runtime_mode_without_a_kms_key_grants_no_kms(mocks: PulumiMocks):
    fn = make(secrets_mode="runtime")

    async def check() -> None:
        assert "DecryptSecretParameters" not in by_sid(await statements(fn))

    return settle(check())


@pytest.mark.parametrize("mode", ["deploy", "runtime"])
@pulumi.runtime.test
def test_no_statement_uses_a_wildcard_action_or_an_unscoped_resource(mocks: PulumiMocks, mode: str):
    fn = make(secrets_mode=mode, secrets_kms_key_arn=KMS_KEY, tracing=True)

    async def check() -> None:
        found = await statements(fn)
        assert found
        for statement in found:
            assert statement["Effect"] == "Allow"
            for action in statement["Action"]:
                assert "*" not in action, statement
            for resource in statement["Resource"]:
                if resource == "*":
                    assert set(statement["Action"]) <= UNSCOPABLE_ACTIONS, statement
                else:
                    assert resource.startswith("arn:aws:"), statement
                    assert ":*:" not in resource and "::*" not in resource, statement

    return settle(check())


@pulumi.runtime.test
def test_iam_names_the_exact_log_group_config_object_and_files_bucket(mocks: PulumiMocks):
    fn = make()

    async def check() -> None:
        found = by_sid(await statements(fn))
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
        await registered(fn)
        policy = mocks.inputs_of(T.ROLE_POLICY)
        assert policy["role"] == mocks.outputs["function-role"]["id"]

    return settle(check())


@pulumi.runtime.test
def test_eni_permissions_are_the_ones_aws_documents_for_a_vpc_function(mocks: PulumiMocks):
    fn = make()

    async def check() -> None:
        found = by_sid(await statements(fn))
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

    return settle(check())


@pulumi.runtime.test
def test_without_a_vpc_there_is_no_vpc_config_and_no_ec2_permission(mocks: PulumiMocks):
    fn = make(subnet_ids=(), security_group_ids=())

    async def check() -> None:
        inputs = await function_inputs(fn, mocks)
        assert "vpcConfig" not in inputs
        actions = {a for s in await statements(fn) for a in s["Action"]}
        assert not any(a.startswith("ec2:") for a in actions)

    return settle(check())


@pulumi.runtime.test
def test_tracing_and_reserved_concurrency_are_optional(mocks: PulumiMocks):
    fn = make(tracing=True, reserved_concurrency=20)

    async def check() -> None:
        inputs = await function_inputs(fn, mocks)
        assert inputs["tracingConfig"] == {"mode": "Active"}
        assert inputs["reservedConcurrentExecutions"] == 20
        assert "WriteTraces" in by_sid(await statements(fn))

    return settle(check())


@pulumi.runtime.test
def test_defaults_have_no_tracing_reservation_alias_or_published_version(mocks: PulumiMocks):
    fn = make()

    async def check() -> None:
        inputs = await function_inputs(fn, mocks)
        assert "tracingConfig" not in inputs
        assert "reservedConcurrentExecutions" not in inputs
        assert inputs["publish"] is False
        assert fn.alias is None and fn.qualifier is None
        assert mocks.of_type(T.ALIAS) == []
        assert (
            await fn.streaming_invoke_arn.future()
            == (mocks.outputs["function-function"]["responseStreamingInvokeArn"])
        )

    return settle(check())


@pulumi.runtime.test
def test_provisioned_concurrency_goes_through_an_alias_that_the_api_targets(mocks: PulumiMocks):
    fn = make(provisioned_concurrency=3)

    async def check() -> None:
        assert fn.alias is not None and fn.qualifier is not None
        invoke_arn = await fn.streaming_invoke_arn.future()
        inputs = await function_inputs(fn, mocks)
        assert inputs["publish"] is True
        alias = mocks.inputs_of(T.ALIAS)
        assert alias["name"] == "live"
        assert alias["functionVersion"] == "1"
        provisioned = mocks.inputs_of(T.PROVISIONED_CONCURRENCY)
        assert provisioned["qualifier"] == "live"
        assert provisioned["provisionedConcurrentExecutions"] == 3
        alias_arn = f"arn:aws:lambda:{DEFAULT_REGION}:{ACCOUNT_ID}:function:librechat-test:live"
        assert invoke_arn == (
            f"arn:aws:apigateway:{DEFAULT_REGION}:lambda:path/2021-11-15/functions/"
            f"{alias_arn}/response-streaming-invocations"
        )
        assert await fn.qualifier.future() == "live"

    return settle(check())


def test_an_environment_over_lambdas_limit_fails_with_the_fix(mocks: PulumiMocks):
    with pytest.raises(pulumi.RunError, match=r"set secrets\.mode to runtime"):
        make(environment={"BIG": "x" * 4000})
