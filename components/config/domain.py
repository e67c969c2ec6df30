"""`domain`: the custom domain in front of the API; `enabled: false` switches it off."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from pydantic import Field

from components import aws_rules
from components.config.base import Problem, Section, rule

DomainName = Annotated[str, rule(aws_rules.check_domain_name)]


class DomainConfig(Section):
    enabled: bool = Field(
        True,
        description="a stack without a custom domain says `false` (the API is then reached at "
        "its stage URL); the other domain keys are then not read",
    )
    name: DomainName = Field(description="custom domain", examples=["chat.example.com"])
    hosted_zone_id: Annotated[str, rule(aws_rules.check_zone_id)] | None = Field(
        None,
        description="Route53 zone for the records, by id (or `domain.hostedZoneName`); "
        "neither: the public zone holding the domain is looked up",
        json_schema_extra={"shown_default": "looked up"},
    )
    hosted_zone_name: Annotated[str, rule(aws_rules.check_zone_name)] | None = Field(
        None, description="Route53 zone for the records, by name"
    )
    certificate_arn: Annotated[str, rule(aws_rules.check_acm_arn)] | None = Field(
        None,
        description="an existing ACM certificate in the API's region; unset: one is issued and "
        "validated through DNS",
        json_schema_extra={"shown_default": "issued"},
    )
    base_path: Annotated[str, rule(aws_rules.check_base_path)] | None = Field(
        None,
        description="base path mapping (`https://<domain>/<basePath>/…`); also `BASE_PATH` for "
        "the runtime",
    )

    @property
    def url(self) -> str:
        """`https://<domain>[/<base path>]`: where the API answers through the domain."""
        return aws_rules.domain_url(self.name, self.base_path)

    def related_problems(self) -> Iterator[Problem]:
        zone_name = self.hosted_zone_name
        if self.hosted_zone_id and zone_name:
            yield ("hostedZoneId", "and domain.hostedZoneName are both set; keep one")
        if zone_name and not aws_rules.in_zone(self.name, zone_name):
            yield ("hostedZoneName", f"{zone_name!r} does not hold {self.name!r}")
