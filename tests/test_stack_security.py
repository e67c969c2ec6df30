"""Issue 8 on the committed stacks, run whole: secrets resolved at runtime everywhere (deploy
mode only with a customer-managed key), only the custom domain answers, stage throttling by
default, an optional web ACL, and the base image pinned by digest."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.config import ConfigError
from tests.pulumi_mocks import (
    ACCOUNT_ID,
    C,
    PulumiMocks,
    T,
    fake_registry_digest,
    fake_ssm_value,
    is_secret_input,
    plain,
    run_main,
)
from tests.stack_files import STACKS, cli_config, stack_file

pytestmark = pytest.mark.program  # each runs the whole program

KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT_ID}:key/0a1b2c3d-4e5f-4a1b-8c2d-3e4f5a6b7c8d"
WEB_ACL = f"arn:aws:wafv2:eu-west-1:{ACCOUNT_ID}:regional/webacl/librechat/0a1b2c3d"
WEB_ACL_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"


def run(
    mocks: PulumiMocks, stack: str, previewed: bool = True, **sections: dict[str, Any]
) -> dict[str, Any]:
    """`pulumi preview -s <stack>` under the mocks, with keys of some sections overridden
    (`previewed=False`: a stack pull requests do not preview, `pullRequestPreviews: false`)."""
    mocks.zones = {"sandbox.data.apro.is": "ZSANDBOX", "data.apro.is": "ZDATA"}
    committed = stack_file(stack)
    overrides = {
        section: {**committed.get(f"librechat-lambda:{section}", {}), **values}
        for section, values in sections.items()
    }
    config = cli_config(stack, **overrides)
    if not previewed:
        config["librechat-lambda:pullRequestPreviews"] = "false"
    return run_main(config)


# -- 1. runtime secrets everywhere ---------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_every_committed_stack_keeps_secret_values_out_of_function_and_state(
    mocks: PulumiMocks, stack: str
):
    assert stack_file(stack)["librechat-lambda:secrets"]["mode"] == "runtime"
    run(mocks, stack)
    assert mocks.calls_to(C.SSM_PARAMETER) == [], "a preview would read secrets"
    parameters = stack_file(stack)["librechat-lambda:secrets"]["parameters"]
    env = plain(mocks.one(T.FUNCTION).inputs["environment"])["variables"]
    assert json.loads(env["SSM_SECRETS"]) == parameters
    recorded = json.dumps([plain(r.inputs) for r in mocks.resources])
    for parameter in parameters.values():
        assert fake_ssm_value(parameter) not in recorded


def test_a_previewed_stack_refuses_deploy_mode_before_reading_any_secret(mocks: PulumiMocks):
    with pytest.raises(ConfigError) as caught:
        run(
            mocks,
            "dev",
            secrets={"mode": "deploy"},
            function={"kmsKeyArn": KEY},
            compute={"snapStart": False},
        )
    (problem,) = caught.value.problems
    assert problem.startswith("librechat-lambda:secrets.mode is deploy, but pull requests preview")
    assert mocks.calls_to(C.SSM_PARAMETER) == []


def test_deploy_mode_needs_a_customer_managed_key_named_in_the_error(mocks: PulumiMocks):
    with pytest.raises(ConfigError) as caught:
        run(mocks, "dev", previewed=False, secrets={"mode": "deploy"}, compute={"snapStart": False})
    (problem,) = caught.value.problems
    assert problem.startswith("librechat-lambda:function.kmsKeyArn is required")
    assert [r for r in mocks.resources if r.custom] == []
    assert mocks.calls_to(C.SSM_PARAMETER) == []


def test_deploy_mode_encrypts_the_environment_with_that_key(mocks: PulumiMocks):
    run(
        mocks,
        "dev",
        previewed=False,
        secrets={"mode": "deploy"},
        function={"kmsKeyArn": KEY},
        compute={"snapStart": False},
    )
    function = mocks.one(T.FUNCTION)
    assert plain(function.inputs)["kmsKeyArn"] == KEY
    assert is_secret_input(function.inputs["environment"])


# -- 4. only the custom domain answers ------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_behind_the_custom_domain_the_execute_api_endpoint_is_off(mocks: PulumiMocks, stack: str):
    exports = run(mocks, stack)
    assert mocks.inputs_of(T.REST_API)["disableExecuteApiEndpoint"] is True
    domain = stack_file(stack)["librechat-lambda:domain"]["name"]
    assert exports["url"] == exports["custom_url"] == f"https://{domain}"
    assert "stage_url" not in exports


def test_the_endpoint_can_be_kept_for_debugging(mocks: PulumiMocks):
    exports = run(mocks, "dev", api={"keepExecuteApiEndpoint": True})
    assert mocks.inputs_of(T.REST_API)["disableExecuteApiEndpoint"] is False
    assert exports["stage_url"].endswith(".amazonaws.com/live")
    assert exports["url"] == "https://lambda-test.sandbox.data.apro.is"


def test_a_stack_without_throttling_keys_gets_the_safe_defaults(mocks: PulumiMocks):
    api = {k: v for k, v in stack_file("dev")["librechat-lambda:api"].items()
           if not k.startswith("throttling")}  # fmt: skip
    mocks.zones = {"sandbox.data.apro.is": "ZSANDBOX"}
    run_main(cli_config("dev", api=api))
    settings = mocks.inputs_of(T.API_METHOD_SETTINGS)
    assert settings["methodPath"] == "*/*"
    assert settings["settings"]["throttlingBurstLimit"] == 100
    assert settings["settings"]["throttlingRateLimit"] == 50


def test_prod_keeps_its_own_throttling(mocks: PulumiMocks):
    run(mocks, "prod")
    settings = mocks.inputs_of(T.API_METHOD_SETTINGS)["settings"]
    assert (settings["throttlingBurstLimit"], settings["throttlingRateLimit"]) == (500, 200)


def test_a_web_acl_in_config_is_associated_with_the_stage(mocks: PulumiMocks):
    run(mocks, "dev", api={"webAclArn": WEB_ACL})
    association = mocks.inputs_of(WEB_ACL_ASSOCIATION)
    assert association["webAclArn"] == WEB_ACL
    assert association["resourceArn"] == mocks.outputs["api-stage"]["arn"]


@pytest.mark.parametrize("stack", STACKS)
def test_no_web_acl_unless_configured(mocks: PulumiMocks, stack: str):
    run(mocks, stack)
    assert mocks.of_type(WEB_ACL_ASSOCIATION) == []


# -- 5. the base image by digest ------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_the_base_image_is_built_by_digest_and_exported(mocks: PulumiMocks, stack: str):
    exports = run(mocks, stack)
    tagged = stack_file(stack)["librechat-lambda:image"]["baseImage"]
    pinned = f"{tagged.rsplit(':', 1)[0]}@{fake_registry_digest(tagged)}"
    assert exports["base_image"] == pinned
    image = mocks.inputs_of(T.DOCKER_IMAGE)
    assert image["build"]["args"] == {"BASE_IMAGE": pinned}
    assert mocks.inputs_of(T.ECR_REPOSITORY)["imageTagMutability"] == "IMMUTABLE"
    assert exports["image_uri"] == mocks.outputs["image-image"]["repoDigest"]


# -- 5. the stream check and per-client limits (issue 17) -------------------------------------

TOKEN_PARAMETER = "/librechat-lambda/dev/stream-check-token"


def function_environment(mocks: PulumiMocks) -> dict[str, str]:
    return plain(mocks.one(T.FUNCTION).inputs["environment"])["variables"]


def test_the_stream_check_is_off_unless_the_stack_gives_it_a_token(mocks: PulumiMocks):
    run(mocks, "dev")
    env = function_environment(mocks)
    assert env["STREAM_CHECK_PATH"] == ""
    assert "STREAM_CHECK_TOKEN" not in json.loads(env["SSM_SECRETS"])


def test_with_a_token_parameter_the_runtime_reads_it_from_ssm_at_cold_start(mocks: PulumiMocks):
    run(mocks, "dev", api={"streamCheckTokenParameter": TOKEN_PARAMETER})
    env = function_environment(mocks)
    assert "STREAM_CHECK_PATH" not in env  # the runtime's default path: on
    assert json.loads(env["SSM_SECRETS"])["STREAM_CHECK_TOKEN"] == TOKEN_PARAMETER
    policies = [plain(p.inputs)["policy"] for p in mocks.of_type(T.ROLE_POLICY)]
    assert any(f"parameter{TOKEN_PARAMETER}" in p for p in policies)


def test_a_rate_limit_per_ip_gives_the_stage_a_web_acl_of_its_own(mocks: PulumiMocks):
    run(mocks, "dev", api={"rateLimitPerIp": 300})
    acl = mocks.inputs_of("aws:wafv2/webAcl:WebAcl")
    assert acl["name"] == "librechat-lambda-dev-rate"
    (rule,) = acl["rules"]
    assert rule["action"] == {"block": {}}
    assert rule["statement"]["rateBasedStatement"] == {"limit": 300, "aggregateKeyType": "IP"}
    assert mocks.one("aws:wafv2/webAclAssociation:WebAclAssociation")
