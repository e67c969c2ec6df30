"""The function role's inline policy: every statement scoped to the exact resources it needs.

IAM is one inline policy: logs on the function's own log group, `s3:GetObject` on the one
config object, object read/write in the files bucket, `ssm:GetParameters` (and `kms:Decrypt` through
SSM) on exactly the parameters of runtime-mode secrets (components/function.py), the ENI
permissions AWS documents for a function in a VPC (only when it is in one), X-Ray when tracing.
No statement uses a `*` action; `Resource: "*"` appears only for the actions in
`UNSCOPABLE_ACTIONS`: those AWS authorizes on no narrower resource (`ec2:Describe*`, X-Ray's
`Put*`) and `ec2:CreateNetworkInterface`. Lambda checks that one on the role when the function
is created or its VPC changes; AWS documents it without resource scoping (Lambda guide,
configuration-vpc.html; managed policy AWSLambdaVPCAccessExecutionRole), and grants narrowed
by resource or condition are reported to fail that check (aws/serverless-application-model#1074,
METR/inspect-action#138). ENI deletion is limited to the account and region, the form that
page gives for DeleteNetworkInterface.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from components.aws_rules import S3Location

#: Actions granted on `Resource: "*"`: AWS authorizes them on no narrower resource
#: (Describe*, X-Ray), or Lambda's own permission check needs it (CreateNetworkInterface).
UNSCOPABLE_ACTIONS = frozenset(
    {
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
)


@dataclass(frozen=True)
class AwsContext:
    """Partition, region and account, for building ARNs."""

    partition: str
    region: str
    account: str


@dataclass(frozen=True)
class FunctionAccess:
    """What the function's role must reach: the policy builder's whole input."""

    config_object: S3Location | None = None
    files_bucket: str | None = None
    secret_parameters: Mapping[str, str] = field(default_factory=dict)
    """Parameters the runtime reads at cold start (runtime-mode secrets), by variable."""
    secrets_kms_key_arn: str | None = None
    in_vpc: bool = False
    """The function itself is in the VPC (in managed mode its capacity provider is)."""
    tracing: bool = False


def ssm_parameter_arn(name: str, ctx: AwsContext) -> str:
    """ARN of a parameter given by name (with or without a leading `/`) or already by ARN."""
    if name.startswith("arn:"):
        return name
    path = name if name.startswith("/") else f"/{name}"
    return f"arn:{ctx.partition}:ssm:{ctx.region}:{ctx.account}:parameter{path}"


def policy_statements(
    args: FunctionAccess, ctx: AwsContext, log_group_arn: str
) -> list[dict[str, Any]]:
    """The function role's statements, each scoped to the exact resources it needs."""
    p = ctx.partition
    statements: list[dict[str, Any]] = [
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [log_group_arn, f"{log_group_arn}:log-stream:*"],
        }
    ]
    if args.config_object is not None:
        statements.append(
            {
                "Sid": "ReadConfigObject",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [f"arn:{p}:s3:::{args.config_object.bucket}/{args.config_object.key}"],
            }
        )
    if args.files_bucket:
        statements.append(
            {
                "Sid": "ReadWriteFiles",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": [f"arn:{p}:s3:::{args.files_bucket}/*"],
            }
        )
    if args.secret_parameters:
        statements.append(
            {
                "Sid": "ReadSecretParameters",
                "Effect": "Allow",
                "Action": ["ssm:GetParameters"],
                "Resource": sorted(
                    {ssm_parameter_arn(n, ctx) for n in args.secret_parameters.values()}
                ),
            }
        )
        if args.secrets_kms_key_arn:
            statements.append(
                {
                    "Sid": "DecryptSecretParameters",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt"],
                    "Resource": [args.secrets_kms_key_arn],
                    "Condition": {
                        "StringEquals": {"kms:ViaService": f"ssm.{ctx.region}.amazonaws.com"}
                    },
                }
            )
    if args.in_vpc:
        # The grant AWS documents (see the module docstring): Lambda checks CreateNetworkInterface
        # on the role at create time, and narrowed grants are reported to fail that check.
        statements += [
            {
                "Sid": "CreateFunctionEnis",
                "Effect": "Allow",
                "Action": ["ec2:CreateNetworkInterface"],
                "Resource": ["*"],
            },
            {
                "Sid": "ManageFunctionEnis",
                "Effect": "Allow",
                "Action": [
                    "ec2:DeleteNetworkInterface",
                    "ec2:AssignPrivateIpAddresses",
                    "ec2:UnassignPrivateIpAddresses",
                ],
                "Resource": [f"arn:{p}:ec2:{ctx.region}:{ctx.account}:*/*"],
            },
            {
                "Sid": "DescribeNetwork",
                "Effect": "Allow",
                "Action": ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"],
                "Resource": ["*"],
            },
        ]
    if args.tracing:
        statements.append(
            {
                "Sid": "WriteTraces",
                "Effect": "Allow",
                "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                "Resource": ["*"],
            }
        )
    return statements
