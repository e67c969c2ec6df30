"""`network`: where the function runs, by ids or by tags and names looked up in the VPC."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from pydantic import Field

from components import aws_rules
from components.config.base import Names, Problem, Section, TextMap, rule

VpcId = Annotated[str, rule(aws_rules.check_vpc_id)]
SubnetId = Annotated[str, rule(aws_rules.check_subnet_id)]
SecurityGroupId = Annotated[str, rule(aws_rules.check_security_group_id)]


class NetworkConfig(Section):
    enabled: bool = Field(
        True,
        description="`false`: no VPC (LibreChat then cannot reach private DocumentDB, Redis, "
        "Cloud Map services); the other network keys are then not read",
    )
    vpc_id: VpcId | None = Field(None, description="the VPC by id (or `network.vpcTags`)")
    vpc_tags: TextMap = Field(
        {},
        description="the VPC by tags, matching exactly one; needed to look up subnets or "
        "security groups by tag or name",
    )
    subnet_ids: tuple[SubnetId, ...] = Field(
        (),
        max_length=aws_rules.MAX_SUBNETS,
        description="the function's subnets by id (or `network.subnetTags`)",
    )
    subnet_tags: TextMap = Field(
        {},
        description="the function's subnets by tags, looked up inside the VPC (`*` wildcards "
        "allowed in values)",
    )
    security_group_ids: tuple[SecurityGroupId, ...] = Field(
        (),
        max_length=aws_rules.MAX_SECURITY_GROUPS,
        description="the function's security groups by id",
    )
    security_group_names: Names = Field(
        (),
        description="the function's security groups by name, looked up inside the VPC "
        "(wildcards allowed)",
    )
    security_group_tags: TextMap = Field(
        {}, description="the function's security groups by tags, looked up inside the VPC"
    )

    def related_problems(self) -> Iterator[Problem]:
        if not self.model_fields_set:
            yield (
                "",
                "is not set; give network.vpcTags (or vpcId), network.subnetTags (or subnetIds) "
                "and network.securityGroupNames (or securityGroupIds / securityGroupTags), or "
                "network.enabled: false for a function outside any VPC",
            )
            return
        looks_up = bool(self.subnet_tags or self.security_group_names or self.security_group_tags)
        if self.vpc_id and self.vpc_tags:
            yield ("vpcId", "and network.vpcTags are both set; keep one")
        elif looks_up and not (self.vpc_id or self.vpc_tags):
            yield (
                "vpcTags",
                "is needed to look up subnets or security groups by tag or name; set the VPC's "
                "tags (e.g. {Name: my-vpc}) or network.vpcId",
            )
        if bool(self.subnet_ids) == bool(self.subnet_tags):
            yield (
                "subnetTags",
                "or network.subnetIds is needed, not both: the subnets by tags "
                "(e.g. {Name: '*private*'}) or by ids (a list of subnet-...)",
            )
        groups = (self.security_group_ids, self.security_group_names, self.security_group_tags)
        if sum(map(bool, groups)) != 1:
            yield (
                "securityGroupNames",
                "or network.securityGroupIds or network.securityGroupTags is needed, exactly "
                "one: the function's security groups by name (e.g. ['*librechat*']), id or tags",
            )
