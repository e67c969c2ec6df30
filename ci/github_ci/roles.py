"""Per deployed stack, the two roles its workflows assume through GitHub's OIDC provider.

- `<name>-preview`: assumed by pull requests of the repository (preview.yml); look-ups only,
  secrets and writes denied (see `policies.preview_policy`).
- `<name>-deploy`: assumed only by jobs running in the stack's GitHub environment, on its
  branch, running pulumi-up.yml of that branch; manages the stack's own resources (see
  `policies.deploy_policy`).
- `<name>-boundary`: the permissions boundary every function role the deploy role creates must
  carry (`policies.boundary_policy`); the deploy role cannot edit it.

A stack with `accountId` is refused in any other account: each account's CI stack holds only
the stacks that live in it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components import names
from github_ci.policies import (
    Account,
    boundary_policy,
    deploy_policy,
    environment_subject,
    github_trust_policy,
    preview_policy,
    pull_request_subject,
)
from github_ci.settings import StackTarget


@dataclass(frozen=True)
class StackCiRolesArgs:
    """Inputs of `StackCiRoles`."""

    target: StackTarget
    repository: str
    """owner/name of the GitHub repository whose workflows assume the roles."""
    provider_arn: pulumi.Input[str]
    tags: Mapping[str, str] = field(default_factory=dict)


class StackCiRoles(pulumi.ComponentResource):
    """The preview role and the deploy role of one stack, each with its one inline policy."""

    preview_role: aws.iam.Role
    deploy_role: aws.iam.Role
    boundary: aws.iam.Policy
    preview_role_arn: pulumi.Output[str]
    deploy_role_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: StackCiRolesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("librechat:ci:StackCiRoles", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)
        account = Account(
            partition=aws.get_partition(opts=invoke).partition,
            account_id=aws.get_caller_identity(opts=invoke).account_id,
        )
        target, tags = args.target, dict(args.tags)
        if target.account_id is not None and target.account_id != account.account_id:
            msg = (
                f"librechat-lambda-ci:stacks.{target.stack}.accountId is {target.account_id}, but "
                f"this CI stack runs in account {account.account_id}; apply it from the CI stack "
                "of that account (one AWS account per stack: docs/security.md)"
            )
            raise pulumi.RunError(msg)
        provider_arn = pulumi.Output.from_input(args.provider_arn)

        # 0. The boundary of the roles the deploy role creates; only this program writes it.
        self.boundary = aws.iam.Policy(
            f"{name}-boundary",
            name=names.permissions_boundary_name(target.name),
            description=f"The most a role of stack {target.stack} may do (permissions boundary)",
            policy=json.dumps(boundary_policy(target, account)),
            tags=tags,
            opts=child,
        )

        # 1. Preview: this repository's pull requests; look-ups only.
        self.preview_role = aws.iam.Role(
            f"{name}-preview",
            name=names.preview_role_name(target.name),
            description=f"pulumi preview of stack {target.stack} from pull requests (read-only)",
            assume_role_policy=provider_arn.apply(
                lambda arn: json.dumps(
                    github_trust_policy(arn, pull_request_subject(args.repository))
                )
            ),
            tags=tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-preview-policy",
            role=self.preview_role.id,
            policy=json.dumps(preview_policy()),
            opts=child,
        )

        # 2. Deploy: only jobs in the stack's GitHub environment; the stack's own resources.
        self.deploy_role = aws.iam.Role(
            f"{name}-deploy",
            name=names.deploy_role_name(target.name),
            description=f"pulumi up of stack {target.stack} from GitHub environment "
            f"{target.environment}, branch {target.branch}",
            assume_role_policy=provider_arn.apply(
                lambda arn: json.dumps(
                    github_trust_policy(
                        arn,
                        environment_subject(args.repository, target.environment, target.branch),
                    )
                )
            ),
            tags=tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-deploy-policy",
            role=self.deploy_role.id,
            policy=json.dumps(deploy_policy(target, account)),
            opts=child,
        )

        self.preview_role_arn = self.preview_role.arn
        self.deploy_role_arn = self.deploy_role.arn
        self.register_outputs(
            {"preview_role_arn": self.preview_role_arn, "deploy_role_arn": self.deploy_role_arn}
        )
