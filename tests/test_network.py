"""Network placement: ids pass through untouched, tags and names are looked up inside the VPC,
and a lookup that finds nothing (or too much) fails naming the key to fix."""

from __future__ import annotations

import pulumi
import pytest

from components.config import NetworkConfig
from components.network import resolve_network
from tests.pulumi_mocks import VPC_ID, C, PulumiMocks

LOOKUP = NetworkConfig.model_validate(
    {
        "vpcTags": {"Name": "dev-core*"},
        "subnetTags": {"Name": "*private*"},
        "securityGroupNames": ["*librechat*"],
    }
)


@pulumi.runtime.test
def test_given_ids_are_used_without_any_lookup(mocks: PulumiMocks):
    ids = resolve_network(
        NetworkConfig.model_validate(
            {"subnetIds": ["subnet-0123abcd"], "securityGroupIds": ["sg-0123abcd"]}
        )
    )
    assert (ids.subnet_ids, ids.security_group_ids) == (("subnet-0123abcd",), ("sg-0123abcd",))
    assert mocks.calls == []


@pulumi.runtime.test
def test_tags_and_names_are_looked_up_inside_the_vpc(mocks: PulumiMocks):
    ids = resolve_network(LOOKUP)
    assert ids.vpc_id == VPC_ID
    in_vpc = {"name": "vpc-id", "values": [VPC_ID]}
    assert mocks.calls_to(C.VPC) == [{"filters": [{"name": "tag:Name", "values": ["dev-core*"]}]}]
    assert mocks.calls_to(C.SUBNETS) == [
        {"filters": [in_vpc, {"name": "tag:Name", "values": ["*private*"]}]}
    ]
    assert mocks.calls_to(C.SECURITY_GROUPS) == [
        {"filters": [in_vpc, {"name": "group-name", "values": ["*librechat*"]}]}
    ]
    (subnets,) = mocks.results_of(C.SUBNETS)
    assert ids.subnet_ids == tuple(sorted(subnets["ids"]))


@pulumi.runtime.test
def test_security_groups_can_be_found_by_tags(mocks: PulumiMocks):
    config = NetworkConfig.model_validate(
        {
            "vpcId": "vpc-0123abcd",
            "subnetIds": ["subnet-0123abcd"],
            "securityGroupTags": {"App": "librechat"},
        }
    )
    ids = resolve_network(config)
    assert len(ids.security_group_ids) == 1
    assert mocks.calls_to(C.VPC) == []
    assert mocks.calls_to(C.SECURITY_GROUPS) == [
        {
            "filters": [
                {"name": "vpc-id", "values": ["vpc-0123abcd"]},
                {"name": "tag:App", "values": ["librechat"]},
            ]
        }
    ]


@pulumi.runtime.test
def test_vpc_lookup_that_fails_names_the_key(mocks: PulumiMocks):
    mocks.call_failures[C.VPC] = "no matching EC2 VPC found"
    with pytest.raises(pulumi.RunError, match=r"librechat-lambda:network\.vpcTags did not") as err:
        resolve_network(LOOKUP)
    assert "no matching EC2 VPC found" in str(err.value)
    assert mocks.calls_to(C.SUBNETS) == []


@pulumi.runtime.test
def test_subnet_lookup_that_finds_nothing_names_the_key(mocks: PulumiMocks):
    mocks.call_results[C.SUBNETS] = {"ids": []}
    with pytest.raises(pulumi.RunError, match=r"librechat-lambda:network\.subnetTags matched no"):
        resolve_network(LOOKUP)


@pulumi.runtime.test
def test_security_group_lookup_that_finds_nothing_names_the_key(mocks: PulumiMocks):
    mocks.call_results[C.SECURITY_GROUPS] = {"ids": []}
    with pytest.raises(pulumi.RunError, match=r"network\.securityGroupNames matched no"):
        resolve_network(LOOKUP)


@pulumi.runtime.test
def test_more_security_groups_than_lambda_takes_is_refused(mocks: PulumiMocks):
    mocks.call_results[C.SECURITY_GROUPS] = {"ids": [f"sg-0000000{i}" for i in range(6)]}
    with pytest.raises(pulumi.RunError, match="at most 5: narrow the filter"):
        resolve_network(LOOKUP)
