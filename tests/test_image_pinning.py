"""The function image is built from a base image pinned by digest and pushed under an
immutable, content-derived tag, so neither a moved upstream tag nor a re-pushed tag can change
what runs without showing up as a diff."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components.image import (
    ContainerImage,
    ContainerImageArgs,
    content_tag,
    image_repository,
    is_pinned,
)
from tests.pulumi_mocks import C, PulumiMocks, T, fake_registry_digest, run_program
from tests.stack_files import ROOT

TAGGED = "ghcr.io/danny-avila/librechat-api:v0.8.2-rc1"
DIGEST = "sha256:" + "ab" * 32
PINNED = f"ghcr.io/danny-avila/librechat-api@{DIGEST}"


def deploy(base_image: str = TAGGED, name: str = "image") -> dict[str, Any]:
    """Run a ContainerImage under the mocks; its outputs, the pinned base image and the tag."""

    def build() -> dict[str, pulumi.Input[Any]]:
        args = ContainerImageArgs(base_image=base_image, repository_name="librechat-test")
        image = ContainerImage(name, args)
        return {"image_uri": image.image_uri, "base_image": image.base_image, "tag": image.tag}

    return run_program(build)


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


def test_a_tag_is_resolved_to_its_digest_and_built_from_name_at_digest(mocks: PulumiMocks):
    out = deploy()

    assert mocks.calls_to(C.REGISTRY_IMAGE) == [{"name": TAGGED}]
    expected = f"ghcr.io/danny-avila/librechat-api@{fake_registry_digest(TAGGED)}"
    assert out["base_image"] == expected
    assert mocks.inputs_of(T.DOCKER_IMAGE)["build"]["args"] == {"BASE_IMAGE": expected}


def test_a_digest_in_config_is_used_as_is_without_a_lookup(mocks: PulumiMocks):
    deploy(PINNED)

    assert mocks.calls_to(C.REGISTRY_IMAGE) == []
    assert mocks.inputs_of(T.DOCKER_IMAGE)["build"]["args"] == {"BASE_IMAGE": PINNED}


def test_a_moved_upstream_tag_changes_the_build_and_its_tag(mocks: PulumiMocks):
    before = deploy()
    moved = "sha256:" + "cd" * 32
    mocks.call_results[C.REGISTRY_IMAGE] = {"name": TAGGED, "sha256Digest": moved}
    after = deploy(name="moved")

    assert after["base_image"] == f"ghcr.io/danny-avila/librechat-api@{moved}"
    assert after["base_image"] != before["base_image"]
    assert after["tag"] != before["tag"]


def test_an_unresolvable_tag_fails_naming_the_key(mocks: PulumiMocks):
    mocks.call_failures[C.REGISTRY_IMAGE] = "manifest unknown"
    with pytest.raises(pulumi.RunError, match=r"image\.baseImage .*v0\.8\.2-rc1.*manifest unknown"):
        deploy()


def test_only_a_full_sha256_digest_counts_as_pinned():
    assert is_pinned(PINNED)
    assert not is_pinned(TAGGED)
    assert not is_pinned("ghcr.io/x@sha256:abc")


def test_pushes_go_to_an_immutable_repository_under_the_content_tag(mocks: PulumiMocks):
    out = deploy()

    assert mocks.inputs_of(T.ECR_REPOSITORY)["imageTagMutability"] == "IMMUTABLE"
    assert mocks.inputs_of(T.DOCKER_IMAGE)["imageName"].endswith(f"/librechat-test:{out['tag']}")
    assert out["tag"].startswith("content-")
    # still deployed by digest, never by the tag
    assert out["image_uri"] == mocks.outputs["image-image"]["repoDigest"]


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
