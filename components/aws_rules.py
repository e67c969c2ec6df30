"""AWS's naming and ARN rules, stated once for the stack configuration and the components.

Each `check_*` returns the value (normalised where AWS normalises it) or raises `ValueError`
with a sentence saying what is wrong and what to write; the configuration schema turns these
into problems named by key. Components receive values that passed these checks and do not
check them again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Architecture = Literal["x86_64", "arm64"]
#: The single Docker platform an image is built for, by function architecture.
PLATFORMS: Mapping[Architecture, str] = MappingProxyType(
    {"x86_64": "linux/amd64", "arm64": "linux/arm64"}
)
#: The endpoint types a REST API can stream through; EDGE cuts idle streams after 30 s.
EndpointType = Literal["REGIONAL", "EDGE"]
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
        "AWS_LAMBDA_MAX_CONCURRENCY",
    }
)  # fmt: skip
#: The trust policy of a role Lambda assumes (a function's execution role, a capacity
#: provider's operator role).
LAMBDA_TRUST_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)
#: Lambda's limit on the whole environment (keys and values), in bytes.
LAMBDA_ENV_LIMIT_BYTES = 4096
#: Lambda attaches at most this many security groups and subnets to a function.
MAX_SECURITY_GROUPS = 5
MAX_SUBNETS = 16
#: Memory of a function on standard Lambda, and on Lambda Managed Instances, in MB.
STANDARD_MEMORY_MB = (128, 10_240)
MANAGED_MEMORY_MB = (2_048, 32_768)
#: A capacity provider lists at most this many instance types (Lambda API reference,
#: InstanceRequirements).
MAX_INSTANCE_TYPES = 400

_PARTITION = r"aws(-cn|-us-gov|-eusc)?"
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.[a-z]{{2,63}}$")
_BUCKET = re.compile(r"^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_S3_URI = re.compile(r"^s3://([^/]+)/(.+)$")
_NAME_PREFIX = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SSM_PATH = re.compile(r"^(/[A-Za-z0-9_.\-]+){1,15}$")
_SSM_PLAIN = re.compile(r"^[A-Za-z0-9_.\-]+$")
_SSM_ARN = re.compile(rf"^arn:{_PARTITION}:ssm:[a-z0-9-]+:\d{{12}}:parameter/.+$")
_ACM_ARN = re.compile(rf"^arn:{_PARTITION}:acm:([a-z0-9-]+):\d{{12}}:certificate/[0-9a-f-]{{36}}$")
_KMS_KEY_ARN = re.compile(
    rf"^arn:{_PARTITION}:kms:[a-z0-9-]+:\d{{12}}:key/(mrk-[0-9a-f]{{32}}|[0-9a-f-]{{36}})$"
)
_WEB_ACL_ARN = re.compile(
    rf"^arn:{_PARTITION}:wafv2:[a-z0-9-]+:\d{{12}}:regional/webacl/[A-Za-z0-9_-]+/[0-9a-f-]+$"
)
_STAGE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_BASE_PATH = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")
_IMAGE_REF = re.compile(r"^[a-z0-9]+([._/:@-][A-Za-z0-9_.-]+)*$")
_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SG_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")
_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
#: C, M and R families, .large and bigger (or `*`, every size AWS allows in the family): the
#: types Lambda Managed Instances run on.
_INSTANCE_TYPE = re.compile(r"^[cmr]\d+([a-z-]*)\.(large|\d*xlarge|\*)$")
_SNS_TOPIC_ARN = re.compile(
    rf"^arn:{_PARTITION}:sns:[a-z0-9-]+:\d{{12}}:[A-Za-z0-9_-]{{1,256}}(\.fifo)?$"
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_IMAGE_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


#: A rule: the value back (normalised where AWS normalises it), or ValueError with the reason.
Check = Callable[[str], str]


def matching(pattern: re.Pattern[str], message: str) -> Check:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(message.format(value=value))
        return value

    return check


check_name_prefix = matching(
    _NAME_PREFIX, "{value!r} is not usable as a name prefix; use [a-z][a-z0-9-], at most 40"
)
check_env_name = matching(_ENV_NAME, "is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)")
check_domain_name = matching(
    _DOMAIN, "{value!r} is not a lower-case domain name like chat.example.com"
)
check_bucket = matching(_BUCKET, "{value!r} is not an S3 bucket name")
check_stage_name = matching(
    _STAGE, "{value!r} is not a stage name; use letters, digits, '-' and '_' (at most 128)"
)
check_zone_id = matching(_ZONE_ID, "{value!r} is not a Route53 zone id (Z...)")
check_image_ref = matching(_IMAGE_REF, "{value!r} is not an image reference (name:tag)")
check_vpc_id = matching(_VPC_ID, "{value!r} is not a VPC id (vpc-...)")
check_subnet_id = matching(_SUBNET_ID, "{value!r} is not a subnet id (subnet-...)")
check_security_group_id = matching(_SG_ID, "{value!r} is not a security group id (sg-...)")
check_url = matching(_URL, "is not a URL (https://host[/path])")
check_kms_key_arn = matching(
    _KMS_KEY_ARN,
    "{value!r} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>; an alias ARN "
    "cannot be granted kms:Decrypt)",
)
check_sns_topic_arn = matching(
    _SNS_TOPIC_ARN, "{value!r} is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)"
)
check_email = matching(_EMAIL, "{value!r} is not an email address")
check_web_acl_arn = matching(
    _WEB_ACL_ARN,
    "{value!r} is not a regional WAFv2 web ACL ARN "
    "(arn:aws:wafv2:<region>:<account>:regional/webacl/<name>/<id>)",
)
check_acm_arn = matching(
    _ACM_ARN,
    "{value!r} is not an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<uuid>)",
)


check_region = matching(_REGION, "{value!r} is not an AWS region such as eu-west-1")
check_account_id = matching(_ACCOUNT_ID, "{value!r} is not an AWS account id (12 digits)")


def check_pinned_image(value: str) -> str:
    """An image reference that names its content: `name[:tag]@sha256:<64 hex>`."""
    check_image_ref(value)
    if not _IMAGE_DIGEST.search(value):
        raise ValueError(
            f"{value!r} names no digest; write name@sha256:<digest> (tag in a comment), so a "
            "moved upstream tag cannot reach the stack without a pull request"
        )
    return value


def check_instance_type(value: str) -> str:
    if not _INSTANCE_TYPE.match(value):
        raise ValueError(
            f"{value!r} is not a type Lambda Managed Instances run on: a C, M or R family, "
            ".large or bigger (e.g. c7g.xlarge, or c7g.* for every size)"
        )
    return value


def instance_architecture(instance_type: str) -> Architecture:
    """The architecture of a type that passed `check_instance_type`: a `g` among the family's
    attributes (c7g, m6gd, c6gn) marks Graviton, arm64."""
    match = _INSTANCE_TYPE.match(instance_type)
    return "arm64" if match and "g" in match.group(1) else "x86_64"


def acm_arn_region(arn: str) -> str:
    """The region of a certificate ARN that passed `check_acm_arn`."""
    return arn.split(":")[3]


def check_base_path(value: str) -> str:
    """A base path mapping without its surrounding slashes ("/v1/" -> "v1")."""
    path = value.strip("/")
    if not _BASE_PATH.match(path):
        raise ValueError(f"{value!r} is not a path like chat or v1/chat")
    return path


def domain_url(domain: str, base_path: str | None) -> str:
    """`https://<domain>[/<base path>]`: where the API answers through a custom domain."""
    return f"https://{domain}" + (f"/{base_path}" if base_path else "")


def check_zone_name(value: str) -> str:
    """A hosted zone name without its trailing dot."""
    return check_domain_name(value.rstrip("."))


def in_zone(domain: str, zone: str) -> bool:
    return domain == zone or domain.endswith("." + zone)


def parse_s3_uri(uri: str) -> S3Location:
    """`s3://bucket/key` as an `S3Location`."""
    match = _S3_URI.match(uri)
    if match is None or not _BUCKET.match(match.group(1)) or match.group(2).endswith("/"):
        raise ValueError(f"{uri!r} is not an S3 object URI; write s3://bucket/path/librechat.yaml")
    return S3Location(bucket=match.group(1), key=match.group(2))


def check_s3_uri(uri: str) -> str:
    parse_s3_uri(uri)
    return uri


def check_retention(days: int) -> int:
    if days not in LOG_RETENTION_DAYS:
        raise ValueError(f"is {days}; CloudWatch Logs accepts {LOG_RETENTION_DAYS}")
    return days


def check_ssm_name(name: str) -> str:
    """An SSM parameter name (`/a/b` or `plain`) or parameter ARN."""
    if name.startswith("arn:"):
        if not _SSM_ARN.match(name):
            raise ValueError(f"{name!r} is not an SSM parameter ARN")
        return name
    if len(name) > 1011:
        raise ValueError("is longer than the 1011 characters SSM allows")
    if name.startswith("/"):
        if not _SSM_PATH.match(name):
            msg = (
                f"{name!r} is not an SSM parameter name: use /segments/of/[A-Za-z0-9_.-], "
                "at most 15 levels"
            )
            raise ValueError(msg)
    elif not _SSM_PLAIN.match(name):
        raise ValueError(f"{name!r} is not an SSM parameter name ([A-Za-z0-9_.-], or a /path)")
    if name.lstrip("/").lower().startswith(("aws", "ssm")):
        raise ValueError(f"{name!r} starts with aws or ssm, which SSM reserves")
    return name


def environment_size(environment: Mapping[str, str]) -> int:
    """Bytes Lambda counts against its 4 KB limit: every key and value together."""
    return sum(len(k.encode()) + len(v.encode()) for k, v in environment.items())
