"""The function's container image: an ECR repository and the image built from `runtime/`.

The repository scans on push, keeps the newest N images (lifecycle policy), lets only the
stack's function pull (repository policy for lambda.amazonaws.com, scoped by source ARN) and
has immutable tags: each build is pushed under a tag derived from what it is built from (the
build context, the Dockerfile, the pinned base image and the platform), so a tag never
changes meaning, and the function is deployed by digest regardless.

The base image is pinned by digest at deploy time: a tag in `image.baseImage` is resolved to its
digest through the registry (pulumi-docker's `get_registry_image`, a look-up that also runs in
`pulumi preview`, so a moved upstream tag shows up as a diff in the pull request's preview) and
the image is built `FROM name@sha256:...`; a digest given in config is used as is.

Lambda accepts one image manifest for one platform and rejects manifest lists, so the build
names exactly one platform, the one matching the function's architecture. The function is
pinned to the pushed digest (`repo@sha256:...`, pulumi-docker's `repo_digest`): a rebuilt image
changes the digest and so updates the function; an unchanged build context does not rebuild.

The push uses the Docker client's own login to the registry (`aws ecr get-login-password |
docker login`, done by the deploying job, pulumi-up.yml, or by hand before `pulumi up`): the
image resource gets no `registry=` credentials, so the state holds no registry password (a
12-hour ECR token would otherwise sit in state every preview may decrypt).

Previews need no Docker engine: pulumi-docker 4.x `Image` does not build during preview unless
`build_on_preview` is true (its default is false, pulumi/pulumi-docker#855); the preview shows
the digest as unknown when the context changed. `build_on_preview=False` is passed explicitly
so that a changed provider default cannot start needing an engine on pull requests.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker

from components.aws_rules import PLATFORMS, Architecture


@dataclass(frozen=True)
class ContainerImageArgs:
    """Inputs of `ContainerImage`. Paths are relative to the project directory (Pulumi's cwd)."""

    base_image: str
    architecture: Architecture = "x86_64"
    context: str = "runtime"
    dockerfile: str = "runtime/Dockerfile"
    repository_name: str | None = None
    lambda_function_name: str | None = None
    """The function that runs the image; only it may pull (None: any function of the account)."""
    keep_last_images: int = 10
    force_delete: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def platform(self) -> str:
        return PLATFORMS[self.architecture]


#: Files in a build context that never reach the image (runtime/.dockerignore excludes them) and
#: that running the tests creates: left out of the content tag so it is the same on every machine.
_CACHE_PARTS = frozenset({"__pycache__", ".pytest_cache", ".ruff_cache"})
_CACHE_SUFFIXES = (".pyc", ".pyo", ".pyd")
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def image_repository(reference: str) -> str:
    """`name` of `name[:tag][@digest]` (a registry port, `host:5000/x`, is not a tag)."""
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name[: len(name) - len(last)] + last.split(":", 1)[0]


def is_pinned(reference: str) -> bool:
    """True when `reference` names its content by digest (`name[:tag]@sha256:<64 hex>`)."""
    return bool(_DIGEST.search(reference))


def pin_base_image(reference: str, opts: pulumi.InvokeOptions | None = None) -> str:
    """`name@sha256:...` for `reference`: as is when it has a digest, else looked up."""
    if is_pinned(reference):
        return reference
    try:
        found = docker.get_registry_image(name=reference, opts=opts)
    except Exception as exc:  # the provider reports an unknown tag or registry as an invoke error
        msg = (
            f"image.baseImage {reference!r} could not be resolved to a digest in its registry "
            f"({exc}); check the name and tag, or give name@sha256:<digest>"
        )
        raise pulumi.RunError(msg) from exc
    return f"{image_repository(reference)}@{found.sha256_digest}"


def content_tag(context: str, dockerfile: str, build_args: Mapping[str, str], platform: str) -> str:
    """A tag naming what an image is built from; equal inputs give the same tag."""
    digest = hashlib.sha256()
    digest.update(json.dumps([dict(sorted(build_args.items())), platform]).encode())
    root = Path(context)
    files = sorted(p for p in root.rglob("*") if p.is_file() and not _is_cache(p, root))
    for path in [Path(dockerfile), *files]:
        digest.update(path.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return f"content-{digest.hexdigest()[:20]}"


def _is_cache(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts
    return bool(_CACHE_PARTS.intersection(parts)) or path.suffix in _CACHE_SUFFIXES


def lifecycle_policy(keep_last_images: int) -> str:
    """ECR lifecycle policy that expires all but the newest `keep_last_images` images."""
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": f"Keep the last {keep_last_images} images",
                    "selection": {
                        "tagStatus": "any",
                        "countType": "imageCountMoreThan",
                        "countNumber": keep_last_images,
                    },
                    "action": {"type": "expire"},
                }
            ]
        }
    )


def lambda_pull_policy(function_arn_pattern: str) -> str:
    """Repository policy letting Lambda pull the image for the matching function(s) only.

    Lambda adds an equivalent statement itself when the repository has none (which needs
    ecr:SetRepositoryPolicy and leaves the policy outside Pulumi); stating it here keeps the
    repository policy managed and scoped.
    """
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "LambdaECRImageRetrievalPolicy",
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                    "Condition": {
                        "StringLike": {
                            "aws:sourceArn": [function_arn_pattern, f"{function_arn_pattern}:*"]
                        }
                    },
                }
            ],
        }
    )


class ContainerImage(pulumi.ComponentResource):
    """ECR repository + single-platform image build and push; `image_uri` is digest-pinned."""

    repository: aws.ecr.Repository
    lifecycle_policy: aws.ecr.LifecyclePolicy
    repository_policy: aws.ecr.RepositoryPolicy
    image: docker.Image
    image_uri: pulumi.Output[str]
    repository_url: pulumi.Output[str]
    base_image: str
    """The base image the build used, pinned: `name@sha256:...`."""
    tag: str

    def __init__(
        self, name: str, args: ContainerImageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("librechat:components:ContainerImage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        invoke = pulumi.InvokeOptions(parent=self)

        # 1. Repository: scanned on push; a pushed tag can never be moved to other content.
        self.repository = aws.ecr.Repository(
            f"{name}-repo",
            name=args.repository_name,
            image_scanning_configuration={"scan_on_push": True},
            image_tag_mutability="IMMUTABLE",
            force_delete=args.force_delete,
            tags=dict(args.tags),
            opts=child,
        )
        # 2. Lifecycle: keep the newest N images; older ones (and their digests) expire.
        self.lifecycle_policy = aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=self.repository.name,
            policy=lifecycle_policy(args.keep_last_images),
            opts=child,
        )
        # 3. Only this stack's function may pull (Lambda reads the image with its own principal).
        partition = aws.get_partition(opts=invoke).partition
        region = aws.get_region(opts=invoke).region
        account = aws.get_caller_identity(opts=invoke).account_id
        function = args.lambda_function_name or "*"
        self.repository_policy = aws.ecr.RepositoryPolicy(
            f"{name}-lambda-pull",
            repository=self.repository.name,
            policy=lambda_pull_policy(
                f"arn:{partition}:lambda:{region}:{account}:function:{function}"
            ),
            opts=child,
        )
        # 4. No push credentials here: the deploying job logs Docker in to ECR itself
        #    (pulumi-up.yml), so no registry password ever reaches the state a preview can read.
        # 5. The base image by digest, and the tag of what this build is made of.
        self.base_image = pin_base_image(args.base_image, invoke)
        build_args = {"BASE_IMAGE": self.base_image}
        self.tag = content_tag(args.context, args.dockerfile, build_args, args.platform)
        # 6. Build for one platform and push; never build during preview.
        self.image = docker.Image(
            f"{name}-image",
            image_name=self.repository.repository_url.apply(lambda url: f"{url}:{self.tag}"),
            build=docker.DockerBuildArgs(
                context=args.context,
                dockerfile=args.dockerfile,
                platform=args.platform,
                args=build_args,
            ),
            build_on_preview=False,
            skip_push=False,
            opts=child,
        )
        self.repository_url = self.repository.repository_url
        # The URI carries the pull policy as a dependency, so the function is created only once
        # Lambda may pull; otherwise Lambda tries to write its own repository policy (needing
        # ecr:SetRepositoryPolicy) and races the managed one.
        self.image_uri = pulumi.Output.all(self.image.repo_digest, self.repository_policy.id).apply(
            lambda values: values[0]
        )
        self.register_outputs(
            {
                "repository_url": self.repository_url,
                "image_uri": self.image_uri,
                "base_image": self.base_image,
            }
        )
