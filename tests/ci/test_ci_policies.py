"""The CI roles' policies, evaluated: previews read no secret and write nothing, deploys touch
only their own stack, and only the exact GitHub subjects may assume either role."""

from __future__ import annotations

from typing import Any

import pytest

from github_ci.policies import (
    PREVIEW_READS,
    Account,
    deploy_policy,
    environment_subject,
    function_role_name,
    github_trust_policy,
    preview_policy,
    pull_request_subject,
)
from github_ci.settings import StackTarget
from tests.ci.iam_policy import ALLOW_EVERYTHING, actions_of, decide

ACCOUNT = Account(partition="aws", account_id="123456789012")
DEV = StackTarget(
    stack="dev",
    name="librechat-lambda-dev",
    region="eu-west-1",
    environment="dev",
    domain="lambda-test.sandbox.data.apro.is",
)
PROD = StackTarget(
    stack="prod",
    name="librechat-lambda-prod",
    region="eu-west-1",
    environment="prod",
    domain="lambda.data.apro.is",
    web_acl_arn="arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/lambda/0123abcd",
)
PROVIDER = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
REPO = "aprochat/librechat-lambda"

#: Concrete API calls behind the issue's deny list (ssm:GetParameter* expanded).
SECRET_CALLS = [
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
    "ssm:GetParameterHistory",
    "kms:Decrypt",
    "secretsmanager:GetSecretValue",
    "s3:GetObject",
    "s3:GetObjectVersion",
    "lambda:GetFunctionConfiguration",
    "lambda:GetFunction",
]
#: Writes across every service the program touches, and a few that would escalate.
WRITES = [
    "iam:CreateRole",
    "iam:PutRolePolicy",
    "iam:AttachRolePolicy",
    "iam:PassRole",
    "sts:AssumeRole",
    "lambda:UpdateFunctionCode",
    "lambda:UpdateFunctionConfiguration",
    "lambda:InvokeFunction",
    "ecr:PutImage",
    "ecr:SetRepositoryPolicy",
    "s3:PutObject",
    "ssm:PutParameter",
    "kms:Encrypt",
    "apigateway:PATCH",
    "apigateway:POST",
    "route53:ChangeResourceRecordSets",
    "acm:RequestCertificate",
    "logs:DeleteLogGroup",
    "ec2:CreateNetworkInterface",
]


def all_policies() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("preview", preview_policy()),
        ("deploy dev", deploy_policy(DEV, ACCOUNT)),
        ("deploy prod", deploy_policy(PROD, ACCOUNT)),
    ]


# -- no wildcard actions ---------------------------------------------------------------------


@pytest.mark.parametrize(("label", "policy"), all_policies())
def test_no_statement_grants_a_wildcard_action(label: str, policy: dict[str, Any]) -> None:
    for action in actions_of(policy):
        assert action != "*" and not action.endswith(":*"), f"{label}: {action}"
    for statement in policy["Statement"]:
        if statement["Effect"] == "Allow":
            wild = [a for a in statement["Action"] if "*" in a or "?" in a]
            assert not wild, f"{label} {statement['Sid']} allows wildcard actions {wild}"


def test_a_wildcard_action_would_be_caught() -> None:
    policy = preview_policy()
    policy["Statement"][0]["Action"].append("ssm:*")
    with pytest.raises(AssertionError):
        test_no_statement_grants_a_wildcard_action("mutated", policy)


# -- preview ---------------------------------------------------------------------------------


@pytest.mark.parametrize("action", SECRET_CALLS)
def test_preview_is_denied_every_secret_read_even_beside_an_allow_everything_policy(
    action: str,
) -> None:
    assert decide([preview_policy()], action) == "Deny"
    assert decide([preview_policy(), ALLOW_EVERYTHING], action) == "Deny"


@pytest.mark.parametrize("action", WRITES)
def test_preview_is_denied_every_write_even_beside_an_allow_everything_policy(
    action: str,
) -> None:
    assert decide([preview_policy(), ALLOW_EVERYTHING], action) == "Deny"


def test_the_issues_deny_list_is_denied_by_name_not_only_by_the_catch_all() -> None:
    """Were the look-ups ever widened to a secret read, the named deny still holds."""
    policy = preview_policy()
    policy["Statement"][0]["Action"] += ["ssm:GetParameter", "kms:Decrypt", "s3:GetObject"]
    policy["Statement"][2]["NotAction"] += ["ssm:GetParameter", "kms:Decrypt", "s3:GetObject"]
    for action in ("ssm:GetParameter", "kms:Decrypt", "s3:GetObject"):
        assert decide([policy], action) == "Deny"
    denied = next(s for s in preview_policy()["Statement"] if s["Sid"] == "DenySecretReads")
    assert {
        "ssm:GetParameter*",
        "kms:Decrypt",
        "secretsmanager:GetSecretValue",
        "s3:GetObject",
        "lambda:GetFunctionConfiguration",
    } <= set(denied["Action"])


@pytest.mark.parametrize("action", PREVIEW_READS)
def test_preview_may_make_each_lookup(action: str) -> None:
    assert decide([preview_policy()], action) == "Allow"


# -- trust -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (pull_request_subject(REPO), "repo:aprochat/librechat-lambda:pull_request"),
        (environment_subject(REPO, "prod"), "repo:aprochat/librechat-lambda:environment:prod"),
    ],
)
def test_trust_accepts_only_githubs_token_for_sts_with_the_exact_subject(
    subject: str, expected: str
) -> None:
    assert subject == expected
    (statement,) = github_trust_policy(PROVIDER, subject)["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Federated": PROVIDER}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": expected,
        }
    }
    assert "*" not in expected and "?" not in expected


# -- deploy ----------------------------------------------------------------------------------


def arn(kind: str, target: StackTarget) -> str:
    n, r = target.name, target.region
    return {
        "function": f"arn:aws:lambda:{r}:123456789012:function:{n}",
        "alias": f"arn:aws:lambda:{r}:123456789012:function:{n}:live",
        "repository": f"arn:aws:ecr:{r}:123456789012:repository/{n}",
        "role": f"arn:aws:iam::123456789012:role/{function_role_name(n)}",
        "logs": f"arn:aws:logs:{r}:123456789012:log-group:/aws/lambda/{n}",
        "api_logs": f"arn:aws:logs:{r}:123456789012:log-group:/aws/apigateway/{n}/live/access",
        "domain": f"arn:aws:apigateway:{r}::/domainnames/{target.domain}",
        "alarm": f"arn:aws:cloudwatch:{r}:123456789012:alarm:{n}-function-errors",
        "dashboard": f"arn:aws:cloudwatch::123456789012:dashboard/{n}-operations",
        "topic": f"arn:aws:sns:{r}:123456789012:{n}-alarms",
    }[kind]


OWN_RESOURCE_ACTIONS = [
    ("cloudwatch:PutMetricAlarm", "alarm"),
    ("cloudwatch:DeleteAlarms", "alarm"),
    ("cloudwatch:PutDashboard", "dashboard"),
    ("sns:CreateTopic", "topic"),
    ("sns:Subscribe", "topic"),
    ("logs:PutMetricFilter", "logs"),
    ("lambda:UpdateFunctionCode", "function"),
    ("lambda:PutProvisionedConcurrencyConfig", "alias"),
    ("ecr:PutImage", "repository"),
    ("iam:PutRolePolicy", "role"),
    ("logs:PutRetentionPolicy", "logs"),
    ("logs:CreateLogGroup", "api_logs"),
    ("apigateway:PATCH", "domain"),
]


@pytest.mark.parametrize(("action", "kind"), OWN_RESOURCE_ACTIONS)
def test_deploy_manages_its_own_stacks_resources_and_not_the_other_stacks(
    action: str, kind: str
) -> None:
    dev = deploy_policy(DEV, ACCOUNT)
    assert decide([dev], action, arn(kind, DEV)) == "Allow"
    assert decide([dev], action, arn(kind, PROD)) == "ImplicitDeny"


def test_deploy_cannot_change_its_own_role_or_any_other_role() -> None:
    dev = deploy_policy(DEV, ACCOUNT)
    for role in ("librechat-lambda-dev-deploy", "librechat-lambda-dev-preview", "admin"):
        resource = f"arn:aws:iam::123456789012:role/{role}"
        for action in ("iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:UpdateAssumeRolePolicy"):
            assert decide([dev], action, resource) == "ImplicitDeny", (action, role)


def test_deploy_passes_the_function_role_to_lambda_only() -> None:
    dev, role = deploy_policy(DEV, ACCOUNT), arn("role", DEV)
    to = "iam:PassedToService"
    assert decide([dev], "iam:PassRole", role, {to: "lambda.amazonaws.com"}) == "Allow"
    assert decide([dev], "iam:PassRole", role, {to: "ec2.amazonaws.com"}) == "ImplicitDeny"


def test_deploy_may_create_lambdas_service_linked_role_and_no_other() -> None:
    """The first capacity provider in an account makes Lambda create AWSServiceRoleForLambda
    as the caller; any other service-linked role stays out of reach."""
    prod, service = deploy_policy(PROD, ACCOUNT), "iam:AWSServiceName"
    roles = "arn:aws:iam::123456789012:role/aws-service-role"
    lambda_role = f"{roles}/lambda.amazonaws.com/AWSServiceRoleForLambda"
    create = "iam:CreateServiceLinkedRole"
    assert decide([prod], create, lambda_role, {service: "lambda.amazonaws.com"}) == "Allow"
    assert decide([prod], create, lambda_role, {service: "ec2.amazonaws.com"}) == "ImplicitDeny"
    other = f"{roles}/elasticloadbalancing.amazonaws.com/AWSServiceRoleForElasticLoadBalancing"
    assert decide([prod], create, other, {service: "elasticloadbalancing.amazonaws.com"}) == (
        "ImplicitDeny"
    )
    assert decide([prod], "iam:DeleteServiceLinkedRole", lambda_role) == "ImplicitDeny"


@pytest.mark.parametrize(
    ("names", "types", "expected"),
    [
        (["lambda-test.sandbox.data.apro.is"], ["A", "AAAA"], "Allow"),
        (["_0a1b.lambda-test.sandbox.data.apro.is"], ["CNAME"], "Allow"),
        (["sandbox.data.apro.is"], ["A"], "ImplicitDeny"),
        (["lambda-test.sandbox.data.apro.is", "www.sandbox.data.apro.is"], ["A"], "ImplicitDeny"),
        (["lambda-test.sandbox.data.apro.is"], ["MX"], "ImplicitDeny"),
        (["lambda.data.apro.is"], ["A"], "ImplicitDeny"),
    ],
)
def test_deploy_writes_dns_records_of_its_domain_only(
    names: list[str], types: list[str], expected: str
) -> None:
    context = {
        "route53:ChangeResourceRecordSetsNormalizedRecordNames": names,
        "route53:ChangeResourceRecordSetsRecordTypes": types,
    }
    zone = "arn:aws:route53:::hostedzone/Z0FAKE"
    decision = decide(
        [deploy_policy(DEV, ACCOUNT)], "route53:ChangeResourceRecordSets", zone, context
    )
    assert decision == expected


@pytest.mark.parametrize(
    ("domains", "method", "expected"),
    [
        (["lambda-test.sandbox.data.apro.is"], "DNS", "Allow"),
        (["lambda-test.sandbox.data.apro.is", "evil.example.com"], "DNS", "ImplicitDeny"),
        (["lambda-test.sandbox.data.apro.is"], "EMAIL", "ImplicitDeny"),
    ],
)
def test_deploy_requests_certificates_for_its_domain_only(
    domains: list[str], method: str, expected: str
) -> None:
    context = {"acm:DomainNames": domains, "acm:ValidationMethod": method}
    resource = "arn:aws:acm:eu-west-1:123456789012:certificate/new"
    decision = decide([deploy_policy(DEV, ACCOUNT)], "acm:RequestCertificate", resource, context)
    assert decision == expected


def test_web_acl_association_is_granted_only_for_the_configured_acl() -> None:
    stage = "arn:aws:apigateway:eu-west-1::/restapis/abc123/stages/live"
    prod = deploy_policy(PROD, ACCOUNT)
    assert decide([prod], "wafv2:AssociateWebACL", PROD.web_acl_arn or "") == "Allow"
    assert decide([prod], "wafv2:AssociateWebACL", stage) == "Allow"
    assert decide([prod], "apigateway:SetWebACL", stage) == "Allow"
    other = "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/other/ffff"
    assert decide([prod], "wafv2:AssociateWebACL", other) == "ImplicitDeny"
    assert decide([deploy_policy(DEV, ACCOUNT)], "wafv2:AssociateWebACL", stage) == "ImplicitDeny"


def test_deploy_reads_no_secret_parameter_and_no_other_bucket() -> None:
    dev = deploy_policy(DEV, ACCOUNT)
    parameter = "arn:aws:ssm:eu-west-1:123456789012:parameter/ecs/genai/mongo/DB_URI"
    assert decide([dev], "ssm:GetParameter", parameter) == "ImplicitDeny"
    assert decide([dev], "s3:GetObject", "arn:aws:s3:::genai-shared-config/x") == "ImplicitDeny"
    assert decide([dev], "secretsmanager:GetSecretValue", "*") == "ImplicitDeny"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_deploy_may_manage_every_monitoring_resource_the_program_names(mocks, stack) -> None:
    """The names components/monitoring.py gives its alarms, dashboard and topic fall inside
    the deploy role's scopes (a renamed resource would fail `pulumi up` with AccessDenied),
    in either compute mode (prod runs managed instances, its function `<name>-managed`)."""
    from tests.pulumi_mocks import plain, run_main
    from tests.stack_files import cli_config

    mocks.zones = {"sandbox.data.apro.is": "ZSANDBOXZONE", "data.apro.is": "ZDATA"}
    run_main(cli_config(stack))
    target = {"dev": DEV, "prod": PROD}[stack]
    policy, r = deploy_policy(target, ACCOUNT), target.region

    def named(typ: str, key: str) -> list[str]:
        return [plain(res.inputs[key]) for res in mocks.of_type(typ)]

    alarms = named("aws:cloudwatch/metricAlarm:MetricAlarm", "name")
    (dashboard,) = named("aws:cloudwatch/dashboard:Dashboard", "dashboardName")
    (topic,) = named("aws:sns/topic:Topic", "name")
    assert len(alarms) == 6
    for alarm in alarms:
        resource = f"arn:aws:cloudwatch:{r}:123456789012:alarm:{alarm}"
        assert decide([policy], "cloudwatch:PutMetricAlarm", resource) == "Allow", alarm
    resource = f"arn:aws:cloudwatch::123456789012:dashboard/{dashboard}"
    assert decide([policy], "cloudwatch:PutDashboard", resource) == "Allow"
    resource = f"arn:aws:sns:{r}:123456789012:{topic}"
    assert decide([policy], "sns:CreateTopic", resource) == "Allow"
