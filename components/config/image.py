"""`image`: the function image, built from runtime/Dockerfile on a LibreChat API image."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from pydantic import Field

from components import aws_rules
from components.config.base import Problem, Section, rule


class ImageConfig(Section):
    base_image: Annotated[str, rule(aws_rules.check_image_ref)] = Field(
        description="LibreChat API image the function image is built on (`BASE_IMAGE` build "
        "argument)",
        examples=["ghcr.io/danny-avila/librechat-api:v0.8.2-rc1"],
    )
    require_digest: bool = Field(
        False,
        description="`baseImage` must name its digest (`name@sha256:...`, the tag in a comment), "
        "so a moved upstream tag reaches the stack only through a pull request (the scheduled "
        "base-image-bump workflow opens one)",
    )
    keep_last_images: int = Field(
        10, ge=1, le=1000, description="ECR lifecycle policy: how many images to keep"
    )
    force_delete: bool = Field(
        False, description="let `pulumi destroy` delete a repository that still holds images"
    )

    def related_problems(self) -> Iterator[Problem]:
        if self.require_digest:
            try:
                aws_rules.check_pinned_image(self.base_image)
            except ValueError as error:
                yield ("baseImage", str(error))
