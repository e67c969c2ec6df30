"""librechat-lambda-ci: the AWS identities of librechat-lambda's GitHub workflows.

Applied once per AWS account by an administrator (docs/deploying.md, "Pull-request previews and
continuous deployment"): GitHub's OIDC provider and, per deployed stack of the main program,
a preview role, a deploy role and the deploy role's permissions boundary for the roles it
creates; and the repository's OIDC subject template. The role ARNs it exports go into the
repository's GitHub variables.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The main program's names and rules (components/) are one directory up: the one place ci/
# reaches them from (pytest and mypy put the repository root on the path themselves).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pulumi

from github_ci.oidc import GithubOidc, GithubOidcArgs
from github_ci.roles import StackCiRoles, StackCiRolesArgs
from github_ci.settings import PROJECT, load

settings = load()
tags = {"Project": "librechat-lambda", "ManagedBy": PROJECT}

oidc = GithubOidc(
    "github",
    GithubOidcArgs(
        settings.oidc_provider_arn,
        tags,
        repository=settings.repository if settings.manage_subject_template else None,
    ),
)
roles = {
    target.stack: StackCiRoles(
        target.stack,
        StackCiRolesArgs(
            target=target,
            repository=settings.repository,
            provider_arn=oidc.provider_arn,
            tags={**tags, "Stack": target.stack},
        ),
    )
    for target in settings.stacks
}

pulumi.export("oidc_provider_arn", oidc.provider_arn)
pulumi.export("preview_role_arns", {stack: r.preview_role_arn for stack, r in roles.items()})
pulumi.export("deploy_role_arns", {stack: r.deploy_role_arn for stack, r in roles.items()})
