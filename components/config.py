"""Stack configuration, read once and validated before any resource is declared.

`load()` turns `pulumi.Config` into a frozen `StackConfig`; every problem found is collected
and reported together in one `ConfigError`, each line naming the key (as
`pulumi config set --path` spells it) and what to put there. The rest of the program receives
the typed object and never reads `pulumi.Config` itself.

Keys (namespace `librechat-lambda:`; objects are set in the stack file or with
`pulumi config set --path 'function.memoryMb' 3008`):

====================================  =================  ==========================================
Key                                   Default            Meaning
====================================  =================  ==========================================
name                                  librechat-<stack>  prefix of physical names (function, log
                                                         group, ECR repository): [a-z][a-z0-9-], at
                                                         most 40 characters
tags                                  {}                 tags on every resource (Project and Stack
                                                         are added)
image.baseImage                       (required)         LibreChat API image the runtime image is
                                                         built on (BASE_IMAGE build argument)
image.keepLastImages                  10                 ECR lifecycle policy: how many images to
                                                         keep
image.forceDelete                     false              let `pulumi destroy` delete a repository
                                                         that still holds images
function.architecture                 x86_64             x86_64 or arm64; the image is built for
                                                         the matching single platform
function.memoryMb                     2048               128-10240
function.timeoutSeconds               900                1-900
function.ephemeralStorageMb           1024               /tmp size, 512-10240
function.logRetentionDays             30                 retention of the function's log group (a
                                                         value CloudWatch Logs accepts)
function.tracing                      false              X-Ray active tracing
function.reservedConcurrency          (none)             reserved concurrent executions, >= 1
function.provisionedConcurrency       0                  > 0: publish a version, alias `live` with
                                                         that many provisioned environments; the
                                                         API then calls the alias
network.enabled                       true               false: no VPC (LibreChat then cannot reach
                                                         private DocumentDB, Redis, Cloud Map)
network.vpcId | vpcTags               (one required)     the VPC, by id or by tags (exactly one
                                                         match)
network.subnetIds | subnetTags        (one required)     the function's subnets: ids, or tags
                                                         looked up inside the VPC (`*` wildcards
                                                         allowed in values)
network.securityGroupIds |            (one required)     the function's security groups: ids, or
  securityGroupNames |                                   names (wildcards allowed) or tags looked
  securityGroupTags                                      up inside the VPC; at most 5
librechatConfig.s3Uri                 (none)             s3://bucket/key of librechat.yaml, fetched
                                                         at cold start (IAM: s3:GetObject on that
                                                         object only)
librechatConfig.domainFrom            (none)             domain replaced in that file by the host
                                                         of DOMAIN_SERVER
environment                           {}                 plain variables for LibreChat
                                                         (DOMAIN_SERVER, AWS_BUCKET_NAME, ...);
                                                         AWS_BUCKET_NAME also grants object
                                                         read/write on that bucket
secrets.parameters                    {}                 {ENV_NAME: /ssm/parameter/name}
secrets.mode                          deploy             deploy: values read at deploy time into
                                                         the environment as Pulumi secrets;
                                                         runtime: only the names (SSM_SECRETS),
                                                         read by the runtime at cold start
secrets.kmsKeyArn                     (none)             customer-managed KMS key of the parameters
                                                         (runtime mode grants kms:Decrypt on it)
runtime.readyTimeoutSeconds           60                 how long LibreChat may take to become
                                                         healthy
runtime.sseKeepaliveSeconds           20                 SSE keep-alive comment interval, 0 = off
runtime.backgroundHold                true               keep the environment unfrozen while
                                                         LibreChat finishes background generation
runtime.logLevel                      INFO               runtime log level: DEBUG, INFO, WARNING,
                                                         ERROR
api.stageName                         live               API Gateway stage name
api.endpointType                      REGIONAL           REGIONAL (streams may idle 5 min) or EDGE
                                                         (30 s)
api.binaryMediaTypes                  ["*/*"]            request bodies reach the function
                                                         unaltered (base64)
api.throttlingBurstLimit              (none)             stage burst limit (set both limits or
                                                         neither)
api.throttlingRateLimit               (none)             stage steady-state requests per second
api.logRetentionDays                  = function's       access log retention
api.accessLogging                     true               JSON access logs; needs the account's API
                                                         Gateway CloudWatch role (set once per
                                                         account and region, outside this project)
domain.enabled                        true if name set   false switches the custom domain off
domain.name                           (none)             custom domain, e.g. chat.example.com
domain.hostedZoneId | hostedZoneName  (looked up)        Route53 zone; neither: the public zone
                                                         holding the domain is looked up
domain.certificateArn                 (issued)           existing ACM certificate in the API's
                                                         region; unset: one is issued and validated
                                                         by DNS
domain.basePath                       (none)             base path mapping; also BASE_PATH for the
                                                         runtime
====================================  =================  ==========================================

When the domain is on and DOMAIN_SERVER / DOMAIN_CLIENT are not in `environment`, both default
to ``https://<domain.name>[/<basePath>]``. An `environment` set with ``--secret`` keeps the
function's whole environment secret in the Pulumi state.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import pulumi
from pulumi.runtime import config as runtime_config

PROJECT = "librechat-lambda"

ARCHITECTURES: Mapping[str, str] = MappingProxyType(
    {"x86_64": "linux/amd64", "arm64": "linux/arm64"}
)
SECRETS_MODES = ("deploy", "runtime")
#: The endpoint types a REST API can stream through; EDGE cuts idle streams after 30 s.
ENDPOINT_TYPES = ("REGIONAL", "EDGE")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
#: Retention periods CloudWatch Logs accepts, in days.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

#: Variables Lambda reserves; a function that sets them is rejected.
LAMBDA_RESERVED_ENV = frozenset(
    {
        "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION",
        "AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
    }
)  # fmt: skip
#: Variables this program sets from other keys; naming them in `environment` is an error.
MANAGED_ENV: Mapping[str, str] = MappingProxyType(
    {
        "CONFIG_S3_BUCKET": "librechatConfig.s3Uri",
        "CONFIG_S3_KEY": "librechatConfig.s3Uri",
        "CONFIG_PATH": "librechatConfig.s3Uri",
        "CONFIG_DOMAIN_FROM": "librechatConfig.domainFrom",
        "SSM_SECRETS": "secrets.parameters with secrets.mode runtime",
        "BASE_PATH": "domain.basePath",
        "UPSTREAM_READY_TIMEOUT": "runtime.readyTimeoutSeconds",
        "SSE_KEEPALIVE_INTERVAL": "runtime.sseKeepaliveSeconds",
        "BACKGROUND_HOLD": "runtime.backgroundHold",
        "LOG_LEVEL": "runtime.logLevel",
        "NODE_ENV": "nothing (it is always production)",
    }
)
#: Lambda's limit on the whole environment (keys and values), in bytes.
LAMBDA_ENV_LIMIT_BYTES = 4096

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.[a-z]{{2,63}}$")
_BUCKET = re.compile(r"^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_SSM_PATH = re.compile(r"^(/[A-Za-z0-9_.\-]+){1,15}$")
_SSM_PLAIN = re.compile(r"^[A-Za-z0-9_.\-]+$")
_PARTITION = r"aws(-cn|-us-gov|-eusc)?"
_SSM_ARN = re.compile(rf"^arn:{_PARTITION}:ssm:[a-z0-9-]+:\d{{12}}:parameter/.+$")
_ACM_ARN = re.compile(rf"^arn:{_PARTITION}:acm:([a-z0-9-]+):\d{{12}}:certificate/[0-9a-f-]{{36}}$")
_KMS_KEY_ARN = re.compile(
    rf"^arn:{_PARTITION}:kms:[a-z0-9-]+:\d{{12}}:key/(mrk-[0-9a-f]{{32}}|[0-9a-f-]{{36}})$"
)
_STAGE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_BASE_PATH = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")
_IMAGE_REF = re.compile(r"^[a-z0-9]+([._/:@-][A-Za-z0-9_.-]+)*$")
_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SG_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")
_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")


class ConfigError(pulumi.RunError):
    """The stack configuration is wrong; the message lists every problem by key."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"Stack configuration has {count}:\n{lines}")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class ImageConfig:
    base_image: str
    keep_last_images: int = 10
    force_delete: bool = False


@dataclass(frozen=True)
class FunctionConfig:
    architecture: Literal["x86_64", "arm64"] = "x86_64"
    memory_mb: int = 2048
    timeout_seconds: int = 900
    ephemeral_storage_mb: int = 1024
    log_retention_days: int = 30
    tracing: bool = False
    reserved_concurrency: int | None = None
    provisioned_concurrency: int = 0

    @property
    def platform(self) -> str:
        """The Docker platform matching the function's architecture."""
        return ARCHITECTURES[self.architecture]


@dataclass(frozen=True)
class NetworkConfig:
    """Where the function runs: ids given directly, or tag/name filters to look them up."""

    enabled: bool = True
    vpc_id: str | None = None
    vpc_tags: Mapping[str, str] = field(default_factory=dict)
    subnet_ids: tuple[str, ...] = ()
    subnet_tags: Mapping[str, str] = field(default_factory=dict)
    security_group_ids: tuple[str, ...] = ()
    security_group_names: tuple[str, ...] = ()
    security_group_tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LibreChatConfigSource:
    location: S3Location | None = None
    domain_from: str | None = None


@dataclass(frozen=True)
class SecretsConfig:
    mode: Literal["deploy", "runtime"] = "deploy"
    parameters: Mapping[str, str] = field(default_factory=dict)
    kms_key_arn: str | None = None


@dataclass(frozen=True)
class RuntimeConfig:
    ready_timeout_seconds: float = 60
    sse_keepalive_seconds: float = 20
    background_hold: bool = True
    log_level: str = "INFO"


@dataclass(frozen=True)
class ApiConfig:
    stage_name: str = "live"
    endpoint_type: str = "REGIONAL"
    binary_media_types: tuple[str, ...] = ("*/*",)
    throttling_burst_limit: int | None = None
    throttling_rate_limit: float | None = None
    log_retention_days: int = 30
    access_logging: bool = True


@dataclass(frozen=True)
class DomainConfig:
    name: str
    hosted_zone_id: str | None = None
    hosted_zone_name: str | None = None
    certificate_arn: str | None = None
    base_path: str | None = None

    @property
    def url(self) -> str:
        return f"https://{self.name}" + (f"/{self.base_path}" if self.base_path else "")


@dataclass(frozen=True)
class StackConfig:
    name: str
    region: str | None
    tags: Mapping[str, str]
    image: ImageConfig
    function: FunctionConfig
    network: NetworkConfig
    librechat_config: LibreChatConfigSource
    environment: Mapping[str, str]
    secrets: SecretsConfig
    runtime: RuntimeConfig
    api: ApiConfig
    domain: DomainConfig | None
    environment_is_secret: bool = False
    """`environment` was set with `--secret` (e.g. a REDIS_URI with a password)."""

    @property
    def files_bucket(self) -> str | None:
        """LibreChat's S3 file storage bucket (its own AWS_BUCKET_NAME variable)."""
        return self.environment.get("AWS_BUCKET_NAME")


# ---------------------------------------------------------------------------------------
# Reading


TOP_LEVEL_KEYS = (
    "name", "tags", "image", "function", "network", "librechatConfig", "environment",
    "secrets", "runtime", "api", "domain",
)  # fmt: skip
OBJECT_KEYS = frozenset(TOP_LEVEL_KEYS) - {"name"}


def load(config: pulumi.Config | None = None, stack: str | None = None) -> StackConfig:
    """Read and validate this stack's configuration; raise `ConfigError` listing every problem."""
    config = config or pulumi.Config(PROJECT)
    raw: dict[str, Any] = {}
    problems = _Problems(config.name)
    for key in TOP_LEVEL_KEYS:
        value = config.get(key)
        if value is None:
            continue
        if key in OBJECT_KEYS:
            try:
                raw[key] = json.loads(value)
            except json.JSONDecodeError:
                problems.add(key, f"is not an object: {value!r}; write it as a YAML map")
                continue
        else:
            raw[key] = value
    for key in _unknown_keys(config.name):
        problems.add(key, f"is not a known key; known keys are {', '.join(TOP_LEVEL_KEYS)}")
    region = pulumi.Config("aws").get("region")
    cfg = parse(
        raw, stack=stack or pulumi.get_stack(), region=region, namespace=config.name, seed=problems
    )
    if runtime_config.is_config_secret(f"{config.name}:environment"):
        cfg = dataclasses.replace(cfg, environment_is_secret=True)
    return cfg


def _unknown_keys(namespace: str) -> list[str]:
    """Keys set under our namespace that this module does not read (typos, stale keys)."""
    names = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    prefix = f"{namespace}:"
    return sorted(
        n[len(prefix) :]
        for n in names
        if n.startswith(prefix) and n[len(prefix) :] not in TOP_LEVEL_KEYS
    )


def parse(
    raw: Mapping[str, Any],
    *,
    stack: str,
    region: str | None = None,
    namespace: str = PROJECT,
    seed: _Problems | None = None,
) -> StackConfig:
    """Validate already-decoded configuration values (`load` minus `pulumi.Config`)."""
    p = seed or _Problems(namespace)
    r = _Reader(raw, p)

    default_name = re.sub(r"[^a-z0-9-]+", "-", f"librechat-{stack}".lower())[:40].rstrip("-")
    name = r.text("name", default=default_name)
    if not _NAME.match(name):
        p.add("name", f"{name!r} is not usable as a name prefix; use [a-z][a-z0-9-], at most 40")
    tags = r.string_map("tags")

    base_image = r.text(
        "image.baseImage",
        required="the LibreChat API image to build on, "
        "e.g. ghcr.io/danny-avila/librechat-api:v0.8.2-rc1",
    )
    image = ImageConfig(
        base_image=base_image,
        keep_last_images=r.integer("image.keepLastImages", 10, 1, 1000),
        force_delete=r.boolean("image.forceDelete", False),
    )
    if image.base_image and not _IMAGE_REF.match(image.base_image):
        p.add("image.baseImage", f"{image.base_image!r} is not an image reference (name:tag)")

    architecture = r.choice("function.architecture", "x86_64", tuple(ARCHITECTURES))
    function = FunctionConfig(
        architecture=architecture,  # type: ignore[arg-type]
        memory_mb=r.integer("function.memoryMb", 2048, 128, 10240),
        timeout_seconds=r.integer("function.timeoutSeconds", 900, 1, 900),
        ephemeral_storage_mb=r.integer("function.ephemeralStorageMb", 1024, 512, 10240),
        log_retention_days=r.retention("function.logRetentionDays", 30),
        tracing=r.boolean("function.tracing", False),
        reserved_concurrency=r.optional_integer("function.reservedConcurrency", 1, 100_000),
        provisioned_concurrency=r.integer("function.provisionedConcurrency", 0, 0, 100_000),
    )
    if (
        function.reserved_concurrency is not None
        and function.provisioned_concurrency > function.reserved_concurrency
    ):
        p.add(
            "function.provisionedConcurrency",
            f"{function.provisioned_concurrency} exceeds function.reservedConcurrency "
            f"{function.reserved_concurrency}; lower it or raise the reservation",
        )

    network = _network(r, p)
    librechat_config = _librechat_config(r, p)
    environment = _environment(r, p)
    secrets = _secrets(r, p, environment)

    runtime = RuntimeConfig(
        ready_timeout_seconds=r.number("runtime.readyTimeoutSeconds", 60, 1, 900),
        sse_keepalive_seconds=r.number("runtime.sseKeepaliveSeconds", 20, 0, 900),
        background_hold=r.boolean("runtime.backgroundHold", True),
        log_level=r.choice("runtime.logLevel", "INFO", LOG_LEVELS),
    )
    if runtime.ready_timeout_seconds > function.timeout_seconds:
        p.add(
            "runtime.readyTimeoutSeconds",
            f"{runtime.ready_timeout_seconds:g} s exceeds function.timeoutSeconds "
            f"{function.timeout_seconds}; the first request would time out first",
        )

    api = ApiConfig(
        stage_name=r.text("api.stageName", default="live"),
        endpoint_type=r.choice("api.endpointType", "REGIONAL", ENDPOINT_TYPES),
        binary_media_types=r.string_list("api.binaryMediaTypes", ("*/*",)),
        throttling_burst_limit=r.optional_integer("api.throttlingBurstLimit", 0, 5000),
        throttling_rate_limit=r.optional_number("api.throttlingRateLimit", 0, 10_000),
        log_retention_days=r.retention("api.logRetentionDays", function.log_retention_days),
        access_logging=r.boolean("api.accessLogging", True),
    )
    if not _STAGE.match(api.stage_name):
        p.add("api.stageName", f"{api.stage_name!r} is not a stage name; use [A-Za-z0-9_-]")
    throttling = ("api.throttlingBurstLimit", "api.throttlingRateLimit")
    given = [key for key in throttling if r.present(key)]
    if len(given) == 1:
        (missing,) = set(throttling) - set(given)
        p.add(
            missing,
            f"is needed with {given[0]}: set both, or neither (the provider sends -1, "
            "throttling disabled, for the one left out)",
        )

    domain = _domain(r, p, region)
    if domain is not None and api.endpoint_type != "REGIONAL":
        p.add(
            "api.endpointType",
            "must be REGIONAL when a custom domain is on (the domain is a REGIONAL endpoint)",
        )

    if domain is not None:
        environment = {
            "DOMAIN_SERVER": domain.url,
            "DOMAIN_CLIENT": domain.url,
            **environment,
        }
    if librechat_config.domain_from and "DOMAIN_SERVER" not in environment:
        p.add(
            "librechatConfig.domainFrom",
            "needs the replacement host: set environment.DOMAIN_SERVER or domain.name",
        )
    _check_environment_size(p, environment)

    r.reject_unknown()
    p.raise_if_any()
    return StackConfig(
        name=name,
        region=region,
        tags=MappingProxyType(dict(tags)),
        image=image,
        function=function,
        network=network,
        librechat_config=librechat_config,
        environment=MappingProxyType(dict(environment)),
        secrets=secrets,
        runtime=runtime,
        api=api,
        domain=domain,
    )


def _network(r: _Reader, p: _Problems) -> NetworkConfig:
    if not r.boolean("network.enabled", True):
        r.ignore_rest("network")
        return NetworkConfig(enabled=False)
    if not r.present("network"):
        p.add(
            "network",
            "is not set; give network.vpcTags (or vpcId), network.subnetTags (or subnetIds) "
            "and network.securityGroupNames (or securityGroupIds / securityGroupTags), "
            "or network.enabled: false for a function outside any VPC",
        )
    vpc_id = r.optional_text("network.vpcId")
    vpc_tags = r.string_map("network.vpcTags")
    subnet_ids = r.string_list("network.subnetIds", ())
    subnet_tags = r.string_map("network.subnetTags")
    sg_ids = r.string_list("network.securityGroupIds", ())
    sg_names = r.string_list("network.securityGroupNames", ())
    sg_tags = r.string_map("network.securityGroupTags")
    if r.present("network"):
        needs_vpc = bool(subnet_tags or sg_names or sg_tags)
        if vpc_id and vpc_tags:
            p.add("network.vpcId", "and network.vpcTags are both set; keep one")
        elif needs_vpc and not (vpc_id or vpc_tags):
            p.add(
                "network.vpcTags",
                "is needed to look up subnets or security groups by tag or name; "
                "set the VPC's tags (e.g. {Name: my-vpc}) or network.vpcId",
            )
        if bool(subnet_ids) == bool(subnet_tags):
            p.add(
                "network.subnetTags",
                "or network.subnetIds is needed, not both: the subnets by tags "
                "(e.g. {Name: '*private*'}) or by ids (a list of subnet-...)",
            )
        if sum(map(bool, (sg_ids, sg_names, sg_tags))) != 1:
            p.add(
                "network.securityGroupNames",
                "or network.securityGroupIds or network.securityGroupTags is needed, exactly "
                "one: the function's security groups by name (e.g. ['*librechat*']), id or tags",
            )
    if vpc_id and not _VPC_ID.match(vpc_id):
        p.add("network.vpcId", f"{vpc_id!r} is not a VPC id (vpc-...)")
    for bad in [s for s in subnet_ids if not _SUBNET_ID.match(s)]:
        p.add("network.subnetIds", f"{bad!r} is not a subnet id (subnet-...)")
    for bad in [s for s in sg_ids if not _SG_ID.match(s)]:
        p.add("network.securityGroupIds", f"{bad!r} is not a security group id (sg-...)")
    if len(sg_ids) > 5:
        p.add("network.securityGroupIds", "Lambda accepts at most 5 security groups")
    if len(subnet_ids) > 16:
        p.add("network.subnetIds", "Lambda accepts at most 16 subnets")
    return NetworkConfig(
        enabled=True,
        vpc_id=vpc_id,
        vpc_tags=MappingProxyType(dict(vpc_tags)),
        subnet_ids=subnet_ids,
        subnet_tags=MappingProxyType(dict(subnet_tags)),
        security_group_ids=sg_ids,
        security_group_names=sg_names,
        security_group_tags=MappingProxyType(dict(sg_tags)),
    )


def _librechat_config(r: _Reader, p: _Problems) -> LibreChatConfigSource:
    uri = r.optional_text("librechatConfig.s3Uri")
    location = None
    if uri is not None:
        location = parse_s3_uri(uri)
        if location is None:
            p.add(
                "librechatConfig.s3Uri",
                f"{uri!r} is not an S3 object URI; write s3://bucket/path/librechat.yaml",
            )
    domain_from = r.optional_text("librechatConfig.domainFrom")
    if domain_from is not None and not _DOMAIN.match(domain_from):
        p.add("librechatConfig.domainFrom", f"{domain_from!r} is not a domain name")
    return LibreChatConfigSource(location=location, domain_from=domain_from)


def _environment(r: _Reader, p: _Problems) -> dict[str, str]:
    environment = r.string_map("environment")
    for key in environment:
        if not _ENV_NAME.match(key):
            p.add(f"environment.{key}", "is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)")
        elif key in LAMBDA_RESERVED_ENV:
            p.add(f"environment.{key}", "is reserved by Lambda; remove it")
        elif key in MANAGED_ENV:
            p.add(f"environment.{key}", f"is set by this program; use {MANAGED_ENV[key]}")
    for key in ("DOMAIN_SERVER", "DOMAIN_CLIENT"):
        if key in environment and not _URL.match(environment[key]):
            p.add(f"environment.{key}", f"{environment[key]!r} is not a URL (https://host)")
    bucket = environment.get("AWS_BUCKET_NAME")
    if bucket is not None and not _BUCKET.match(bucket):
        p.add("environment.AWS_BUCKET_NAME", f"{bucket!r} is not an S3 bucket name")
    return environment


def _secrets(r: _Reader, p: _Problems, environment: Mapping[str, str]) -> SecretsConfig:
    mode = r.choice("secrets.mode", "deploy", SECRETS_MODES)
    parameters = r.string_map("secrets.parameters")
    for env_name, parameter in parameters.items():
        key = f"secrets.parameters.{env_name}"
        if not _ENV_NAME.match(env_name):
            p.add(key, "is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)")
        elif env_name in LAMBDA_RESERVED_ENV or env_name in MANAGED_ENV:
            p.add(key, "names a variable Lambda or this program sets; choose another")
        elif env_name in environment:
            p.add(key, "is also in environment; keep it in one place")
        problem = ssm_name_problem(parameter)
        if problem:
            p.add(key, problem)
    kms_key_arn = r.optional_text("secrets.kmsKeyArn")
    if kms_key_arn is not None and not _KMS_KEY_ARN.match(kms_key_arn):
        p.add(
            "secrets.kmsKeyArn",
            f"{kms_key_arn!r} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>; "
            "an alias ARN cannot be granted kms:Decrypt)",
        )
    return SecretsConfig(
        mode=mode,  # type: ignore[arg-type]
        parameters=MappingProxyType(dict(parameters)),
        kms_key_arn=kms_key_arn,
    )


def _domain(r: _Reader, p: _Problems, region: str | None) -> DomainConfig | None:
    name = r.optional_text("domain.name")
    enabled = r.boolean("domain.enabled", name is not None)
    if not enabled:
        r.ignore_rest("domain")
        return None
    if name is None:
        p.add("domain.name", "is required while domain.enabled is true; e.g. chat.example.com")
        return None
    if not _DOMAIN.match(name):
        p.add("domain.name", f"{name!r} is not a lower-case domain name like chat.example.com")
    zone_id = r.optional_text("domain.hostedZoneId")
    zone_name = r.optional_text("domain.hostedZoneName")
    if zone_id and zone_name:
        p.add("domain.hostedZoneId", "and domain.hostedZoneName are both set; keep one")
    if zone_id and not _ZONE_ID.match(zone_id):
        p.add("domain.hostedZoneId", f"{zone_id!r} is not a Route53 zone id (Z...)")
    if zone_name:
        zone_name = zone_name.rstrip(".")
        if not (name == zone_name or name.endswith("." + zone_name)):
            p.add("domain.hostedZoneName", f"{zone_name!r} does not hold {name!r}")
    certificate_arn = r.optional_text("domain.certificateArn")
    if certificate_arn is not None:
        match = _ACM_ARN.match(certificate_arn)
        if match is None:
            p.add(
                "domain.certificateArn",
                f"{certificate_arn!r} is not an ACM certificate ARN "
                "(arn:aws:acm:<region>:<account>:certificate/<uuid>)",
            )
        elif region and match.group(2) != region:
            p.add(
                "domain.certificateArn",
                f"is in {match.group(2)} but a REGIONAL domain needs a certificate in {region}",
            )
    base_path = r.optional_text("domain.basePath")
    if base_path is not None:
        base_path = base_path.strip("/") or None
        if base_path and not _BASE_PATH.match(base_path):
            p.add("domain.basePath", f"{base_path!r} is not a path like chat or v1/chat")
    return DomainConfig(
        name=name,
        hosted_zone_id=zone_id,
        hosted_zone_name=zone_name,
        certificate_arn=certificate_arn,
        base_path=base_path,
    )


def environment_size(environment: Mapping[str, str]) -> int:
    """Bytes Lambda counts against its 4 KB limit: every key and value together."""
    return sum(len(k.encode()) + len(v.encode()) for k, v in environment.items())


def _check_environment_size(p: _Problems, environment: Mapping[str, str]) -> None:
    size = environment_size(environment)
    if size > LAMBDA_ENV_LIMIT_BYTES:
        p.add(
            "environment",
            f"holds {size} bytes; Lambda allows {LAMBDA_ENV_LIMIT_BYTES} for all variables "
            "together: move large values into librechat.yaml or SSM with secrets.mode runtime",
        )


def parse_s3_uri(uri: str) -> S3Location | None:
    """`s3://bucket/key` as an `S3Location`, or None when it is not one."""
    match = re.match(r"^s3://([^/]+)/(.+)$", uri)
    if match is None or not _BUCKET.match(match.group(1)) or match.group(2).endswith("/"):
        return None
    return S3Location(bucket=match.group(1), key=match.group(2))


def ssm_name_problem(name: str) -> str | None:
    """Why `name` cannot be an SSM parameter name or ARN, or None when it can."""
    if not isinstance(name, str) or not name:
        return "needs an SSM parameter name like /app/secret"
    if name.startswith("arn:"):
        ok = bool(_SSM_ARN.match(name))
        return None if ok else f"{name!r} is not an SSM parameter ARN"
    if len(name) > 1011:
        return "is longer than the 1011 characters SSM allows"
    if name.startswith("/"):
        if not _SSM_PATH.match(name):
            return (
                f"{name!r} is not an SSM parameter name: use /segments/of/[A-Za-z0-9_.-], "
                "at most 15 levels"
            )
    elif not _SSM_PLAIN.match(name):
        return f"{name!r} is not an SSM parameter name ([A-Za-z0-9_.-], or a /path)"
    first = name.lstrip("/").lower()
    if first.startswith(("aws", "ssm")):
        return f"{name!r} starts with aws or ssm, which SSM reserves"
    return None


# ---------------------------------------------------------------------------------------
# Helpers


class _Problems:
    """Collects problems as 'namespace:key: sentence' lines."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.items: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.items.append(f"{self.namespace}:{key} {message}")

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.items)


_MISSING = object()


class _Reader:
    """Typed access to dotted keys of the decoded config; records what was read."""

    def __init__(self, raw: Mapping[str, Any], problems: _Problems) -> None:
        self.raw = raw
        self.p = problems
        self.read: set[str] = set()
        self.ignored: set[str] = set()
        for key in raw:
            if key in OBJECT_KEYS - {"tags", "environment"} and not isinstance(raw[key], dict):
                problems.add(key, f"must be a map of settings, not {raw[key]!r}")

    def present(self, key: str) -> bool:
        return self._get(key) is not _MISSING

    def _get(self, key: str) -> Any:
        node: Any = self.raw
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return _MISSING
            node = node[part]
        return node

    def _value(self, key: str) -> Any:
        self.read.add(key)
        value = self._get(key)
        return _MISSING if value is None else value

    def optional_text(self, key: str) -> str | None:
        value = self._value(key)
        if value is _MISSING:
            return None
        if isinstance(value, (dict, list)) or (isinstance(value, str) and not value.strip()):
            self.p.add(key, f"must be a non-empty string, not {value!r}")
            return None
        return str(value).strip()

    def text(self, key: str, default: str = "", required: str | None = None) -> str:
        value = self.optional_text(key)
        if value is None:
            if required and self._get(key) in (_MISSING, None):
                self.p.add(key, f"is required: set it to {required}")
            return default
        return value

    def choice(self, key: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.optional_text(key)
        if value is None:
            return default
        if value not in allowed:
            self.p.add(key, f"is {value!r}; use one of {', '.join(allowed)}")
            return default
        return value

    def _to_number(self, key: str, value: Any, integer: bool) -> float | None:
        if isinstance(value, bool):
            value = None
        elif isinstance(value, str):
            try:
                value = int(value) if integer else float(value)
            except ValueError:
                value = None
        if not isinstance(value, (int, float)) or (integer and value != int(value)):
            kind = "a whole number" if integer else "a number"
            self.p.add(key, f"must be {kind}")
            return None
        return int(value) if integer else float(value)

    def optional_number(self, key: str, low: float, high: float, integer: bool = False) -> Any:
        value = self._value(key)
        if value is _MISSING:
            return None
        number = self._to_number(key, value, integer)
        if number is None:
            return None
        if not low <= number <= high:
            self.p.add(key, f"is {number:g}; use a value from {low:g} to {high:g}")
            return None
        return number

    def optional_integer(self, key: str, low: int, high: int) -> int | None:
        return self.optional_number(key, low, high, integer=True)

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = self.optional_number(key, low, high)
        return default if value is None else value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.optional_integer(key, low, high)
        return default if value is None else value

    def retention(self, key: str, default: int) -> int:
        value = self.optional_integer(key, 1, 3653)
        if value is not None and value not in LOG_RETENTION_DAYS:
            self.p.add(key, f"is {value}; CloudWatch Logs accepts {LOG_RETENTION_DAYS}")
            return default
        return default if value is None else value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._value(key)
        if value is _MISSING:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        self.p.add(key, f"must be true or false, not {value!r}")
        return default

    def string_list(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self._value(key)
        if value is _MISSING:
            return default
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.p.add(key, f"must be a list of strings, not {value!r}")
            return default
        return tuple(value)

    def string_map(self, key: str) -> dict[str, str]:
        value = self._value(key)
        if value is _MISSING:
            return {}
        if not isinstance(value, Mapping):
            self.p.add(key, f"must be a map of names to values, not {value!r}")
            return {}
        result: dict[str, str] = {}
        for k, v in value.items():
            if isinstance(v, bool):
                result[str(k)] = "true" if v else "false"
            elif isinstance(v, (str, int, float)):
                result[str(k)] = str(v)
            else:
                self.p.add(f"{key}.{k}", f"must be a string, not {v!r}")
        return result

    def ignore_rest(self, prefix: str) -> None:
        self.ignored.add(prefix)

    def reject_unknown(self) -> None:
        """Report keys inside known objects that nothing read (typos such as memoryMB)."""
        for top in OBJECT_KEYS - {"tags", "environment"}:
            value = self.raw.get(top)
            if not isinstance(value, Mapping) or top in self.ignored:
                continue
            for path in _leaf_paths(top, value, self._container_keys()):
                if path not in self.read:
                    known = sorted(k for k in self.read if k.startswith(top + "."))
                    self.p.add(path, f"is not a known key; known keys here: {', '.join(known)}")

    def _container_keys(self) -> set[str]:
        # Keys whose values are maps read as a whole (their children are data, not settings).
        return {k for k in self.read if isinstance(self._get(k), Mapping)}


def _leaf_paths(prefix: str, node: Mapping[str, Any], whole: set[str]) -> Iterable[str]:
    for key, value in node.items():
        path = f"{prefix}.{key}"
        if isinstance(value, Mapping) and path not in whole:
            yield from _leaf_paths(path, value, whole)
        else:
            yield path


__all__ = [
    "ARCHITECTURES",
    "ENDPOINT_TYPES",
    "LAMBDA_ENV_LIMIT_BYTES",
    "LOG_RETENTION_DAYS",
    "SECRETS_MODES",
    "ApiConfig",
    "ConfigError",
    "DomainConfig",
    "FunctionConfig",
    "ImageConfig",
    "LibreChatConfigSource",
    "NetworkConfig",
    "RuntimeConfig",
    "S3Location",
    "SecretsConfig",
    "StackConfig",
    "environment_size",
    "load",
    "parse",
    "parse_s3_uri",
    "ssm_name_problem",
]
