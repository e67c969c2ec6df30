"""The whole program (`__main__.py`) run against the committed stack files, as `pulumi preview`
would run it: configuration from `Pulumi.<stack>.yaml` in the CLI's shape, AWS mocked."""

from __future__ import annotations

import json
import runpy
from typing import Any

import pulumi
import pytest
from pulumi.runtime import set_all_config

from components.config import ConfigError
from components.function import UNSCOPABLE_ACTIONS
from tests.pulumi_mocks import (
    ACCOUNT_ID,
    APIGATEWAY_REGIONAL_ZONE_IDS,
    DEFAULT_REGION,
    C,
    PulumiMocks,
    T,
    fake_registry_digest,
    fake_ssm_value,
    is_secret_input,
    plain,
)
from tests.stack_files import ROOT, cli_config, stack_file

DEV_DOMAIN = "lambda-test.sandbox.data.apro.is"
DEV_ZONE_ID = "ZSANDBOXZONE"


def run_program(config: dict[str, str]) -> dict[str, Any]:
    """Run __main__.py under the active mocks; return the stack outputs once all is registered."""
    set_all_config(config)
    exports: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> pulumi.Output[None]:
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
        outputs = pulumi.runtime.get_root_resource().outputs  # type: ignore[union-attr]
        return pulumi.Output.all(**outputs).apply(exports.update)

    program()
    return exports


@pytest.fixture
def dev(mocks: PulumiMocks) -> dict[str, Any]:
    mocks.zones = {"sandbox.data.apro.is": DEV_ZONE_ID, "data.apro.is": "ZPARENT"}
    return run_program(cli_config("dev"))


@pytest.fixture
def prod(mocks: PulumiMocks) -> dict[str, Any]:
    mocks.zones = {"data.apro.is": "ZDATA"}
    return run_program(cli_config("prod"))


def function_arn() -> str:
    return f"arn:aws:lambda:{DEFAULT_REGION}:{ACCOUNT_ID}:function:librechat-lambda-dev"


# -- outputs ------------------------------------------------------------------------------


def test_dev_exports_urls_function_image_and_log_group(mocks: PulumiMocks, dev: dict[str, Any]):
    repo = f"{ACCOUNT_ID}.dkr.ecr.{DEFAULT_REGION}.amazonaws.com/librechat-lambda-dev"
    assert dev["custom_url"] == dev["url"] == f"https://{DEV_DOMAIN}"
    assert "stage_url" not in dev  # the execute-api endpoint is off behind the domain
    assert dev["function_name"] == "librechat-lambda-dev"
    assert dev["function_arn"] == function_arn()
    assert dev["image_uri"].startswith(f"{repo}@sha256:")
    assert dev["log_group_name"] == "/aws/lambda/librechat-lambda-dev"


# -- streaming path ------------------------------------------------------------------------


def test_both_methods_stream_from_the_function_for_up_to_15_minutes(
    mocks: PulumiMocks, dev: dict[str, Any]
):
    streaming_arn = mocks.outputs["function-function"]["responseStreamingInvokeArn"]
    assert streaming_arn.endswith(f"/functions/{function_arn()}/response-streaming-invocations")
    integrations = [plain(r.inputs) for r in mocks.of_type(T.API_INTEGRATION)]
    assert len(integrations) == 2
    for integration in integrations:
        assert integration["type"] == "AWS_PROXY"
        assert integration["integrationHttpMethod"] == "POST"
        assert integration["responseTransferMode"] == "STREAM"
        assert integration["uri"] == streaming_arn
        assert integration["timeoutMilliseconds"] == 900_000
    methods = [plain(r.inputs) for r in mocks.of_type(T.API_METHOD)]
    assert sorted(m["httpMethod"] for m in methods) == ["ANY", "ANY"]
    rest_api = mocks.outputs["api-api"]
    assert {m["resourceId"] for m in methods} == {
        rest_api["rootResourceId"],
        mocks.outputs["api-proxy"]["id"],
    }


def test_only_this_api_may_invoke_the_function(mocks: PulumiMocks, dev: dict[str, Any]):
    permission = mocks.inputs_of(T.PERMISSION)
    assert permission["function"] == "librechat-lambda-dev"
    assert permission["principal"] == "apigateway.amazonaws.com"
    assert permission["sourceArn"] == mocks.outputs["api-api"]["executionArn"] + "/*/*"
    assert "qualifier" not in permission


def test_api_is_regional_and_passes_request_bodies_through(mocks: PulumiMocks, dev: dict[str, Any]):
    api = mocks.inputs_of(T.REST_API)
    assert api["endpointConfiguration"]["types"] == "REGIONAL"
    assert api["binaryMediaTypes"] == ["*/*"]
    assert mocks.inputs_of(T.API_STAGE)["stageName"] == "live"


# -- image and function -------------------------------------------------------------------


def test_function_runs_the_digest_pinned_single_platform_image(
    mocks: PulumiMocks, dev: dict[str, Any]
):
    image = mocks.inputs_of(T.DOCKER_IMAGE)
    assert image["build"]["platform"] == "linux/amd64"
    base = "ghcr.io/danny-avila/librechat-api:v0.8.2-rc1"
    assert image["build"]["args"] == {
        "BASE_IMAGE": f"ghcr.io/danny-avila/librechat-api@{fake_registry_digest(base)}"
    }
    assert image["buildOnPreview"] is False
    function = mocks.inputs_of(T.FUNCTION)
    assert function["imageUri"] == mocks.outputs["image-image"]["repoDigest"] == dev["image_uri"]
    assert function["architectures"] == ["x86_64"]


def test_function_has_the_designed_size_and_the_looked_up_network(
    mocks: PulumiMocks, dev: dict[str, Any]
):
    function = mocks.inputs_of(T.FUNCTION)
    assert (function["memorySize"], function["timeout"]) == (2048, 900)
    assert function["packageType"] == "Image"
    (vpc_lookup,) = mocks.calls_to(C.VPC)
    assert vpc_lookup["filters"] == [{"name": "tag:Name", "values": ["dev-aprochat-core*"]}]
    (subnet_lookup,) = mocks.calls_to(C.SUBNETS)
    vpc_filter = {"name": "vpc-id", "values": ["vpc-0a1b2c3d4e5f60718"]}
    assert subnet_lookup["filters"] == [vpc_filter, {"name": "tag:Name", "values": ["*private*"]}]
    (sg_lookup,) = mocks.calls_to(C.SECURITY_GROUPS)
    assert sg_lookup["filters"] == [vpc_filter, {"name": "group-name", "values": ["*librechat*"]}]
    (subnets,) = mocks.results_of(C.SUBNETS)
    (groups,) = mocks.results_of(C.SECURITY_GROUPS)
    assert function["vpcConfig"]["subnetIds"] == sorted(subnets["ids"])
    assert function["vpcConfig"]["securityGroupIds"] == sorted(groups["ids"])
    assert len(subnets["ids"]) == 3 and len(groups["ids"]) == 1


def test_every_seed_variable_is_in_the_environment_and_secrets_only_by_name(
    mocks: PulumiMocks, dev: dict[str, Any]
):
    recorded = mocks.one(T.FUNCTION).inputs["environment"]
    assert not is_secret_input(recorded)  # nothing secret in it: parameter names only
    env = plain(recorded)["variables"]
    dev = stack_file("dev")
    for key, value in dev["librechat-lambda:environment"].items():
        assert env[key] == value, key
    parameters = dev["librechat-lambda:secrets"]["parameters"]
    assert json.loads(env["SSM_SECRETS"]) == parameters
    assert not set(parameters) & set(env)
    assert mocks.calls_to(C.SSM_PARAMETER) == []
    assert env["CONFIG_S3_BUCKET"] == "genai-shared-config"
    assert env["CONFIG_S3_KEY"] == "lambda-test/librechat/librechat.yaml"
    assert env["CONFIG_DOMAIN_FROM"] == "genai.sandbox.data.apro.is"
    assert env["NODE_ENV"] == "production"
    assert env["LIBRECHAT_LOG_DIR"].startswith("/tmp/")


def test_iam_names_exact_arns_and_no_wildcard_action(mocks: PulumiMocks, dev: dict[str, Any]):
    statements = json.loads(mocks.inputs_of(T.ROLE_POLICY)["policy"])["Statement"]
    resources = {r for s in statements for r in s["Resource"]}
    assert "arn:aws:s3:::genai-shared-config/lambda-test/librechat/librechat.yaml" in resources
    assert "arn:aws:s3:::librechat-lambda-files-dev/*" in resources
    for statement in statements:
        assert not any("*" in action for action in statement["Action"]), statement
        if "*" in statement["Resource"]:
            assert set(statement["Action"]) <= UNSCOPABLE_ACTIONS, statement


# -- custom domain ------------------------------------------------------------------------


def test_domain_is_regional_tls12_mapped_to_the_stage_with_alias_records(
    mocks: PulumiMocks, dev: dict[str, Any]
):
    domain = mocks.inputs_of(T.API_DOMAIN_NAME)
    assert domain["domainName"] == DEV_DOMAIN
    assert domain["endpointConfiguration"]["types"] == "REGIONAL"
    assert domain["securityPolicy"] == "TLS_1_2"
    assert domain["regionalCertificateArn"] == mocks.outputs["domain-cert"]["arn"]
    mapping = mocks.inputs_of(T.API_BASE_PATH_MAPPING)
    assert mapping["restApi"] == mocks.outputs["api-api"]["id"]
    assert mapping["stageName"] == "live"
    aliases = [plain(r.inputs) for r in mocks.of_type(T.ROUTE53_RECORD) if "aliases" in r.inputs]
    assert sorted(r["type"] for r in aliases) == ["A", "AAAA"]
    for record in aliases:
        assert record["zoneId"] == DEV_ZONE_ID  # the zone that holds the domain, looked up
        assert record["name"] == DEV_DOMAIN
        (alias,) = record["aliases"]
        assert alias["name"] == mocks.outputs["domain-domain"]["regionalDomainName"]
        assert alias["zoneId"] == APIGATEWAY_REGIONAL_ZONE_IDS[DEFAULT_REGION]


def test_dev_certificate_is_issued_and_validated_in_the_zone(
    mocks: PulumiMocks, dev: dict[str, Any]
):
    certificate = mocks.inputs_of(T.CERTIFICATE)
    assert certificate["domainName"] == DEV_DOMAIN
    assert certificate["validationMethod"] == "DNS"
    assert len(mocks.of_type(T.CERTIFICATE_VALIDATION)) == 1


# -- the prod example ---------------------------------------------------------------------


def test_prod_resolves_secrets_at_runtime_and_keeps_values_out_of_state(
    mocks: PulumiMocks, prod: dict[str, Any]
):
    recorded = mocks.one(T.FUNCTION).inputs["environment"]
    assert not is_secret_input(recorded)
    env = recorded["variables"]
    parameters = stack_file("prod")["librechat-lambda:secrets"]["parameters"]
    assert json.loads(env["SSM_SECRETS"]) == parameters
    assert not {fake_ssm_value(p) for p in parameters.values()} & set(env.values())
    assert mocks.calls_to(C.SSM_PARAMETER) == []
    statements = json.loads(mocks.inputs_of(T.ROLE_POLICY)["policy"])["Statement"]
    (ssm,) = [s for s in statements if s["Action"] == ["ssm:GetParameters"]]
    assert len(ssm["Resource"]) == len(set(parameters.values()))


def test_prod_api_targets_the_provisioned_alias(mocks: PulumiMocks, prod: dict[str, Any]):
    function = mocks.inputs_of(T.FUNCTION)
    assert function["architectures"] == ["arm64"]
    assert mocks.inputs_of(T.DOCKER_IMAGE)["build"]["platform"] == "linux/arm64"
    alias_arn = mocks.outputs["function-alias"]["arn"]
    assert alias_arn.endswith(":function:librechat-lambda-prod:live")
    for integration in mocks.of_type(T.API_INTEGRATION):
        assert integration.inputs["uri"] == (
            f"arn:aws:apigateway:{DEFAULT_REGION}:lambda:path/2021-11-15/functions/"
            f"{alias_arn}/response-streaming-invocations"
        )
    assert mocks.inputs_of(T.PERMISSION)["qualifier"] == "live"
    env = plain(mocks.one(T.FUNCTION).inputs["environment"])["variables"]
    assert prod["custom_url"] == env["DOMAIN_SERVER"] == "https://lambda.data.apro.is"


# -- configuration failures and switches --------------------------------------------------


def test_bad_configuration_fails_before_any_resource_with_every_problem(mocks: PulumiMocks):
    config = cli_config("dev", function={"memoryMb": 64, "timeoutSeconds": 1200})
    with pytest.raises(ConfigError) as caught:
        run_program(config)
    assert caught.value.problems == [
        "librechat-lambda:function.memoryMb is 64; use a value from 128 to 10240",
        "librechat-lambda:function.timeoutSeconds is 1200; use a value from 1 to 900",
    ]
    assert [r for r in mocks.resources if r.custom] == []


def test_a_stack_without_network_value_or_lookup_is_told_what_to_set(mocks: PulumiMocks):
    with pytest.raises(ConfigError) as caught:
        run_program(cli_config("dev", network=None))
    (problem,) = caught.value.problems
    assert problem.startswith("librechat-lambda:network is not set; give network.vpcTags")
    assert "network.enabled: false" in problem
    assert [r for r in mocks.resources if r.custom] == []
    assert mocks.calls_to(C.VPC) == []


def test_a_stack_without_domain_has_no_domain_resources(mocks: PulumiMocks):
    exports = run_program(cli_config("dev", domain={"enabled": False}))
    assert "custom_url" not in exports
    assert exports["stage_url"].endswith("/live")
    assert exports["url"] == exports["stage_url"]
    for typ in (T.API_DOMAIN_NAME, T.CERTIFICATE, T.API_BASE_PATH_MAPPING, T.ROUTE53_RECORD):
        assert mocks.of_type(typ) == []
