"""Trust and permission documents of the CI roles, as plain data.

(Over 400 lines on purpose: the preview and deploy documents side by side, so a reviewer sees
what one role may do and the other may not in one file.)

Trust: GitHub's OIDC token is accepted only with the STS audience and the `sub` claim of the
repository's customised subject template (`SUBJECT_CLAIM_KEYS`: repo, context, ref and
job_workflow_ref; set by oidc.py or by hand, docs/security.md). A deploy role takes exactly one
`sub` (`StringEquals`): its environment, its branch and the deploying workflow file at that
branch. A preview role takes the repository's pull requests running preview.yml; the pull
request's number is the one wildcard (`refs/pull/*/merge`).

Preview: `pulumi preview` runs the pull request's own code, so its role may call only the
look-ups the main program makes (`PREVIEW_READS`; see components/network.py, domain.py and
image.py) and the provider's identity check. Two explicit denies back that up, whatever else
is ever attached to the role: the secret reads (`SECRET_READS`) and everything that is not a
preview read (`NotAction`), which covers every write.

Deploy: what `pulumi up` changes, each statement scoped to the stack's own resources by the
names the main program gives them (`<name>` is the stack's `name` key): the ECR repository
`<name>`, the function `<name>` and its aliases, the function's role `<name>-function`, the log
groups `/aws/lambda/<name>` and `/aws/apigateway/<name>/...`, the custom domain's name, its
certificate and DNS records, the monitoring's alarms, dashboard and topic. In managed-instances
mode (`compute.mode`) the function is `<name>-managed` with the role `<name>-managed-function`,
and the stack adds the capacity provider `<name>-<8 hex digits>` and its operator role
`<name>-capacity-operator`, which may hold AWS's `AWSLambdaManagedEC2ResourceOperator` and no
other policy, and Lambda's service-linked role is created with the account's first capacity
provider (only that role, only for Lambda); a deploy role may manage either mode's resources,
so a stack can switch. The roles a deploy role creates carry a permissions boundary, required
by every create, policy-write and attach statement (`iam:PermissionsBoundary`): the function
roles the stack's boundary `<name>-boundary` (created here, `boundary_policy`), the operator
role AWS's operator policy itself; no statement edits a trust policy. REST APIs, certificates
have generated ids, so their writes require the stack's scope tag (`names.SCOPE_TAG`, valued
`<name>`) on the resource or in the request, and no deploy role may remove that tag or give it
another value. No action anywhere is `*` or `service:*`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components import names
from github_ci.settings import StackTarget

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_URL = f"https://{GITHUB_OIDC_HOST}"
#: The audience aws-actions/configure-aws-credentials requests for GitHub's token.
STS_AUDIENCE = "sts.amazonaws.com"
#: The repository's OIDC subject template: the `sub` then names the repository, the context
#: (environment or pull request), the ref and the workflow file the job runs, in this order.
SUBJECT_CLAIM_KEYS: tuple[str, ...] = ("repo", "context", "ref", "job_workflow_ref")
#: The workflow files whose jobs may assume the roles.
DEPLOY_WORKFLOW = ".github/workflows/pulumi-up.yml"
PREVIEW_WORKFLOW = ".github/workflows/preview.yml"

#: The calls `pulumi preview` makes: the provider's identity check and the main program's
#: look-ups. None returns a secret; the ECR token authorizes only what the role itself may do.
PREVIEW_READS: tuple[str, ...] = (
    "sts:GetCallerIdentity",  # provider configuration, aws.get_caller_identity
    "ec2:DescribeVpcs",  # components/network.py: get_vpc
    "ec2:DescribeSubnets",  # get_subnets
    "ec2:DescribeSecurityGroups",  # get_security_groups
    "route53:ListHostedZones",  # components/domain.py: get_zone
    "route53:ListHostedZonesByName",
    "route53:GetHostedZone",
    "route53:ListTagsForResource",
    "acm:DescribeCertificate",  # an existing domain.certificateArn
    "acm:ListCertificates",
    "acm:ListTagsForCertificate",
    "ecr:DescribeRepositories",
    "ecr:DescribeImages",
)
#: Reads that return secret values (LibreChat's secrets, decrypted state, the function's
#: environment), denied to previews explicitly. `ssm:GetParameter*` covers GetParameters,
#: GetParametersByPath and GetParameterHistory; lambda:GetFunction returns the environment too.
SECRET_READS: tuple[str, ...] = (
    "ssm:GetParameter*",
    "kms:Decrypt",
    "secretsmanager:GetSecretValue",
    "s3:GetObject",
    "s3:GetObjectVersion",
    "lambda:GetFunctionConfiguration",
    "lambda:GetFunction",
)

ECR_REPOSITORY_ACTIONS: tuple[str, ...] = (
    "ecr:CreateRepository",
    "ecr:DeleteRepository",
    "ecr:DescribeRepositories",
    "ecr:ListTagsForResource",
    "ecr:TagResource",
    "ecr:UntagResource",
    "ecr:PutImageScanningConfiguration",
    "ecr:PutImageTagMutability",
    "ecr:GetLifecyclePolicy",
    "ecr:PutLifecyclePolicy",
    "ecr:DeleteLifecyclePolicy",
    "ecr:GetRepositoryPolicy",
    "ecr:SetRepositoryPolicy",
    "ecr:DeleteRepositoryPolicy",
    "ecr:DescribeImages",
    "ecr:ListImages",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchDeleteImage",
    "ecr:BatchCheckLayerAvailability",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
)
LAMBDA_FUNCTION_ACTIONS: tuple[str, ...] = (
    "lambda:CreateFunction",
    "lambda:DeleteFunction",
    "lambda:GetFunction",
    "lambda:GetFunctionConfiguration",
    "lambda:GetFunctionCodeSigningConfig",
    "lambda:GetFunctionConcurrency",
    "lambda:UpdateFunctionCode",
    "lambda:UpdateFunctionConfiguration",
    "lambda:ListVersionsByFunction",
    "lambda:PublishVersion",
    "lambda:PutFunctionConcurrency",
    "lambda:DeleteFunctionConcurrency",
    "lambda:ListTags",
    "lambda:TagResource",
    "lambda:UntagResource",
    "lambda:AddPermission",
    "lambda:RemovePermission",
    "lambda:GetPolicy",
    "lambda:CreateAlias",
    "lambda:GetAlias",
    "lambda:UpdateAlias",
    "lambda:DeleteAlias",
    "lambda:PutProvisionedConcurrencyConfig",
    "lambda:GetProvisionedConcurrencyConfig",
    "lambda:DeleteProvisionedConcurrencyConfig",
    "lambda:PutFunctionScalingConfig",
    "lambda:GetFunctionScalingConfig",
)
CAPACITY_PROVIDER_ACTIONS: tuple[str, ...] = (
    "lambda:CreateCapacityProvider",
    "lambda:DeleteCapacityProvider",
    "lambda:GetCapacityProvider",
    "lambda:UpdateCapacityProvider",
    "lambda:ListFunctionVersionsByCapacityProvider",
    "lambda:PassCapacityProvider",
    "lambda:ListTags",
    "lambda:TagResource",
    "lambda:UntagResource",
)
#: Lambda's service-linked role, which terminates a capacity provider's instances: Lambda
#: creates it with the account's first capacity provider, as the caller, who therefore needs
#: iam:CreateServiceLinkedRole for it (Lambda guide, using-service-linked-roles.html).
LAMBDA_SERVICE = "lambda.amazonaws.com"
LAMBDA_SERVICE_LINKED_ROLE = f"aws-service-role/{LAMBDA_SERVICE}/AWSServiceRoleForLambda"
#: Role actions needing no boundary condition (creation and policy writes do: below).
FUNCTION_ROLE_ACTIONS: tuple[str, ...] = (
    "iam:DeleteRole",
    "iam:GetRole",
    "iam:UpdateRole",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:ListRoleTags",
    "iam:ListRolePolicies",
    "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
    "iam:GetRolePolicy",
)
#: Role writes allowed only while the role's boundary is the required one.
BOUNDED_ROLE_WRITES: tuple[str, ...] = ("iam:CreateRole", "iam:PutRolePermissionsBoundary")
#: Inline policy writes of a function role: only under its boundary.
BOUNDED_POLICY_WRITES: tuple[str, ...] = ("iam:PutRolePolicy", "iam:DeleteRolePolicy")
#: The operator role holds no inline policy: only its AWS managed policy is attached.
OPERATOR_ROLE_ACTIONS: tuple[str, ...] = FUNCTION_ROLE_ACTIONS
LOG_GROUP_ACTIONS: tuple[str, ...] = (
    "logs:CreateLogGroup",
    "logs:DeleteLogGroup",
    "logs:PutRetentionPolicy",
    "logs:DeleteRetentionPolicy",
    "logs:ListTagsForResource",
    "logs:TagResource",
    "logs:UntagResource",
    "logs:ListTagsLogGroup",
    "logs:TagLogGroup",
    "logs:UntagLogGroup",
)
#: API Gateway authorizes its management API by HTTP verb on a resource path.
APIGATEWAY_VERBS: tuple[str, ...] = (
    "apigateway:GET",
    "apigateway:POST",
    "apigateway:PUT",
    "apigateway:PATCH",
    "apigateway:DELETE",
)
CERTIFICATE_ACTIONS: tuple[str, ...] = (
    "acm:DescribeCertificate",
    "acm:DeleteCertificate",
    "acm:AddTagsToCertificate",
    "acm:RemoveTagsFromCertificate",
    "acm:ListTagsForCertificate",
)
#: Record types the custom domain writes: its A/AAAA aliases and the certificate's CNAME.
DNS_RECORD_TYPES: tuple[str, ...] = ("A", "AAAA", "CNAME")
#: components/monitoring.py: alarms `<name>-*`, the dashboard `<name>-operations`, the topic
#: `<name>-alarms`, a metric filter on the function's log group, saved queries.
ALARM_ACTIONS: tuple[str, ...] = (
    "cloudwatch:PutMetricAlarm",
    "cloudwatch:DeleteAlarms",
    "cloudwatch:DescribeAlarms",
    "cloudwatch:ListTagsForResource",
    "cloudwatch:TagResource",
    "cloudwatch:UntagResource",
)
DASHBOARD_ACTIONS: tuple[str, ...] = (
    "cloudwatch:PutDashboard",
    "cloudwatch:GetDashboard",
    "cloudwatch:DeleteDashboards",
)
TOPIC_ACTIONS: tuple[str, ...] = (
    "sns:CreateTopic",
    "sns:DeleteTopic",
    "sns:GetTopicAttributes",
    "sns:SetTopicAttributes",
    "sns:ListTagsForResource",
    "sns:TagResource",
    "sns:UntagResource",
    "sns:Subscribe",
    "sns:ListSubscriptionsByTopic",
)
#: Authorized on no resource type (AWS Service Authorization Reference): `Resource: "*"`.
#: `sns:SetSubscriptionAttributes` is not among them: the program never edits a subscription
#: (an email subscription's fields are replace-only), so no deploy role may edit any.
UNSCOPED_MONITORING_ACTIONS: tuple[str, ...] = (
    "sns:GetSubscriptionAttributes",
    "sns:Unsubscribe",
    "logs:PutQueryDefinition",
    "logs:DeleteQueryDefinition",
    "logs:DescribeQueryDefinitions",
)
METRIC_FILTER_ACTIONS: tuple[str, ...] = (
    "logs:PutMetricFilter",
    "logs:DeleteMetricFilter",
    "logs:DescribeMetricFilters",
)
#: components/api.py: the web ACL of `api.rateLimitPerIp`, `<name>-rate`.
OWN_WEB_ACL_ACTIONS: tuple[str, ...] = (
    "wafv2:CreateWebACL",
    "wafv2:UpdateWebACL",
    "wafv2:DeleteWebACL",
    "wafv2:GetWebACL",
    "wafv2:ListTagsForResource",
    "wafv2:TagResource",
    "wafv2:UntagResource",
)
WEB_ACL_ACTIONS: tuple[str, ...] = (
    "wafv2:AssociateWebACL",
    "wafv2:DisassociateWebACL",
    "wafv2:GetWebACLForResource",
)

Document = dict[str, Any]
Statement = dict[str, Any]


@dataclass(frozen=True)
class Account:
    """Where the roles live: the partition and account of the ARNs they are scoped to."""

    partition: str
    account_id: str


def pull_request_subject(repository: str) -> str:
    """Any pull request of the repository running the preview workflow (of that pull request)."""
    ref = "refs/pull/*/merge"
    return (
        f"repo:{repository}:pull_request:ref:{ref}:"
        f"job_workflow_ref:{repository}/{PREVIEW_WORKFLOW}@{ref}"
    )


def environment_subject(repository: str, environment: str, branch: str = "main") -> str:
    """A job in `environment`, on `branch`, running the deploy workflow file of that branch."""
    ref = f"refs/heads/{branch}"
    return (
        f"repo:{repository}:environment:{environment}:ref:{ref}:"
        f"job_workflow_ref:{repository}/{DEPLOY_WORKFLOW}@{ref}"
    )


def github_trust_policy(provider_arn: str, subject: str) -> Document:
    """Only GitHub tokens for STS whose `sub` is `subject` may assume the role (a `*` in it, the
    pull request number, is matched with StringLike; otherwise StringEquals)."""
    operator = "StringLike" if "*" in subject else "StringEquals"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "GithubActionsOidc",
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {f"{GITHUB_OIDC_HOST}:aud": STS_AUDIENCE},
                    operator: {f"{GITHUB_OIDC_HOST}:sub": subject},
                },
            }
        ],
    }


def preview_policy() -> Document:
    """The preview role's only policy: the look-ups, and nothing else even if granted."""
    reads = sorted(PREVIEW_READS)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "PreviewLookups", "Effect": "Allow", "Action": reads, "Resource": "*"},
            {
                "Sid": "DenySecretReads",
                "Effect": "Deny",
                "Action": list(SECRET_READS),
                "Resource": "*",
            },
            {"Sid": "DenyAllButLookups", "Effect": "Deny", "NotAction": reads, "Resource": "*"},
        ],
    }


def boundary_arn(target: StackTarget, account: Account) -> str:
    """The stack's permissions boundary (created by roles.py, required on its function roles)."""
    name = names.permissions_boundary_name(target.name)
    return f"arn:{account.partition}:iam::{account.account_id}:policy/{name}"


def operator_policy_arn(account: Account) -> str:
    return f"arn:{account.partition}:iam::aws:policy/{names.OPERATOR_POLICY_NAME}"


def boundary_policy(target: StackTarget, account: Account) -> Document:
    """The most a function role of the stack may ever do, whatever a deploy writes into it: what
    components/function_policy.py grants, within the stack's account and region (buckets,
    parameters and keys are the stack config's, unknown here, so the account bounds them)."""
    p, a, r = account.partition, account.account_id, target.region
    group = f"arn:{p}:logs:{r}:{a}:log-group:{names.function_log_group(target.name)}"
    in_account = {"StringEquals": {"aws:ResourceAccount": a}}
    return {
        "Version": "2012-10-17",
        "Statement": [
            _allow(
                "OwnLogs",
                ["logs:CreateLogStream", "logs:PutLogEvents"],
                [group, f"{group}:*"],
            ),
            _allow(
                "ObjectsInAccount",
                ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                [f"arn:{p}:s3:::*/*"],
                in_account,
            ),
            _allow("Parameters", ["ssm:GetParameters"], [f"arn:{p}:ssm:{r}:{a}:parameter/*"]),
            _allow(
                "DecryptThroughSsm",
                ["kms:Decrypt"],
                [f"arn:{p}:kms:{r}:{a}:key/*"],
                {"StringEquals": {"kms:ViaService": f"ssm.{r}.amazonaws.com"}},
            ),
            _allow(
                "FunctionEnis",
                [
                    "ec2:CreateNetworkInterface",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeSubnets",
                    "ec2:DeleteNetworkInterface",
                    "ec2:AssignPrivateIpAddresses",
                    "ec2:UnassignPrivateIpAddresses",
                ],
                ["*"],
                {"StringEquals": {"aws:RequestedRegion": r}},
            ),
            _allow("Traces", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"]),
        ],
    }


def _tagged(name: str, where: str) -> dict[str, Any]:
    """The condition that the resource (`ResourceTag`) or request (`RequestTag`) carries the
    stack's scope tag with the stack's own value."""
    return {"StringEquals": {f"aws:{where}/{names.SCOPE_TAG}": name}}


def deploy_policy(target: StackTarget, account: Account) -> Document:
    """The deploy role's policy: manage the stack's own resources, look up the rest."""
    p, a, r, name = account.partition, account.account_id, target.region, target.name
    functions = [f"arn:{p}:lambda:{r}:{a}:function:{n}" for n in names.function_names(name)]
    logs = f"arn:{p}:logs:{r}:{a}:log-group:"
    apigateway = f"arn:{p}:apigateway:{r}::"
    roles = [
        f"arn:{p}:iam::{a}:role/{names.function_role_name(n)}" for n in names.function_names(name)
    ]
    operator = f"arn:{p}:iam::{a}:role/{names.operator_role_name(name)}"
    boundary = {"StringEquals": {"iam:PermissionsBoundary": boundary_arn(target, account)}}
    operator_boundary = {"StringEquals": {"iam:PermissionsBoundary": operator_policy_arn(account)}}
    statements: list[Statement] = [
        _allow("Lookups", PREVIEW_READS, ["*"]),
        # The workflow's `docker login` to ECR (pulumi-up.yml); authorized on no resource.
        _allow("RegistryLogin", ["ecr:GetAuthorizationToken"], ["*"]),
        _allow(
            "Repository",
            ECR_REPOSITORY_ACTIONS,
            [f"arn:{p}:ecr:{r}:{a}:repository/{names.repository_name(name)}"],
        ),
        _allow("Function", LAMBDA_FUNCTION_ACTIONS, [x for f in functions for x in (f, f"{f}:*")]),
        _allow("FunctionRole", FUNCTION_ROLE_ACTIONS, roles),
        _allow("FunctionRoleBounded", BOUNDED_ROLE_WRITES + BOUNDED_POLICY_WRITES, roles, boundary),
        _allow(
            "PassFunctionRoleToLambda",
            ["iam:PassRole"],
            [*roles, operator],
            {"StringEquals": {"iam:PassedToService": LAMBDA_SERVICE}},
        ),
        _allow(
            "CapacityProvider",
            CAPACITY_PROVIDER_ACTIONS,
            [f"arn:{p}:lambda:{r}:{a}:capacity-provider:{names.capacity_provider_pattern(name)}"],
        ),
        _allow("OperatorRole", OPERATOR_ROLE_ACTIONS, [operator]),
        _allow("OperatorRoleBounded", BOUNDED_ROLE_WRITES, [operator], operator_boundary),
        _allow(
            "LambdaServiceLinkedRole",
            ["iam:CreateServiceLinkedRole"],
            [f"arn:{p}:iam::{a}:role/{LAMBDA_SERVICE_LINKED_ROLE}"],
            {"StringEquals": {"iam:AWSServiceName": LAMBDA_SERVICE}},
        ),
        _allow(
            "OperatorRolePolicy",
            ["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
            [operator],
            {
                "StringEquals": {
                    "iam:PolicyARN": operator_policy_arn(account),
                    "iam:PermissionsBoundary": operator_policy_arn(account),
                }
            },
        ),
        _allow(
            "LogGroups",
            LOG_GROUP_ACTIONS,
            [
                f"{logs}{names.function_log_group(name)}",
                f"{logs}{names.function_log_group(name)}:*",
                f"{logs}{names.api_log_group_prefix(name)}*",
            ],
        ),
        _allow("DescribeLogGroups", ["logs:DescribeLogGroups"], [f"{logs}*"]),
        # REST APIs have generated ids: created only with the scope tag, written only with it.
        _allow(
            "CreateRestApi",
            ["apigateway:POST"],
            [f"{apigateway}/restapis"],
            _tagged(name, "RequestTag"),
        ),
        _allow(
            "OwnRestApi",
            APIGATEWAY_VERBS,
            [f"{apigateway}/restapis/*", f"{apigateway}/tags/*"],
            _tagged(name, "ResourceTag"),
        ),
        *_scope_tag_guards(name),
    ]
    own_acl = f"arn:{p}:wafv2:{r}:{a}:regional/webacl/{names.web_acl_name(name)}/*"
    stages = f"{apigateway}/restapis/*/stages/*"
    statements += [
        # api.rateLimitPerIp: the stack's own web ACL, associated with its own stage.
        _allow("OwnWebAcl", OWN_WEB_ACL_ACTIONS, [own_acl]),
        _allow("AssociateOwnWebAcl", WEB_ACL_ACTIONS, [own_acl, stages]),
        _allow(
            "SetOwnStageWebAcl", ["apigateway:SetWebACL"], [stages], _tagged(name, "ResourceTag")
        ),
    ]
    statements += _monitoring_statements(target, account)
    if target.domain is not None:
        statements += _domain_statements(target.domain, account, r, name)
    if target.web_acl_arn is not None:
        stages = f"{apigateway}/restapis/*/stages/*"
        statements += [
            _allow("AssociateWebAcl", WEB_ACL_ACTIONS, [target.web_acl_arn, stages]),
            _allow("ReadWebAcl", ["wafv2:GetWebACL"], [target.web_acl_arn]),
            _allow(
                "SetStageWebAcl", ["apigateway:SetWebACL"], [stages], _tagged(name, "ResourceTag")
            ),
        ]
    return {"Version": "2012-10-17", "Statement": statements}


def _scope_tag_guards(name: str) -> list[Statement]:
    """Denies: the scope tag may be set only to the stack's own value and never removed, so a
    deploy role cannot adopt another stack's resource nor hand its own to another."""
    key = f"aws:RequestTag/{names.SCOPE_TAG}"
    return [
        {
            "Sid": "DenyForeignScopeTag",
            "Effect": "Deny",
            "Action": [
                "apigateway:POST",
                "apigateway:PUT",
                "apigateway:PATCH",
                "acm:AddTagsToCertificate",
                "acm:RequestCertificate",
            ],
            "Resource": "*",
            "Condition": {"StringNotEquals": {key: name}, "Null": {key: "false"}},
        },
        {
            "Sid": "DenyScopeTagRemoval",
            "Effect": "Deny",
            "Action": ["apigateway:DELETE", "acm:RemoveTagsFromCertificate"],
            "Resource": "*",
            "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": [names.SCOPE_TAG]}},
        },
    ]


def _monitoring_statements(target: StackTarget, account: Account) -> list[Statement]:
    """What components/monitoring.py manages (unused by a stack with monitoring off)."""
    p, a, r, name = account.partition, account.account_id, target.region, target.name
    group = f"arn:{p}:logs:{r}:{a}:log-group:{names.function_log_group(name)}"
    dashboard = names.dashboard_name(name)
    return [
        _allow(
            "Alarms",
            ALARM_ACTIONS,
            [f"arn:{p}:cloudwatch:{r}:{a}:alarm:{names.alarm_name(name, '*')}"],
        ),
        _allow("Dashboard", DASHBOARD_ACTIONS, [f"arn:{p}:cloudwatch::{a}:dashboard/{dashboard}"]),
        _allow(
            "AlarmTopic", TOPIC_ACTIONS, [f"arn:{p}:sns:{r}:{a}:{names.alarm_topic_name(name)}"]
        ),
        _allow("InitFailureFilter", METRIC_FILTER_ACTIONS, [group, f"{group}:*"]),
        _allow("SubscriptionsAndQueries", UNSCOPED_MONITORING_ACTIONS, ["*"]),
    ]


def _domain_statements(domain: str, account: Account, region: str, name: str) -> list[Statement]:
    p, a = account.partition, account.account_id
    apigateway = f"arn:{p}:apigateway:{region}::"
    certificates = f"arn:{p}:acm:{region}:{a}:certificate/*"
    zones = f"arn:{p}:route53:::hostedzone/*"
    return [
        _allow(
            "DomainName",
            APIGATEWAY_VERBS,
            [
                f"{apigateway}/domainnames",
                f"{apigateway}/domainnames/{domain}",
                f"{apigateway}/domainnames/{domain}/*",
            ],
        ),
        _allow(
            "RequestDomainCertificate",
            ["acm:RequestCertificate"],
            [certificates],
            {
                "ForAllValues:StringEquals": {"acm:DomainNames": [domain]},
                "StringEquals": {
                    "acm:ValidationMethod": "DNS",
                    f"aws:RequestTag/{names.SCOPE_TAG}": name,
                },
            },
        ),
        # Only certificates carrying the stack's scope tag: no other certificate is deleted.
        _allow(
            "DomainCertificate", CERTIFICATE_ACTIONS, [certificates], _tagged(name, "ResourceTag")
        ),
        _allow(
            "DomainRecords",
            ["route53:ChangeResourceRecordSets"],
            [zones],
            {
                # The alias records carry the domain; ACM's validation record is _<token>.<domain>.
                "ForAllValues:StringLike": {
                    "route53:ChangeResourceRecordSetsNormalizedRecordNames": [
                        domain,
                        f"_*.{domain}",
                    ]
                },
                "ForAllValues:StringEquals": {
                    "route53:ChangeResourceRecordSetsRecordTypes": list(DNS_RECORD_TYPES)
                },
            },
        ),
        _allow(
            "ReadZones",
            ["route53:GetHostedZone", "route53:ListResourceRecordSets"],
            [zones],
        ),
        _allow("ReadDnsChanges", ["route53:GetChange"], [f"arn:{p}:route53:::change/*"]),
    ]


def _allow(
    sid: str,
    actions: tuple[str, ...] | list[str],
    resources: list[str],
    condition: dict[str, Any] | None = None,
) -> Statement:
    statement: Statement = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": sorted(set(actions)),
        "Resource": resources,
    }
    if condition is not None:
        statement["Condition"] = condition
    return statement
