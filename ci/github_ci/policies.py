"""Trust and permission documents of the CI roles, as plain data.

(Over 400 lines on purpose: the preview and deploy documents side by side, so a reviewer sees
what one role may do and the other may not in one file.)

Trust: GitHub's OIDC token is accepted only with the STS audience and one exact `sub` claim
(`StringEquals`, no wildcards): `repo:<owner>/<repo>:pull_request` for a preview role,
`repo:<owner>/<repo>:environment:<env>` for a deploy role.

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
so a stack can switch. API Gateway REST APIs have generated ids, so their actions are scoped to
the region only. No action anywhere is `*` or `service:*`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from github_ci.settings import StackTarget

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_URL = f"https://{GITHUB_OIDC_HOST}"
#: The audience aws-actions/configure-aws-credentials requests for GitHub's token.
STS_AUDIENCE = "sts.amazonaws.com"

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
    "ecr:GetAuthorizationToken",  # components/image.py: get_authorization_token
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
#: The one policy a capacity provider's operator role may hold (main program:
#: components/capacity_provider.py).
OPERATOR_POLICY_NAME = "AWSLambdaManagedEC2ResourceOperator"
#: Lambda's service-linked role, which terminates a capacity provider's instances: Lambda
#: creates it with the account's first capacity provider, as the caller, who therefore needs
#: iam:CreateServiceLinkedRole for it (Lambda guide, using-service-linked-roles.html).
LAMBDA_SERVICE = "lambda.amazonaws.com"
LAMBDA_SERVICE_LINKED_ROLE = f"aws-service-role/{LAMBDA_SERVICE}/AWSServiceRoleForLambda"
#: The function's name suffix in managed-instances mode (components/function.py).
MANAGED_FUNCTION_SUFFIX = "-managed"
FUNCTION_ROLE_ACTIONS: tuple[str, ...] = (
    "iam:CreateRole",
    "iam:DeleteRole",
    "iam:GetRole",
    "iam:UpdateRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:ListRoleTags",
    "iam:ListRolePolicies",
    "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
    "iam:GetRolePolicy",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
)
#: The operator role holds no inline policy: only its AWS managed policy is attached.
OPERATOR_ROLE_ACTIONS: tuple[str, ...] = tuple(
    a for a in FUNCTION_ROLE_ACTIONS if a not in ("iam:PutRolePolicy", "iam:DeleteRolePolicy")
)
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
UNSCOPED_MONITORING_ACTIONS: tuple[str, ...] = (
    "sns:GetSubscriptionAttributes",
    "sns:SetSubscriptionAttributes",
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


def function_role_name(name: str) -> str:
    """The IAM role the main program gives the function of the stack named `name`."""
    return f"{name}-function"


def operator_role_name(name: str) -> str:
    """The capacity provider operator role of the stack named `name` (managed instances)."""
    return f"{name}-capacity-operator"


def api_log_group_prefix(name: str) -> str:
    """The prefix of the API access log groups of the stack named `name`."""
    return f"/aws/apigateway/{name}/"


def pull_request_subject(repository: str) -> str:
    return f"repo:{repository}:pull_request"


def environment_subject(repository: str, environment: str) -> str:
    return f"repo:{repository}:environment:{environment}"


def github_trust_policy(provider_arn: str, subject: str) -> Document:
    """Only GitHub tokens for STS whose `sub` is exactly `subject` may assume the role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "GithubActionsOidc",
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{GITHUB_OIDC_HOST}:aud": STS_AUDIENCE,
                        f"{GITHUB_OIDC_HOST}:sub": subject,
                    }
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


def deploy_policy(target: StackTarget, account: Account) -> Document:
    """The deploy role's policy: manage the stack's own resources, look up the rest."""
    p, a, r, name = account.partition, account.account_id, target.region, target.name
    names = (name, f"{name}{MANAGED_FUNCTION_SUFFIX}")  # standard, managed instances
    functions = [f"arn:{p}:lambda:{r}:{a}:function:{n}" for n in names]
    logs = f"arn:{p}:logs:{r}:{a}:log-group:"
    apigateway = f"arn:{p}:apigateway:{r}::"
    roles = [f"arn:{p}:iam::{a}:role/{function_role_name(n)}" for n in names]
    operator = f"arn:{p}:iam::{a}:role/{operator_role_name(name)}"
    statements: list[Statement] = [
        _allow("Lookups", PREVIEW_READS, ["*"]),
        _allow("Repository", ECR_REPOSITORY_ACTIONS, [f"arn:{p}:ecr:{r}:{a}:repository/{name}"]),
        _allow("Function", LAMBDA_FUNCTION_ACTIONS, [x for f in functions for x in (f, f"{f}:*")]),
        _allow("FunctionRole", FUNCTION_ROLE_ACTIONS, roles),
        _allow(
            "PassFunctionRoleToLambda",
            ["iam:PassRole"],
            [*roles, operator],
            {"StringEquals": {"iam:PassedToService": LAMBDA_SERVICE}},
        ),
        _allow(
            "CapacityProvider",
            CAPACITY_PROVIDER_ACTIONS,
            [f"arn:{p}:lambda:{r}:{a}:capacity-provider:{name}-{'?' * 8}"],
        ),
        _allow("OperatorRole", OPERATOR_ROLE_ACTIONS, [operator]),
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
            {"StringEquals": {"iam:PolicyARN": f"arn:{p}:iam::aws:policy/{OPERATOR_POLICY_NAME}"}},
        ),
        _allow(
            "LogGroups",
            LOG_GROUP_ACTIONS,
            [
                f"{logs}/aws/lambda/{name}",
                f"{logs}/aws/lambda/{name}:*",
                f"{logs}{api_log_group_prefix(name)}*",
            ],
        ),
        _allow("DescribeLogGroups", ["logs:DescribeLogGroups"], [f"{logs}*"]),
        _allow(
            "RestApi",
            APIGATEWAY_VERBS,
            [f"{apigateway}/restapis", f"{apigateway}/restapis/*", f"{apigateway}/tags/*"],
        ),
    ]
    statements += _monitoring_statements(target, account)
    if target.domain is not None:
        statements += _domain_statements(target.domain, account, r)
    if target.web_acl_arn is not None:
        stages = f"{apigateway}/restapis/*/stages/*"
        statements += [
            _allow("AssociateWebAcl", WEB_ACL_ACTIONS, [target.web_acl_arn, stages]),
            _allow("ReadWebAcl", ["wafv2:GetWebACL"], [target.web_acl_arn]),
            _allow("SetStageWebAcl", ["apigateway:SetWebACL"], [stages]),
        ]
    return {"Version": "2012-10-17", "Statement": statements}


def _monitoring_statements(target: StackTarget, account: Account) -> list[Statement]:
    """What components/monitoring.py manages (unused by a stack with monitoring off)."""
    p, a, r, name = account.partition, account.account_id, target.region, target.name
    group = f"arn:{p}:logs:{r}:{a}:log-group:/aws/lambda/{name}"
    return [
        _allow("Alarms", ALARM_ACTIONS, [f"arn:{p}:cloudwatch:{r}:{a}:alarm:{name}-*"]),
        _allow(
            "Dashboard", DASHBOARD_ACTIONS, [f"arn:{p}:cloudwatch::{a}:dashboard/{name}-operations"]
        ),
        _allow("AlarmTopic", TOPIC_ACTIONS, [f"arn:{p}:sns:{r}:{a}:{name}-alarms"]),
        _allow("InitFailureFilter", METRIC_FILTER_ACTIONS, [group, f"{group}:*"]),
        _allow("SubscriptionsAndQueries", UNSCOPED_MONITORING_ACTIONS, ["*"]),
    ]


def _domain_statements(domain: str, account: Account, region: str) -> list[Statement]:
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
                "StringEquals": {"acm:ValidationMethod": "DNS"},
            },
        ),
        _allow("DomainCertificate", CERTIFICATE_ACTIONS, [certificates]),
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
