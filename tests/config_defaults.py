"""Component settings as a stack that leaves them unset gets them, read from the config schema
so that tests building component args do not re-spell its defaults."""

from __future__ import annotations

from typing import Any

from components.config import ApiConfig, FunctionConfig

_FUNCTION = FunctionConfig()
_API = ApiConfig()


def function_settings() -> dict[str, Any]:
    """`LambdaFunctionArgs` keywords taken from the `function` section's defaults."""
    keys = ("architecture", "memory_mb", "timeout_seconds", "ephemeral_storage_mb")
    return {key: getattr(_FUNCTION, key) for key in keys} | {
        "log_retention_days": _FUNCTION.log_retention_days
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
