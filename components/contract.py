"""What the deployed function and its runtime (runtime/streaming_proxy) agree on.

The function's environment is the runtime's only input; the runtime declares each variable
with its default once (runtime/streaming_proxy/variables.py), and the values below are taken
from there. The image (runtime/Dockerfile) links LibreChat's writable paths into
`WRITABLE_DIRS`; tests/test_dockerfile.py checks the image against them.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from types import MappingProxyType

from streaming_proxy.metrics import NAMESPACE as METRICS_NAMESPACE
from streaming_proxy.stream_check import STREAM_CHECK_TOKEN, TOKEN_HEADER
from streaming_proxy.variables import Env

__all__ = [
    "CONFIG_PATH",
    "FIXED_ENVIRONMENT",
    "LIBRECHAT_LOG_DIR",
    "METRICS_NAMESPACE",
    "SET_BY_PROGRAM",
    "STREAM_CHECK_PATH",
    "STREAM_CHECK_TOKEN",
    "TOKEN_HEADER",
    "UPSTREAM_COMMAND",
    "UPSTREAM_HEALTH_PATH",
    "UPSTREAM_PORT",
    "WRITABLE_DIRS",
]

#: How the runtime starts LibreChat (the API image's server entry point) and checks it.
UPSTREAM_COMMAND = shlex.join(Env.UPSTREAM_COMMAND.default_value)
UPSTREAM_PORT = Env.UPSTREAM_PORT.default_value
UPSTREAM_HEALTH_PATH = Env.UPSTREAM_HEALTH_PATH.default_value
#: Where the runtime writes the config object (and tells LibreChat to read it).
CONFIG_PATH = Env.CONFIG_PATH.default_value
#: Directories the runtime creates at cold start: the image's symlinks for LibreChat's
#: writable paths point into them, and Lambda's /tmp starts empty.
WRITABLE_DIRS = Env.UPSTREAM_DIRS.default_value
#: LibreChat's log directory (one of them); the image links /app/api/logs and /app/logs here.
LIBRECHAT_LOG_DIR = next(d for d in WRITABLE_DIRS if d.endswith("/logs"))
#: The path the runtime answers itself with a paced event stream; `make smoke` reads it.
STREAM_CHECK_PATH = Env.STREAM_CHECK_PATH.default_value
# METRICS_NAMESPACE: the CloudWatch namespace of the runtime's metrics; components/monitoring.py
# alarms on them.

#: Set on every function: production mode, and LibreChat's log directory on the writable /tmp.
FIXED_ENVIRONMENT: Mapping[str, str] = MappingProxyType(
    {"NODE_ENV": "production", "LIBRECHAT_LOG_DIR": LIBRECHAT_LOG_DIR}
)

#: Every variable the program puts in the function's environment itself, by the stack key it
#: comes from (None: a fixed value); naming one in `environment` is a configuration error.
SET_BY_PROGRAM: Mapping[str, str | None] = MappingProxyType(
    {
        "UPSTREAM_COMMAND": None,
        "UPSTREAM_PORT": None,
        "UPSTREAM_HEALTH_PATH": None,
        "UPSTREAM_READY_TIMEOUT": "runtime.readyTimeoutSeconds",
        "SSE_KEEPALIVE_INTERVAL": "runtime.sseKeepaliveSeconds",
        "STREAM_IDLE_TIMEOUT": "runtime.streamIdleTimeoutSeconds",
        "BACKGROUND_TITLE_WAIT": "runtime.titleWaitSeconds",
        "BACKGROUND_HOLD": "runtime.backgroundHold",
        "LOG_LEVEL": "runtime.logLevel",
        "CONFIG_S3_BUCKET": "librechatConfig.s3Uri",
        "CONFIG_S3_KEY": "librechatConfig.s3Uri",
        "CONFIG_PATH": "librechatConfig.s3Uri",
        "CONFIG_DOMAIN_FROM": "librechatConfig.domainFrom",
        "BASE_PATH": "domain.basePath",
        "SSM_SECRETS": "secrets.parameters (secrets.mode runtime)",
        "STREAM_CHECK_PATH": "api.streamCheckTokenParameter",
        "NODE_ENV": None,
        "LIBRECHAT_LOG_DIR": None,
    }
)
