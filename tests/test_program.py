"""The whole program (`__main__.py`) run against the committed stack files, as `pulumi preview`
would run it: configuration from `Pulumi.<stack>.yaml` in the CLI's shape, AWS mocked."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.config import ConfigError
from components.function_policy import UNSCOPABLE_ACTIONS
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
    run_main,
)
from tests.stack_files import cli_config, stack_file

pytestmark = pytest.mark.program  # each runs the whole program

DEV_DOMAIN = "lambda-test.sandbox.data.apro.is"
DEV_ZONE_ID = "ZSANDBOXZONE"


@pytest.fixture
def dev(mocks: PulumiMocks) -> dict[str, Any]:
    mocks.zones = {"sandbox.data.apro.is": DEV_ZONE_ID, "data.apro.is": "ZPARENT"}
    return run_main(cli_config("dev"))


@pytest.fixture
def prod(mocks: PulumiMocks) -> dict[str, Any]:
    mocks.zones = {"data.apro.is": "ZDATA"}
    return run_main(cli_config("prod"))


def function_arn() -> str:
    return f"arn:aws:lambda:{DEFAULT_REGION}:{ACCOUNT_ID}:function:librechat-lambda-dev"


#: What the dev stack deploys, by type (SnapStart: the alias of the newest version).
DEV_RESOURCES = {
    T.ECR_REPOSITORY: 1, T.ECR_LIFECYCLE_POLICY: 1, T.ECR_REPOSITORY_POLICY: 1,
    T.DOCKER_IMAGE: 1, T.ROLE: 1, T.ROLE_POLICY: 1, T.LOG_GROUP: 2, T.FUNCTION: 1, T.ALIAS: 1,
    T.REST_API: 1, T.API_RESOURCE: 1, T.API_METHOD: 2, T.API_INTEGRATION: 2,
    T.API_DEPLOYMENT: 1, T.API_STAGE: 1, T.API_METHOD_SETTINGS: 1, T.PERMISSION: 1,
    T.CERTIFICATE: 1, T.CERTIFICATE_VALIDATION: 1, T.API_DOMAIN_NAME: 1,
    T.API_BASE_PATH_MAPPING: 1, T.ROUTE53_RECORD: 3,
    T.ALARM: 6, T.TOPIC: 1, T.METRIC_FILTER: 1, T.DASHBOARD: 1, T.QUERY: 3,
}  # fmt: skip


def test_dev_deploys_exactly_its_resources(mocks: PulumiMocks, dev: dict[str, Any]):
    mocks.assert_res_counts(DEV_RESOURCES)


def test_prod_deploys_the_same_plus_its_managed_instances_capacity(
    mocks: PulumiMocks, prod: dict[str, Any]
):
    without_alias = {typ: n for typ, n in DEV_RESOURCES.items() if typ != T.ALIAS}
    mocks.assert_res_counts(
        {**without_alias, T.ROLE: 2, T.ROLE_POLICY_ATTACHMENT: 1, T.CAPACITY_PROVIDER: 1,
         T.FUNCTION_SCALING_CONFIG: 1}
    )  # fmt: skip


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


def test_both_methods_stream_from_the_snapstart_alias_for_up_to_15_minutes(
    mocks: PulumiMocks, dev: dict[str, Any]
):
    streaming_arn = (
        f"arn:aws:apigateway:{DEFAULT_REGION}:lambda:path/2021-11-15/functions/"
        f"{function_arn()}:live/response-streaming-invocations"
    )
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


def test_only_this_api_may_invoke_the_alias(mocks: PulumiMocks, dev: dict[str, Any]):
    permission = mocks.inputs_of(T.PERMISSION)
    assert permission["function"] == "librechat-lambda-dev"
    assert permission["principal"] == "apigateway.amazonaws.com"
    assert permission["sourceArn"] == mocks.outputs["api-api"]["executionArn"] + "/*/*"
    assert permission["qualifier"] == "live"


# -- image and function -------------------------------------------------------------------


def test_function_runs_the_digest_pinned_single_platform_image(
    mocks: PulumiMocks, dev: dict[str, Any]
):
    image = mocks.inputs_of(T.DOCKER_IMAGE)
    assert image["build"]["platform"] == "linux/amd64"
    base = stack_file("dev")["librechat-lambda:image"]["baseImage"]
    assert base.startswith("ghcr.io/danny-avila/librechat-api:")  # a tag: pulumi resolves it
    assert image["build"]["args"] == {
        "BASE_IMAGE": f"ghcr.io/danny-avila/librechat-api@{fake_registry_digest(base)}"
    }
    assert image["buildOnPreview"] is False
    function = mocks.inputs_of(T.FUNCTION)
    assert function["imageUri"] == mocks.outputs["image-image"]["repoDigest"] == dev["image_uri"]
    assert function["architectures"] == ["x86_64"]


def test_function_runs_in_the_looked_up_network(mocks: PulumiMocks, dev: dict[str, Any]):
    function = mocks.inputs_of(T.FUNCTION)
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


def test_the_stack_environment_reaches_the_function_and_secrets_only_by_name(
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


def test_prod_runs_on_managed_instances_in_its_vpc(mocks: PulumiMocks, prod: dict[str, Any]):
    function = mocks.inputs_of(T.FUNCTION)
    assert function["name"] == "librechat-lambda-prod-managed"
    assert function["architectures"] == ["arm64"]
    assert function["memorySize"] == 4096
    assert function["publishTo"] == "LATEST_PUBLISHED"
    assert "vpcConfig" not in function
    assert mocks.inputs_of(T.DOCKER_IMAGE)["build"]["platform"] == "linux/arm64"
    provider = mocks.inputs_of(T.CAPACITY_PROVIDER)
    subnets = mocks.results_of(C.SUBNETS)[0]["ids"]
    groups = mocks.results_of(C.SECURITY_GROUPS)[0]["ids"]
    assert provider["vpcConfig"] == {"subnetIds": sorted(subnets), "securityGroupIds": groups}
    assert provider["instanceRequirements"] == [{"architectures": ["arm64"]}]
    assert provider["capacityProviderScalingConfigs"] == [
        {"scalingMode": "Auto", "maxVcpuCount": 48}
    ]
    assert function["capacityProviderConfig"] == {
        "lambdaManagedInstancesCapacityProviderConfig": {
            "capacityProviderArn": prod["capacity_provider_arn"],
            "executionEnvironmentMemoryGibPerVcpu": 2,
            "perExecutionEnvironmentMaxConcurrency": 32,
        }
    }
    assert mocks.inputs_of(T.FUNCTION_SCALING_CONFIG)["functionScalingConfig"] == {
        "minExecutionEnvironments": 3,
        "maxExecutionEnvironments": 12,
    }
    assert mocks.of_type(T.ALIAS) == [] and mocks.of_type(T.PROVISIONED_CONCURRENCY) == []


def test_prod_api_streams_from_the_published_version(mocks: PulumiMocks, prod: dict[str, Any]):
    version_arn = f"{prod['function_arn']}:$LATEST.PUBLISHED"
    assert prod["function_arn"].endswith(":function:librechat-lambda-prod-managed")
    for integration in mocks.of_type(T.API_INTEGRATION):
        assert integration.inputs["uri"] == (
            f"arn:aws:apigateway:{DEFAULT_REGION}:lambda:path/2021-11-15/functions/"
            f"{version_arn}/response-streaming-invocations"
        )
        assert integration.inputs["responseTransferMode"] == "STREAM"
    permission = mocks.inputs_of(T.PERMISSION)
    assert permission["qualifier"] == "$LATEST.PUBLISHED"
    assert permission["function"] == "librechat-lambda-prod-managed"
    env = plain(mocks.one(T.FUNCTION).inputs["environment"])["variables"]
    assert prod["custom_url"] == env["DOMAIN_SERVER"] == "https://lambda.data.apro.is"


def test_prod_image_may_be_pulled_by_the_managed_function_only(
    mocks: PulumiMocks, prod: dict[str, Any]
):
    policy = json.loads(mocks.inputs_of(T.ECR_REPOSITORY_POLICY)["policy"])
    (statement,) = policy["Statement"]
    assert statement["Condition"]["StringLike"]["aws:sourceArn"] == [
        prod["function_arn"],
        f"{prod['function_arn']}:*",
    ]


def test_prod_function_role_has_no_eni_rights_and_keeps_the_stacks_log_group(
    mocks: PulumiMocks, prod: dict[str, Any]
):
    statements = json.loads(mocks.inputs_of(T.ROLE_POLICY)["policy"])["Statement"]
    actions = {a for s in statements for a in s["Action"]}
    assert not any(a.startswith("ec2:") for a in actions)
    assert prod["log_group_name"] == "/aws/lambda/librechat-lambda-prod"
    operator = [r for r in mocks.of_type(T.ROLE) if r.name == "compute-operator"]
    assert len(operator) == 1


def test_switching_modes_keeps_the_resource_but_renames_the_function(mocks: PulumiMocks):
    standard = cli_config("prod", compute={"mode": "standard"})
    exports = run_main(standard)
    assert exports["function_name"] == "librechat-lambda-prod"
    assert exports["log_group_name"] == "/aws/lambda/librechat-lambda-prod"
    assert mocks.of_type(T.CAPACITY_PROVIDER) == []
    assert mocks.of_type(T.FUNCTION_SCALING_CONFIG) == []
    assert "capacityProviderConfig" not in mocks.inputs_of(T.FUNCTION)
    # The same logical resource under another physical name: the engine replaces it (the
    # function's replace_on_changes names `name`; tests/test_function.py proves that option).
    (function,) = mocks.of_type(T.FUNCTION)
    assert function.name == "function-function"


def test_prod_with_standard_only_settings_fails_naming_each_key(mocks: PulumiMocks):
    config = cli_config(
        "prod",
        function={**stack_file("prod")["librechat-lambda:function"], "provisionedConcurrency": 2,
                  "reservedConcurrency": 50},
        network={"enabled": False},
    )  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        run_main(config)
    keys = [p.split(" ", 1)[0] for p in caught.value.problems]
    assert keys == [
        "librechat-lambda:network.enabled",
        "librechat-lambda:function.provisionedConcurrency",
        "librechat-lambda:function.reservedConcurrency",
    ]
    assert [r for r in mocks.resources if r.custom] == []


# -- configuration failures and switches --------------------------------------------------


def test_bad_configuration_fails_before_any_resource_with_every_problem(mocks: PulumiMocks):
    config = cli_config("dev", function={"memoryMb": 64, "timeoutSeconds": 1200})
    with pytest.raises(ConfigError) as caught:
        run_main(config)
    assert caught.value.problems == [
        "librechat-lambda:function.memoryMb is 64; use a value from 128 to 32768",
        "librechat-lambda:function.timeoutSeconds is 1200; use a value from 1 to 900",
    ]
    assert [r for r in mocks.resources if r.custom] == []


def test_a_stack_without_network_value_or_lookup_is_told_what_to_set(mocks: PulumiMocks):
    with pytest.raises(ConfigError) as caught:
        run_main(cli_config("dev", network=None))
    (problem,) = caught.value.problems
    assert problem.startswith("librechat-lambda:network is not set; give network.vpcTags")
    assert "network.enabled: false" in problem
    assert [r for r in mocks.resources if r.custom] == []
    assert mocks.calls_to(C.VPC) == []


def test_a_stack_without_domain_has_no_domain_resources(mocks: PulumiMocks):
    exports = run_main(cli_config("dev", domain={"enabled": False}))
    assert "custom_url" not in exports
    assert exports["stage_url"].endswith("/live")
    assert exports["url"] == exports["stage_url"]
    for typ in (T.API_DOMAIN_NAME, T.CERTIFICATE, T.API_BASE_PATH_MAPPING, T.ROUTE53_RECORD):
        assert mocks.of_type(typ) == []
