"""GitHub's OIDC identity provider in IAM: created here, or an existing one reused by ARN.

An account holds one provider per URL, so a second program creating it would fail; an account
that already has it (another project's CI) passes its ARN instead. The reused provider is read
back to check that it accepts STS as an audience, which the role trust policies require.

The repository's OIDC subject template (`policies.SUBJECT_CLAIM_KEYS`) is managed here too, with
the GitHub provider (its token: `GITHUB_TOKEN` of a repository admin, at `pulumi up` only), so
the `sub` the roles trust names the branch and the workflow file. Without it GitHub sends its
default `sub`, which no role accepts: a missing template fails closed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_github as github

from github_ci.policies import GITHUB_OIDC_URL, STS_AUDIENCE, SUBJECT_CLAIM_KEYS


@dataclass(frozen=True)
class GithubOidcArgs:
    """Inputs of `GithubOidc`."""

    existing_provider_arn: str | None = None
    """An IAM OIDC provider for token.actions.githubusercontent.com; None creates one."""
    tags: Mapping[str, str] = field(default_factory=dict)
    repository: str | None = None
    """owner/name whose subject template is set here; None: set by hand (docs/security.md)."""


class GithubOidc(pulumi.ComponentResource):
    """The IAM OIDC provider that lets GitHub Actions tokens assume roles."""

    provider: aws.iam.OpenIdConnectProvider | None
    provider_arn: pulumi.Output[str]
    subject_template: github.ActionsRepositoryOidcSubjectClaimCustomizationTemplate | None

    def __init__(
        self, name: str, args: GithubOidcArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("librechat:ci:GithubOidc", name, None, opts)
        if args.existing_provider_arn is not None:
            self.provider = None
            found = aws.iam.get_open_id_connect_provider(
                arn=args.existing_provider_arn, opts=pulumi.InvokeOptions(parent=self)
            )
            if STS_AUDIENCE not in found.client_id_lists:
                msg = (
                    f"The OIDC provider {args.existing_provider_arn} (oidcProviderArn) does not "
                    f"accept the audience {STS_AUDIENCE} (it has {found.client_id_lists}); add "
                    f"it: aws iam add-client-id-to-open-id-connect-provider --client-id "
                    f"{STS_AUDIENCE} --open-id-connect-provider-arn {args.existing_provider_arn}"
                )
                raise pulumi.RunError(msg)
            self.provider_arn = pulumi.Output.from_input(args.existing_provider_arn)
        else:
            # AWS verifies GitHub's certificate against its own trusted CAs; no thumbprint.
            self.provider = aws.iam.OpenIdConnectProvider(
                f"{name}-provider",
                url=GITHUB_OIDC_URL,
                client_id_lists=[STS_AUDIENCE],
                tags=dict(args.tags),
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.provider_arn = self.provider.arn
        self.subject_template = None
        if args.repository is not None:
            owner, repository = args.repository.split("/", 1)
            repo_provider = github.Provider(
                f"{name}-repository", owner=owner, opts=pulumi.ResourceOptions(parent=self)
            )
            self.subject_template = github.ActionsRepositoryOidcSubjectClaimCustomizationTemplate(
                f"{name}-subject-template",
                repository=repository,
                use_default=False,
                include_claim_keys=list(SUBJECT_CLAIM_KEYS),
                opts=pulumi.ResourceOptions(parent=self, provider=repo_provider),
            )
        self.register_outputs({"provider_arn": self.provider_arn})
