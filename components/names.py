"""The physical names and the scope tag the program gives a stack's resources, stated once.

The components name their resources with these functions, and the CI program (ci/) scopes each
deploy role's statements to the same names, so renaming a resource changes both together (a
drift would otherwise show only as AccessDenied in `pulumi up`). `name` is always the stack's
`name` key (components/config/stack.py).
"""

from __future__ import annotations

import re

PROJECT = "librechat-lambda"
#: The tag every resource of a stack carries, valued with the stack's `name`. Deploy roles may
#: write only API Gateway REST APIs, certificates and topics carrying their own value, may set
#: it only to their own value, and may never remove it (ci/github_ci/policies.py).
SCOPE_TAG = f"{PROJECT}:name"
#: Appended to a managed-instances function's name: AWS cannot move a function between modes,
#: so a mode switch is a new function (components/function.py).
MANAGED_SUFFIX = "-managed"


def default_name(stack: str) -> str:
    """The `name` of a stack whose config sets none: `librechat-<stack>`, as a name prefix."""
    return re.sub(r"[^a-z0-9-]+", "-", f"librechat-{stack}".lower())[:40].rstrip("-")


def function_name(name: str, *, managed: bool) -> str:
    """The function's physical name in a compute mode; the modes never share a function."""
    return f"{name}{MANAGED_SUFFIX}" if managed else name


def function_names(name: str) -> tuple[str, str]:
    """Both modes' function names: a deploy role may manage either, so a stack can switch."""
    return function_name(name, managed=False), function_name(name, managed=True)


def function_role_name(function: str) -> str:
    """The IAM role of the function named `function`."""
    return f"{function}-function"


#: AWS's managed policy a capacity provider's operator role holds, and is bounded by.
OPERATOR_POLICY_NAME = "AWSLambdaManagedEC2ResourceOperator"


def operator_role_name(name: str) -> str:
    """The capacity provider's operator role (managed instances)."""
    return f"{name}-capacity-operator"


def capacity_provider_name(name: str, digest: str) -> str:
    """A capacity provider: `<name>-<8 hex digits>` of what it is built from."""
    return f"{name}-{digest[:8]}"


def capacity_provider_pattern(name: str) -> str:
    """How IAM matches the stack's capacity providers: eight characters after the name."""
    return f"{name}-{'?' * 8}"


def permissions_boundary_name(name: str) -> str:
    """The managed policy the CI program creates as the stack's roles' permissions boundary."""
    return f"{name}-boundary"


def repository_name(name: str) -> str:
    """The ECR repository of the function's image."""
    return name


def function_log_group(name: str) -> str:
    """The function's log group, kept across a compute-mode switch."""
    return f"/aws/lambda/{name}"


def api_log_group_prefix(name: str) -> str:
    """The prefix of the API's access log groups (`<prefix><stage>/access`)."""
    return f"/aws/apigateway/{name}/"


def alarm_name(name: str, key: str) -> str:
    """A monitoring alarm; every one starts with `<name>-`."""
    return f"{name}-{key}"


def dashboard_name(name: str) -> str:
    return f"{name}-operations"


def alarm_topic_name(name: str) -> str:
    return f"{name}-alarms"


def preview_role_name(name: str) -> str:
    """The role pull requests preview the stack with (ci/)."""
    return f"{name}-preview"


def deploy_role_name(name: str) -> str:
    """The role `pulumi up` runs with (ci/)."""
    return f"{name}-deploy"


def web_acl_name(name: str) -> str:
    """The web ACL holding the stack's per-client rate rule (`api.rateLimitPerIp`)."""
    return f"{name}-rate"
