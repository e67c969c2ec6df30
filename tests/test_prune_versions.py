"""ops/prune_versions.py against moto's Lambda: old versions go, the newest few and every
version an alias needs stay."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ops import prune_versions
from ops.prune_versions import prune, published_versions

pytestmark = pytest.mark.slow  # moto (tests/conftest.py)

REGION = "eu-west-1"  # the dev stack's
FUNCTION = "librechat-lambda-dev"

pytestmark = pytest.mark.slow  # moto: not for make test-fast


@pytest.fixture
def lam(moto_credentials: None) -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("lambda", region_name=REGION)


def publish(lam: Any, count: int) -> None:
    """A function with `count` published versions (1..count), as `count` deploys leave it."""
    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName=f"{FUNCTION}-function",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    lam.create_function(
        FunctionName=FUNCTION,
        Runtime="python3.12",
        Role=role,
        Handler="h.h",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
    )
    for deploy in range(count):
        lam.update_function_configuration(FunctionName=FUNCTION, Description=f"deploy {deploy}")
        lam.publish_version(FunctionName=FUNCTION)


def test_keeps_the_newest_versions_and_deletes_the_rest(lam: Any):
    publish(lam, 6)
    lam.create_alias(FunctionName=FUNCTION, Name="live", FunctionVersion="6")

    assert prune(lam, FUNCTION, keep=3) == [1, 2, 3]
    assert published_versions(lam, FUNCTION) == [4, 5, 6]
    assert lam.get_alias(FunctionName=FUNCTION, Name="live")["FunctionVersion"] == "6"


def test_a_version_an_alias_points_or_routes_to_is_kept(lam: Any):
    publish(lam, 6)
    lam.create_alias(
        FunctionName=FUNCTION,
        Name="live",
        FunctionVersion="2",
        RoutingConfig={"AdditionalVersionWeights": {"1": 0.1}},
    )

    assert prune(lam, FUNCTION, keep=2) == [3, 4]
    assert published_versions(lam, FUNCTION) == [1, 2, 5, 6]


def test_a_dry_run_names_the_versions_and_deletes_none(
    lam: Any, capsys: pytest.CaptureFixture[str]
):
    publish(lam, 4)

    assert prune(lam, FUNCTION, keep=1, dry_run=True) == [1, 2, 3]
    assert published_versions(lam, FUNCTION) == [1, 2, 3, 4]
    assert f"would delete {FUNCTION}:1" in capsys.readouterr().out


def test_fewer_versions_than_kept_deletes_nothing(lam: Any):
    publish(lam, 2)
    assert prune(lam, FUNCTION, keep=3) == []
    assert published_versions(lam, FUNCTION) == [1, 2]


def test_the_stack_names_the_function_and_region(lam: Any, capsys: pytest.CaptureFixture[str]):
    publish(lam, 5)
    assert prune_versions.main(["--stack", "dev", "--keep", "2"]) == 0
    assert published_versions(lam, FUNCTION) == [4, 5]
    assert f"{FUNCTION}: 2 of 5 versions kept" in capsys.readouterr().out


def test_keeping_no_version_is_refused(lam: Any):
    with pytest.raises(SystemExit) as caught:
        prune_versions.main(["--stack", "dev", "--keep", "0"])
    assert caught.value.code == 2
    with pytest.raises(ValueError, match="keep at least 1"):
        prune(lam, FUNCTION, keep=0)
