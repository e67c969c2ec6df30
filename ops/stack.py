"""A stack's validated configuration, read from `Pulumi.<stack>.yaml` by the program's parser.

The ops tools run without the Pulumi engine, so they hand the stack file's `config:` map to
the same parser `__main__.py` uses (components/config.py); nothing here validates a key.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from components.config import PROJECT, StackConfig, parse

ROOT = Path(__file__).resolve().parent.parent


def load_stack(stack: str, root: Path = ROOT) -> StackConfig:
    """Raises FileNotFoundError for a missing file, ConfigError listing every bad key."""
    values = (yaml.safe_load((root / f"Pulumi.{stack}.yaml").read_text()) or {}).get("config")
    values = values or {}
    prefix = f"{PROJECT}:"
    raw = {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}
    return parse(raw, stack=stack, region=values.get("aws:region"))
