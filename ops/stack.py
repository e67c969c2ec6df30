"""A stack's validated configuration, read from `Pulumi.<stack>.yaml` by the program's schema.

The ops tools run without the Pulumi engine, so they hand the stack file's `config:` map to
the schema `__main__.py` reads through (components/config/); nothing here validates a key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from components.config import PROJECT, StackConfig, parse

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class StackFile:
    stack: str
    region: str | None
    """`aws:region`: the provider's key, not one of the program's."""
    config: StackConfig


def load_stack(stack: str, root: Path = ROOT) -> StackFile:
    """Raises FileNotFoundError for a missing file, ConfigError listing every bad key."""
    values = (yaml.safe_load((root / f"Pulumi.{stack}.yaml").read_text()) or {}).get("config")
    values = values or {}
    prefix = f"{PROJECT}:"
    raw = {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}
    return StackFile(stack, values.get("aws:region"), parse(raw, stack=stack))
