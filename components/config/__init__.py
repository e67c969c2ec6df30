"""Stack configuration, read once and validated before any resource is declared.

The schema is declared once, one model per section (a module each, beside this one): every
key's type, default, bounds and description live on its field, and docs/configuration.md's table is
generated from them (`make docs`). `load()` reads `pulumi.Config` into a frozen
`StackConfig`; every problem is reported at once in one `ConfigError`, each line naming the key
as `pulumi config set --path` spells it. Checks that span keys run once those keys are valid.
AWS's naming rules live in `components.aws_rules`, shared with the components.

Adding a key: a field on its section's model (alias, default, bounds and description in one
place), then `make docs`. Adding a section: a module with a `Section` subclass and a field on
`StackConfig`.
"""

from components.config.api import ApiConfig
from components.config.compute import ComputeConfig
from components.config.domain import DomainConfig
from components.config.errors import ConfigError
from components.config.function import FunctionConfig
from components.config.image import ImageConfig
from components.config.librechat import LibreChatConfig
from components.config.monitoring import MonitoringConfig
from components.config.network import NetworkConfig
from components.config.runtime import RuntimeConfig
from components.config.secrets import SecretsConfig
from components.config.stack import PROJECT, StackConfig, load, parse

__all__ = [
    "PROJECT",
    "ApiConfig",
    "ComputeConfig",
    "ConfigError",
    "DomainConfig",
    "FunctionConfig",
    "ImageConfig",
    "LibreChatConfig",
    "MonitoringConfig",
    "NetworkConfig",
    "RuntimeConfig",
    "SecretsConfig",
    "StackConfig",
    "load",
    "parse",
]
