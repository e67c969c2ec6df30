"""The shared mocks produce the outputs components rely on, shaped like AWS's."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pytest

from tests.pulumi_mocks import (
    ACCOUNT_ID,
    C,
    PulumiMocks,
    T,
    fake_ssm_value,
    is_secret_input,
    plain,
    settle,
)


@pulumi.runtime.test
def test_function_has_response_streaming_invoke_arn(mocks: PulumiMocks):
    fn = aws.lambda_.Function("fn", name="chat", role="arn:aws:iam::1:role/r", image_uri="x")

    def check(arns: list[str]) -> None:
        arn, streaming = arns
        assert arn == f"arn:aws:lambda:eu-west-1:{ACCOUNT_ID}:function:chat"
        assert streaming == (
            "arn:aws:apigateway:eu-west-1:lambda:path/2021-11-15/functions/"
            f"{arn}/response-streaming-invocations"
        )
        assert mocks.one(T.FUNCTION).inputs["imageUri"] == "x"

    return pulumi.Output.all(fn.arn, fn.response_streaming_invoke_arn).apply(check)


@pulumi.runtime.test
def test_ssm_invoke_is_deterministic_and_recorded(mocks: PulumiMocks):
    result = aws.ssm.get_parameter(name="/a/b", with_decryption=True)
    assert result.value == fake_ssm_value("/a/b")
    assert result.arn == f"arn:aws:ssm:eu-west-1:{ACCOUNT_ID}:parameter/a/b"
    assert mocks.calls_to(C.SSM_PARAMETER) == [{"name": "/a/b", "withDecryption": True}]


@pulumi.runtime.test
def test_call_override_replaces_one_invoke(mocks: PulumiMocks):
    mocks.call_results[C.SUBNETS] = {"ids": ["subnet-1"]}
    assert aws.ec2.get_subnets().ids == ["subnet-1"]


@pulumi.runtime.test
def test_docker_image_digest_is_pinned_to_repository(mocks: PulumiMocks):
    from pulumi_docker import Image

    image = Image("img", image_name="reg.example/repo:v1", build={"context": "."}, skip_push=False)

    def check(digest: str) -> None:
        assert digest.startswith("reg.example/repo@sha256:")
        assert len(digest.split("@sha256:")[1]) == 64

    return image.repo_digest.apply(check)


@pulumi.runtime.test
def test_secret_inputs_are_recorded_wrapped_and_echoed_as_secret_outputs(mocks: PulumiMocks):
    param = aws.ssm.Parameter("p", type="SecureString", value=pulumi.Output.secret("s3cr3t"))

    async def check() -> None:
        assert await param.value.is_secret()
        recorded = mocks.one("aws:ssm/parameter:Parameter").inputs["value"]
        assert is_secret_input(recorded)
        assert plain(recorded) == "s3cr3t"

    return settle(check())


def test_a_failing_settled_check_fails_the_test(mocks: PulumiMocks):
    async def check() -> None:
        raise AssertionError("seen")

    with pytest.raises(AssertionError, match="seen"):
        pulumi.runtime.test(lambda: settle(check()))()


@pulumi.runtime.test
def test_zones_limit_which_hosted_zones_exist(mocks: PulumiMocks):
    mocks.zones = {"example.com": "ZEXAMPLE"}
    assert aws.route53.get_zone(name="example.com").zone_id == "ZEXAMPLE"
    with pytest.raises(Exception, match="no matching Route 53 Hosted Zone"):
        aws.route53.get_zone(name="sub.example.com")
