"""What the deployed function and its runtime (runtime/streaming_proxy) agree on.

The function's environment is the runtime's only input (runtime/streaming_proxy/settings.py
reads it); the image (runtime/Dockerfile) links LibreChat's writable paths into the
directories below. tests/test_contract.py loads every committed stack's environment through
the runtime's own `settings.load()`, and tests/test_dockerfile.py checks the image against
these constants.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

#: How the runtime starts LibreChat (the API image's server entry point) and checks it.
UPSTREAM_COMMAND = "node /app/api/server/index.js"
UPSTREAM_PORT = 3080
UPSTREAM_HEALTH_PATH = "/health"
#: Where the runtime writes the config object (and tells LibreChat to read it).
CONFIG_PATH = "/tmp/librechat.yaml"  # noqa: S108 - Lambda's only writable directory
#: LibreChat's log directory; the image links /app/api/logs and /app/logs here.
LIBRECHAT_LOG_DIR = "/tmp/librechat/logs"  # noqa: S108
#: Directories the runtime creates at cold start (its UPSTREAM_DIRS default): the image's
#: symlinks for LibreChat's writable paths point into them, and Lambda's /tmp starts empty.
WRITABLE_DIRS = ("/tmp/librechat/uploads", "/tmp/librechat/images", LIBRECHAT_LOG_DIR)  # noqa: S108
#: The path the runtime answers itself with a paced event stream (its STREAM_CHECK_PATH
#: default, runtime/streaming_proxy/stream_check.py); `make smoke` reads it after a deploy.
STREAM_CHECK_PATH = "/_runtime/stream-check"
#: The CloudWatch namespace of the metrics in the runtime's log lines (its metrics.NAMESPACE);
#: components/monitoring.py alarms on them.
METRICS_NAMESPACE = "LibreChatLambda"

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
        "NODE_ENV": None,
        "LIBRECHAT_LOG_DIR": None,
    }
)
