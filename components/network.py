"""The function's VPC placement: subnet and security group ids, given or looked up.

A stack names its network either by ids or by tags and names (e.g. the private subnets of an
existing environment's VPC), so a committed stack file previews without placeholders. Lookups
are data-source reads (EC2 Describe* calls); nothing is created here. A lookup that finds
nothing fails the preview with the config key to fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import pulumi
import pulumi_aws as aws

from components.aws_rules import MAX_SECURITY_GROUPS
from components.config import PROJECT, NetworkConfig

#: An EC2 Describe filter; get_vpc, get_subnets and get_security_groups take the same shape.
Filter = aws.ec2.GetSubnetsFilterArgsDict


@dataclass(frozen=True)
class NetworkIds:
    """Resolved VPC placement of the function."""

    vpc_id: str | None
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]


def resolve_network(network: NetworkConfig, opts: pulumi.InvokeOptions | None = None) -> NetworkIds:
    """Ids for the function's `vpc_config`."""
    vpc_id = network.vpc_id
    if vpc_id is None and network.vpc_tags:
        # get_vpc fails unless exactly one VPC matches; say which key to fix.
        try:
            vpc_id = aws.ec2.get_vpc(filters=tag_filters(network.vpc_tags), opts=opts).id
        except Exception as exc:  # the provider reports "no match" / "multiple" as invoke errors
            _fail(
                "network.vpcTags",
                f"did not match exactly one VPC: {dict(network.vpc_tags)} ({exc})",
            )
    subnet_ids = tuple(network.subnet_ids)
    if not subnet_ids:
        found = aws.ec2.get_subnets(filters=subnet_filters(network, vpc_id), opts=opts)
        subnet_ids = tuple(sorted(found.ids))
        if not subnet_ids:
            _fail("network.subnetTags", f"matched no subnet in {vpc_id}: {network.subnet_tags}")

    sg_ids = tuple(network.security_group_ids)
    if not sg_ids:
        filters = security_group_filters(network, vpc_id)
        what: object = network.security_group_tags
        key = "network.securityGroupTags"
        if network.security_group_names:
            what, key = list(network.security_group_names), "network.securityGroupNames"
        sg_ids = tuple(sorted(aws.ec2.get_security_groups(filters=filters, opts=opts).ids))
        if not sg_ids:
            _fail(key, f"matched no security group in {vpc_id}: {what}")
        if len(sg_ids) > MAX_SECURITY_GROUPS:
            _fail(key, f"matched {len(sg_ids)} security groups ({', '.join(sg_ids)}); "
                  f"Lambda takes at most {MAX_SECURITY_GROUPS}: narrow the filter")  # fmt: skip
    return NetworkIds(vpc_id=vpc_id, subnet_ids=subnet_ids, security_group_ids=sg_ids)


def subnet_filters(network: NetworkConfig, vpc_id: str | None) -> list[Filter]:
    """The look-up of the function's subnets when the stack names no ids (ops/preflight.py
    makes the same one with boto3)."""
    return _in_vpc(vpc_id) + tag_filters(network.subnet_tags)


def security_group_filters(network: NetworkConfig, vpc_id: str | None) -> list[Filter]:
    """The look-up of the function's security groups when the stack names no ids."""
    filters = _in_vpc(vpc_id) + tag_filters(network.security_group_tags)
    if network.security_group_names:
        filters.append({"name": "group-name", "values": list(network.security_group_names)})
    return filters


def _in_vpc(vpc_id: str | None) -> list[Filter]:
    return [{"name": "vpc-id", "values": [vpc_id]}] if vpc_id else []


def tag_filters(tags: Mapping[str, str]) -> list[Filter]:
    """EC2 Describe filters for tags; values may hold `*` and `?` wildcards. ops/preflight.py
    makes the same look-ups with boto3 (`boto3_filters`)."""
    return [{"name": f"tag:{key}", "values": [value]} for key, value in sorted(tags.items())]


def boto3_filters(filters: list[Filter]) -> list[dict[str, Any]]:
    """The same filters in boto3's spelling (`Name`, `Values`)."""
    return [{"Name": f["name"], "Values": list(f["values"])} for f in filters]


def _fail(key: str, message: str) -> NoReturn:
    raise pulumi.RunError(f"{PROJECT}:{key} {message}; fix the filter or give ids instead")
