"""The CI program's stack configuration, read once and validated before any resource exists.

Keys (namespace `librechat-lambda-ci:`):

- `repository` (required): the GitHub repository, `owner/name`, exactly as GitHub spells it
  (the `sub` claims compare case-sensitively).
- `oidcProviderArn`: an existing IAM OIDC provider for token.actions.githubusercontent.com
  (one per account); unset, the program creates it.
- `stacks`: per stack of the main program, what differs from its `Pulumi.<stack>.yaml`: a map
  of `name` (the stack's `name` key, the physical name of its function, repository and log
  groups), `region` (default the stack file's `aws:region`, else this stack's), `environment`
  (the GitHub environment its deployment runs in; default the stack's name), `domain` (its
  `domain.name`, if any) and `webAclArn` (its `api.webAclArn`, if any); or `false` for a
  stack another account's stack of this program serves.

Every `Pulumi.<stack>.yaml` beside the main program is served, each entry's keys read from
that file (`stack_files`), so a new stack file needs no edit here: only `pulumi up` in ci/.

Every problem is reported at once, each line naming the key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml

PROJECT = "librechat-lambda-ci"
#: The main program: its directory holds the `Pulumi.<stack>.yaml` files this program serves.
MAIN_PROGRAM = Path(__file__).resolve().parents[2]
MAIN_PROJECT = "librechat-lambda"

_REPOSITORY = re.compile(r"^[A-Za-z0-9-]+/[A-Za-z0-9_.-]+$")
_OIDC_PROVIDER_ARN = re.compile(
    r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com$"
)
_STACK = re.compile(r"^[A-Za-z0-9_.-]+$")
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_ENVIRONMENT = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_WEB_ACL_ARN = re.compile(r"^arn:aws[a-z-]*:wafv2:[a-z0-9-]+:\d{12}:regional/webacl/[^/]+/[^/]+$")
_STACK_KEYS = ("name", "region", "environment", "domain", "webAclArn")


@dataclass(frozen=True)
class StackTarget:
    """One deployed stack of the main program, as far as its CI roles need to know it."""

    stack: str
    name: str
    region: str
    environment: str
    domain: str | None = None
    web_acl_arn: str | None = None


@dataclass(frozen=True)
class CiSettings:
    repository: str
    oidc_provider_arn: str | None
    stacks: tuple[StackTarget, ...]


class SettingsError(pulumi.RunError):
    """The CI stack configuration is wrong; the message lists every problem by key."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"CI stack configuration has {len(problems)} problem(s):\n{lines}")


def load() -> CiSettings:
    """Read this stack's configuration; raise `SettingsError` listing every problem."""
    config = pulumi.Config(PROJECT)
    raw_stacks = config.get("stacks")
    try:
        stacks = json.loads(raw_stacks) if raw_stacks is not None else None
    except json.JSONDecodeError:
        stacks = raw_stacks
    return parse(
        {
            "repository": config.get("repository"),
            "oidcProviderArn": config.get("oidcProviderArn"),
            "stacks": stacks,
        },
        default_region=pulumi.Config("aws").get("region"),
        main_stacks=stack_files(),
    )


def stack_files(root: Path = MAIN_PROGRAM) -> dict[str, dict[str, Any]]:
    """Each `Pulumi.<stack>.yaml`'s `stacks` entry: the keys its CI roles need, from the file.

    `name` defaults as the main program's does (components/config/stack.py); `make check`
    validates the file itself.
    """
    entries: dict[str, dict[str, Any]] = {}
    for path in sorted(root.glob("Pulumi.*.yaml")):
        stack = path.name.split(".")[1]
        config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
        default_name = re.sub(r"[^a-z0-9-]+", "-", f"librechat-{stack}".lower())[:40].rstrip("-")
        domain = config.get(f"{MAIN_PROJECT}:domain") or {}
        api = config.get(f"{MAIN_PROJECT}:api") or {}
        entry = {
            "name": config.get(f"{MAIN_PROJECT}:name", default_name),
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

    def problem(key: str, message: str) -> None:
        problems.append(f"{PROJECT}:{key} {message}")

    repository = raw.get("repository")
    if not isinstance(repository, str) or not _REPOSITORY.match(repository):
        problem("repository", f"is {repository!r}; set it to the GitHub repository, owner/name")
        repository = ""
    provider_arn = raw.get("oidcProviderArn")
    if provider_arn is not None and not (
        isinstance(provider_arn, str) and _OIDC_PROVIDER_ARN.match(provider_arn)
    ):
        problem(
            "oidcProviderArn",
            f"is {provider_arn!r}, not the ARN of an IAM OIDC provider for "
            "token.actions.githubusercontent.com; unset it to have one created",
        )
        provider_arn = None

    stacks = raw.get("stacks")
    targets: list[StackTarget] = []
    if main_stacks is not None and (stacks is None or isinstance(stacks, Mapping)):
        overrides = stacks or {}
        for stack in sorted(set(overrides) - set(main_stacks)):
            problem(f"stacks.{stack}", f"names no stack: there is no Pulumi.{stack}.yaml")
        stacks = {}
        for stack, entry in main_stacks.items():
            override = overrides.get(stack)
            if override is None:
                override = {}
            elif override is False:  # served by another account's stack of this program
                continue
            stacks[stack] = {**entry, **override} if isinstance(override, Mapping) else override
    if not isinstance(stacks, Mapping) or not stacks:
        problem("stacks", "must map each deployed stack to its name (and region, domain...)")
        stacks = {}
    for stack, entry in stacks.items():
        key = f"stacks.{stack}"
        if not _STACK.match(str(stack)):
            problem(key, "is not a Pulumi stack name")
            continue
        if not isinstance(entry, Mapping):
            problem(key, f"must be a map with at least a name, not {entry!r}")
            continue
        target = _target(str(stack), entry, default_region, key, problem)
        if target is not None:
            targets.append(target)
    names = [t.name for t in targets]
    for duplicate in sorted({n for n in names if names.count(n) > 1}):
        problem("stacks", f"name {duplicate!r} is used by more than one stack")
    if problems:
        raise SettingsError(problems)
    return CiSettings(repository=repository, oidc_provider_arn=provider_arn, stacks=tuple(targets))


def _target(
    stack: str,
    entry: Mapping[str, Any],
    default_region: str | None,
    prefix: str,
    problem: Callable[[str, str], None],
) -> StackTarget | None:
    for unknown in sorted(set(entry) - set(_STACK_KEYS)):
        problem(f"{prefix}.{unknown}", f"is not a known key; known keys: {', '.join(_STACK_KEYS)}")
    checks = {
        "name": (_NAME, "the stack's name key ([a-z][a-z0-9-], at most 40 characters)"),
        "region": (_REGION, "an AWS region such as eu-west-1"),
        "environment": (_ENVIRONMENT, "a GitHub environment name"),
        "domain": (_DOMAIN, "a lower-case domain name (the stack's domain.name)"),
        "webAclArn": (_WEB_ACL_ARN, "a regional WAFv2 web ACL ARN (the stack's api.webAclArn)"),
    }
    values: dict[str, str | None] = {
        "name": entry.get("name"),
        "region": entry.get("region", default_region),
        "environment": entry.get("environment", stack),
        "domain": entry.get("domain"),
        "webAclArn": entry.get("webAclArn"),
    }
    ok = True
    for key, (pattern, what) in checks.items():
        value = values[key]
        required = key in {"name", "region", "environment"}
        if value is None and not required:
            continue
        if not isinstance(value, str) or not pattern.match(value):
            problem(f"{prefix}.{key}", f"is {value!r}; set it to {what}")
            ok = False
    if not ok:
        return None
    return StackTarget(
        stack=stack,
        name=str(values["name"]),
        region=str(values["region"]),
        environment=str(values["environment"]),
        domain=values["domain"],
        web_acl_arn=values["webAclArn"],
    )
