"""The CI program's stack configuration, read once and validated before any resource exists.

Keys (namespace `librechat-lambda-ci:`):

- `repository` (required): the GitHub repository, `owner/name`, exactly as GitHub spells it
  (the `sub` claims compare case-sensitively).
- `oidcProviderArn`: an existing IAM OIDC provider for token.actions.githubusercontent.com
  (one per account); unset, the program creates it.
- `manageSubjectTemplate` (default true): set the repository's OIDC subject template
  (`include_claim_keys`, see policies.py) with the GitHub provider; false when an organization
  owner sets it by hand (docs/security.md), which `make preflight` then checks.
- `stacks` (required): per deployed stack of the main program, a map of
  `name` (required; the stack's `name` key, the physical name of its function, repository and
  log groups), `region` (default `aws:region`), `environment` (the GitHub environment its
  deployment runs in; default the stack's name), `branch` (the branch it deploys from; default
  `main`), `accountId` (the AWS account the stack lives in: set, this program refuses to run
  in another one, so each account's CI stack holds only its own stacks), `domain` (its
  `domain.name`, if any) and `webAclArn` (its `api.webAclArn`, if any).

The same schema base (`components.config.base.Section`) and the same AWS rules
(`components.aws_rules`) as the main program's configuration: every problem is reported at
once, each line naming the key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Annotated, Any

import pulumi
from pydantic import Field, ValidationError

from components import aws_rules
from components.config.base import Problem, Section, rule
from components.config.errors import ConfigError, problems_of

PROJECT = "librechat-lambda-ci"

_REPOSITORY = re.compile(r"^[A-Za-z0-9-]+/[A-Za-z0-9_.-]+$")
_OIDC_PROVIDER_ARN = re.compile(
    r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com$"
)
_STACK = re.compile(r"^[A-Za-z0-9_.-]+$")
_ENVIRONMENT = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")
_BRANCH = re.compile(r"^[A-Za-z0-9._/-]{1,255}$")

check_repository = aws_rules.matching(
    _REPOSITORY, "{value!r} is not a GitHub repository; write owner/name"
)
check_oidc_provider_arn = aws_rules.matching(
    _OIDC_PROVIDER_ARN,
    "{value!r} is not the ARN of an IAM OIDC provider for token.actions.githubusercontent.com; "
    "unset it to have one created",
)
check_stack = aws_rules.matching(_STACK, "{value!r} is not a Pulumi stack name")
check_environment = aws_rules.matching(_ENVIRONMENT, "{value!r} is not a GitHub environment name")
check_branch = aws_rules.matching(_BRANCH, "{value!r} is not a branch name")

#: Alias kept for the CI program's callers: a configuration error, every problem by key.
SettingsError = ConfigError


class StackTarget(Section):
    """One deployed stack of the main program, as far as its CI roles need to know it."""

    stack: str = Field(exclude=True)
    name: Annotated[str, rule(aws_rules.check_name_prefix)]
    region: Annotated[str, rule(aws_rules.check_region)]
    environment: Annotated[str, rule(check_environment)]
    branch: Annotated[str, rule(check_branch)] = "main"
    account_id: Annotated[str, rule(aws_rules.check_account_id)] | None = None
    domain: Annotated[str, rule(aws_rules.check_domain_name)] | None = None
    web_acl_arn: Annotated[str, rule(aws_rules.check_web_acl_arn)] | None = None

    @classmethod
    def of(cls, stack: str, **keys: Any) -> StackTarget:
        """A target from Python names (tests, the program): `StackTarget.of("dev", name=...)`."""
        return cls.model_validate({"stack": stack, **{_camel(k): v for k, v in keys.items()}})


class CiSettings(Section):
    repository: Annotated[str, rule(check_repository)]
    oidc_provider_arn: Annotated[str, rule(check_oidc_provider_arn)] | None = None
    manage_subject_template: bool = True
    stacks: tuple[StackTarget, ...]

    def related_problems(self) -> Iterator[Problem]:
        names = [t.name for t in self.stacks]
        for duplicate in sorted({n for n in names if names.count(n) > 1}):
            yield ("stacks", f"name {duplicate!r} is used by more than one stack")


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)


def load() -> CiSettings:
    """Read this stack's configuration; raise `SettingsError` listing every problem."""
    config = pulumi.Config(PROJECT)
    raw: dict[str, Any] = {}
    for key in ("repository", "oidcProviderArn", "manageSubjectTemplate", "stacks"):
        value = config.get(key)
        if value is None:
            continue
        try:
            raw[key] = json.loads(value) if key in ("stacks", "manageSubjectTemplate") else value
        except json.JSONDecodeError:
            raw[key] = value
    return parse(raw, default_region=pulumi.Config("aws").get("region"))


def parse(raw: Mapping[str, Any], default_region: str | None) -> CiSettings:
    """Validate decoded configuration values (`load` minus `pulumi.Config`)."""
    problems: list[str] = []
    stacks = raw.get("stacks")
    targets: list[Any] = []
    if isinstance(stacks, Mapping):
        for stack, entry in stacks.items():
            try:
                check_stack(str(stack))
            except ValueError as error:
                problems.append(f"{PROJECT}:stacks.{stack} {error}")
                continue
            if not isinstance(entry, Mapping):
                problems.append(f"{PROJECT}:stacks.{stack} must be a map with at least a name")
                continue
            defaults = {"region": default_region, "environment": str(stack)}
            filled = {k: v for k, v in defaults.items() if v is not None} | dict(entry)
            targets.append({"stack": str(stack), **filled})
    if not isinstance(stacks, Mapping) or not stacks:
        problems.append(
            f"{PROJECT}:stacks must map each deployed stack to its name (and region, domain...)"
        )
    data = {**raw, "stacks": targets}
    try:
        settings = CiSettings.model_validate(data)
    except ValidationError as error:
        problems += [
            f"{PROJECT}:{_by_stack(line, targets)}" for line in problems_of(error, CiSettings)
        ]
        raise SettingsError(problems) from None
    if problems:
        raise SettingsError(problems)
    return settings


def _by_stack(line: str, targets: list[Any]) -> str:
    """`stacks[0].name ...` as `stacks.dev.name ...`: stacks are keyed by name in the file."""
    match = re.match(r"^stacks\[(\d+)\]", line)
    if match is None or not isinstance(targets, list) or int(match.group(1)) >= len(targets):
        return line
    stack = targets[int(match.group(1))].get("stack", match.group(1))
    return f"stacks.{stack}{line[match.end() :]}"
