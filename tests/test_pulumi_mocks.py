"""The shared mocks produce the outputs components rely on, shaped like AWS's, and record what
the tests assert on: inputs, invokes and dependencies."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pytest
from pulumi_docker import Image

from tests.pulumi_mocks import (
    ACCOUNT_ID,
    C,
    PulumiMocks,
    T,
    fake_ssm_value,
    is_secret_input,
    plain,
    run_program,
)


def function() -> aws.lambda_.Function:
    return aws.lambda_.Function("fn", name="chat", role="arn:aws:iam::1:role/r", image_uri="x")


def test_function_has_response_streaming_invoke_arn(mocks: PulumiMocks):
    def build() -> dict[str, pulumi.Input[str]]:
        fn = function()
        return {"arn": fn.arn, "streaming": fn.response_streaming_invoke_arn}

    out = run_program(build)

    assert out["arn"] == f"arn:aws:lambda:eu-west-1:{ACCOUNT_ID}:function:chat"
    assert out["streaming"] == (
        "arn:aws:apigateway:eu-west-1:lambda:path/2021-11-15/functions/"
        f"{out['arn']}/response-streaming-invocations"
    )
    mocks.assert_res("fn", T.FUNCTION, {"imageUri": "x"}, partial=True)


def test_ssm_invoke_is_deterministic_and_recorded(mocks: PulumiMocks):
    out = run_program(lambda: {"value": aws.ssm.get_parameter(name="/a/b").value})

    assert out["value"] == fake_ssm_value("/a/b")
    assert mocks.calls_to(C.SSM_PARAMETER) == [{"name": "/a/b"}]


def test_call_override_replaces_one_invoke(mocks: PulumiMocks):
    mocks.call_results[C.SUBNETS] = {"ids": ["subnet-1"]}

    assert run_program(lambda: {"ids": aws.ec2.get_subnets().ids}) == {"ids": ["subnet-1"]}


def test_docker_image_digest_is_pinned_to_repository(mocks: PulumiMocks):
    def build() -> dict[str, pulumi.Input[str]]:
        image = Image("img", image_name="reg.example/repo:v1", build={"context": "."})
        return {"digest": image.repo_digest}

    digest = run_program(build)["digest"]

    assert digest.startswith("reg.example/repo@sha256:")
    assert len(digest.split("@sha256:")[1]) == 64


def test_secret_inputs_are_recorded_wrapped_and_echoed_as_secret_outputs(mocks: PulumiMocks):
    def build() -> dict[str, pulumi.Input[bool]]:
        param = aws.ssm.Parameter("p", type="SecureString", value=pulumi.Output.secret("s3cr3t"))
        return {"secret": pulumi.Output.from_input(param.value.is_secret())}

    assert run_program(build) == {"secret": True}
    recorded = mocks.one("aws:ssm/parameter:Parameter").inputs["value"]
    assert is_secret_input(recorded)
    assert plain(recorded) == "s3cr3t"


def test_a_failure_inside_the_program_reaches_the_test(mocks: PulumiMocks):
    def build() -> dict[str, pulumi.Input[str]]:
        raise AssertionError("seen")

    with pytest.raises(AssertionError, match="seen"):
        run_program(build)


def test_dependencies_are_recorded_explicit_and_through_inputs(mocks: PulumiMocks):
    def build() -> dict[str, pulumi.Input[str]]:
        role = aws.iam.Role("role", assume_role_policy="{}")
        group = aws.cloudwatch.LogGroup("logs")
        fn = aws.lambda_.Function(
            "fn", role=role.arn, opts=pulumi.ResourceOptions(depends_on=[group])
        )
        aws.lambda_.Function("other", role="arn:aws:iam::1:role/r")
        return {"fn": fn.arn}

    run_program(build)

    assert mocks.depends_on("fn") == {"role", "logs"}
    assert mocks.depends_on("other") == set()


def test_resource_counts_seal_what_a_program_creates(mocks: PulumiMocks):
    run_program(lambda: {"fn": function().arn})

    mocks.assert_res_counts({T.FUNCTION: 1})
    with pytest.raises(AssertionError):
        mocks.assert_res_counts({T.FUNCTION: 1, T.ROLE: 1})
    mocks.assert_no_res(T.ROLE, T.ALIAS)


def test_zones_limit_which_hosted_zones_exist(mocks: PulumiMocks):
    mocks.zones = {"example.com": "ZEXAMPLE"}

    assert run_program(lambda: {"id": aws.route53.get_zone(name="example.com").zone_id}) == {
        "id": "ZEXAMPLE"
    }
    with pytest.raises(Exception, match="no matching Route 53 Hosted Zone"):
        run_program(lambda: {"id": aws.route53.get_zone(name="sub.example.com").zone_id})
