"""The function image is built from a base image pinned by digest and pushed under an
immutable, content-derived tag, so neither a moved upstream tag nor a re-pushed tag can change
what runs without showing up as a diff."""

from __future__ import annotations

import shutil
from pathlib import Path

import pulumi
import pytest

from components.image import (
    ContainerImage,
    ContainerImageArgs,
    content_tag,
    image_repository,
    is_pinned,
)
from tests.pulumi_mocks import C, PulumiMocks, T, fake_registry_digest, settle
from tests.stack_files import ROOT

TAGGED = "ghcr.io/danny-avila/librechat-api:v0.8.2-rc1"
DIGEST = "sha256:" + "ab" * 32
PINNED = f"ghcr.io/danny-avila/librechat-api@{DIGEST}"


def make(base_image: str = TAGGED, **overrides: object) -> ContainerImage:
    args = {"base_image": base_image, "repository_name": "librechat-test", **overrides}
    return ContainerImage("image", ContainerImageArgs(**args))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reference", "repository"),
    [
        (TAGGED, "ghcr.io/danny-avila/librechat-api"),
        (PINNED, "ghcr.io/danny-avila/librechat-api"),
        (f"{TAGGED}@{DIGEST}", "ghcr.io/danny-avila/librechat-api"),
        ("localhost:5000/librechat-api:dev", "localhost:5000/librechat-api"),
        ("localhost:5000/librechat-api", "localhost:5000/librechat-api"),
        ("librechat-api", "librechat-api"),
    ],
)
def test_the_repository_of_a_reference_drops_tag_and_digest(reference: str, repository: str):
    assert image_repository(reference) == repository


@pulumi.runtime.test
def test_a_tag_is_resolved_to_its_digest_and_built_from_name_at_digest(mocks: PulumiMocks):
    image = make()

    async def check() -> None:
        await image.image_uri.future()
        assert mocks.calls_to(C.REGISTRY_IMAGE) == [{"name": TAGGED}]
        expected = f"ghcr.io/danny-avila/librechat-api@{fake_registry_digest(TAGGED)}"
        assert image.base_image == expected
        assert mocks.inputs_of(T.DOCKER_IMAGE)["build"]["args"] == {"BASE_IMAGE": expected}

    return settle(check())


@pulumi.runtime.test
def test_a_digest_in_config_is_used_as_is_without_a_lookup(mocks: PulumiMocks):
    image = make(PINNED)

    async def check() -> None:
        await image.image_uri.future()
        assert mocks.calls_to(C.REGISTRY_IMAGE) == []
        assert mocks.inputs_of(T.DOCKER_IMAGE)["build"]["args"] == {"BASE_IMAGE": PINNED}

    return settle(check())


@pulumi.runtime.test
def test_a_moved_upstream_tag_changes_the_build_and_its_tag(mocks: PulumiMocks):
    before = make()
    moved = "sha256:" + "cd" * 32
    mocks.call_results[C.REGISTRY_IMAGE] = {"name": TAGGED, "sha256Digest": moved}
    after = ContainerImage("moved", ContainerImageArgs(base_image=TAGGED))

    async def check() -> None:
        await before.image_uri.future()
        await after.image_uri.future()
        assert after.base_image == f"ghcr.io/danny-avila/librechat-api@{moved}"
        assert after.base_image != before.base_image
        assert after.tag != before.tag

    return settle(check())


def test_an_unresolvable_tag_fails_naming_the_key(mocks: PulumiMocks):
    mocks.call_failures[C.REGISTRY_IMAGE] = "manifest unknown"
    with pytest.raises(pulumi.RunError, match=r"image\.baseImage .*v0\.8\.2-rc1.*manifest unknown"):
        make()


def test_only_a_full_sha256_digest_counts_as_pinned():
    assert is_pinned(PINNED)
    assert not is_pinned(TAGGED)
    assert not is_pinned("ghcr.io/x@sha256:abc")


@pulumi.runtime.test
def test_pushes_go_to_an_immutable_repository_under_the_content_tag(mocks: PulumiMocks):
    image = make()

    async def check() -> None:
        await image.image_uri.future()
        assert mocks.inputs_of(T.ECR_REPOSITORY)["imageTagMutability"] == "IMMUTABLE"
        name = mocks.inputs_of(T.DOCKER_IMAGE)["imageName"]
        assert name.endswith(f"/librechat-test:{image.tag}")
        assert image.tag.startswith("content-")
        # still deployed by digest, never by the tag
        assert await image.image_uri.future() == mocks.outputs["image-image"]["repoDigest"]

    return settle(check())


def copy_context(tmp_path: Path) -> tuple[str, str]:
    context = tmp_path / "runtime"
    shutil.copytree(ROOT / "runtime", context, ignore=shutil.ignore_patterns("__pycache__"))
    return str(context), str(context / "Dockerfile")


def test_the_content_tag_follows_every_input_of_the_build(tmp_path: Path):
    context, dockerfile = copy_context(tmp_path)
    args = {"BASE_IMAGE": PINNED}
    tag = content_tag(context, dockerfile, args, "linux/amd64")
    assert tag == content_tag(context, dockerfile, args, "linux/amd64")
    assert tag != content_tag(context, dockerfile, args, "linux/arm64")
    assert tag != content_tag(context, dockerfile, {"BASE_IMAGE": TAGGED}, "linux/amd64")
    source = Path(context) / "streaming_proxy" / "__init__.py"
    source.write_text(source.read_text() + "\n# changed\n")
    assert tag != content_tag(context, dockerfile, args, "linux/amd64")


def test_the_content_tag_ignores_caches_the_tests_leave_behind(tmp_path: Path):
    context, dockerfile = copy_context(tmp_path)
    tag = content_tag(context, dockerfile, {}, "linux/amd64")
    cache = Path(context) / "streaming_proxy" / "__pycache__"
    cache.mkdir()
    (cache / "proxy.cpython-311.pyc").write_bytes(b"\0compiled")
    assert content_tag(context, dockerfile, {}, "linux/amd64") == tag
