"""The Lambda function that runs LibreChat behind the streaming runtime, with its IAM and logs.

The function runs the container image (package type Image) whose entrypoint is the Python
streaming runtime, which starts LibreChat itself. Its environment is the stack's LibreChat
variables plus the runtime's own (upstream, config object, domain rewrite, keep-alive) and the
fixed ones; components/contract.py holds what the runtime and the image agree on, and names
every variable set here (`SET_BY_PROGRAM`).

Secrets (SSM parameters), two modes:
- `deploy`: each parameter is read with decryption while Pulumi runs and placed in the
  environment; the invoke result is a plain value (the provider drops secret markers on invoke
  results), so every value, and the environment as a whole, is wrapped in `Output.secret`.
- `runtime`: only `SSM_SECRETS` (JSON of variable -> parameter name) is in the environment; the
  runtime resolves the names at cold start, and the role may call `ssm:GetParameters` on exactly
  those parameters (and `kms:Decrypt` through SSM on the configured key).

IAM: components/function_policy.py.

SnapStart (`LambdaFunctionArgs.snap_start`, standard mode): the function is published with
`snap_start.apply_on = PublishedVersions`, so Lambda runs init once per published version and
snapshots it; the API invokes alias `live`, which follows the newest version. With
`publish=True` the provider publishes a version whenever the image or the configuration
changes, and never deletes one: each version's snapshot is billed for as long as it exists, so
`make prune-versions` (ops/prune_versions.py) keeps the last few (docs/compute-modes.md,
SnapStart).

Managed mode (`LambdaFunctionArgs.managed`, Lambda Managed Instances): the function runs on a
capacity provider (components/capacity_provider.py), which carries the network, so the function
has no VPC configuration and its role no ENI rights. It is published to `$LATEST.PUBLISHED`
(lambda-managed-instances-version-publishing.html); that version's environment limits are an
`aws.lambda_.FunctionScalingConfig`, and the API invokes that version through its
response-streaming URI (Lambda's API model, as botocore ships it: AddPermission and
InvokeWithResponseStream take the qualifier `$LATEST.PUBLISHED`, PutFunctionScalingConfig takes
it or a version number). Lambda sets `AWS_LAMBDA_MAX_CONCURRENCY` in the environment from
`per_execution_environment_max_concurrency` (runtimes-custom.html), so the program does not.
AWS cannot move a function between the modes, so the physical name carries the mode
(`names.function_name`): switching is a new function, created before the old one is deleted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from components import aws_rules, names
from components.aws_rules import LAMBDA_ENV_LIMIT_BYTES, Architecture, S3Location, environment_size
from components.config import RuntimeConfig
from components.contract import (
    CONFIG_PATH,
    FIXED_ENVIRONMENT,
    STREAM_CHECK_TOKEN,
    UPSTREAM_COMMAND,
    UPSTREAM_HEALTH_PATH,
    UPSTREAM_PORT,
)
from components.function_policy import AwsContext, FunctionAccess, policy_statements

#: Name of the alias the API invokes when versions are published (provisioned concurrency,
#: SnapStart).
ALIAS_NAME = "live"
#: The version a managed-mode function publishes to and the API invokes.
LATEST_PUBLISHED = "$LATEST.PUBLISHED"


@dataclass(frozen=True)
class ManagedCompute:
    """How a managed-mode function uses its capacity provider."""

    capacity_provider_arn: pulumi.Input[str]
    memory_per_vcpu_gib: float
    """2, 4 or 8: the function's memory divided by this is its vCPUs."""
    max_concurrency: int
    """Invocations one environment serves at once (Lambda sets AWS_LAMBDA_MAX_CONCURRENCY)."""
    min_environments: int
    max_environments: int


@dataclass(frozen=True)
class LambdaFunctionArgs:
    """Inputs of `LambdaFunction`."""

    image_uri: pulumi.Input[str]
    function_name: str
    # Settings from the stack config's `function` section, whose schema states their defaults.
    architecture: Architecture
    memory_mb: int
    timeout_seconds: int
    ephemeral_storage_mb: int
    log_retention_days: int
    tracing: bool
    provisioned_concurrency: int
    # From `secrets.mode`, `compute.snapStart` and the `runtime` section, likewise.
    secrets_mode: Literal["deploy", "runtime"]
    """Values are read only when `deploy` is asked for."""
    snap_start: bool
    """Publish SnapStart versions; the API invokes them through the alias (standard mode)."""
    runtime: RuntimeConfig
    """The streaming runtime's tunables (runtime/streaming_proxy/variables.py)."""
    environment: Mapping[str, str] = field(default_factory=dict)
    environment_is_secret: bool = False
    """Keep the environment secret in state even without deploy-mode secrets."""
    secrets: Mapping[str, str] = field(default_factory=dict)
    secrets_kms_key_arn: str | None = None
    environment_kms_key_arn: str | None = None
    """Customer-managed KMS key encrypting the function's environment (its configuration is then
    readable only with kms:Decrypt on it); None: Lambda's AWS managed key."""
    config_object: S3Location | None = None
    config_domain_from: str | None = None
    base_path: str | None = None
    files_bucket: str | None = None
    subnet_ids: Sequence[str] = ()
    security_group_ids: Sequence[str] = ()
    reserved_concurrency: int | None = None
    managed: ManagedCompute | None = None
    """Set: run on Lambda Managed Instances (no VPC config, reservation or provisioning here)."""
    log_group_name: str | None = None
    """None: `/aws/lambda/<function_name>`; set to keep one log group across a mode switch."""
    permissions_boundary: str | None = None
    """Name of the managed policy bounding the role (`names.permissions_boundary_name`, created
    by ci/); the CI deploy roles may create the role only with it."""
    tags: Mapping[str, str] = field(default_factory=dict)


def plain_environment(args: LambdaFunctionArgs) -> dict[str, str]:
    """Every non-secret variable: the stack's, the runtime's and the fixed ones."""
    env = dict(args.environment)
    env |= {
        "UPSTREAM_COMMAND": UPSTREAM_COMMAND,
        "UPSTREAM_PORT": str(UPSTREAM_PORT),
        "UPSTREAM_HEALTH_PATH": UPSTREAM_HEALTH_PATH,
        "UPSTREAM_READY_TIMEOUT": f"{args.runtime.ready_timeout_seconds:g}",
        "SSE_KEEPALIVE_INTERVAL": f"{args.runtime.sse_keepalive_seconds:g}",
        "STREAM_IDLE_TIMEOUT": f"{args.runtime.stream_idle_timeout_seconds:g}",
        "BACKGROUND_TITLE_WAIT": f"{args.runtime.title_wait_seconds:g}",
        "BACKGROUND_HOLD": "on" if args.runtime.background_hold else "off",
        "LOG_LEVEL": args.runtime.log_level,
    }
    if STREAM_CHECK_TOKEN not in args.secrets:  # the stream check is on only with its token
        env["STREAM_CHECK_PATH"] = ""
    if args.config_object is not None:
        env |= {
            "CONFIG_S3_BUCKET": args.config_object.bucket,
            "CONFIG_S3_KEY": args.config_object.key,
            "CONFIG_PATH": CONFIG_PATH,
        }
    if args.config_domain_from:
        env["CONFIG_DOMAIN_FROM"] = args.config_domain_from
    if args.base_path:
        env["BASE_PATH"] = "/" + args.base_path.strip("/")
    if args.secrets_mode == "runtime" and args.secrets:
        env["SSM_SECRETS"] = json.dumps(dict(sorted(args.secrets.items())), separators=(",", ":"))
    env |= FIXED_ENVIRONMENT
    return env


def in_vpc(args: LambdaFunctionArgs) -> bool:
    """Whether the function itself is in the VPC (in managed mode its capacity provider is)."""
    return bool(args.subnet_ids) and args.managed is None


def access(args: LambdaFunctionArgs) -> FunctionAccess:
    """What the role must reach, from the function's arguments."""
    runtime_secrets = args.secrets if args.secrets_mode == "runtime" else {}
    return FunctionAccess(
        config_object=args.config_object,
        files_bucket=args.files_bucket,
        secret_parameters=runtime_secrets,
        secrets_kms_key_arn=args.secrets_kms_key_arn,
        in_vpc=in_vpc(args),
        tracing=args.tracing,
    )


def streaming_invoke_arn(ctx: AwsContext, target_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """API Gateway's InvokeWithResponseStream URI for a function or alias ARN.

    `aws.lambda_.Alias` has no `response_streaming_invoke_arn` (pulumi-aws 7.51), so the
    alias's is built the way the provider builds the function's.
    """
    return pulumi.Output.concat(
        f"arn:{ctx.partition}:apigateway:{ctx.region}:lambda:path/2021-11-15/functions/",
        target_arn,
        "/response-streaming-invocations",
    )


class LambdaFunction(pulumi.ComponentResource):
    """IAM role and policy, log group, the image function and, optionally, the alias of its
    newest version (provisioned or SnapStart) or (managed mode) the published version's scaling
    limits."""

    role: aws.iam.Role
    policy_document: pulumi.Output[str]
    policy: aws.iam.RolePolicy
    log_group: aws.cloudwatch.LogGroup
    function: aws.lambda_.Function
    alias: aws.lambda_.Alias | None
    provisioned_concurrency: aws.lambda_.ProvisionedConcurrencyConfig | None
    scaling: aws.lambda_.FunctionScalingConfig | None
    function_name: pulumi.Output[str]
    function_arn: pulumi.Output[str]
    log_group_name: pulumi.Output[str]
    environment: pulumi.Output[dict[str, str]]
    qualifier: pulumi.Output[str] | None
    streaming_invoke_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: LambdaFunctionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("librechat:components:LambdaFunction", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)
        ctx = AwsContext(
            partition=aws.get_partition(opts=invoke).partition,
            region=aws.get_region(opts=invoke).region,
            account=aws.get_caller_identity(opts=invoke).account_id,
        )
        tags = dict(args.tags)

        # 1. Environment; in deploy mode it carries the secret values and is secret as a whole.
        plain = plain_environment(args)
        if args.secrets_mode == "deploy" and args.secrets:
            values = read_parameters(args.secrets, invoke)
            _check_environment_size({**plain, **values})
            self.environment = pulumi.Output.secret({**plain, **values})
        else:
            _check_environment_size(plain)
            self.environment = (
                pulumi.Output.secret(plain)
                if args.environment_is_secret
                else pulumi.Output.from_input(plain)
            )

        # 2. Log group with retention; the function logs JSON into it.
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=args.log_group_name or f"/aws/lambda/{args.function_name}",
            retention_in_days=args.log_retention_days,
            tags=tags,
            opts=child,
        )

        # 3. Role and its one least-privilege inline policy.
        # Named after the function, so that a deploy role can be scoped to exactly this role.
        self.role = aws.iam.Role(
            f"{name}-role",
            name=names.function_role_name(args.function_name),
            assume_role_policy=aws_rules.LAMBDA_TRUST_POLICY,
            permissions_boundary=(
                f"arn:{ctx.partition}:iam::{ctx.account}:policy/{args.permissions_boundary}"
                if args.permissions_boundary
                else None
            ),
            tags=tags,
            opts=child,
        )
        self.policy_document = self.log_group.arn.apply(
            lambda arn: json.dumps(
                {"Version": "2012-10-17", "Statement": policy_statements(access(args), ctx, arn)}
            )
        )
        self.policy = aws.iam.RolePolicy(
            f"{name}-access", role=self.role.id, policy=self.policy_document, opts=child
        )

        # 4. The function; it waits for its policy (Lambda checks ENI rights on create).
        vpc_config: aws.lambda_.FunctionVpcConfigArgsDict | None = None
        if in_vpc(args):
            vpc_config = {
                "subnet_ids": list(args.subnet_ids),
                "security_group_ids": list(args.security_group_ids),
            }
        logging_config: aws.lambda_.FunctionLoggingConfigArgsDict = {
            "log_format": "JSON",
            "log_group": self.log_group.name,
        }
        tracing_config: aws.lambda_.FunctionTracingConfigArgsDict | None = (
            {"mode": "Active"} if args.tracing else None
        )
        publish = args.provisioned_concurrency > 0 or args.snap_start or args.managed is not None
        snap_start: aws.lambda_.FunctionSnapStartArgsDict | None = (
            {"apply_on": "PublishedVersions"} if args.snap_start else None
        )
        self.function = aws.lambda_.Function(
            f"{name}-function",
            name=args.function_name,
            package_type="Image",
            image_uri=args.image_uri,
            architectures=[args.architecture],
            role=self.role.arn,
            memory_size=args.memory_mb,
            timeout=args.timeout_seconds,
            ephemeral_storage={"size": args.ephemeral_storage_mb},
            environment={"variables": self.environment},
            kms_key_arn=args.environment_kms_key_arn,
            vpc_config=vpc_config,
            logging_config=logging_config,
            tracing_config=tracing_config,
            reserved_concurrent_executions=args.reserved_concurrency,
            publish=publish,
            snap_start=snap_start,
            **_managed_function_args(args.managed),
            tags=tags,
            # A new name (a mode switch) is a new function, created before the old is deleted.
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.policy, self.log_group],
                replace_on_changes=["name"],
            ),
        )
        self.function_name = self.function.name
        self.function_arn = self.function.arn
        self.log_group_name = self.log_group.name

        # 5. Where the API sends requests: the function itself, the alias of the newest version
        #    (provisioned or SnapStart), or the managed function's published version with its
        #    environment limits.
        self.alias = None
        self.provisioned_concurrency = None
        self.scaling = None
        self.qualifier = None
        self.streaming_invoke_arn = self.function.response_streaming_invoke_arn
        if args.managed is not None:
            self.scaling = aws.lambda_.FunctionScalingConfig(
                f"{name}-scaling",
                function_name=self.function.name,
                qualifier=LATEST_PUBLISHED,
                function_scaling_config={
                    "min_execution_environments": args.managed.min_environments,
                    "max_execution_environments": args.managed.max_environments,
                },
                opts=child,
            )
            self.qualifier = pulumi.Output.from_input(LATEST_PUBLISHED)
            self.streaming_invoke_arn = streaming_invoke_arn(
                ctx, pulumi.Output.concat(self.function.arn, ":", LATEST_PUBLISHED)
            )
        elif publish:
            self.alias = aws.lambda_.Alias(
                f"{name}-alias",
                name=ALIAS_NAME,
                function_name=self.function.name,
                function_version=self.function.version,
                opts=child,
            )
            if args.provisioned_concurrency > 0:
                self.provisioned_concurrency = aws.lambda_.ProvisionedConcurrencyConfig(
                    f"{name}-provisioned",
                    function_name=self.function.name,
                    qualifier=self.alias.name,
                    provisioned_concurrent_executions=args.provisioned_concurrency,
                    opts=child,
                )
            self.qualifier = self.alias.name
            self.streaming_invoke_arn = streaming_invoke_arn(ctx, self.alias.arn)

        self.register_outputs(
            {
                "function_name": self.function_name,
                "function_arn": self.function_arn,
                "log_group_name": self.log_group_name,
                "streaming_invoke_arn": self.streaming_invoke_arn,
            }
        )


def _managed_function_args(managed: ManagedCompute | None) -> dict[str, Any]:
    """The function's capacity provider attachment and publishing target, in managed mode."""
    if managed is None:
        return {}
    return {
        "capacity_provider_config": {
            "lambda_managed_instances_capacity_provider_config": {
                "capacity_provider_arn": managed.capacity_provider_arn,
                "execution_environment_memory_gib_per_vcpu": managed.memory_per_vcpu_gib,
                "per_execution_environment_max_concurrency": managed.max_concurrency,
            }
        },
        "publish_to": "LATEST_PUBLISHED",
    }


def read_parameters(secrets: Mapping[str, str], opts: pulumi.InvokeOptions) -> dict[str, str]:
    """Each parameter's decrypted value by variable; every unreadable one is named in one error."""
    values: dict[str, str] = {}
    problems: list[str] = []
    for env_name, parameter in secrets.items():
        try:
            values[env_name] = aws.ssm.get_parameter(
                name=parameter, with_decryption=True, opts=opts
            ).value
        except Exception as exc:  # missing or denied: the provider fails the invoke
            problems.append(f"secrets.parameters.{env_name} ({parameter}): {exc}")
    if problems:
        msg = (
            "Cannot read these SSM parameters at deploy time; create them, fix their names, or "
            "grant ssm:GetParameter (and kms:Decrypt) to the deploying role:\n  - "
            + "\n  - ".join(problems)
        )
        raise pulumi.RunError(msg)
    return values


def _check_environment_size(environment: Mapping[str, str]) -> None:
    size = environment_size(environment)
    if size > LAMBDA_ENV_LIMIT_BYTES:
        msg = (
            f"The function environment needs {size} bytes but Lambda allows "
            f"{LAMBDA_ENV_LIMIT_BYTES}; set secrets.mode to runtime (secret values then stay "
            "out of the environment) or move settings into librechat.yaml"
        )
        raise pulumi.RunError(msg)
