"""The CI program's stack configuration, read once and validated before any resource exists.

Keys (namespace `librechat-lambda-ci:`):

- `repository` (required): the GitHub repository, `owner/name`, exactly as GitHub spells it
  (the `sub` claims compare case-sensitively).
- `oidcProviderArn`: an existing IAM OIDC provider for token.actions.githubusercontent.com
  (one per account); unset, the program creates it.
- `manageSubjectTemplate` (default true): set the repository's OIDC subject template
  (`policies.SUBJECT_CLAIM_KEYS`) with the GitHub provider; false when an organization owner
  sets it by hand (docs/security.md), which `make preflight` then checks.
- `stacks`: per stack of the main program, what differs from its `Pulumi.<stack>.yaml`: a map
  of `name` (the stack's `name` key, the physical name of its function, repository and log
  groups), `region` (default the stack file's `aws:region`, else this stack's), `environment`
  (the GitHub environment its deployment runs in; default the stack's name), `branch` (the
  branch it deploys from; default `main`), `accountId` (the AWS account the stack lives in:
  set, this program refuses to serve it from another account), `domain` (its `domain.name`, if
  any) and `webAclArn` (its `api.webAclArn`, if any); or `false` for a stack another account's
  stack of this program serves (one AWS account per stack: docs/security.md).

Every `Pulumi.<stack>.yaml` beside the main program is served, each entry's keys read from
that file (`stack_files`), so a new stack file needs no edit here: only `pulumi up` in ci/.

The same schema base (`components.config.base.Section`), AWS rules (`components.aws_rules`)
and names (`components.names`) as the main program: every problem is reported at once, each
line naming the key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any

import pulumi
import yaml
from pydantic import Field, ValidationError

from components import aws_rules, names
from components.config.base import Problem, Section, rule
from components.config.errors import ConfigError, problems_of

PROJECT = "librechat-lambda-ci"
#: The main program: its directory holds the `Pulumi.<stack>.yaml` files this program serves.
MAIN_PROGRAM = Path(__file__).resolve().parents[2]

check_repository = aws_rules.matching(
    re.compile(r"^[A-Za-z0-9-]+/[A-Za-z0-9_.-]+$"),
    "{value!r} is not a GitHub repository; write owner/name",
)
check_oidc_provider_arn = aws_rules.matching(
    re.compile(
        r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com$"
    ),
    "{value!r} is not the ARN of an IAM OIDC provider for token.actions.githubusercontent.com; "
    "unset it to have one created",
)
check_stack = aws_rules.matching(
    re.compile(r"^[A-Za-z0-9_.-]+$"), "{value!r} is not a Pulumi stack name"
)
check_environment = aws_rules.matching(
    re.compile(r"^[A-Za-z0-9_.-]{1,255}$"), "{value!r} is not a GitHub environment name"
)
check_branch = aws_rules.matching(
    re.compile(r"^[A-Za-z0-9._/-]{1,255}$"), "{value!r} is not a branch name"
)

#: The CI configuration's error: a `ConfigError`, every problem by key.
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
        """A target from Python names: `StackTarget.of("dev", name=..., web_acl_arn=...)`."""
        return cls.model_validate({"stack": stack, **{_camel(k): v for k, v in keys.items()}})


class CiSettings(Section):
    repository: Annotated[str, rule(check_repository)]
    oidc_provider_arn: Annotated[str, rule(check_oidc_provider_arn)] | None = None
    manage_subject_template: bool = True
    stacks: tuple[StackTarget, ...]

    def related_problems(self) -> Iterator[Problem]:
        taken = [t.name for t in self.stacks]
        for duplicate in sorted({n for n in taken if taken.count(n) > 1}):
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
    return parse(raw, pulumi.Config("aws").get("region"), main_stacks=stack_files())


def stack_files(root: Path = MAIN_PROGRAM) -> dict[str, dict[str, Any]]:
    """Each `Pulumi.<stack>.yaml`'s `stacks` entry: the keys its CI roles need, from the file.

    `name` defaults as the main program's does (`names.default_name`); `make check` validates
    the file itself.
    """
    entries: dict[str, dict[str, Any]] = {}
    for path in sorted(root.glob("Pulumi.*.yaml")):
        stack = path.name.split(".")[1]
        config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
        domain = config.get(f"{names.PROJECT}:domain") or {}
        api = config.get(f"{names.PROJECT}:api") or {}
        entry = {
            "name": config.get(f"{names.PROJECT}:name", names.default_name(stack)),
            "region": config.get("aws:region"),
            "domain": domain.get("name") if domain.get("enabled", True) else None,
            "webAclArn": api.get("webAclArn"),
        }
        entries[stack] = {k: v for k, v in entry.items() if v is not None}
    return entries


def parse(
    raw: Mapping[str, Any],
    default_region: str | None,
    main_stacks: Mapping[str, Mapping[str, Any]] | None = None,
) -> CiSettings:
    """Validate decoded configuration values (`load` minus `pulumi.Config`).

    With `main_stacks` (`stack_files()`), every one of them is served and `stacks` only
    overrides their keys; without, `stacks` lists the stacks served.
    """
    problems: list[str] = []
    stacks = raw.get("stacks")
    if main_stacks is not None and (stacks is None or isinstance(stacks, Mapping)):
        overrides = stacks or {}
        for stack in sorted(set(overrides) - set(main_stacks)):
            problems.append(
                f"{PROJECT}:stacks.{stack} names no stack: there is no Pulumi.{stack}.yaml"
            )
        stacks = {}
        for stack, entry in main_stacks.items():
            override = overrides.get(stack, {})
            if override is False:  # served by another account's stack of this program
                continue
            stacks[stack] = {**entry, **override} if isinstance(override, Mapping) else override
    targets: list[dict[str, Any]] = []
    if not isinstance(stacks, Mapping) or not stacks:
        problems.append(
            f"{PROJECT}:stacks must map each deployed stack to its name (and region, domain...)"
        )
        stacks = {}
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
    try:
        settings = CiSettings.model_validate({**raw, "stacks": targets})
    except ValidationError as error:
        problems += [
            f"{PROJECT}:{_by_stack(line, targets)}" for line in problems_of(error, CiSettings)
        ]
        raise SettingsError(problems) from None
    if problems:
        raise SettingsError(problems)
    return settings


def _by_stack(line: str, targets: list[dict[str, Any]]) -> str:
    """`stacks[0].name ...` as `stacks.dev.name ...`: stacks are keyed by name in the file."""
    match = re.match(r"^stacks\[(\d+)\]", line)
    if match is None or int(match.group(1)) >= len(targets):
        return line
    return f"stacks.{targets[int(match.group(1))]['stack']}{line[match.end() :]}"
