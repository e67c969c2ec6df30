"""The CI roles' policies, evaluated: previews read no secret and write nothing, deploys touch
only their own stack, and only the exact GitHub subjects may assume either role."""

from __future__ import annotations

from typing import Any

import pytest

from components.names import SCOPE_TAG, function_role_name
from github_ci.policies import (
    PREVIEW_READS,
    Account,
    boundary_arn,
    boundary_policy,
    deploy_policy,
    environment_subject,
    github_trust_policy,
    operator_policy_arn,
    preview_policy,
    pull_request_subject,
)
from github_ci.settings import StackTarget
from tests.ci.iam_policy import ALLOW_EVERYTHING, actions_of, decide

ACCOUNT = Account(partition="aws", account_id="123456789012")
DEV = StackTarget.of(
    "dev",
    name="librechat-lambda-dev",
    region="eu-west-1",
    environment="dev",
    domain="lambda-test.sandbox.data.apro.is",
)
PROD = StackTarget.of(
    "prod",
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
    ("subject", "expected", "operator"),
    [
        (
            pull_request_subject(REPO),
            "repo:aprochat/librechat-lambda:pull_request:ref:refs/pull/*/merge:job_workflow_ref:"
            "aprochat/librechat-lambda/.github/workflows/preview.yml@refs/pull/*/merge",
            "StringLike",
        ),
        (
            environment_subject(REPO, "prod"),
            "repo:aprochat/librechat-lambda:environment:prod:ref:refs/heads/main:job_workflow_ref:"
            "aprochat/librechat-lambda/.github/workflows/pulumi-up.yml@refs/heads/main",
            "StringEquals",
        ),
    ],
)
def test_trust_accepts_only_githubs_token_for_sts_with_the_pinned_subject(
    subject: str, expected: str, operator: str
) -> None:
    assert subject == expected
    (statement,) = github_trust_policy(PROVIDER, subject)["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Federated": PROVIDER}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {
        "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
        operator: {"token.actions.githubusercontent.com:sub": expected},
    }


@pytest.mark.parametrize(
    "sub",
    [
        # GitHub's default subject: the template is missing, so no role is assumed (fails closed).
        "repo:aprochat/librechat-lambda:environment:prod",
        # Another branch naming the environment.
        "repo:aprochat/librechat-lambda:environment:prod:ref:refs/heads/evil:job_workflow_ref:"
        "aprochat/librechat-lambda/.github/workflows/pulumi-up.yml@refs/heads/evil",
        # Another workflow file on main naming the environment.
        "repo:aprochat/librechat-lambda:environment:prod:ref:refs/heads/main:job_workflow_ref:"
        "aprochat/librechat-lambda/.github/workflows/other.yml@refs/heads/main",
        # The dev environment's token.
        "repo:aprochat/librechat-lambda:environment:dev:ref:refs/heads/main:job_workflow_ref:"
        "aprochat/librechat-lambda/.github/workflows/pulumi-up.yml@refs/heads/main",
    ],
)
def test_the_prod_deploy_role_refuses_other_branches_workflows_and_environments(sub: str) -> None:
    trust = github_trust_policy(PROVIDER, environment_subject(REPO, "prod"))
    context = {
        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
        "token.actions.githubusercontent.com:sub": sub,
    }
    assert decide([trust], "sts:AssumeRoleWithWebIdentity", "*", context) == "ImplicitDeny"
    context["token.actions.githubusercontent.com:sub"] = environment_subject(REPO, "prod")
    assert decide([trust], "sts:AssumeRoleWithWebIdentity", "*", context) == "Allow"


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
    context = {
        "acm:DomainNames": domains,
        "acm:ValidationMethod": method,
        f"aws:RequestTag/{SCOPE_TAG}": DEV.name,
    }
    resource = "arn:aws:acm:eu-west-1:123456789012:certificate/new"
    decision = decide([deploy_policy(DEV, ACCOUNT)], "acm:RequestCertificate", resource, context)
    assert decision == expected


def test_web_acl_association_is_granted_only_for_the_configured_acl() -> None:
    stage = "arn:aws:apigateway:eu-west-1::/restapis/abc123/stages/live"
    prod = deploy_policy(PROD, ACCOUNT)
    assert decide([prod], "wafv2:AssociateWebACL", PROD.web_acl_arn or "") == "Allow"
    assert decide([prod], "wafv2:AssociateWebACL", stage) == "Allow"
    own = {f"aws:ResourceTag/{SCOPE_TAG}": PROD.name}
    assert decide([prod], "apigateway:SetWebACL", stage, own) == "Allow"
    assert decide([prod], "apigateway:SetWebACL", stage) == "ImplicitDeny"
    other = "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/other/ffff"
    assert decide([prod], "wafv2:AssociateWebACL", other) == "ImplicitDeny"
    # Dev may associate only its own rate ACL (AWS checks the ACL and the stage): not prod's.
    dev = deploy_policy(DEV, ACCOUNT)
    assert decide([dev], "wafv2:AssociateWebACL", PROD.web_acl_arn or "") == "ImplicitDeny"


def test_deploy_reads_no_secret_parameter_and_no_other_bucket() -> None:
    dev = deploy_policy(DEV, ACCOUNT)
    parameter = "arn:aws:ssm:eu-west-1:123456789012:parameter/ecs/genai/mongo/DB_URI"
    assert decide([dev], "ssm:GetParameter", parameter) == "ImplicitDeny"
    assert decide([dev], "s3:GetObject", "arn:aws:s3:::genai-shared-config/x") == "ImplicitDeny"
    assert decide([dev], "secretsmanager:GetSecretValue", "*") == "ImplicitDeny"


@pytest.mark.program
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


# -- escalation attempts from a deploy job (issue 17), each denied ----------------------------

DEV_ROLE = "arn:aws:iam::123456789012:role/librechat-lambda-dev-function"
PROD_REST_API = "arn:aws:apigateway:eu-west-1::/restapis/prod123"


def bounded(target: StackTarget) -> dict[str, str]:
    return {"iam:PermissionsBoundary": boundary_arn(target, ACCOUNT)}


@pytest.mark.parametrize(
    "action",
    ["iam:CreateRole", "iam:PutRolePolicy", "iam:PutRolePermissionsBoundary"],
)
def test_role_takeover_the_function_role_is_written_only_under_its_boundary(action: str) -> None:
    dev = deploy_policy(DEV, ACCOUNT)
    assert decide([dev], action, DEV_ROLE, bounded(DEV)) == "Allow"
    assert decide([dev], action, DEV_ROLE) == "ImplicitDeny"  # no boundary
    assert decide([dev], action, DEV_ROLE, bounded(PROD)) == "ImplicitDeny"  # prod's boundary


@pytest.mark.parametrize(
    "action",
    [
        "iam:UpdateAssumeRolePolicy",  # trust an outside account
        "iam:DeleteRolePermissionsBoundary",
        "iam:AttachRolePolicy",  # e.g. AdministratorAccess
        "iam:CreatePolicyVersion",  # rewrite the boundary itself
        "iam:SetDefaultPolicyVersion",
    ],
)
def test_role_takeover_no_trust_edit_boundary_removal_or_attachment(action: str) -> None:
    dev = deploy_policy(DEV, ACCOUNT)
    boundary = boundary_arn(DEV, ACCOUNT)
    for resource in (DEV_ROLE, boundary):
        admin = {"iam:PolicyARN": "arn:aws:iam::aws:policy/AdministratorAccess", **bounded(DEV)}
        assert decide([dev], action, resource, admin) == "ImplicitDeny", (action, resource)


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("iam:CreateRole", "arn:aws:iam::123456789012:role/x"),
        ("iam:PassRole", DEV_ROLE),
        ("sts:AssumeRole", "arn:aws:iam::123456789012:role/librechat-lambda-prod-deploy"),
        (
            "lambda:UpdateFunctionCode",
            "arn:aws:lambda:eu-west-1:123456789012:function:librechat-lambda-prod",
        ),
        ("apigateway:PATCH", PROD_REST_API),
        ("ssm:GetParameters", "arn:aws:ssm:eu-west-1:210987654321:parameter/other/account"),
        ("s3:GetObject", "arn:aws:s3:::bucket-of-another-account/x"),
        ("kms:Decrypt", "arn:aws:kms:eu-west-1:123456789012:key/0000"),
        (
            "logs:PutLogEvents",
            "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/librechat-lambda-prod:log-stream:x",
        ),
        (
            "ec2:DeleteNetworkInterface",
            "arn:aws:ec2:us-east-1:123456789012:network-interface/eni-1",
        ),
    ],
)
def test_role_takeover_a_function_role_given_everything_still_holds_only_its_boundary(
    action: str, resource: str
) -> None:
    """What a deploy job can write into the function role (here: Action *) is cut to the
    boundary: no IAM, no other stack's function or API, nothing in another account."""
    account = "210987654321" if "another-account" in resource else "123456789012"
    context = {"aws:ResourceAccount": resource.split(":")[4] or account}
    context["aws:RequestedRegion"] = resource.split(":")[3] or "eu-west-1"
    decision = decide(
        [ALLOW_EVERYTHING], action, resource, context, boundary=boundary_policy(DEV, ACCOUNT)
    )
    assert decision == "ImplicitDeny"


def test_the_boundary_still_allows_what_the_function_needs() -> None:
    boundary = boundary_policy(DEV, ACCOUNT)
    own = {"aws:ResourceAccount": "123456789012", "aws:RequestedRegion": "eu-west-1"}
    group = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/librechat-lambda-dev"
    for action, resource in [
        ("logs:PutLogEvents", f"{group}:log-stream:x"),
        ("s3:GetObject", "arn:aws:s3:::genai-shared-config/lambda-test/librechat.yaml"),
        ("ssm:GetParameters", "arn:aws:ssm:eu-west-1:123456789012:parameter/ecs/genai/x"),
        ("ec2:CreateNetworkInterface", "*"),
        ("xray:PutTraceSegments", "*"),
    ]:
        assert decide([ALLOW_EVERYTHING], action, resource, own, boundary=boundary) == "Allow"


def test_the_operator_role_is_created_only_bounded_by_awss_operator_policy() -> None:
    prod = deploy_policy(PROD, ACCOUNT)
    operator = "arn:aws:iam::123456789012:role/librechat-lambda-prod-capacity-operator"
    own = {"iam:PermissionsBoundary": operator_policy_arn(ACCOUNT)}
    assert decide([prod], "iam:CreateRole", operator, own) == "Allow"
    assert decide([prod], "iam:CreateRole", operator) == "ImplicitDeny"
    assert decide([prod], "iam:CreateRole", operator, bounded(PROD)) == "ImplicitDeny"


def test_another_stacks_api_cannot_be_written_adopted_or_orphaned() -> None:
    dev = deploy_policy(DEV, ACCOUNT)
    own = {f"aws:ResourceTag/{SCOPE_TAG}": DEV.name}
    prods = {f"aws:ResourceTag/{SCOPE_TAG}": PROD.name}
    integration = f"{PROD_REST_API}/resources/abc/methods/ANY/integration"
    for verb in ("apigateway:PATCH", "apigateway:PUT", "apigateway:POST", "apigateway:DELETE"):
        assert decide([dev], verb, integration, own) == "Allow"
        assert decide([dev], verb, integration, prods) == "ImplicitDeny", verb
        assert decide([dev], verb, integration) == "ImplicitDeny", verb  # untagged
    create = "arn:aws:apigateway:eu-west-1::/restapis"
    assert (
        decide([dev], "apigateway:POST", create, {f"aws:RequestTag/{SCOPE_TAG}": DEV.name})
        == "Allow"
    )
    assert decide([dev], "apigateway:POST", create) == "ImplicitDeny"
    tags = f"arn:aws:apigateway:eu-west-1::/tags/{PROD_REST_API}"
    # Re-tagging its own API as prod's, or prod's as its own, or removing the tag: denied.
    assert (
        decide([dev], "apigateway:PUT", tags, {**own, f"aws:RequestTag/{SCOPE_TAG}": PROD.name})
        == "Deny"
    )
    assert (
        decide([dev], "apigateway:PUT", tags, {**prods, f"aws:RequestTag/{SCOPE_TAG}": DEV.name})
        == "ImplicitDeny"
    )
    assert decide([dev], "apigateway:DELETE", tags, {**own, "aws:TagKeys": [SCOPE_TAG]}) == "Deny"
    assert decide([dev], "apigateway:DELETE", tags, {**own, "aws:TagKeys": ["Owner"]}) == "Allow"


def test_another_stacks_certificate_cannot_be_deleted() -> None:
    dev = deploy_policy(DEV, ACCOUNT)
    certificate = "arn:aws:acm:eu-west-1:123456789012:certificate/0000"
    for action in ("acm:DeleteCertificate", "acm:AddTagsToCertificate"):
        assert (
            decide([dev], action, certificate, {f"aws:ResourceTag/{SCOPE_TAG}": DEV.name})
            == "Allow"
        )
        assert (
            decide([dev], action, certificate, {f"aws:ResourceTag/{SCOPE_TAG}": PROD.name})
            == "ImplicitDeny"
        )
        assert decide([dev], action, certificate) == "ImplicitDeny"  # an untagged certificate
    removal = {f"aws:ResourceTag/{SCOPE_TAG}": DEV.name, "aws:TagKeys": [SCOPE_TAG]}
    assert decide([dev], "acm:RemoveTagsFromCertificate", certificate, removal) == "Deny"


def test_no_subscription_can_be_edited() -> None:
    subscription = "arn:aws:sns:eu-west-1:123456789012:librechat-lambda-prod-alarms:1234"
    for target in (DEV, PROD):
        policy = deploy_policy(target, ACCOUNT)
        assert decide([policy], "sns:SetSubscriptionAttributes", subscription) == "ImplicitDeny"
        assert decide([policy], "sns:SetSubscriptionAttributes", "*") == "ImplicitDeny"


def test_deploy_manages_its_own_rate_web_acl_only() -> None:
    dev = deploy_policy(DEV, ACCOUNT)
    acl = "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/{}-rate/0123"
    assert decide([dev], "wafv2:CreateWebACL", acl.format(DEV.name)) == "Allow"
    assert decide([dev], "wafv2:DeleteWebACL", acl.format(PROD.name)) == "ImplicitDeny"
