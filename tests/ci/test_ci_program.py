"""The CI program (`ci/__main__.py`) run whole against its committed stack file, and checked
against the main program: the stacks it serves, and the look-ups a preview makes."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime import set_all_config

from components.names import SCOPE_TAG
from github_ci.policies import (
    Account,
    deploy_policy,
    environment_subject,
    github_trust_policy,
    preview_policy,
    pull_request_subject,
)
from github_ci.settings import StackTarget, parse, stack_files
from tests.ci.conftest import GET_OIDC_PROVIDER, OIDC_PROVIDER, ROLE_POLICY
from tests.ci.iam_policy import ALLOW_EVERYTHING, decide
from tests.pulumi_mocks import ACCOUNT_ID, C, PulumiMocks, T, plain, run_program
from tests.stack_files import ROOT, cli_config, stack_file

pytestmark = pytest.mark.program  # each runs the whole program

CI = ROOT / "ci"
REPO = "aprochat/librechat-lambda"
PROVIDER_ARN = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/token.actions.githubusercontent.com"
ACCOUNT = Account(partition="aws", account_id=ACCOUNT_ID)


def ci_stack_file(path: Path = CI / "Pulumi.admin.yaml") -> dict[str, Any]:
    return yaml.safe_load(path.read_text())["config"]


def cli(values: dict[str, Any]) -> dict[str, str]:
    return {k: json.dumps(v) if isinstance(v, (dict, list)) else str(v) for k, v in values.items()}


def run_ci(config: dict[str, Any]) -> dict[str, Any]:
    set_all_config(cli(config))

    def build() -> Any:
        runpy.run_path(str(CI / "__main__.py"), run_name="__main__")
        return pulumi.runtime.get_root_resource().outputs  # type: ignore[union-attr]

    return run_program(build)


def targets() -> list[StackTarget]:
    """The stacks the committed CI stack serves: every Pulumi.<stack>.yaml, keys from the file."""
    config = ci_stack_file()
    raw = {"repository": config["librechat-lambda-ci:repository"]}
    return list(parse(raw, config["aws:region"], main_stacks=stack_files()).stacks)


def policy_of(mocks: PulumiMocks, name: str) -> dict[str, Any]:
    return json.loads(plain(mocks.named(name).inputs)["policy"])


def trust_of(mocks: PulumiMocks, name: str) -> dict[str, Any]:
    return json.loads(plain(mocks.named(name).inputs)["assumeRolePolicy"])


@pytest.fixture
def admin(ci_mocks: PulumiMocks) -> dict[str, Any]:
    return run_ci(ci_stack_file())


def test_admin_creates_githubs_provider_and_two_roles_per_stack(
    ci_mocks: PulumiMocks, admin: dict[str, Any]
) -> None:
    provider = ci_mocks.inputs_of(OIDC_PROVIDER)
    assert provider["url"] == "https://token.actions.githubusercontent.com"
    assert provider["clientIdLists"] == ["sts.amazonaws.com"]
    assert admin["oidc_provider_arn"] == PROVIDER_ARN
    roles = sorted(plain(r.inputs)["name"] for r in ci_mocks.of_type(T.ROLE))
    names = {t.stack: t.name for t in targets()}
    assert {"dev": "librechat-lambda-dev", "prod": "librechat-lambda-prod"}.items() <= names.items()
    assert roles == sorted(f"{n}-{kind}" for n in names.values() for kind in ("deploy", "preview"))
    assert len(ci_mocks.of_type(ROLE_POLICY)) == 2 * len(names)
    for stack, name in names.items():
        role = f"arn:aws:iam::{ACCOUNT_ID}:role/{name}"
        assert admin["preview_role_arns"][stack] == f"{role}-preview"
        assert admin["deploy_role_arns"][stack] == f"{role}-deploy"


@pytest.mark.parametrize("target", targets(), ids=lambda t: t.stack)
def test_trust_in_state_names_the_provider_and_the_exact_subjects(
    ci_mocks: PulumiMocks, admin: dict[str, Any], target: StackTarget
) -> None:
    assert trust_of(ci_mocks, f"{target.stack}-preview") == github_trust_policy(
        PROVIDER_ARN, pull_request_subject(REPO)
    )
    assert trust_of(ci_mocks, f"{target.stack}-deploy") == github_trust_policy(
        PROVIDER_ARN, environment_subject(REPO, target.stack)
    )


@pytest.mark.parametrize("target", targets(), ids=lambda t: t.stack)
def test_recorded_policies_deny_secret_reads_to_previews_and_scope_deploys(
    ci_mocks: PulumiMocks, admin: dict[str, Any], target: StackTarget
) -> None:
    preview = policy_of(ci_mocks, f"{target.stack}-preview-policy")
    deploy = policy_of(ci_mocks, f"{target.stack}-deploy-policy")
    assert preview == preview_policy()
    assert deploy == deploy_policy(target, ACCOUNT)
    for action in ("ssm:GetParameters", "kms:Decrypt", "s3:GetObject", "iam:CreateRole"):
        assert decide([preview, ALLOW_EVERYTHING], action) == "Deny"
    function = f"arn:aws:lambda:eu-west-1:{ACCOUNT_ID}:function:{target.name}"
    assert decide([deploy], "lambda:UpdateFunctionCode", function) == "Allow"


def test_an_existing_provider_is_reused_not_created(ci_mocks: PulumiMocks) -> None:
    existing = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    ci_mocks.call_results[GET_OIDC_PROVIDER] = {
        "arn": existing,
        "clientIdLists": ["sts.amazonaws.com"],
        "url": "token.actions.githubusercontent.com",
    }
    outputs = run_ci({**ci_stack_file(), "librechat-lambda-ci:oidcProviderArn": existing})
    assert ci_mocks.of_type(OIDC_PROVIDER) == []
    assert ci_mocks.calls_to(GET_OIDC_PROVIDER) == [{"arn": existing}]
    assert outputs["oidc_provider_arn"] == existing
    assert trust_of(ci_mocks, "dev-preview")["Statement"][0]["Principal"] == {"Federated": existing}


def test_an_existing_provider_without_the_sts_audience_is_refused(ci_mocks: PulumiMocks) -> None:
    existing = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    ci_mocks.call_results[GET_OIDC_PROVIDER] = {"arn": existing, "clientIdLists": ["other"]}
    with pytest.raises(Exception, match=r"oidcProviderArn.*sts\.amazonaws\.com"):
        run_ci({**ci_stack_file(), "librechat-lambda-ci:oidcProviderArn": existing})
    assert ci_mocks.of_type(T.ROLE) == []


def test_bad_configuration_fails_before_any_resource(ci_mocks: PulumiMocks) -> None:
    config = {**ci_stack_file(), "librechat-lambda-ci:repository": "not a repository"}
    with pytest.raises(Exception, match="librechat-lambda-ci:repository"):
        run_ci(config)
    assert ci_mocks.resources == []


def test_the_ci_stack_serves_exactly_the_main_programs_stacks() -> None:
    """Names, regions and domains come from each Pulumi.<stack>.yaml, none repeated in ci/."""
    assert "librechat-lambda-ci:stacks" not in ci_stack_file(), "derived from the stack files"
    served = {t.stack: t for t in targets()}
    assert sorted(served) == sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml"))
    for stack, target in served.items():
        main = stack_file(stack)
        assert target.name == main["librechat-lambda:name"], stack
        assert target.region == main["aws:region"], stack
        assert target.domain == main.get("librechat-lambda:domain", {}).get("name"), stack
        assert target.web_acl_arn == main.get("librechat-lambda:api", {}).get("webAclArn")


#: What each look-up of the main program calls in AWS (data sources of pulumi-aws).
LOOKUP_ACTIONS: dict[str, set[str]] = {
    C.PARTITION: set(),
    C.REGION: set(),
    C.CALLER_IDENTITY: {"sts:GetCallerIdentity"},
    C.VPC: {"ec2:DescribeVpcs"},
    C.SUBNETS: {"ec2:DescribeSubnets"},
    C.SECURITY_GROUPS: {"ec2:DescribeSecurityGroups"},
    C.ROUTE53_ZONE: {
        "route53:ListHostedZones",
        "route53:GetHostedZone",
        "route53:ListTagsForResource",
    },
    C.ECR_AUTH_TOKEN: {"ecr:GetAuthorizationToken"},
    C.SSM_PARAMETER: {"ssm:GetParameter", "kms:Decrypt"},
    C.REGISTRY_IMAGE: set(),  # the base image's registry (ghcr.io), not AWS
}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_preview_role_allows_every_lookup_the_main_program_makes(
    mocks: PulumiMocks, stack: str
) -> None:
    mocks.zones = {"sandbox.data.apro.is": "ZSANDBOX", "data.apro.is": "ZDATA"}
    set_all_config(cli_config(stack))

    def build() -> Any:
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
        return {}

    run_program(build)
    tokens = {c.token for c in mocks.calls}
    unknown = tokens - set(LOOKUP_ACTIONS)
    assert not unknown, f"new look-ups: add their IAM actions to LOOKUP_ACTIONS: {unknown}"
    needed = {"sts:GetCallerIdentity"}.union(*(LOOKUP_ACTIONS[t] for t in tokens))
    denied = sorted(a for a in needed if decide([preview_policy()], a) != "Allow")
    assert not denied, f"pulumi preview -s {stack} would be denied {denied}"


Request = tuple[str, dict[str, Any]]


def main_program_resources(mocks: PulumiMocks, stack: str) -> dict[str, list[Request]]:
    """ARNs of what `pulumi up -s <stack>` creates that a deploy role must be allowed to manage,
    each with the request's condition keys (the role's boundary, the API's tags)."""
    mocks.zones = {"sandbox.data.apro.is": "ZSANDBOX", "data.apro.is": "ZDATA"}
    set_all_config(cli_config(stack))

    def build() -> Any:
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
        return {}

    run_program(build)
    a, r = ACCOUNT_ID, "eu-west-1"
    names = {t: [plain(x.inputs).get("name") for x in mocks.of_type(t)] for t in (
        T.FUNCTION, T.ECR_REPOSITORY, T.ROLE, T.LOG_GROUP)}  # fmt: skip
    domains = [plain(x.inputs)["domainName"] for x in mocks.of_type(T.API_DOMAIN_NAME)]
    providers = [plain(x.inputs)["name"] for x in mocks.of_type(T.CAPACITY_PROVIDER)]
    managed = {
        "lambda:CreateCapacityProvider": [
            f"arn:aws:lambda:{r}:{a}:capacity-provider:{n}" for n in providers
        ],
        "lambda:PutFunctionScalingConfig": [
            f"arn:aws:lambda:{r}:{a}:function:{plain(x.inputs)['functionName']}"
            for x in mocks.of_type(T.FUNCTION_SCALING_CONFIG)
        ],
    }
    roles = [
        (
            f"arn:aws:iam::{a}:role/{plain(x.inputs)['name']}",
            {"iam:PermissionsBoundary": plain(x.inputs).get("permissionsBoundary")},
        )
        for x in mocks.of_type(T.ROLE)
    ]
    apis = [
        (
            f"arn:aws:apigateway:{r}::/restapis",
            {f"aws:RequestTag/{SCOPE_TAG}": plain(x.inputs)["tags"][SCOPE_TAG]},
        )
        for x in mocks.of_type(T.REST_API)
    ]
    plain_arns = {
        **{action: arns for action, arns in managed.items() if arns},
        "lambda:CreateFunction": [
            f"arn:aws:lambda:{r}:{a}:function:{n}" for n in names[T.FUNCTION]
        ],
        "ecr:CreateRepository": [
            f"arn:aws:ecr:{r}:{a}:repository/{n}" for n in names[T.ECR_REPOSITORY]
        ],
        "logs:CreateLogGroup": [f"arn:aws:logs:{r}:{a}:log-group:{n}" for n in names[T.LOG_GROUP]],
        "apigateway:PATCH": [f"arn:aws:apigateway:{r}::/domainnames/{d}" for d in domains],
    }
    return {
        **{action: [(arn, {}) for arn in arns] for action, arns in plain_arns.items()},
        "iam:CreateRole": roles,
        "apigateway:POST": apis,
    }


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_each_deploy_role_manages_its_own_stacks_resources_and_not_the_others(
    mocks: PulumiMocks, stack: str
) -> None:
    """The names the main program gives its resources are the names the deploy roles allow."""
    resources = main_program_resources(mocks, stack)
    assert all(resources.values()), resources
    own = next(t for t in targets() if t.stack == stack)
    other = next(t for t in targets() if t.stack != stack)
    for action, requests in resources.items():
        for arn, context in requests:
            own_decision = decide([deploy_policy(own, ACCOUNT)], action, arn, context)
            assert own_decision == "Allow", (action, arn, context)
            other_decision = decide([deploy_policy(other, ACCOUNT)], action, arn, context)
            assert other_decision != "Allow", (action, arn)


def test_the_prod_deploy_role_may_attach_only_the_operator_policy_to_the_operator_role(
    mocks: PulumiMocks,
) -> None:
    resources = main_program_resources(mocks, "prod")
    assert "lambda:CreateCapacityProvider" in resources  # prod runs on managed instances
    prod = next(t for t in targets() if t.stack == "prod")
    policy = deploy_policy(prod, ACCOUNT)
    (attachment,) = mocks.of_type(T.ROLE_POLICY_ATTACHMENT)
    inputs = plain(attachment.inputs)
    operator = f"arn:aws:iam::{ACCOUNT_ID}:role/{inputs['role']}"
    (role,) = [r for r in mocks.of_type(T.ROLE) if plain(r.inputs)["name"] == inputs["role"]]
    bounded = {"iam:PermissionsBoundary": plain(role.inputs)["permissionsBoundary"]}
    managed_policy = {"iam:PolicyARN": inputs["policyArn"], **bounded}
    admin = {"iam:PolicyARN": "arn:aws:iam::aws:policy/AdministratorAccess", **bounded}
    assert decide([policy], "iam:AttachRolePolicy", operator, managed_policy) == "Allow"
    assert decide([policy], "iam:AttachRolePolicy", operator, admin) == "ImplicitDeny"
    assert decide([policy], "iam:PutRolePolicy", operator) == "ImplicitDeny"
    lambda_service = {"iam:PassedToService": "lambda.amazonaws.com"}
    assert decide([policy], "iam:PassRole", operator, lambda_service) == "Allow"
