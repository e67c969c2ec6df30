"""The whole stack configuration: its sections, the checks across them, and how it is read."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Annotated, Any

import pulumi
from pulumi.runtime import config as runtime_config
from pydantic import Field, PrivateAttr, ValidationError, ValidationInfo, model_validator

from components import aws_rules, names
from components.config.api import ApiConfig
from components.config.base import Problem, Section, TextMap, problems_error, rule, switchable
from components.config.compute import SNAP_START_MAX_EPHEMERAL_MB, ComputeConfig
from components.config.domain import DomainConfig
from components.config.environment import Environment
from components.config.errors import ConfigError, problems_of
from components.config.function import DEFAULT_RESERVED_CONCURRENCY, FunctionConfig
from components.config.image import ImageConfig
from components.config.librechat import LibreChatConfig
from components.config.monitoring import MonitoringConfig
from components.config.network import NetworkConfig
from components.config.runtime import RuntimeConfig
from components.config.secrets import SecretsConfig
from components.contract import STREAM_CHECK_TOKEN

PROJECT = names.PROJECT


class StackConfig(Section):
    """Every key of the `librechat-lambda:` namespace; a section per key that holds a map."""

    name: Annotated[str, rule(aws_rules.check_name_prefix)] = Field(
        description="prefix of physical names (function, log group, ECR repository)",
        json_schema_extra={"shown_default": "`librechat-<stack>`"},
    )
    tags: TextMap = Field(
        {}, description="tags on every resource (`Project` and `Stack` are added)"
    )
    image: ImageConfig = Field(default_factory=dict, validate_default=True)
    function: FunctionConfig = FunctionConfig()
    compute: ComputeConfig = ComputeConfig()
    network: Annotated[NetworkConfig | None, switchable(NetworkConfig)] = Field(
        default_factory=dict,
        validate_default=True,
    )
    librechat_config: LibreChatConfig = LibreChatConfig()
    environment: Environment = Field(
        {},
        description="plain variables for LibreChat (`DOMAIN_SERVER`, `AWS_BUCKET_NAME`, "
        "`USE_REDIS`, …); `AWS_BUCKET_NAME` also grants object read/write in that bucket",
    )
    secrets: SecretsConfig = SecretsConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    api: ApiConfig = ApiConfig()
    domain: Annotated[DomainConfig | None, switchable(DomainConfig)] = Field(
        default_factory=dict,
        validate_default=True,
    )
    monitoring: Annotated[MonitoringConfig | None, switchable(MonitoringConfig)] = Field(
        default_factory=dict,
        validate_default=True,
    )
    pull_request_previews: bool = Field(
        True,
        description="pull requests preview this stack (preview.yml), and a preview can read the "
        "state decrypted: the stack then refuses a secret `environment` and `secrets.mode: "
        "deploy` (docs/security.md)",
    )

    _environment_is_secret: bool = PrivateAttr(default=False)

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: Any, info: ValidationInfo) -> Any:
        stack = (info.context or {}).get("stack")
        if isinstance(data, Mapping) and "name" not in data and stack:
            return {**data, "name": names.default_name(stack)}
        return data

    @model_validator(mode="after")
    def _mark_secret(self, info: ValidationInfo) -> StackConfig:
        self._environment_is_secret = bool((info.context or {}).get("environment_is_secret"))
        if self._environment_is_secret and self.pull_request_previews:
            raise problems_error(
                [
                    (
                        "environment",
                        "is set with --secret, but pull requests preview this stack "
                        "(pullRequestPreviews) and a preview can read the state decrypted; "
                        "move the secret values to secrets.parameters (mode runtime)",
                    )
                ]
            )
        return self

    @property
    def environment_is_secret(self) -> bool:
        """`environment` was set with `--secret` (e.g. a REDIS_URI with a password)."""
        return self._environment_is_secret

    @property
    def app_environment(self) -> dict[str, str]:
        """LibreChat's variables: `environment`, with DOMAIN_SERVER and DOMAIN_CLIENT defaulting
        to the custom domain's URL."""
        if self.domain is None:
            return dict(self.environment)
        url = self.domain.url
        return {"DOMAIN_SERVER": url, "DOMAIN_CLIENT": url, **self.environment}

    @property
    def execute_api_endpoint(self) -> bool:
        """The API's default execute-api URL answers: always without a custom domain, with one
        only when `api.keepExecuteApiEndpoint` says so."""
        return self.domain is None or self.api.keep_execute_api_endpoint

    @property
    def files_bucket(self) -> str | None:
        """LibreChat's S3 file storage bucket (its own AWS_BUCKET_NAME variable)."""
        return self.environment.get("AWS_BUCKET_NAME")

    @property
    def secret_parameters(self) -> dict[str, str]:
        """`secrets.parameters`, plus the stream check's token parameter (read by the runtime,
        never passed to LibreChat: runtime/streaming_proxy/main.py)."""
        token = self.api.stream_check_token_parameter
        extra = {STREAM_CHECK_TOKEN: token} if token else {}
        return {**self.secrets.parameters, **extra}

    @property
    def reserved_concurrency(self) -> int | None:
        """`function.reservedConcurrency`, defaulting to `DEFAULT_RESERVED_CONCURRENCY` in
        standard mode (managed instances have none: their environments bound it)."""
        if self.compute.managed:
            return None
        reserved = self.function.reserved_concurrency
        return DEFAULT_RESERVED_CONCURRENCY if reserved is None else reserved

    @property
    def concurrency_limit(self) -> int:
        """Most concurrent executions the function gets, the concurrency alarm's limit: on managed
        instances every environment's share (compute.maxEnvironments x compute.maxConcurrency),
        else the reservation (standard mode always has one)."""
        if self.compute.managed:
            return self.compute.max_environments * self.compute.max_concurrency
        return self.reserved_concurrency or 0

    def advice(self) -> Iterator[str]:
        """What a valid stack still lacks for resumable LibreChat (>= v0.8.2) in standard mode,
        where the browser reads the answer (GET .../chat/stream/:id) from a second environment
        while the first holds the generating POST, the job shared through Redis. Warnings, not
        errors: LibreChat up to v0.8.2-rc1 streams from the POST and needs neither."""
        if self.compute.managed or not self.runtime.background_hold:
            return
        if self.function.reserved_concurrency == 1:
            yield (
                "function.reservedConcurrency is 1: resumable chat (LibreChat >= v0.8.2) needs at "
                "least two concurrent environments in standard mode (the answer's stream GET "
                "cannot reach the one holding its POST); raise it or use compute.mode "
                "managedInstances"
            )
        if self.environment.get("USE_REDIS", "").lower() != "true":
            yield (
                "environment.USE_REDIS is not true: resumable chat (LibreChat >= v0.8.2) in "
                "standard mode needs the job state in Redis (USE_REDIS=true, REDIS_URI), since "
                "the stream GET usually lands on another environment than its POST"
            )

    def related_problems(self) -> Iterator[Problem]:
        ready, timeout = self.runtime.ready_timeout_seconds, self.function.timeout_seconds
        if ready > timeout:
            yield (
                "runtime.readyTimeoutSeconds",
                f"{ready:g} s exceeds function.timeoutSeconds {timeout}; the first request "
                "would time out first",
            )
        if self.domain is not None and self.api.endpoint_type != "REGIONAL":
            yield (
                "api.endpointType",
                "must be REGIONAL when a custom domain is on (the domain is a REGIONAL endpoint)",
            )
        if self.api.stream_check_token_parameter and self.secrets.mode != "runtime":
            yield (
                "api.streamCheckTokenParameter",
                "needs secrets.mode runtime: the runtime reads the token at cold start",
            )
        if self.secrets.mode == "deploy" and self.pull_request_previews:
            yield (
                "secrets.mode",
                "is deploy, but pull requests preview this stack (pullRequestPreviews) and a "
                "preview can read the state decrypted, where deploy-mode values sit; use "
                "secrets.mode runtime",
            )
        if (
            self.secrets.mode == "deploy"
            and self.secrets.parameters
            and self.function.kms_key_arn is None
        ):
            yield (
                "function.kmsKeyArn",
                "is required with secrets.mode deploy: the secret values then sit in the "
                "function's environment, readable by anyone allowed lambda:GetFunction; set a "
                "customer-managed KMS key so reading them needs kms:Decrypt on it, or use "
                "secrets.mode runtime",
            )
        for name in self.secrets.parameters:
            if name in self.environment:
                yield (f"secrets.parameters.{name}", "is also in environment; keep it in one place")
        if self.librechat_config.domain_from and "DOMAIN_SERVER" not in self.app_environment:
            yield (
                "librechatConfig.domainFrom",
                "needs the replacement host: set environment.DOMAIN_SERVER or domain.name",
            )
        yield from self._compute_problems()

    def _compute_problems(self) -> Iterator[Problem]:
        """What the compute mode rules out in the other sections."""
        fn, compute = self.function, self.compute
        if not compute.managed:
            if fn.memory_mb > aws_rules.STANDARD_MEMORY_MB[1]:
                yield (
                    "function.memoryMb",
                    f"is {fn.memory_mb}; standard Lambda takes at most "
                    f"{aws_rules.STANDARD_MEMORY_MB[1]} (more needs compute.mode managedInstances)",
                )
            yield from self._snap_start_problems()
            return
        mode = "with compute.mode managedInstances"
        if self.network is None:
            yield (
                "network.enabled",
                f"must be true {mode}: the capacity provider launches its instances in the "
                "stack's subnets and security groups",
            )
        if fn.provisioned_concurrency:
            yield (
                "function.provisionedConcurrency",
                f"does not exist {mode} (environments never stop: set compute.minEnvironments); "
                "remove it",
            )
        if fn.reserved_concurrency is not None:
            yield (
                "function.reservedConcurrency",
                f"does not exist {mode} (compute.maxEnvironments x compute.maxConcurrency "
                "bounds it); remove it",
            )
        low, high = aws_rules.MANAGED_MEMORY_MB
        per_vcpu = compute.memory_per_vcpu_gib * 1024
        if not low <= fn.memory_mb <= high:
            yield ("function.memoryMb", f"is {fn.memory_mb}; managed instances take {low}-{high}")
        elif fn.memory_mb % per_vcpu:
            yield (
                "function.memoryMb",
                f"is {fn.memory_mb}, not a whole number of vCPUs at compute.memoryPerVcpuGib "
                f"{compute.memory_per_vcpu_gib}; use a multiple of {per_vcpu}",
            )
        for instance_type in compute.allowed_instance_types:
            architecture = aws_rules.instance_architecture(instance_type)
            if architecture != fn.architecture:
                yield (
                    "compute.allowedInstanceTypes",
                    f"holds {instance_type}, an {architecture} type; function.architecture is "
                    f"{fn.architecture}",
                )
        vcpus = max(1, fn.memory_mb // per_vcpu) * compute.min_environments
        if compute.max_vcpus is not None and compute.max_vcpus < vcpus:
            yield (
                "compute.maxVcpus",
                f"is {compute.max_vcpus}; compute.minEnvironments {compute.min_environments} "
                f"of {fn.memory_mb} MB need {vcpus} vCPUs",
            )

    def _snap_start_problems(self) -> Iterator[Problem]:
        """What SnapStart rules out (AWS: not with provisioned concurrency, EFS or more than
        512 MB of /tmp; the runtime: arm64), and deploy-time secrets, which every kept version
        would hold (docs/compute-modes.md, SnapStart)."""
        if not self.compute.snap_start:
            return
        fn = self.function
        if fn.provisioned_concurrency:
            yield (
                "function.provisionedConcurrency",
                "cannot be combined with compute.snapStart (Lambda refuses both on one version); "
                "set it to 0 or turn compute.snapStart off",
            )
        if fn.ephemeral_storage_mb > SNAP_START_MAX_EPHEMERAL_MB:
            yield (
                "function.ephemeralStorageMb",
                f"is {fn.ephemeral_storage_mb}; compute.snapStart allows at most "
                f"{SNAP_START_MAX_EPHEMERAL_MB} MB of /tmp: set it to "
                f"{SNAP_START_MAX_EPHEMERAL_MB}",
            )
        if fn.architecture != "x86_64":
            yield (
                "function.architecture",
                f"is {fn.architecture}; compute.snapStart needs x86_64: the runtime has OpenSSL "
                "draw from the CPU's RDRAND so that no generator state sits in the snapshot, and "
                "Graviton has none (docs/snapstart.md)",
            )
        if self.secrets.mode == "deploy" and self.secrets.parameters:
            yield (
                "secrets.mode",
                "must be runtime with compute.snapStart: in deploy mode every published version "
                "keeps the secret values in its configuration (readable with "
                "lambda:GetFunctionConfiguration) for as long as it exists, and SnapStart keeps "
                "several; runtime mode keeps only parameter names there "
                "(docs/compute-modes.md, SnapStart)",
            )


def parse(
    raw: Mapping[str, Any],
    *,
    stack: str,
    namespace: str = PROJECT,
    environment_is_secret: bool = False,
    problems: tuple[str, ...] = (),
) -> StackConfig:
    """Validate decoded configuration values; raise `ConfigError` listing every problem.

    `problems` are lines already found while decoding (keys that are not valid JSON).
    """
    lines = [f"{namespace}:{line}" for line in problems]
    context = {"stack": stack, "environment_is_secret": environment_is_secret}
    try:
        config = StackConfig.model_validate(raw, context=context)
    except ValidationError as error:
        lines += [f"{namespace}:{line}" for line in problems_of(error, StackConfig)]
        raise ConfigError(lines) from None
    if lines:
        raise ConfigError(lines)
    return config


def load(config: pulumi.Config | None = None, stack: str | None = None) -> StackConfig:
    """Read and validate this stack's configuration; raise `ConfigError` listing every problem."""
    config = config or pulumi.Config(PROJECT)
    prefix = f"{config.name}:"
    names = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    raw: dict[str, Any] = {}
    problems: list[str] = []
    for key in sorted(n.removeprefix(prefix) for n in names if n.startswith(prefix)):
        value = config.get(key) or ""
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            if value.lstrip().startswith(("{", "[")):
                problems.append(f"{key} is not valid JSON; write it as a YAML map")
                continue
            decoded = value
        raw[key] = decoded if isinstance(decoded, (dict, list)) else value
    return parse(
        raw,
        stack=stack or pulumi.get_stack(),
        namespace=config.name,
        environment_is_secret=runtime_config.is_config_secret(f"{prefix}environment"),
        problems=tuple(problems),
    )
