"""`librechatConfig`: LibreChat's own librechat.yaml, fetched by the runtime at cold start."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from components import aws_rules
from components.config.base import Section, rule
from components.contract import CONFIG_PATH


class LibreChatConfig(Section):
    s3_uri: Annotated[str, rule(aws_rules.check_s3_uri)] | None = Field(
        None,
        description=f"`s3://bucket/key` of `librechat.yaml`, downloaded at every cold start to "
        f"`{CONFIG_PATH}` (the role gets `s3:GetObject` on that object only)",
    )
    domain_from: Annotated[str, rule(aws_rules.check_domain_name)] | None = Field(
        None,
        description="a domain replaced everywhere in that file by the host of `DOMAIN_SERVER` "
        "(reuse one config file across domains)",
    )

    @property
    def location(self) -> aws_rules.S3Location | None:
        return aws_rules.parse_s3_uri(self.s3_uri) if self.s3_uri else None
