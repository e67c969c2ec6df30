"""Stack configuration as the Pulumi CLI hands it to a program, built from `Pulumi.<stack>.yaml`.

The CLI passes every key as `project:key` (or `aws:key`) with a string value; objects and
lists arrive as JSON text, booleans as `true`/`false`. Tests install this with
`pulumi.runtime.set_all_config` so the program reads the committed stack file exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
#: Every committed stack, from its `Pulumi.<stack>.yaml`.
STACKS = tuple(sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml")))


def stack_file(stack: str) -> dict[str, Any]:
    """The `config:` map of `Pulumi.<stack>.yaml`, as YAML values."""
    return yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]


def cli_config(stack: str, **overrides: Any) -> dict[str, str]:
    """`Pulumi.<stack>.yaml` as the CLI's config map; `overrides` replace `project:` keys."""
    values = stack_file(stack)
    for key, value in overrides.items():
        values[f"librechat-lambda:{key}"] = value
    return {key: _cli_value(value) for key, value in values.items() if value is not None}


def _cli_value(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
