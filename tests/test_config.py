"""Stack configuration: the committed stacks validate, defaults follow the design, and bad
configuration fails with one message that names every wrong key and what to put there."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest
from pulumi.runtime import set_all_config

from components.config import ConfigError, StackConfig, load, parse, ssm_name_problem
from tests.pulumi_mocks import PulumiMocks
from tests.stack_files import cli_config

SEED_ENVIRONMENT = {
    "DOMAIN_SERVER": "https://lambda-test.sandbox.data.apro.is",
    "DOMAIN_CLIENT": "https://lambda-test.sandbox.data.apro.is",
    "USE_REDIS": "true",
    "AWS_BUCKET_NAME": "librechat-lambda-files-dev",
    "LITELLM_BASE_URL": "http://litellm.dev-aprochat-core.local:4000/v1",
    "SEARXNG_INSTANCE_URL": "http://searxng.dev-aprochat-core.local:8080",
    "RAG_API_URL": "http://rag-api.dev-aprochat-core.local:8000",
    "MEILI_HOST": "http://meilisearch.dev-aprochat-core.local:7700",
    "FIRECRAWL_API_URL": "http://firecrawl.dev-aprochat-core.local:3002",
}
SEED_SECRETS = {
    "CREDS_IV": "/ecs/genai/librechat/CREDS_IV",
    "CREDS_KEY": "/ecs/genai/librechat/CREDS_KEY",
    "JWT_SECRET": "/ecs/genai/librechat/JWT_SECRET",
    "JWT_REFRESH_SECRET": "/ecs/genai/librechat/JWT_REFRESH_SECRET",
    "MONGO_URI": "/ecs/genai/mongo/DB_URI",
    "LITELLM_API_KEY": "/ecs/genai/litellm/master_key",
    "MEILI_MASTER_KEY": "/ecs/genai/meilisearch/MEILI_MASTER_KEY",
    "OPENID_CLIENT_ID": "/ecs/genai/cognito/idp/client_id",
    "OPENID_CLIENT_SECRET": "/ecs/genai/cognito/idp/client_secret",
    "OPENID_SESSION_SECRET": "/ecs/genai/cognito/idp/session_secret",
    "FIRECRAWL_API_KEY": "/ecs/genai/firecrawl/test_api_key",
}
MINIMAL: dict[str, Any] = {
    "image": {"baseImage": "ghcr.io/danny-avila/librechat-api:v0.8.2-rc1"},
    "network": {"subnetIds": ["subnet-0123456789abcdef0"], "securityGroupIds": ["sg-0123abcd"]},
}


def load_stack(stack: str, **overrides: Any) -> StackConfig:
    set_all_config(cli_config(stack, **overrides))
    return load(stack=stack)


def problems_of(raw: dict[str, Any], region: str | None = "eu-west-1") -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(raw, stack="dev", region=region)
    return caught.value.problems


def with_(**sections: dict[str, Any]) -> dict[str, Any]:
    """MINIMAL with some sections merged in."""
    raw = {k: dict(v) for k, v in MINIMAL.items()}
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return raw


def test_dev_stack_file_carries_the_environment_of_the_issue(mocks: PulumiMocks):
    cfg = load_stack("dev")
    assert cfg.region == "eu-west-1"
    assert cfg.image.base_image == "ghcr.io/danny-avila/librechat-api:v0.8.2-rc1"
    assert cfg.librechat_config.location is not None
    assert cfg.librechat_config.location.uri == (
        "s3://genai-shared-config/lambda-test/librechat/librechat.yaml"
    )
    assert cfg.librechat_config.domain_from == "genai.sandbox.data.apro.is"
    for key, value in SEED_ENVIRONMENT.items():
        assert cfg.environment[key] == value, key
    assert cfg.environment["REDIS_URI"].startswith("redis://")
    assert dict(cfg.secrets.parameters) == SEED_SECRETS
    assert cfg.secrets.mode == "deploy"
    assert cfg.domain is not None and cfg.domain.name == "lambda-test.sandbox.data.apro.is"
    assert cfg.files_bucket == "librechat-lambda-files-dev"


def test_dev_stack_looks_up_its_network_instead_of_holding_placeholders(mocks: PulumiMocks):
    network = load_stack("dev").network
    assert network.enabled
    assert network.vpc_tags and network.subnet_tags and network.security_group_names
    assert not (network.vpc_id or network.subnet_ids or network.security_group_ids)


def test_dev_stack_uses_the_design_defaults(mocks: PulumiMocks):
    cfg = load_stack("dev")
    assert (cfg.function.memory_mb, cfg.function.timeout_seconds) == (2048, 900)
    assert cfg.function.architecture == "x86_64"
    assert cfg.function.platform == "linux/amd64"
    assert cfg.api.endpoint_type == "REGIONAL"


def test_prod_stack_differs_in_architecture_secrets_mode_and_concurrency(mocks: PulumiMocks):
    cfg = load_stack("prod")
    assert cfg.function.platform == "linux/arm64"
    assert cfg.secrets.mode == "runtime"
    assert cfg.function.provisioned_concurrency == 2
    assert cfg.domain is not None
    assert cfg.environment["DOMAIN_SERVER"] == f"https://{cfg.domain.name}"


def test_defaults_follow_the_design():
    cfg = parse(MINIMAL, stack="Dev")
    assert cfg.name == "librechat-dev"
    assert cfg.function.memory_mb == 2048
    assert cfg.function.timeout_seconds == 900
    assert cfg.function.log_retention_days == 30
    assert cfg.function.architecture == "x86_64"
    assert cfg.function.provisioned_concurrency == 0
    assert cfg.function.reserved_concurrency is None
    assert cfg.api.endpoint_type == "REGIONAL"
    assert cfg.api.binary_media_types == ("*/*",)
    assert cfg.api.log_retention_days == 30
    assert cfg.secrets.mode == "deploy"
    assert cfg.domain is None
    assert cfg.image.keep_last_images == 10


def test_the_default_name_prefix_is_made_valid_from_the_stack_name():
    assert parse(MINIMAL, stack="My_Stack.2").name == "librechat-my-stack-2"


def test_arm64_is_selectable_and_builds_for_linux_arm64():
    cfg = parse(with_(function={"architecture": "arm64"}), stack="dev")
    assert cfg.function.platform == "linux/arm64"


def test_numbers_and_booleans_set_as_strings_by_the_cli_are_accepted():
    cfg = parse(with_(function={"memoryMb": "3008", "tracing": "true"}), stack="dev")
    assert cfg.function.memory_mb == 3008
    assert cfg.function.tracing is True


def test_domain_defaults_domain_server_and_client_including_the_base_path():
    cfg = parse(with_(domain={"name": "chat.example.com", "basePath": "/v1/"}), stack="dev")
    assert cfg.environment["DOMAIN_SERVER"] == "https://chat.example.com/v1"
    assert cfg.environment["DOMAIN_CLIENT"] == "https://chat.example.com/v1"
    assert cfg.domain is not None and cfg.domain.base_path == "v1"


def test_domain_can_be_switched_off():
    cfg = parse(with_(domain={"enabled": False, "name": "chat.example.com"}), stack="dev")
    assert cfg.domain is None
    assert "DOMAIN_SERVER" not in cfg.environment


@pytest.mark.parametrize(
    ("sections", "key", "phrase"),
    [
        ({"function": {"memoryMb": 64}}, "function.memoryMb", "from 128 to 10240"),
        ({"function": {"memoryMb": 10241}}, "function.memoryMb", "from 128 to 10240"),
        ({"function": {"timeoutSeconds": 901}}, "function.timeoutSeconds", "from 1 to 900"),
        ({"function": {"architecture": "amd64"}}, "function.architecture", "x86_64, arm64"),
        ({"function": {"logRetentionDays": 10}}, "function.logRetentionDays", "accepts"),
        ({"function": {"memoryMb": "lots"}}, "function.memoryMb", "whole number"),
        ({"domain": {"name": "Not A Domain"}}, "domain.name", "not a lower-case domain"),
        ({"domain": {"name": "chat.example.com", "certificateArn": "arn:aws:acm:x"}},
         "domain.certificateArn", "not an ACM certificate ARN"),
        ({"domain": {"name": "chat.example.com",
                     "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/"
                                       "12345678-1234-1234-1234-123456789012"}},
         "domain.certificateArn", "needs a certificate in eu-west-1"),
        ({"domain": {"name": "chat.example.com", "hostedZoneName": "other.org"}},
         "domain.hostedZoneName", "does not hold"),
        ({"domain": {"enabled": True}}, "domain.name", "is required"),
        ({"secrets": {"kmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:alias/ssm"}},
         "secrets.kmsKeyArn", "alias ARN cannot be granted"),
        ({"secrets": {"parameters": {"JWT": "not a name"}}}, "secrets.parameters.JWT",
         "not an SSM parameter name"),
        ({"secrets": {"parameters": {"BAD-NAME": "/a/b"}}}, "secrets.parameters.BAD-NAME",
         "not a valid variable name"),
        ({"secrets": {"mode": "later"}}, "secrets.mode", "deploy, runtime"),
        ({"environment": {"1X": "v"}}, "environment.1X", "not a valid variable name"),
        ({"environment": {"AWS_REGION": "eu-west-1"}}, "environment.AWS_REGION", "reserved"),
        ({"environment": {"CONFIG_S3_KEY": "k"}}, "environment.CONFIG_S3_KEY",
         "use librechatConfig.s3Uri"),
        ({"environment": {"DOMAIN_SERVER": "chat.example.com"}}, "environment.DOMAIN_SERVER",
         "not a URL"),
        ({"environment": {"X": "v"}, "secrets": {"parameters": {"X": "/a/x"}}},
         "secrets.parameters.X", "also in environment"),
        ({"librechatConfig": {"s3Uri": "https://bucket/key"}}, "librechatConfig.s3Uri",
         "s3://bucket/path"),
        ({"librechatConfig": {"domainFrom": "old.example.com"}}, "librechatConfig.domainFrom",
         "DOMAIN_SERVER"),
        ({"network": {"subnetIds": ["subnet-1"]}}, "network.subnetIds", "not a subnet id"),
        ({"network": {"subnetIds": [], "subnetTags": {}}}, "network.subnetTags", "is needed"),
        ({"network": {"subnetTags": {"Name": "*private*"}, "subnetIds": []}},
         "network.vpcTags", "is needed to look up"),
        ({"network": {"securityGroupNames": ["x"]}}, "network.securityGroupNames", "exactly"),
        ({"api": {"endpointType": "EDGE"}, "domain": {"name": "chat.example.com"}},
         "api.endpointType", "must be REGIONAL"),
        ({"api": {"stageName": "a b"}}, "api.stageName", "not a stage name"),
        ({"api": {"throttlingBurstLimit": 100}}, "api.throttlingRateLimit", "set both"),
        ({"api": {"throttlingRateLimit": 50}}, "api.throttlingBurstLimit", "set both"),
        ({"runtime": {"readyTimeoutSeconds": 120}, "function": {"timeoutSeconds": 60}},
         "runtime.readyTimeoutSeconds", "exceeds function.timeoutSeconds"),
        ({"function": {"reservedConcurrency": 1, "provisionedConcurrency": 2}},
         "function.provisionedConcurrency", "exceeds function.reservedConcurrency"),
        ({"function": {"memorySize": 4096}}, "function.memorySize", "not a known key"),
        ({"name": "Bad Name"}, "name", "not usable as a name prefix"),
        ({"environment": {"BIG": "x" * 5000}}, "environment", "Lambda allows 4096"),
    ],
)  # fmt: skip
def test_each_bad_value_is_reported_by_key_with_the_fix(sections, key, phrase):
    problems = problems_of(with_(**sections))
    matching = [p for p in problems if p.startswith(f"librechat-lambda:{key} ")]
    assert matching, problems
    assert any(phrase in p for p in matching), matching


def test_every_problem_is_listed_in_one_error():
    raw = with_(
        function={"memoryMb": 1, "timeoutSeconds": 5000},
        domain={"name": "bad_domain"},
        secrets={"parameters": {"A": "//x"}},
    )
    with pytest.raises(ConfigError) as caught:
        parse(raw, stack="dev")
    message = str(caught.value)
    assert message.startswith("Stack configuration has 4 problems:")
    for key in ("function.memoryMb", "function.timeoutSeconds", "domain.name", "parameters.A"):
        assert key in message


def test_a_missing_required_key_names_the_key_and_what_to_put_there():
    problems = problems_of({"network": {"enabled": False}})
    assert problems == [
        "librechat-lambda:image.baseImage is required: set it to the LibreChat API image to "
        "build on, e.g. ghcr.io/danny-avila/librechat-api:v0.8.2-rc1"
    ]


def test_a_stack_without_network_settings_is_told_what_to_set():
    (problem,) = problems_of({"image": MINIMAL["image"]})
    assert problem.startswith("librechat-lambda:network is not set;")
    for hint in ("network.vpcTags", "network.subnetTags", "securityGroupNames", "enabled: false"):
        assert hint in problem


def test_a_function_outside_a_vpc_is_allowed_explicitly():
    cfg = parse({"image": MINIMAL["image"], "network": {"enabled": False}}, stack="dev")
    assert cfg.network.enabled is False


def test_config_error_is_a_run_error_so_preview_prints_it_without_a_traceback():
    assert issubclass(ConfigError, pulumi.RunError)


def test_load_reads_objects_as_the_cli_passes_them_and_reports_unknown_keys(
    mocks: PulumiMocks,
):
    set_all_config(
        {
            "aws:region": "eu-west-1",
            "librechat-lambda:image": json.dumps(MINIMAL["image"]),
            "librechat-lambda:network": json.dumps({"enabled": False}),
            "librechat-lambda:function": "{not json",
            "librechat-lambda:fucntion": json.dumps({"memoryMb": 1024}),
        }
    )
    with pytest.raises(ConfigError) as caught:
        load(stack="dev")
    assert caught.value.problems == [
        "librechat-lambda:function is not an object: '{not json'; write it as a YAML map",
        "librechat-lambda:fucntion is not a known key; known keys are name, tags, image, "
        "function, network, librechatConfig, environment, secrets, runtime, api, domain",
    ]


@pytest.mark.parametrize(
    "name",
    ["/ecs/genai/librechat/CREDS_IV", "plain_name", "a.b-c",
     "arn:aws:ssm:eu-west-1:123456789012:parameter/ecs/x"],
)  # fmt: skip
def test_ssm_names_aws_accepts_pass(name):
    assert ssm_name_problem(name) is None


@pytest.mark.parametrize(
    "name", ["", "/a//b", "/aws/reserved", "ssm-thing", "with space", "/" + "/x" * 16]
)
def test_ssm_names_aws_rejects_fail(name):
    assert ssm_name_problem(name) is not None


def test_an_environment_set_as_secret_is_flagged_secret(mocks: PulumiMocks):
    config = cli_config("dev")
    set_all_config(config, secret_keys=["librechat-lambda:environment"])
    assert load(stack="dev").environment_is_secret
    set_all_config(config, secret_keys=[])
    assert not load(stack="dev").environment_is_secret
