"""Settings read once from the environment; the rest of the runtime never touches os.environ."""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SSM_NAME = re.compile(r"^(/[A-Za-z0-9_.\-]+)+$|^[A-Za-z0-9_.\-]+$|^arn:aws[a-z-]*:ssm:.+$")


# Where the image links LibreChat's writable paths (uploads, images, logs): /tmp starts empty.
DEFAULT_DIRS = "/tmp/librechat/uploads:/tmp/librechat/images:/tmp/librechat/logs"  # noqa: S108
# What Lambda Managed Instances set in the environment: the initialization type (AWS's own
# emulator, aws/aws-lambda-runtime-interface-emulator internal/lambda-managed-instances/interop/
# model.go, InitializationType) and the concurrency limit, which "Managed Instances can accept
# concurrent /next and /response requests up to" (docs.aws.amazon.com/lambda/latest/dg/
# runtimes-api.html); standard Lambda sets neither.
MANAGED_INSTANCES_INIT_TYPE = "lambda-managed-instances"
# ... and what SnapStart sets (snapstart-runtime-hooks-custom.html): snapstart.py runs its steps.
SNAP_START_INIT_TYPE = "snap-start"


# What the upstream does not inherit: Lambda's Runtime API (a child could take other
# invocations' events from /next) and plumbing, and the runtime's own variables (the table in
# __init__.py), except DOMAIN_SERVER, CONFIG_PATH and AWS_LAMBDA_FUNCTION_NAME (Lambda's own,
# which the AWS SDKs in LibreChat read too).
RUNTIME_ONLY = frozenset(
    {
        "AWS_LAMBDA_RUNTIME_API",
        "_HANDLER",
        "LAMBDA_RUNTIME_DIR",
        "AWS_LAMBDA_MAX_CONCURRENCY",
        "UPSTREAM_COMMAND",
        "UPSTREAM_HOST",
        "UPSTREAM_PORT",
        "UPSTREAM_HEALTH_PATH",
        "UPSTREAM_READY_TIMEOUT",
        "UPSTREAM_INIT_WAIT",
        "UPSTREAM_DIRS",
        "CONFIG_S3_BUCKET",
        "CONFIG_S3_KEY",
        "CONFIG_DOMAIN_FROM",
        "SSM_SECRETS",
        "BASE_PATH",
        "SSE_KEEPALIVE_INTERVAL",
        "DEADLINE_MARGIN",
        "BACKGROUND_HOLD",
        "BACKGROUND_HOLD_PATH",
        "BACKGROUND_STATUS_PATH",
        "BACKGROUND_POLL_INTERVAL",
        "BACKGROUND_TITLE_WAIT",
        "STREAM_IDLE_TIMEOUT",
        "STREAM_CHECK_PATH",
        "LOG_LEVEL",
    }
)

# The runtime's own diagnostic stream (stream_check.py); STREAM_CHECK_PATH="" switches it off.
DEFAULT_STREAM_CHECK_PATH = "/_runtime/stream-check"


class SettingsError(ValueError):
    """The environment is wrong; the message lists every problem by variable name."""


@dataclass(frozen=True)
class Settings:
    runtime_api: str
    max_concurrency: int
    upstream_command: tuple[str, ...]
    upstream_host: str
    upstream_port: int
    health_path: str
    ready_timeout: float
    config_bucket: str | None
    config_key: str | None
    config_path: str
    config_domain_from: str | None
    domain_server_host: str | None
    ssm_secrets: Mapping[str, str]
    base_path: str
    sse_keepalive_interval: float
    deadline_margin: float
    background_hold: bool
    background_hold_path: re.Pattern[str]
    background_status_path: str
    background_poll_interval: float
    log_level: str
    init_budget: float
    upstream_dirs: tuple[str, ...]
    stream_idle_timeout: float
    background_title_wait: float
    managed_instances: bool
    stream_check_path: str
    function_name: str
    snap_start: bool

    @property
    def fetches_anything(self) -> bool:
        return bool(self.config_bucket or self.ssm_secrets)


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from the environment, collecting every problem before failing."""
    env = os.environ if env is None else env
    problems: list[str] = []

    def text(name: str, default: str | None = None) -> str | None:
        value = env.get(name, "").strip()
        return value or default

    def number(name: str, default: float, low: float, high: float) -> float:
        raw = text(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            problems.append(f"{name}={raw!r} is not a number")
            return default
        if not low <= value <= high:
            problems.append(f"{name}={raw!r} must be between {low:g} and {high:g}")
            return default
        return value

    runtime_api = text("AWS_LAMBDA_RUNTIME_API")
    if runtime_api is None:
        problems.append("AWS_LAMBDA_RUNTIME_API is not set (Lambda sets it; the emulator does too)")
    elif not runtime_api.rpartition(":")[2].isdigit():
        problems.append("AWS_LAMBDA_RUNTIME_API must be host:port")

    command = text("UPSTREAM_COMMAND", "node /app/api/server/index.js") or ""
    try:
        argv = tuple(shlex.split(command))
    except ValueError as exc:
        problems.append(f"UPSTREAM_COMMAND cannot be parsed as a command line: {exc}")
        argv = ()
    if not argv and not any(p.startswith("UPSTREAM_COMMAND") for p in problems):
        problems.append("UPSTREAM_COMMAND is empty")

    health_path = text("UPSTREAM_HEALTH_PATH", "/health") or "/health"
    if not health_path.startswith("/"):
        problems.append(f"UPSTREAM_HEALTH_PATH={health_path!r} must start with '/'")

    bucket, key = text("CONFIG_S3_BUCKET"), text("CONFIG_S3_KEY")
    if bool(bucket) != bool(key):
        problems.append("CONFIG_S3_BUCKET and CONFIG_S3_KEY must be set together")

    domain_from = text("CONFIG_DOMAIN_FROM")
    domain_server = text("DOMAIN_SERVER")
    server_host = _host_of(domain_server) if domain_server else None
    if domain_from and not server_host:
        problems.append("CONFIG_DOMAIN_FROM is set but DOMAIN_SERVER (the replacement) is not")

    secrets = _ssm_secrets(text("SSM_SECRETS"), problems)

    base_path = (text("BASE_PATH", "") or "").rstrip("/")
    if base_path and not base_path.startswith("/"):
        base_path = "/" + base_path

    hold = (text("BACKGROUND_HOLD", "on") or "on").lower()
    if hold not in {"on", "off", "true", "false", "1", "0"}:
        problems.append(f"BACKGROUND_HOLD={hold!r} must be on or off")
    hold_path_raw = text("BACKGROUND_HOLD_PATH", r"^/api/agents/chat(/[^/]+)?$") or ""
    try:
        hold_path = re.compile(hold_path_raw)
    except re.error as exc:
        problems.append(f"BACKGROUND_HOLD_PATH is not a valid regular expression: {exc}")
        hold_path = re.compile(r"(?!)")
    status_path = text("BACKGROUND_STATUS_PATH", "/api/agents/chat/status/{id}") or ""
    if "{id}" not in status_path:
        problems.append("BACKGROUND_STATUS_PATH must contain {id} (the conversation id)")
    title_wait = number("BACKGROUND_TITLE_WAIT", 20.0, 0.0, 300.0)
    if env.get("TITLE_CONVO", "true").strip().lower() != "true":
        title_wait = 0.0  # LibreChat then generates no titles (isEnabled(TITLE_CONVO))

    log_level = (text("LOG_LEVEL", "INFO") or "INFO").upper()
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        problems.append(f"LOG_LEVEL={log_level!r} must be DEBUG, INFO, WARNING or ERROR")

    stream_check_path = env.get("STREAM_CHECK_PATH", DEFAULT_STREAM_CHECK_PATH).strip()
    if stream_check_path and not stream_check_path.startswith("/"):
        problems.append(
            f"STREAM_CHECK_PATH={stream_check_path!r} must start with '/' (or be empty: off)"
        )

    settings = Settings(
        runtime_api=runtime_api or "",
        max_concurrency=int(number("AWS_LAMBDA_MAX_CONCURRENCY", 1, 1, 1024)),
        upstream_command=argv,
        upstream_host=text("UPSTREAM_HOST", "127.0.0.1") or "127.0.0.1",
        upstream_port=int(number("UPSTREAM_PORT", 3080, 1, 65535)),
        health_path=health_path,
        ready_timeout=number("UPSTREAM_READY_TIMEOUT", 60.0, 0.1, 900.0),
        config_bucket=bucket,
        config_key=key,
        config_path=text("CONFIG_PATH", "/tmp/librechat.yaml") or "/tmp/librechat.yaml",  # noqa: S108
        config_domain_from=domain_from,
        domain_server_host=server_host,
        ssm_secrets=secrets,
        base_path=base_path,
        sse_keepalive_interval=number("SSE_KEEPALIVE_INTERVAL", 20.0, 0.0, 900.0),
        deadline_margin=number("DEADLINE_MARGIN", 0.5, 0.0, 60.0),
        background_hold=hold in {"on", "true", "1"},
        background_hold_path=hold_path,
        background_status_path=status_path,
        background_poll_interval=number("BACKGROUND_POLL_INTERVAL", 0.5, 0.01, 60.0),
        log_level=log_level,
        init_budget=number("UPSTREAM_INIT_WAIT", 9.5, 0.0, 10.0),
        upstream_dirs=tuple(
            d for d in env.get("UPSTREAM_DIRS", DEFAULT_DIRS).split(":") if d.strip()
        ),
        stream_idle_timeout=number("STREAM_IDLE_TIMEOUT", 120.0, 0.0, 900.0),
        background_title_wait=title_wait,
        managed_instances=env.get("AWS_LAMBDA_INITIALIZATION_TYPE") == MANAGED_INSTANCES_INIT_TYPE
        or "AWS_LAMBDA_MAX_CONCURRENCY" in env,
        stream_check_path=stream_check_path,
        function_name=text("AWS_LAMBDA_FUNCTION_NAME", "local") or "local",
        snap_start=env.get("AWS_LAMBDA_INITIALIZATION_TYPE") == SNAP_START_INIT_TYPE,
    )
    if problems:
        raise SettingsError("Invalid runtime environment: " + "; ".join(problems))
    return settings


def _host_of(url: str) -> str:
    """Host (and port) of DOMAIN_SERVER, which may be given with or without a scheme."""
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[0]


def _ssm_secrets(raw: str | None, problems: list[str]) -> dict[str, str]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        problems.append(f"SSM_SECRETS is not valid JSON: {exc.msg} at position {exc.pos}")
        return {}
    if not isinstance(value, dict):
        problems.append('SSM_SECRETS must be a JSON object {"ENV_NAME": "/ssm/parameter/name"}')
        return {}
    secrets: dict[str, str] = {}
    for env_name, param in value.items():
        if not _ENV_NAME.match(env_name):
            problems.append(
                f"SSM_SECRETS key {env_name!r} is not a valid environment variable name"
            )
        elif not isinstance(param, str) or not _SSM_NAME.match(param):
            problems.append(f"SSM_SECRETS[{env_name!r}] is not an SSM parameter name: {param!r}")
        else:
            secrets[env_name] = param
    return secrets
