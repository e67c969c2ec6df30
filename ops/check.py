"""Check a stack file offline: `make check STACK=x` says plainly whether `Pulumi.x.yaml` is valid.

No AWS, no Pulumi backend, no network: the file is read as the Pulumi CLI would hand it to the
program, every key of the project's namespace goes through the program's own schema
(components/config/), and every other key must be one the program or its providers read. A key
in the wrong namespace (`librechat_lambda:tags`, `aws:regin`) is silently ignored by Pulumi, so
its value would be lost: here it is a problem, with the key it was probably meant to be.

A valid stack then gets the list of what a person still has to do before CI previews and
deploys it (roles, GitHub variables and environment, the deploy job); those cannot be seen
offline, so they are `todo` lines, not problems. `make preflight` checks the account.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.config import PROJECT, ConfigError, StackConfig, parse
from components.names import default_name, deploy_role_name, preview_role_name

ROOT = Path(__file__).resolve().parent.parent
#: Provider packages whose config namespaces a stack file may use; their keys are read from
#: the installed package, so the list follows the provider's version.
PROVIDERS = {"aws": "pulumi_aws", "docker": "pulumi_docker"}
#: Top-level keys of a stack file besides `config`.
STACK_FILE_KEYS = {"config", "encryptionsalt", "secretsprovider", "encryptedkey", "environment"}
#: Keys the Pulumi engine itself reads from a stack's config.
ENGINE_KEYS = {"pulumi:disable-default-providers"}
ENCRYPTED_STANDIN = "encrypted-not-checked-offline"


@dataclass
class Report:
    """What the check found: problems make the stack invalid, todos are a person's next steps."""

    oks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    todos: list[str] = field(default_factory=list)


def provider_keys(package: str) -> set[str]:
    """The config keys a provider package reads (`__config__.get...('key')` in config/vars.py)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return set()
    source = Path(next(iter(spec.submodule_search_locations))) / "config" / "vars.py"
    if not source.exists():
        return set()
    return set(re.findall(r"__config__\.get\w*\('(\w+)'", source.read_text()))


def project_keys() -> set[str]:
    return {field.alias or name for name, field in StackConfig.model_fields.items()}


def known_keys() -> dict[str, set[str]]:
    keys = {PROJECT: project_keys()}
    keys |= {namespace: provider_keys(package) for namespace, package in PROVIDERS.items()}
    return keys


def namespace_problems(config: Mapping[str, Any], known: Mapping[str, set[str]]) -> list[str]:
    """Keys no namespace the program reads knows, each with the key it was probably meant as."""
    every = [f"{ns}:{key}" for ns, keys in known.items() for key in sorted(keys)]
    problems = []
    for full_key in config:
        namespace, colon, key = str(full_key).partition(":")
        if not colon:
            problems.append(f"{full_key}: a config key needs a namespace, e.g. {PROJECT}:{key}")
            continue
        if namespace == PROJECT or key in known.get(namespace, ()):
            continue  # the project's own keys: the schema names an unknown one
        if str(full_key) in ENGINE_KEYS:
            continue
        guess = difflib.get_close_matches(str(full_key), every, n=1, cutoff=0.75)
        hint = f"; did you mean {guess[0]}?" if guess else ""
        if namespace in known:
            problems.append(f"{full_key}: not a key of the {namespace} provider{hint}")
        else:
            problems.append(
                f"{full_key}: namespace '{namespace}' is read by no part of this program, so "
                f"Pulumi would ignore this value{hint}"
            )
    return problems


def _without_secrets(value: Any) -> tuple[Any, int]:
    """`value` with every `{secure: …}` leaf (encrypted by Pulumi) replaced by a placeholder."""
    if isinstance(value, Mapping):
        if set(value) == {"secure"}:
            return ENCRYPTED_STANDIN, 1
        pairs = {k: _without_secrets(v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, sum(n for _, n in pairs.values())
    if isinstance(value, list):
        items = [_without_secrets(v) for v in value]
        return [v for v, _ in items], sum(n for _, n in items)
    return value, 0


def other_names(stack: str, root: Path) -> dict[str, str]:
    """`name` of every other stack file (the default for files that give none)."""
    names = {}
    for path in sorted(root.glob("Pulumi.*.yaml")):
        other = path.name.split(".")[1]
        if other == stack:
            continue
        config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
        names[other] = str(config.get(f"{PROJECT}:name", default_name(other)))
    return names


def check(stack: str, root: Path = ROOT) -> Report:
    report = Report()
    path = root / f"Pulumi.{stack}.yaml"
    if not path.exists():
        found = ", ".join(p.name for p in sorted(root.glob("Pulumi.*.yaml")))
        report.problems.append(f"{path.name} does not exist (stack files here: {found})")
        return report
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        report.problems.append(f"{path.name} is not valid YAML{where}")
        return report
    if not isinstance(document, Mapping) or not isinstance(document.get("config", {}), Mapping):
        report.problems.append(f"{path.name} must be a map with a `config:` map")
        return report
    for unknown in sorted(set(document) - STACK_FILE_KEYS):
        report.problems.append(f"{unknown}: not a key of a stack file (keys go under config:)")
    config: Mapping[str, Any] = document.get("config") or {}
    report.problems += namespace_problems(config, known_keys())

    prefix = f"{PROJECT}:"
    raw, secrets = _without_secrets(
        {k[len(prefix) :]: v for k, v in config.items() if k.startswith(prefix)}
    )
    try:
        parsed = parse(raw, stack=stack, environment_is_secret="environment" in raw and secrets > 0)
    except ConfigError as error:
        report.problems += error.problems
        return report
    unchecked = f" ({secrets} encrypted value(s) not checked offline)" if secrets else ""
    report.oks.append(f"{len(raw)} {PROJECT} keys valid against the program's schema{unchecked}")
    region = config.get("aws:region")
    if region is None:
        report.problems.append(
            "aws:region is not set: the stack would deploy to whatever region the deploying "
            "credentials default to; set it (pulumi config set aws:region eu-west-1)"
        )
    else:
        report.oks.append(f"aws:region {region}")
    for other, name in other_names(stack, root).items():
        if name == parsed.name:
            report.problems.append(
                f"{PROJECT}:name {name!r} is also the name of stack {other}: the two would "
                "share a function, repository and log group; give this stack its own"
            )
    if not report.problems:
        report.oks.append(f"{PROJECT}:name {parsed.name} (no other stack uses it)")
        report.todos += list(ci_todos(stack, parsed.name, str(region), root))
    return report


def ci_todos(stack: str, name: str, region: str, root: Path) -> Iterator[str]:
    """What a person does once per stack so CI previews and deploys it (nothing here can see
    whether it is done: GitHub and AWS are not reachable offline)."""
    suffix = re.sub(r"[^A-Z0-9]", "_", stack.upper())
    yield (
        f"CI roles: run `pulumi up` in ci/ (it serves every Pulumi.<stack>.yaml): it creates "
        f"{preview_role_name(name)} and {deploy_role_name(name)}"
    )
    yield (
        f'preview: gh variable set AWS_PREVIEW_ROLE_ARN_{suffix} --body "arn:aws:iam::<account>:'
        f'role/{preview_role_name(name)}"  (and AWS_REGION_{suffix} --body {region} if it '
        "differs from AWS_REGION); give the Pulumi preview team Stack Read on the stack"
    )
    yield (
        f"deploy: create the GitHub environment {stack}, deployable from main only, with "
        f'gh variable set AWS_DEPLOY_ROLE_ARN --env {stack} --body "arn:aws:iam::<account>:'
        f'role/{deploy_role_name(name)}" and gh secret set PULUMI_DEPLOY_TOKEN --env {stack} '
        "(docs/deploying.md, step 4)"
    )
    deploy = yaml.safe_load((root / ".github" / "workflows" / "deploy.yml").read_text())
    if stack not in (deploy.get("jobs") or {}):
        yield (
            f"deploy: add a `{stack}:` job to .github/workflows/deploy.yml (copy `dev:`, with "
            f"`stack: {stack}` and a `needs:` to order it); until then it is previewed only"
        )


def main(argv: list[str] | None = None, root: Path = ROOT) -> int:
    parser = argparse.ArgumentParser(prog="make check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="the stack: checks Pulumi.<stack>.yaml")
    args = parser.parse_args(argv)
    report = check(args.stack, root)
    file = f"Pulumi.{args.stack}.yaml"
    print(f"check {file} (offline: the stack file only; make preflight checks the account)")
    for line in report.oks:
        print(f"ok       {line}")
    for line in report.problems:
        print(f"PROBLEM  {line}")
    if report.problems:
        count = len(report.problems)
        print(f"{file} is NOT valid: {count} problem{'s' if count > 1 else ''}")
        return 1
    print(f"{file} is valid.")
    if report.todos:
        print("\nOnce per stack, a person gives CI what it needs (skip what is done):")
        for line in report.todos:
            print(f"todo     {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
