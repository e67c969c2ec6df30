"""Mocks for the CI program (ci/), kept apart from the main program's.

The CI program is its own Pulumi project (`librechat-lambda-ci`): the `ci_mocks` fixture
installs fresh mocks and empty config under that project and stack `admin`, as the root
`mocks` fixture does for the main program, so neither program's tests see the other's
resources, config or root stack. Tests that run both programs use both fixtures in turn.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pulumi.runtime import reset_options, set_all_config, set_mocks

from tests.pulumi_mocks import DEFAULT_REGION, EXTRA_OUTPUT_BUILDERS, PARTITION, Ctx, PulumiMocks

CI_PROJECT = "librechat-lambda-ci"
CI_STACK = "admin"
OIDC_PROVIDER = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
GET_OIDC_PROVIDER = "aws:iam/getOpenIdConnectProvider:getOpenIdConnectProvider"


def _oidc_provider(c: Ctx) -> dict[str, Any]:
    host = str(c.inputs.get("url", "")).removeprefix("https://")
    return {"arn": f"arn:{PARTITION}:iam::{c.account}:oidc-provider/{host}"}


EXTRA_OUTPUT_BUILDERS.setdefault(OIDC_PROVIDER, []).append(_oidc_provider)


@pytest.fixture
def ci_mocks() -> Iterator[PulumiMocks]:
    instance = PulumiMocks(region=DEFAULT_REGION)
    reset_options(project=CI_PROJECT, stack=CI_STACK)
    set_all_config({"aws:region": DEFAULT_REGION}, secret_keys=[])
    set_mocks(instance, project=CI_PROJECT, stack=CI_STACK, preview=False)
    yield instance
    set_all_config({}, secret_keys=[])
    reset_options(project=CI_PROJECT, stack=CI_STACK)
