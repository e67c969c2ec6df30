"""ContainerImage: a scanned, pruned ECR repository and one single-platform image per build,
with the function pinned to the pushed digest and no Docker engine needed for a preview."""

from __future__ import annotations

import json
import re

import pulumi
import pytest

from components.image import ContainerImage, ContainerImageArgs, lifecycle_policy
from tests.pulumi_mocks import (
    ACCOUNT_ID,
    DEFAULT_REGION,
    C,
    PulumiMocks,
    T,
    is_secret_input,
    plain,
    settle,
)

BASE = "ghcr.io/danny-avila/librechat-api:v0.8.2-rc1"


def make(**overrides: object) -> ContainerImage:
    args = {"base_image": BASE, "repository_name": "librechat-test", **overrides}
    return ContainerImage("image", ContainerImageArgs(**args))  # type: ignore[arg-type]


@pulumi.runtime.test
def test_image_uri_is_the_repository_pinned_to_the_pushed_digest(mocks: PulumiMocks):
    image = make()

    async def check() -> None:
        uri = await image.image_uri.future()
        repo = f"{ACCOUNT_ID}.dkr.ecr.{DEFAULT_REGION}.amazonaws.com/librechat-test"
        assert re.fullmatch(re.escape(repo) + r"@sha256:[0-9a-f]{64}", uri or ""), uri
        assert uri == mocks.outputs["image-image"]["repoDigest"]

    return settle(check())


@pytest.mark.parametrize(("architecture", "platform"), [("x86_64", "linux/amd64"),
                                                         ("arm64", "linux/arm64")])  # fmt: skip
@pulumi.runtime.test
def test_build_targets_the_one_platform_of_the_function_architecture(
    mocks: PulumiMocks, architecture: str, platform: str
):
    image = make(architecture=architecture)

    async def check() -> None:
        await image.image_uri.future()
        assert mocks.inputs_of(T.DOCKER_IMAGE)["build"]["platform"] == platform

    return settle(check())


@pulumi.runtime.test
def test_build_uses_runtime_context_dockerfile_and_base_image_argument(mocks: PulumiMocks):
    image = make()

    async def check() -> None:
        await image.image_uri.future()
        inputs = mocks.inputs_of(T.DOCKER_IMAGE)
        assert inputs["build"]["context"] == "runtime"
        assert inputs["build"]["dockerfile"] == "runtime/Dockerfile"
        assert inputs["build"]["args"] == {"BASE_IMAGE": image.base_image}
        assert image.base_image.startswith("ghcr.io/danny-avila/librechat-api@sha256:")

    return settle(check())


@pulumi.runtime.test
def test_preview_never_builds_so_it_needs_no_docker_engine(mocks: PulumiMocks):
    image = make()

    async def check() -> None:
        await image.image_uri.future()
        inputs = mocks.inputs_of(T.DOCKER_IMAGE)
        assert inputs["buildOnPreview"] is False
        assert inputs["skipPush"] is False

    return settle(check())


@pulumi.runtime.test
def test_push_uses_the_ecr_token_of_this_registry_with_the_password_secret(mocks: PulumiMocks):
    image = make()

    async def check() -> None:
        await image.image_uri.future()
        recorded = mocks.one(T.DOCKER_IMAGE).inputs["registry"]
        assert is_secret_input(recorded)  # the password makes the registry block secret
        registry = plain(recorded)
        assert registry["server"] == await image.repository_url.future()
        assert registry["username"] == "AWS"
        assert registry["password"].startswith("fake-ecr-password-")
        assert mocks.calls_to(C.ECR_AUTH_TOKEN) == [{"registryId": ACCOUNT_ID}]

    return settle(check())


@pulumi.runtime.test
def test_repository_scans_on_push_and_force_delete_follows_config(mocks: PulumiMocks):
    image = make(force_delete=True)

    async def check() -> None:
        await image.image_uri.future()
        repo = mocks.inputs_of(T.ECR_REPOSITORY)
        assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
        assert repo["imageTagMutability"] == "IMMUTABLE"
        assert repo["forceDelete"] is True
        assert repo["name"] == "librechat-test"

    return settle(check())


@pulumi.runtime.test
def test_lifecycle_policy_keeps_the_last_n_images_of_this_repository(mocks: PulumiMocks):
    image = make(keep_last_images=7)

    async def check() -> None:
        await image.lifecycle_policy.id.future()
        policy = mocks.inputs_of(T.ECR_LIFECYCLE_POLICY)
        assert policy["repository"] == "librechat-test"
        (rule,) = json.loads(policy["policy"])["rules"]
        assert rule["selection"] == {
            "tagStatus": "any",
            "countType": "imageCountMoreThan",
            "countNumber": 7,
        }
        assert rule["action"] == {"type": "expire"}

    return settle(check())


def test_lifecycle_policy_is_valid_json_with_one_expire_rule():
    rules = json.loads(lifecycle_policy(3))["rules"]
    assert [r["action"]["type"] for r in rules] == ["expire"]


@pulumi.runtime.test
def test_children_are_parented_and_named_after_the_component(mocks: PulumiMocks):
    image = make()

    async def check() -> None:
        await image.image_uri.future()
        await image.repository_policy.id.future()
        await image.lifecycle_policy.id.future()
        names = {r.name for r in mocks.resources if r.custom}
        assert names == {"image-repo", "image-lifecycle", "image-lambda-pull", "image-image"}

    return settle(check())


@pulumi.runtime.test
def test_only_the_stacks_function_may_pull_the_image(mocks: PulumiMocks):
    image = make(lambda_function_name="librechat-test")

    async def check() -> None:
        await image.repository_policy.id.future()
        policy = mocks.inputs_of(T.ECR_REPOSITORY_POLICY)
        assert policy["repository"] == "librechat-test"
        (statement,) = json.loads(policy["policy"])["Statement"]
        assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
        assert statement["Action"] == ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
        fn = f"arn:aws:lambda:{DEFAULT_REGION}:{ACCOUNT_ID}:function:librechat-test"
        assert statement["Condition"] == {"StringLike": {"aws:sourceArn": [fn, f"{fn}:*"]}}

    return settle(check())


@pulumi.runtime.test
def test_the_image_uri_waits_for_the_pull_policy(mocks: PulumiMocks):
    image = make(lambda_function_name="librechat-test")

    async def check() -> None:
        assert image.repository_policy in await image.image_uri.resources()
        assert await image.image_uri.future() == mocks.outputs["image-image"]["repoDigest"]

    return settle(check())
