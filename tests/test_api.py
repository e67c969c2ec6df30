"""StreamingApi: every route streams from the function, and only this API may invoke it."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from components.api import STREAM_TIMEOUT_MS, StreamingApi, StreamingApiArgs
from components.function import (
    LambdaFunction,
    LambdaFunctionArgs,
    ManagedCompute,
    streaming_invoke_arn,
)
from components.function_policy import AwsContext
from tests.config_defaults import api_settings, function_settings
from tests.pulumi_mocks import ACCOUNT_ID, DEFAULT_REGION, PulumiMocks, T, run_program

STREAMING_URI_PREFIX = f"arn:aws:apigateway:{DEFAULT_REGION}:lambda:path/2021-11-15/functions/"
CTX = AwsContext(partition="aws", region=DEFAULT_REGION, account=ACCOUNT_ID)


def function() -> aws.lambda_.Function:
    return aws.lambda_.Function(
        "fn", name="librechat", role="arn:aws:iam::1:role/r", image_uri="repo@sha256:1"
    )


def api_args(fn: aws.lambda_.Function, **overrides: Any) -> StreamingApiArgs:
    values: dict[str, Any] = {
        "function_name": fn.name,
        "invoke_arn": fn.response_streaming_invoke_arn,
        **api_settings(),
    }
    return StreamingApiArgs(**(values | overrides))


def build_api(**overrides: Any) -> dict[str, pulumi.Input[Any]]:
    fn = function()
    api = StreamingApi("chat", api_args(fn, **overrides))
    return {
        "fn_name": fn.name,
        "streaming_arn": fn.response_streaming_invoke_arn,
        "api_id": api.rest_api_id,
        "execution_arn": api.execution_arn,
        "stage_url": api.stage_url,
        "stage_name": api.stage_name,
        "rest_api_urn": api.rest_api.urn,
        "stage_urn": api.stage.urn,
    }


def test_both_methods_stream_from_the_streaming_invoke_arn(mocks: PulumiMocks) -> None:
    out = run_program(build_api)

    integrations = mocks.of_type(T.API_INTEGRATION)
    assert len(integrations) == 2
    assert out["streaming_arn"].startswith(STREAMING_URI_PREFIX)
    assert out["streaming_arn"].endswith("/response-streaming-invocations")
    for integration in integrations:
        inputs = integration.inputs
        assert inputs["type"] == "AWS_PROXY"
        assert inputs["integrationHttpMethod"] == "POST"
        assert inputs["responseTransferMode"] == "STREAM"
        assert inputs["uri"] == out["streaming_arn"]
        assert inputs["timeoutMilliseconds"] == STREAM_TIMEOUT_MS == 900_000
        assert inputs["httpMethod"] == "ANY"
        assert inputs["restApi"] == out["api_id"]


def test_integrations_cover_the_root_and_the_proxy_resource(mocks: PulumiMocks) -> None:
    out = run_program(build_api)

    root_id = mocks.outputs["chat-api"]["rootResourceId"]
    proxy = mocks.one(T.API_RESOURCE)
    proxy_id = mocks.outputs[proxy.name]["id"]
    assert proxy.inputs["pathPart"] == "{proxy+}"
    assert proxy.inputs["parentId"] == root_id
    assert proxy.inputs["restApi"] == out["api_id"]

    methods = {m.inputs["resourceId"]: m.inputs for m in mocks.of_type(T.API_METHOD)}
    assert set(methods) == {root_id, proxy_id}
    assert all(m["httpMethod"] == "ANY" and m["authorization"] == "NONE" for m in methods.values())
    integrated = {i.inputs["resourceId"] for i in mocks.of_type(T.API_INTEGRATION)}
    assert integrated == {root_id, proxy_id}


def test_rest_api_is_regional_and_passes_every_body_through(mocks: PulumiMocks) -> None:
    run_program(build_api)

    rest_api = mocks.one(T.REST_API).inputs
    assert rest_api["endpointConfiguration"]["types"] == "REGIONAL"
    assert rest_api["binaryMediaTypes"] == ["*/*"]


def test_binary_media_types_come_from_args(mocks: PulumiMocks) -> None:
    run_program(lambda: build_api(binary_media_types=["multipart/form-data", "image/*"]))

    assert mocks.one(T.REST_API).inputs["binaryMediaTypes"] == ["multipart/form-data", "image/*"]


def test_permission_is_limited_to_this_apis_execution_arn(mocks: PulumiMocks) -> None:
    out = run_program(build_api)

    permission = mocks.one(T.PERMISSION).inputs
    assert out["execution_arn"].startswith(f"arn:aws:execute-api:{DEFAULT_REGION}:{ACCOUNT_ID}:")
    assert permission["sourceArn"] == f"{out['execution_arn']}/*/*"
    assert permission["function"] == out["fn_name"] == "librechat"
    assert permission["principal"] == "apigateway.amazonaws.com"
    assert permission["action"] == "lambda:InvokeFunction"
    assert "qualifier" not in permission


def test_alias_target_passes_the_qualifier_to_the_permission(mocks: PulumiMocks) -> None:
    def build() -> dict[str, pulumi.Input[Any]]:
        fn = function()
        alias = aws.lambda_.Alias("live", name="live", function_name=fn.name, function_version="1")
        alias_uri = streaming_invoke_arn(CTX, alias.arn)
        StreamingApi("chat", api_args(fn, invoke_arn=alias_uri, qualifier=alias.name))
        return {"alias_arn": alias.arn, "alias_uri": alias_uri}

    out = run_program(build)

    assert out["alias_uri"] == (
        f"{STREAMING_URI_PREFIX}{out['alias_arn']}/response-streaming-invocations"
    )
    assert out["alias_arn"].endswith(":function:librechat:live")
    assert mocks.one(T.PERMISSION).inputs["qualifier"] == "live"
    assert {i.inputs["uri"] for i in mocks.of_type(T.API_INTEGRATION)} == {out["alias_uri"]}


def test_a_managed_function_is_invoked_at_its_published_version(mocks: PulumiMocks) -> None:
    def build() -> dict[str, pulumi.Input[Any]]:
        fn = LambdaFunction(
            "managed",
            LambdaFunctionArgs(
                image_uri="repo@sha256:1",
                function_name="librechat-managed",
                **function_settings(),
                managed=ManagedCompute(
                    capacity_provider_arn="arn:aws:lambda:eu-west-1:1:capacity-provider:cp",
                    memory_per_vcpu_gib=2,
                    max_concurrency=32,
                    min_environments=3,
                    max_environments=6,
                ),
            ),
        )
        StreamingApi(
            "chat",
            StreamingApiArgs(
                function_name=fn.function_name,
                invoke_arn=fn.streaming_invoke_arn,
                qualifier=fn.qualifier,
                **api_settings(),
            ),
        )
        return {"fn_arn": fn.function_arn}

    out = run_program(build)

    version_uri = (
        f"{STREAMING_URI_PREFIX}{out['fn_arn']}:$LATEST.PUBLISHED/response-streaming-invocations"
    )
    assert {i.inputs["uri"] for i in mocks.of_type(T.API_INTEGRATION)} == {version_uri}
    permission = mocks.one(T.PERMISSION).inputs
    assert permission["qualifier"] == "$LATEST.PUBLISHED"
    assert permission["function"] == "librechat-managed"


def test_stage_logs_json_access_records_with_the_transfer_mode(mocks: PulumiMocks) -> None:
    out = run_program(lambda: build_api(log_retention_days=14))

    stage = mocks.one(T.API_STAGE).inputs
    log_group = mocks.one(T.LOG_GROUP)
    assert stage["stageName"] == out["stage_name"] == "live"
    assert stage["accessLogSettings"]["destinationArn"] == mocks.outputs[log_group.name]["arn"]
    assert log_group.inputs["retentionInDays"] == 14
    assert log_group.inputs["name"] == f"/aws/apigateway/{out['api_id']}/live/access"
    record = json.loads(stage["accessLogSettings"]["format"])
    assert record["responseTransferMode"] == "$context.integration.responseTransferMode"
    for variable in (
        "$context.requestId",
        "$context.status",
        "$context.responseLength",
        "$context.integrationLatency",
        "$context.integration.timeToFirstContent",
    ):
        assert variable in record.values()


def test_access_logging_can_be_switched_off(mocks: PulumiMocks) -> None:
    run_program(lambda: build_api(access_logging=False))

    assert mocks.of_type(T.LOG_GROUP) == []
    assert "accessLogSettings" not in mocks.one(T.API_STAGE).inputs


def test_stage_throttling_comes_from_args(mocks: PulumiMocks) -> None:
    run_program(lambda: build_api(throttling_burst_limit=50, throttling_rate_limit=12.5))

    settings = mocks.one(T.API_METHOD_SETTINGS).inputs
    assert settings["methodPath"] == "*/*"
    assert settings["stageName"] == "live"
    assert settings["settings"]["throttlingBurstLimit"] == 50
    assert settings["settings"]["throttlingRateLimit"] == 12.5


def test_stage_serves_the_deployment_and_reports_its_url(mocks: PulumiMocks) -> None:
    out = run_program(build_api)

    deployment = mocks.assert_res("chat-deployment", T.API_DEPLOYMENT)
    assert deployment["restApi"] == out["api_id"]
    # A deployment made before its integrations exist fails ("No integration defined").
    routes = {r.name for r in mocks.resources if r.typ in (T.API_METHOD, T.API_INTEGRATION)}
    assert len(routes) == 4
    assert routes <= mocks.depends_on("chat-deployment")
    assert mocks.one(T.API_STAGE).inputs["deployment"] == mocks.outputs["chat-deployment"]["id"]
    assert out["stage_url"] == (
        f"https://{out['api_id']}.execute-api.{DEFAULT_REGION}.amazonaws.com/live"
    )


def test_deployment_triggers_change_when_an_integration_changes(mocks: PulumiMocks) -> None:
    def build() -> dict[str, pulumi.Input[Any]]:
        fn = function()
        other = streaming_invoke_arn(CTX, "arn:aws:lambda:eu-west-1:1:function:other")
        StreamingApi("same-a", api_args(fn))
        StreamingApi("same-b", api_args(fn))
        StreamingApi("other-uri", api_args(fn, invoke_arn=other))
        StreamingApi("other-binary", api_args(fn, binary_media_types=["image/*"]))
        return {}

    run_program(build)

    triggers = {
        d.name: d.inputs["triggers"]["redeployment"] for d in mocks.of_type(T.API_DEPLOYMENT)
    }
    assert len(triggers["same-a-deployment"]) == 64
    assert triggers["same-a-deployment"] == triggers["same-b-deployment"]
    assert triggers["other-uri-deployment"] != triggers["same-a-deployment"]
    assert triggers["other-binary-deployment"] != triggers["same-a-deployment"]


def test_children_are_parented_to_the_component_and_named_after_it(mocks: PulumiMocks) -> None:
    out = run_program(build_api)

    for urn in (out["rest_api_urn"], out["stage_urn"]):
        assert "::librechat:components:StreamingApi$aws:apigateway/" in urn
    names = {r.name for r in mocks.resources if r.custom and r.name != "fn"}
    assert all(name.startswith("chat-") for name in names)
    mocks.assert_res_counts(
        {
            T.FUNCTION: 1,  # the test's own
            T.REST_API: 1,
            T.API_RESOURCE: 1,
            T.API_METHOD: 2,
            T.API_INTEGRATION: 2,
            T.API_DEPLOYMENT: 1,
            T.LOG_GROUP: 1,
            T.API_STAGE: 1,
            T.API_METHOD_SETTINGS: 1,
            T.PERMISSION: 1,
        }
    )
