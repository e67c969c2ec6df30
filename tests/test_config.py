"""Stack configuration: the committed stacks validate, defaults follow the design, and bad
configuration fails with one message that names every wrong key and what to put there."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest
from pulumi.runtime import set_all_config

from components.config import ConfigError, StackConfig, load, parse
from components.contract import SET_BY_PROGRAM
from tests.pulumi_mocks import PulumiMocks
from tests.stack_files import STACKS, cli_config

MINIMAL: dict[str, Any] = {
    "image": {"baseImage": "ghcr.io/danny-avila/librechat-api:v0.8.2-rc1"},
    "network": {"subnetIds": ["subnet-0123456789abcdef0"], "securityGroupIds": ["sg-0123abcd"]},
    "domain": {"enabled": False},
}
DOMAIN_ON = {"name": "chat.example.com", "enabled": True}
MANAGED = {"mode": "managedInstances"}
CERT = "arn:aws:acm:eu-west-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"


def problems_of(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(raw, stack="dev")
    return caught.value.problems


def with_(**sections: Any) -> dict[str, Any]:
    """MINIMAL with some sections merged in (a section's keys replace MINIMAL's)."""
    raw = {k: dict(v) for k, v in MINIMAL.items()}
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return raw


@pytest.mark.parametrize("stack", STACKS)
def test_every_committed_stack_validates(mocks: PulumiMocks, stack: str):
    set_all_config(cli_config(stack))
    assert isinstance(load(stack=stack), StackConfig)


def test_defaults_follow_the_design():
    cfg = parse(MINIMAL, stack="Dev")
    assert cfg.name == "librechat-dev"
    assert (cfg.function.memory_mb, cfg.function.timeout_seconds) == (2048, 900)
    assert cfg.function.platform == "linux/amd64"
    assert cfg.function.provisioned_concurrency == 0
    assert cfg.api.endpoint_type == "REGIONAL"
    assert cfg.api.binary_media_types == ("*/*",)
    assert cfg.secrets.mode == "runtime"
    assert (cfg.api.throttling_burst_limit, cfg.api.throttling_rate_limit) == (100, 50)
    assert cfg.api.keep_execute_api_endpoint is False
    assert cfg.domain is None


def test_the_default_name_prefix_is_made_valid_from_the_stack_name():
    assert parse(MINIMAL, stack="My_Stack.2").name == "librechat-my-stack-2"


def test_arm64_is_selectable_and_builds_for_linux_arm64():
    cfg = parse(with_(function={"architecture": "arm64"}), stack="dev")
    assert cfg.function.platform == "linux/arm64"


def test_numbers_and_booleans_set_as_strings_by_the_cli_are_accepted():
    cfg = parse(with_(function={"memoryMb": "3008", "tracing": "true"}), stack="dev")
    assert cfg.function.memory_mb == 3008
    assert cfg.function.tracing is True


def test_yaml_scalars_in_maps_become_the_text_a_variable_holds():
    cfg = parse(with_(environment={"USE_REDIS": True, "PORT_X": 8080}), stack="dev")
    assert dict(cfg.environment) == {"USE_REDIS": "true", "PORT_X": "8080"}


def test_domain_defaults_domain_server_and_client_including_the_base_path():
    cfg = parse(with_(domain={**DOMAIN_ON, "basePath": "/v1/"}), stack="dev")
    assert cfg.app_environment["DOMAIN_SERVER"] == "https://chat.example.com/v1"
    assert cfg.app_environment["DOMAIN_CLIENT"] == "https://chat.example.com/v1"
    assert cfg.domain is not None and cfg.domain.base_path == "v1"


def test_an_explicit_domain_server_wins_over_the_domain_default():
    environment = {"DOMAIN_SERVER": "https://other.example.com"}
    cfg = parse(with_(domain=DOMAIN_ON, environment=environment), stack="dev")
    assert cfg.app_environment["DOMAIN_SERVER"] == "https://other.example.com"


def test_domain_is_switched_off_explicitly_and_its_other_keys_are_not_read():
    cfg = parse(with_(domain={"enabled": "false", "name": "Not A Domain"}), stack="dev")
    assert cfg.domain is None
    assert "DOMAIN_SERVER" not in cfg.app_environment


def test_a_function_outside_a_vpc_is_allowed_explicitly():
    assert parse(with_(network={"enabled": False}), stack="dev").network is None


@pytest.mark.parametrize(
    ("sections", "key", "phrase"),
    [
        ({"function": {"memoryMb": 64}}, "function.memoryMb", "is 64; use a value from 128 to 32768"),
        ({"function": {"memoryMb": 10241}}, "function.memoryMb", "standard Lambda takes at most 10240"),
        ({"function": {"memoryMb": 32769}, "compute": MANAGED}, "function.memoryMb", "from 128 to 32768"),
        ({"function": {"timeoutSeconds": 901}}, "function.timeoutSeconds", "from 1 to 900"),
        ({"function": {"architecture": "amd64"}}, "function.architecture", "use one of x86_64, arm64"),
        ({"function": {"logRetentionDays": 10}}, "function.logRetentionDays", "CloudWatch Logs accepts"),
        ({"function": {"memoryMb": "lots"}}, "function.memoryMb", "must be a whole number, not 'lots'"),
        ({"function": {"tracing": "maybe"}}, "function.tracing", "must be true or false"),
        ({"function": "big"}, "function", "must be a map of settings"),
        ({"domain": {**DOMAIN_ON, "name": "Not A Domain"}}, "domain.name", "not a lower-case domain"),
        ({"domain": {**DOMAIN_ON, "certificateArn": "arn:aws:acm:x"}},
         "domain.certificateArn", "not an ACM certificate ARN"),
        ({"domain": {**DOMAIN_ON, "certificateArn": CERT.replace("12345678-1234-1234-1234-", "0a")}},
         "domain.certificateArn", "not an ACM certificate ARN"),
        ({"domain": {**DOMAIN_ON, "hostedZoneName": "other.org"}}, "domain.hostedZoneName", "does not hold"),
        ({"domain": {**DOMAIN_ON, "hostedZoneName": "example.com", "hostedZoneId": "ZABC"}},
         "domain.hostedZoneId", "both set"),
        ({"domain": {**DOMAIN_ON, "basePath": "a~b"}}, "domain.basePath", "not a path like chat"),
        ({"domain": {"enabled": True}}, "domain.name", "is required: custom domain, e.g. chat.example.com; or set domain.enabled: false"),
        ({"domain": {"nmae": "chat.example.com"}}, "domain.nmae", "did you mean name?"),
        ({"domain": {"enabled": False, "bsaePath": "v1"}}, "domain.bsaePath", "did you mean basePath?"),
        ({"secrets": {"kmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:alias/ssm"}},
         "secrets.kmsKeyArn", "alias ARN cannot be granted"),
        ({"secrets": {"parameters": {"JWT": "not a name"}}}, "secrets.parameters.JWT", "not an SSM parameter name"),
        ({"secrets": {"parameters": {"BAD-NAME": "/a/b"}}}, "secrets.parameters.BAD-NAME", "not a valid variable name"),
        ({"secrets": {"parameters": {"BASE_PATH": "/a/b"}}}, "secrets.parameters.BASE_PATH", "set by this program"),
        ({"secrets": {"mode": "later"}}, "secrets.mode", "use one of deploy, runtime"),
        ({"environment": {"1X": "v"}}, "environment.1X", "not a valid variable name"),
        ({"environment": {"AWS_REGION": "eu-west-1"}}, "environment.AWS_REGION", "reserved by Lambda"),
        ({"environment": {"CONFIG_S3_KEY": "k"}}, "environment.CONFIG_S3_KEY", "from librechatConfig.s3Uri"),
        ({"environment": {"DOMAIN_SERVER": "chat.example.com"}}, "environment.DOMAIN_SERVER", "not a URL"),
        ({"environment": {"AWS_BUCKET_NAME": "No_Bucket"}}, "environment.AWS_BUCKET_NAME", "not an S3 bucket name"),
        ({"environment": {"X": "v"}, "secrets": {"parameters": {"X": "/a/x"}}},
         "secrets.parameters.X", "also in environment"),
        ({"librechatConfig": {"s3Uri": "https://bucket/key"}}, "librechatConfig.s3Uri", "s3://bucket/path"),
        ({"librechatConfig": {"domainFrom": "old.example.com"}}, "librechatConfig.domainFrom", "DOMAIN_SERVER"),
        ({"network": {"subnetIds": ["subnet-1"]}}, "network.subnetIds[0]", "not a subnet id"),
        ({"network": {"securityGroupIds": [f"sg-0000000{i}" for i in range(6)]}},
         "network.securityGroupIds", "at most 5"),
        ({"network": {"subnetIds": [], "subnetTags": {}}}, "network.subnetTags", "is needed"),
        ({"network": {"subnetTags": {"Name": "*private*"}, "subnetIds": []}},
         "network.vpcTags", "is needed to look up"),
        ({"network": {"securityGroupNames": ["x"]}}, "network.securityGroupNames", "exactly"),
        ({"network": {"enabled": False, "vpcTag": {}}}, "network.vpcTag", "did you mean vpcTags?"),
        ({"api": {"endpointType": "EDGE"}, "domain": DOMAIN_ON}, "api.endpointType", "must be REGIONAL"),
        ({"api": {"stageName": "a b"}}, "api.stageName", "not a stage name"),
        ({"api": {"stageName": "é"}}, "api.stageName", "not a stage name"),
        ({"api": {"throttlingBurstLimit": -1}}, "api.throttlingBurstLimit", "1"),
        ({"api": {"throttlingBurstLimit": 0}}, "api.throttlingBurstLimit", "1"),
        ({"api": {"throttlingRateLimit": 0}}, "api.throttlingRateLimit", "from 1 to 10000"),
        ({"api": {"webAclArn": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/a/0a"}},
         "api.webAclArn", "not a regional WAFv2 web ACL ARN"),
        ({"secrets": {"mode": "deploy", "parameters": {"JWT_SECRET": "/a/jwt"}}},
         "function.kmsKeyArn", "is required with secrets.mode deploy"),
        ({"function": {"kmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:alias/x"}},
         "function.kmsKeyArn", "not a KMS key ARN"),
        ({"runtime": {"readyTimeoutSeconds": 120}, "function": {"timeoutSeconds": 60}},
         "runtime.readyTimeoutSeconds", "exceeds function.timeoutSeconds"),
        ({"function": {"reservedConcurrency": 1, "provisionedConcurrency": 2}},
         "function.provisionedConcurrency", "exceeds function.reservedConcurrency"),
        ({"function": {"memorySize": 4096}}, "function.memorySize", "did you mean memoryMb?"),
        ({"function": {"zzz": 1}}, "function.zzz", "known keys here: architecture, ephemeralStorageMb"),
        ({"fucntion": {}}, "fucntion", "did you mean function?"),
        ({"name": "Bad Name"}, "name", "not usable as a name prefix"),
    ],
)  # fmt: skip
def test_each_bad_value_is_reported_by_key_with_the_fix(sections, key, phrase):
    problems = problems_of(with_(**sections))
    matching = [p for p in problems if p.startswith(f"librechat-lambda:{key} ")]
    assert matching, problems
    assert any(phrase in p for p in matching), matching


# -- compute: standard or managed instances ------------------------------------------------


def test_standard_is_the_default_mode_and_managed_defaults_suit_librechat():
    compute = parse(MINIMAL, stack="dev").compute
    assert compute.mode == "standard" and not compute.managed
    assert (compute.memory_per_vcpu_gib, compute.max_concurrency) == (2, 32)
    assert (compute.min_environments, compute.max_environments) == (3, 12)
    assert compute.allowed_instance_types == ()
    assert compute.max_vcpus is None and compute.target_cpu_utilization is None


def test_managed_instances_take_their_settings():
    compute = {
        **MANAGED,
        "memoryPerVcpuGib": "4",
        "maxConcurrency": "64",
        "minEnvironments": 6,
        "maxEnvironments": 30,
        "allowedInstanceTypes": ["m7g.xlarge", "m7g.2xlarge", "r7g.*"],
        "maxVcpus": 96,
        "targetCpuUtilization": "60",
        "kmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-4e5f-4a1b-8c2d-3e4f5a6b7c8d",
    }
    function = {"architecture": "arm64", "memoryMb": 8192}
    cfg = parse(with_(compute=compute, function=function), stack="dev")
    assert cfg.compute.managed
    assert cfg.compute.memory_per_vcpu_gib == 4
    assert cfg.compute.max_concurrency == 64
    assert cfg.compute.allowed_instance_types == ("m7g.xlarge", "m7g.2xlarge", "r7g.*")
    assert cfg.compute.target_cpu_utilization == 60
    assert cfg.function.memory_mb == 8192


def test_managed_instances_may_use_more_memory_than_standard_lambda():
    cfg = parse(with_(compute=MANAGED, function={"memoryMb": 32768}), stack="dev")
    assert cfg.function.memory_mb == 32768


@pytest.mark.parametrize(
    ("sections", "key", "phrase"),
    [
        ({"function": {"provisionedConcurrency": 2}}, "function.provisionedConcurrency",
         "does not exist with compute.mode managedInstances"),
        ({"function": {"reservedConcurrency": 10}}, "function.reservedConcurrency",
         "does not exist with compute.mode managedInstances"),
        ({"network": {"enabled": False}}, "network.enabled",
         "must be true with compute.mode managedInstances"),
        ({"function": {"memoryMb": 1024}}, "function.memoryMb", "managed instances take 2048-32768"),
        ({"function": {"memoryMb": 3008}}, "function.memoryMb",
         "not a whole number of vCPUs at compute.memoryPerVcpuGib 2; use a multiple of 2048"),
        ({"function": {"memoryMb": 2048}, "compute": {**MANAGED, "memoryPerVcpuGib": 4}},
         "function.memoryMb", "use a multiple of 4096"),
        ({"compute": {**MANAGED, "memoryPerVcpuGib": 3}}, "compute.memoryPerVcpuGib", "use one of 2, 4, 8"),
        ({"compute": {**MANAGED, "allowedInstanceTypes": ["c7g.large"]}},
         "compute.allowedInstanceTypes", "holds c7g.large, an arm64 type; function.architecture is x86_64"),
        ({"compute": {**MANAGED, "allowedInstanceTypes": ["m7i.large"]}, "function": {"architecture": "arm64"}},
         "compute.allowedInstanceTypes", "an x86_64 type; function.architecture is arm64"),
        ({"compute": {**MANAGED, "allowedInstanceTypes": ["t3.large"]}}, "compute.allowedInstanceTypes[0]",
         "a C, M or R family, .large or bigger"),
        ({"compute": {**MANAGED, "allowedInstanceTypes": ["c7i.medium"]}}, "compute.allowedInstanceTypes[0]",
         ".large or bigger"),
        ({"compute": {**MANAGED, "minEnvironments": 1}}, "compute.minEnvironments", "from 3 to 15000"),
        ({"compute": {**MANAGED, "minEnvironments": 6, "maxEnvironments": 4}}, "compute.maxEnvironments",
         "4 is below compute.minEnvironments 6"),
        ({"compute": {**MANAGED, "maxConcurrency": 0}}, "compute.maxConcurrency", "from 1 to 1600"),
        ({"compute": {**MANAGED, "maxConcurrency": 1601}}, "compute.maxConcurrency", "from 1 to 1600"),
        ({"compute": {**MANAGED, "maxVcpus": 1}}, "compute.maxVcpus", "from 2 to 15000"),
        ({"compute": {**MANAGED, "maxVcpus": 4}, "function": {"memoryMb": 4096}}, "compute.maxVcpus",
         "compute.minEnvironments 3 of 4096 MB need 6 vCPUs"),
        ({"compute": {**MANAGED, "targetCpuUtilization": 0}}, "compute.targetCpuUtilization", "from 1 to 100"),
        ({"compute": {**MANAGED, "kmsKeyArn": "alias/x"}}, "compute.kmsKeyArn", "not a KMS key ARN"),
        ({"compute": {"mode": "lambdaManagedInstances"}}, "compute.mode", "use one of standard, managedInstances"),
        ({"compute": {**MANAGED, "maxConcurency": 8}}, "compute.maxConcurency", "did you mean maxConcurrency?"),
        ({"environment": {"AWS_LAMBDA_MAX_CONCURRENCY": "8"}}, "environment.AWS_LAMBDA_MAX_CONCURRENCY",
         "reserved by Lambda"),
    ],
)  # fmt: skip
def test_managed_instances_refuse_what_aws_rejects_naming_the_key(sections, key, phrase):
    raw = with_(compute=MANAGED)
    for section, value in sections.items():
        raw[section] = {**raw.get(section, {}), **value}
    problems = problems_of(raw)
    matching = [p for p in problems if p.startswith(f"librechat-lambda:{key} ")]
    assert matching, problems
    assert any(phrase in p for p in matching), matching


def test_standard_mode_keeps_provisioned_concurrency_and_no_vpc():
    cfg = parse(
        with_(function={"provisionedConcurrency": 2}, network={"enabled": False}), stack="dev"
    )
    assert cfg.function.provisioned_concurrency == 2 and cfg.network is None


@pytest.mark.parametrize("name", sorted(SET_BY_PROGRAM))
def test_every_variable_the_program_sets_is_refused_in_environment(name: str):
    (problem,) = problems_of(with_(environment={name: "x"}))
    assert problem.startswith(f"librechat-lambda:environment.{name} is set by this program")


def test_environment_values_are_never_quoted_back():
    """An environment set with --secret may hold credentials (a REDIS_URI with a password)."""
    (problem,) = problems_of(with_(environment={"DOMAIN_SERVER": "redis://user:hunter2@x"}))
    assert "hunter2" not in problem


def test_every_problem_is_listed_in_one_error():
    raw = with_(
        function={"memoryMb": 1, "timeoutSeconds": 5000},
        domain={**DOMAIN_ON, "name": "bad_domain"},
        secrets={"parameters": {"A": "//x"}},
        api={"stageNmae": "x"},
    )
    with pytest.raises(ConfigError) as caught:
        parse(raw, stack="dev")
    message = str(caught.value)
    assert message.startswith("Stack configuration has 5 problems:")
    for key in ("function.memoryMb", "function.timeoutSeconds", "domain.name", "secrets.parameters.A",
                "api.stageNmae"):  # fmt: skip
        assert f"librechat-lambda:{key} " in message


def test_a_missing_required_key_names_the_key_and_what_to_put_there():
    assert problems_of({"network": {"enabled": False}, "domain": {"enabled": False}}) == [
        "librechat-lambda:image.baseImage is required: LibreChat API image the function image "
        "is built on (`BASE_IMAGE` build argument), e.g. "
        "ghcr.io/danny-avila/librechat-api:v0.8.2-rc1"
    ]


def test_a_stack_without_network_settings_is_told_what_to_set():
    (problem,) = problems_of({k: v for k, v in MINIMAL.items() if k != "network"})
    assert problem.startswith("librechat-lambda:network is not set;")
    for hint in ("network.vpcTags", "network.subnetTags", "securityGroupNames", "enabled: false"):
        assert hint in problem


def test_a_stack_without_a_domain_block_must_switch_the_domain_off_explicitly():
    (problem,) = problems_of({k: v for k, v in MINIMAL.items() if k != "domain"})
    assert problem.startswith("librechat-lambda:domain.name is required")
    assert "domain.enabled: false" in problem


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
            "librechat-lambda:domain": json.dumps({"enabled": False}),
            "librechat-lambda:function": "{not json",
            "librechat-lambda:fucntion": json.dumps({"memoryMb": 1024}),
        }
    )
    with pytest.raises(ConfigError) as caught:
        load(stack="dev")
    assert caught.value.problems == [
        "librechat-lambda:function is not valid JSON; write it as a YAML map",
        "librechat-lambda:fucntion is not a known key; did you mean function?",
    ]


@pytest.mark.parametrize(
    "name",
    ["/ecs/genai/librechat/CREDS_IV", "plain_name", "a.b-c",
     "arn:aws:ssm:eu-west-1:123456789012:parameter/ecs/x"],
)  # fmt: skip
def test_ssm_names_aws_accepts_pass(name):
    assert parse(with_(secrets={"parameters": {"X": name}}), stack="dev").secrets.parameters


@pytest.mark.parametrize(
    "name", ["", "/a//b", "/aws/reserved", "ssm-thing", "with space", "/" + "/x" * 16]
)
def test_ssm_names_aws_rejects_fail(name):
    (problem,) = problems_of(with_(secrets={"parameters": {"X": name}}))
    assert problem.startswith("librechat-lambda:secrets.parameters.X ")


def test_an_environment_set_as_secret_is_flagged_secret(mocks: PulumiMocks):
    config = {**cli_config("dev"), "librechat-lambda:pullRequestPreviews": "false"}
    set_all_config(config, secret_keys=["librechat-lambda:environment"])
    assert load(stack="dev").environment_is_secret
    set_all_config(config, secret_keys=[])
    assert not load(stack="dev").environment_is_secret


def test_a_stack_pull_requests_preview_refuses_a_secret_environment(mocks: PulumiMocks):
    """A preview can decrypt the state (Pulumi's Stack Read): nothing secret may be in it."""
    set_all_config(cli_config("dev"), secret_keys=["librechat-lambda:environment"])
    with pytest.raises(ConfigError) as caught:
        load(stack="dev")
    (problem,) = caught.value.problems
    assert problem.startswith("librechat-lambda:environment is set with --secret")
    assert "pullRequestPreviews" in problem


def test_a_stack_pull_requests_preview_refuses_deploy_mode_secrets():
    raw = with_(secrets={"mode": "deploy", "parameters": {"JWT_SECRET": "/x/jwt"}})
    with pytest.raises(ConfigError) as caught:
        parse(raw, stack="dev")
    assert any(
        p.startswith("librechat-lambda:secrets.mode is deploy") for p in caught.value.problems
    )
    parse(
        {
            **raw,
            "pullRequestPreviews": False,
            "function": {
                "kmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-4e5f-4a1b-8c2d-3e4f5a6b7c8d"
            },
        },
        stack="dev",
    )


# -- advice: valid, but not enough for resumable LibreChat in standard mode ----------------


def test_standard_mode_warns_what_resumable_chat_still_needs():
    cfg = parse(with_(function={"reservedConcurrency": 1}), stack="dev")
    advice = list(cfg.advice())
    assert len(advice) == 2
    assert advice[0].startswith("function.reservedConcurrency is 1")
    assert advice[1].startswith("environment.USE_REDIS is not true")


def test_no_advice_with_redis_and_room_to_scale_or_on_managed_instances():
    ready = with_(environment={"USE_REDIS": "true", "REDIS_URI": "redis://r:6379"})
    assert list(parse(ready, stack="dev").advice()) == []
    held_off = with_(function={"reservedConcurrency": 1}, runtime={"backgroundHold": False})
    assert list(parse(held_off, stack="dev").advice()) == []


@pytest.mark.parametrize("stack", STACKS)
def test_the_committed_stacks_need_no_advice(mocks: PulumiMocks, stack: str):
    set_all_config(cli_config(stack))
    assert list(load(stack=stack).advice()) == []


def test_require_digest_refuses_a_tag_naming_the_key():
    with pytest.raises(ConfigError) as caught:
        parse(with_(image={"requireDigest": True}), stack="dev")
    (problem,) = caught.value.problems
    assert problem.startswith("librechat-lambda:image.baseImage ")
    assert "names no digest" in problem
    pinned = "ghcr.io/danny-avila/librechat-api@sha256:" + "ab" * 32
    cfg = parse(with_(image={"requireDigest": True, "baseImage": pinned}), stack="dev")
    assert cfg.image.base_image == pinned


def test_standard_mode_reserves_concurrency_by_default_and_managed_mode_does_not():
    """A flood of requests (each stream holds an environment) stops at the reservation."""
    from components.config.function import DEFAULT_RESERVED_CONCURRENCY

    cfg = parse(with_(), stack="dev")
    assert cfg.reserved_concurrency == DEFAULT_RESERVED_CONCURRENCY == cfg.concurrency_limit
    assert parse(with_(function={"reservedConcurrency": 7}), stack="dev").reserved_concurrency == 7
    with pytest.raises(ConfigError) as caught:
        parse(
            with_(function={"provisionedConcurrency": DEFAULT_RESERVED_CONCURRENCY + 1}),
            stack="dev",
        )
    assert caught.value.problems[0].startswith("librechat-lambda:function.provisionedConcurrency")
