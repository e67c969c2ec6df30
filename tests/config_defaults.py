"""Component settings as a stack that leaves them unset gets them, read from the config schema
so that tests building component args do not re-spell its defaults."""

from __future__ import annotations

from typing import Any

from components.config import ApiConfig, ComputeConfig, FunctionConfig, RuntimeConfig, SecretsConfig

_FUNCTION = FunctionConfig()
_API = ApiConfig()


def function_settings() -> dict[str, Any]:
    """`LambdaFunctionArgs` keywords taken from the defaults of the sections they come from."""
    keys = ("architecture", "memory_mb", "timeout_seconds", "ephemeral_storage_mb",
            "log_retention_days", "tracing", "provisioned_concurrency")  # fmt: skip
    return {key: getattr(_FUNCTION, key) for key in keys} | {
        "secrets_mode": SecretsConfig().mode,
        "snap_start": ComputeConfig().snap_start,
        "runtime": RuntimeConfig(),
    }


def api_settings() -> dict[str, Any]:
    """`StreamingApiArgs` keywords taken from the `api` section's defaults (the access log
    retention falls back to the function's, as the program does)."""
    keys = ("stage_name", "endpoint_type", "throttling_burst_limit", "throttling_rate_limit")
    return {key: getattr(_API, key) for key in keys} | {
        "binary_media_types": list(_API.binary_media_types),
        "log_retention_days": _API.log_retention_days or _FUNCTION.log_retention_days,
        "access_logging": _API.access_logging,
    }
