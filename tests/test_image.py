"""ContainerImage: a scanned, pruned ECR repository and one single-platform image per build,
with the function pinned to the pushed digest and no Docker engine needed for a preview."""

from __future__ import annotations

import json
import re
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from components.image import ContainerImage, ContainerImageArgs
from tests.pulumi_mocks import (
    ACCOUNT_ID,
    DEFAULT_REGION,
    C,
    PulumiMocks,
    T,
    plain,
    run_program,
)

BASE = "ghcr.io/danny-avila/librechat-api:v0.8.2-rc1"
REPOSITORY = f"{ACCOUNT_ID}.dkr.ecr.{DEFAULT_REGION}.amazonaws.com/librechat-test"


def deploy(**overrides: Any) -> dict[str, Any]:
    """Run a ContainerImage (and a function using its URI) under the mocks; its outputs."""
    args: dict[str, Any] = {"base_image": BASE, "repository_name": "librechat-test", **overrides}

    def build() -> dict[str, pulumi.Input[Any]]:
        image = ContainerImage("image", ContainerImageArgs(**args))
        aws.lambda_.Function("fn", role="arn:aws:iam::1:role/r", image_uri=image.image_uri)
        return {
            "image_uri": image.image_uri,
            "repository_url": image.repository_url,
            "base_image": image.base_image,
            "tag": image.tag,
        }

    return run_program(build)


def test_image_uri_is_the_repository_pinned_to_the_pushed_digest(mocks: PulumiMocks):
    uri = deploy()["image_uri"]

    assert re.fullmatch(re.escape(REPOSITORY) + r"@sha256:[0-9a-f]{64}", uri), uri
    assert uri == mocks.outputs["image-image"]["repoDigest"]


@pytest.mark.parametrize(("architecture", "platform"), [("x86_64", "linux/amd64"),
                                                         ("arm64", "linux/arm64")])  # fmt: skip
def test_build_targets_the_one_platform_of_the_function_architecture(
    mocks: PulumiMocks, architecture: str, platform: str
):
    deploy(architecture=architecture)

    assert mocks.inputs_of(T.DOCKER_IMAGE)["build"]["platform"] == platform


def test_build_uses_runtime_context_dockerfile_and_the_pinned_base_image(mocks: PulumiMocks):
    out = deploy()

    inputs = mocks.inputs_of(T.DOCKER_IMAGE)
    assert inputs["build"]["context"] == "runtime"
    assert inputs["build"]["dockerfile"] == "runtime/Dockerfile"
    assert inputs["build"]["args"] == {"BASE_IMAGE": out["base_image"]}
    assert out["base_image"].startswith("ghcr.io/danny-avila/librechat-api@sha256:")
    assert inputs["imageName"] == f"{REPOSITORY}:{out['tag']}"  # never latest


def test_preview_never_builds_so_it_needs_no_docker_engine(mocks: PulumiMocks):
    deploy()

    mocks.assert_res(
        "image-image",
        T.DOCKER_IMAGE,
        {"buildOnPreview": False, "skipPush": False},
        partial=True,
    )


def test_no_registry_credential_reaches_the_state(mocks: PulumiMocks):
    """The deploying job logs Docker in to ECR; the image resource holds no password, and the
    program never asks ECR for a token (it would sit in state, readable by every preview)."""
    out = deploy()

    inputs = mocks.one(T.DOCKER_IMAGE).inputs
    assert "registry" not in inputs
    assert str(plain(inputs["imageName"])).startswith(out["repository_url"])
    assert mocks.calls_to(C.ECR_AUTH_TOKEN) == []
    assert "fake-ecr-password-" not in repr(plain(inputs))


def test_repository_scans_on_push_and_force_delete_follows_args(mocks: PulumiMocks):
    deploy(force_delete=True)

    mocks.assert_res(
        "image-repo",
        T.ECR_REPOSITORY,
        {
            "name": "librechat-test",
            "imageScanningConfiguration": {"scanOnPush": True},
            "imageTagMutability": "IMMUTABLE",
            "forceDelete": True,
        },
        partial=True,
    )


def test_lifecycle_policy_keeps_the_last_n_images_of_this_repository(mocks: PulumiMocks):
    deploy(keep_last_images=7)

    policy = mocks.assert_res("image-lifecycle", T.ECR_LIFECYCLE_POLICY)
    assert policy["repository"] == "librechat-test"
    (rule,) = json.loads(policy["policy"])["rules"]
    assert rule["selection"] == {
        "tagStatus": "any",
        "countType": "imageCountMoreThan",
        "countNumber": 7,
    }
    assert rule["action"] == {"type": "expire"}


def test_children_are_named_after_the_component(mocks: PulumiMocks):
    deploy()

    mocks.assert_res_counts(
        {
            T.ECR_REPOSITORY: 1,
            T.ECR_LIFECYCLE_POLICY: 1,
            T.ECR_REPOSITORY_POLICY: 1,
            T.DOCKER_IMAGE: 1,
            T.FUNCTION: 1,  # the test's own
        }
    )
    names = {r.name for r in mocks.resources if r.custom} - {"fn"}
    assert names == {"image-repo", "image-lifecycle", "image-lambda-pull", "image-image"}


def test_only_the_stacks_function_may_pull_the_image(mocks: PulumiMocks):
    deploy(lambda_function_name="librechat-test")

    policy = mocks.assert_res("image-lambda-pull", T.ECR_REPOSITORY_POLICY)
    assert policy["repository"] == "librechat-test"
    (statement,) = json.loads(policy["policy"])["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert statement["Action"] == ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    fn = f"arn:aws:lambda:{DEFAULT_REGION}:{ACCOUNT_ID}:function:librechat-test"
    assert statement["Condition"] == {"StringLike": {"aws:sourceArn": [fn, f"{fn}:*"]}}


def test_a_function_using_the_image_waits_for_the_pull_policy(mocks: PulumiMocks):
    """Otherwise Lambda writes its own repository policy and races the managed one."""
    deploy(lambda_function_name="librechat-test")

    assert {"image-image", "image-lambda-pull"} <= mocks.depends_on("fn")
