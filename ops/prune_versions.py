"""Delete a stack function's old published versions, keeping the newest few.

    make prune-versions STACK=dev [KEEP=3] [DRY_RUN=1]

With `publish=True` (SnapStart, provisioned concurrency) the AWS provider publishes a new
version whenever the image or the function's configuration changes, and Pulumi never deletes
one: its state holds the function and the alias, not the versions behind them. With SnapStart
every version's snapshot is billed for as long as the version exists (docs/compute-modes.md,
SnapStart), so this keeps the newest `--keep` versions and every version an alias points at,
also through weighted routing, and deletes the others. Nothing in the Pulumi state refers to
a deleted version, so the next `pulumi up` sees no drift. Run it after each deploy.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from typing import Any

import boto3

from components.config import ConfigError
from components.names import function_name
from ops.stack import load_stack

#: Versions kept by default: the live one and two to roll the alias back to.
DEFAULT_KEEP = 3


def published_versions(lam: Any, function_name: str) -> list[int]:
    """Every numbered version of the function, oldest first ($LATEST is not one)."""
    versions: list[int] = []
    for page in lam.get_paginator("list_versions_by_function").paginate(FunctionName=function_name):
        versions += [int(v["Version"]) for v in page["Versions"] if v["Version"].isdigit()]
    return sorted(versions)


def aliased_versions(lam: Any, function_name: str) -> set[int]:
    """Versions an alias points at, or routes a share of its traffic to."""
    found: set[int] = set()
    for page in lam.get_paginator("list_aliases").paginate(FunctionName=function_name):
        for alias in page["Aliases"]:
            targets = [alias["FunctionVersion"]]
            targets += list((alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights", {}))
            found |= {int(t) for t in targets if t.isdigit()}
    return found


def to_delete(versions: list[int], aliased: set[int], keep: int) -> list[int]:
    """The versions older than the newest `keep` that no alias needs."""
    kept = set(versions[-keep:]) | aliased
    return [v for v in versions if v not in kept]


def prune(lam: Any, function_name: str, keep: int, dry_run: bool = False) -> list[int]:
    """Delete (or, dry, only name) the versions `to_delete` picks; returns them."""
    if keep < 1:
        raise ValueError("keep at least 1 version: the alias serves the newest")
    versions = published_versions(lam, function_name)
    doomed = to_delete(versions, aliased_versions(lam, function_name), keep)
    for version in doomed:
        if not dry_run:
            lam.delete_function(FunctionName=function_name, Qualifier=str(version))
        print(f"{'would delete' if dry_run else 'deleted'} {function_name}:{version}")
    print(f"{function_name}: {len(versions) - len(doomed)} of {len(versions)} versions kept")
    return doomed


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", "-s", required=True, help="the stack (Pulumi.<stack>.yaml)")
    parser.add_argument(
        "--keep", type=int, default=DEFAULT_KEEP, help=f"newest versions kept ({DEFAULT_KEEP})"
    )
    parser.add_argument("--dry-run", action="store_true", help="name the versions, delete none")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.keep < 1:
        parser.error("--keep must be at least 1: the alias serves the newest version")
    try:
        stack = load_stack(args.stack)
    except FileNotFoundError:
        print(f"stack file Pulumi.{args.stack}.yaml does not exist", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"stack configuration: {exc}", file=sys.stderr)
        return 2
    name = function_name(stack.config.name, managed=stack.config.compute.managed)
    lam = boto3.Session(region_name=stack.region).client("lambda")
    prune(lam, name, args.keep, dry_run=args.dry_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
