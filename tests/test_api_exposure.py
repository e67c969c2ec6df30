"""StreamingApi's exposure: the default execute-api endpoint can be switched off (taking effect
through a new deployment), the stage can carry an existing WAFv2 web ACL, and a named API keeps
its access logs under its name."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components.api import StreamingApi, StreamingApiArgs
from tests.config_defaults import api_settings
from tests.pulumi_mocks import PulumiMocks, T, plain, run_program

WEB_ACL_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
WEB_ACL = "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/librechat/0a1b2c3d"


def build(**overrides: Any) -> dict[str, pulumi.Input[Any]]:
    fn = aws.lambda_.Function(
        "fn", name="librechat", role="arn:aws:iam::1:role/r", image_uri="repo@sha256:1"
    )
    args: dict[str, Any] = {
        "function_name": fn.name,
        "invoke_arn": fn.response_streaming_invoke_arn,
        **api_settings(),
        **overrides,
    }
    api = StreamingApi("chat", StreamingApiArgs(**args))
    return {"stage_arn": api.stage.arn, "api_id": api.rest_api_id}


def trigger(mocks: PulumiMocks) -> str:
    return plain(mocks.one(T.API_DEPLOYMENT).inputs)["triggers"]["redeployment"]


def test_the_default_endpoint_is_disabled_when_asked(mocks: PulumiMocks) -> None:
    run_program(lambda: build(disable_execute_api_endpoint=True))
    assert mocks.inputs_of(T.REST_API)["disableExecuteApiEndpoint"] is True


def test_the_default_endpoint_stays_when_not_asked(mocks: PulumiMocks) -> None:
    run_program(build)
    assert mocks.inputs_of(T.REST_API)["disableExecuteApiEndpoint"] is False


def test_switching_the_endpoint_redeploys_the_stage(mocks: PulumiMocks) -> None:
    """API Gateway applies disableExecuteApiEndpoint only with a new deployment."""
    run_program(build)
    kept = trigger(mocks)
    mocks.resources.clear()
    mocks.outputs.clear()
    run_program(lambda: build(disable_execute_api_endpoint=True))
    assert trigger(mocks) != kept


def test_an_existing_web_acl_is_associated_with_the_stage(mocks: PulumiMocks) -> None:
    out = run_program(lambda: build(web_acl_arn=WEB_ACL))
    association = mocks.inputs_of(WEB_ACL_ASSOCIATION)
    assert association == {"resourceArn": out["stage_arn"], "webAclArn": WEB_ACL}
    assert mocks.one(WEB_ACL_ASSOCIATION).name == "chat-web-acl"


def test_no_web_acl_no_association(mocks: PulumiMocks) -> None:
    run_program(build)
    assert mocks.of_type(WEB_ACL_ASSOCIATION) == []


def test_a_named_api_keeps_its_access_logs_under_its_name(mocks: PulumiMocks) -> None:
    run_program(lambda: build(api_name="librechat-lambda-dev"))
    assert mocks.inputs_of(T.REST_API)["name"] == "librechat-lambda-dev"
    log_group = mocks.inputs_of(T.LOG_GROUP)["name"]
    assert log_group == "/aws/apigateway/librechat-lambda-dev/live/access"
