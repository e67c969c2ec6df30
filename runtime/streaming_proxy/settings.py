"""Settings read once from the environment; the rest of the runtime never touches os.environ."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from streaming_proxy.variables import RUNTIME_ONLY, Env, Invalid, RedisUrl, Variable

T = TypeVar("T")

__all__ = ["MANAGED_INSTANCES_INIT_TYPE", "RUNTIME_ONLY", "Settings", "SettingsError", "load"]

# What Lambda Managed Instances set in the environment: the initialization type (AWS's own
# emulator, aws/aws-lambda-runtime-interface-emulator internal/lambda-managed-instances/interop/
# model.go, InitializationType) and the concurrency limit, which "Managed Instances can accept
# concurrent /next and /response requests up to" (docs.aws.amazon.com/lambda/latest/dg/
# runtimes-api.html); standard Lambda sets neither.
MANAGED_INSTANCES_INIT_TYPE = "lambda-managed-instances"
# ... and what SnapStart sets (snapstart-runtime-hooks-custom.html): snapstart.py runs its steps.
SNAP_START_INIT_TYPE = "snap-start"


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
    stream_relay: bool
    stream_relay_redis: str | None
    stream_relay_retention: float
    stream_relay_max_events: int
    stream_relay_heartbeat: float
    snap_start: bool
    stream_check_token: str | None = None
    """The stream check's token: SSM_SECRETS' `STREAM_CHECK_TOKEN`, read at cold start and kept
    from LibreChat (main.py); None: the check asks for none (local runs, the emulator)."""

    @property
    def fetches_anything(self) -> bool:
        return bool(self.config_bucket or self.ssm_secrets)

    @property
    def carries_streams(self) -> bool:
        """Whether the runtime carries resumable streams between environments (resumable.py):
        where environments freeze (standard Lambda) and the relay has a Redis."""
        return (
            self.stream_relay
            and bool(self.stream_relay_redis)
            and self.background_hold
            and not self.managed_instances
        )


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from the environment (variables.py declares each variable), collecting
    every problem before failing."""
    env = os.environ if env is None else env
    problems: list[str] = []

    def read(variable: Variable[T]) -> T:
        value = variable.read(env, problems)
        assert value is not None, f"{variable} has a default"
        return value

    runtime_api = Env.AWS_LAMBDA_RUNTIME_API.read(env, problems)
    if Env.AWS_LAMBDA_RUNTIME_API.raw(env) is None:
        problems.append("AWS_LAMBDA_RUNTIME_API is not set (Lambda sets it; the emulator does too)")
    argv = Env.UPSTREAM_COMMAND.read(env, problems) or ()

    bucket = Env.CONFIG_S3_BUCKET.read(env, problems)
    key = Env.CONFIG_S3_KEY.read(env, problems)
    if bool(bucket) != bool(key):
        problems.append("CONFIG_S3_BUCKET and CONFIG_S3_KEY must be set together")

    domain_from = Env.CONFIG_DOMAIN_FROM.read(env, problems)
    domain_server = Env.DOMAIN_SERVER.read(env, problems)
    server_host = _host_of(domain_server) if domain_server else None
    if domain_from and not server_host:
        problems.append("CONFIG_DOMAIN_FROM is set but DOMAIN_SERVER (the replacement) is not")

    base_path = (Env.BASE_PATH.read(env, problems) or "").rstrip("/")
    if base_path and not base_path.startswith("/"):
        base_path = "/" + base_path

    title_wait = read(Env.BACKGROUND_TITLE_WAIT)
    if read(Env.TITLE_CONVO).lower() != "true":
        title_wait = 0.0  # LibreChat then generates no titles (isEnabled(TITLE_CONVO))

    settings = Settings(
        runtime_api=runtime_api or "",
        max_concurrency=read(Env.AWS_LAMBDA_MAX_CONCURRENCY),
        upstream_command=argv,
        upstream_host=read(Env.UPSTREAM_HOST),
        upstream_port=read(Env.UPSTREAM_PORT),
        health_path=read(Env.UPSTREAM_HEALTH_PATH),
        ready_timeout=read(Env.UPSTREAM_READY_TIMEOUT),
        config_bucket=bucket,
        config_key=key,
        config_path=read(Env.CONFIG_PATH),
        config_domain_from=domain_from,
        domain_server_host=server_host,
        ssm_secrets=Env.SSM_SECRETS.read(env, problems) or {},
        base_path=base_path,
        sse_keepalive_interval=read(Env.SSE_KEEPALIVE_INTERVAL),
        deadline_margin=read(Env.DEADLINE_MARGIN),
        background_hold=read(Env.BACKGROUND_HOLD),
        background_hold_path=read(Env.BACKGROUND_HOLD_PATH),
        background_status_path=read(Env.BACKGROUND_STATUS_PATH),
        background_poll_interval=read(Env.BACKGROUND_POLL_INTERVAL),
        log_level=read(Env.LOG_LEVEL),
        init_budget=read(Env.UPSTREAM_INIT_WAIT),
        upstream_dirs=read(Env.UPSTREAM_DIRS),
        stream_idle_timeout=read(Env.STREAM_IDLE_TIMEOUT),
        background_title_wait=title_wait,
        managed_instances=Env.AWS_LAMBDA_INITIALIZATION_TYPE.read(env, problems)
        == MANAGED_INSTANCES_INIT_TYPE
        or Env.AWS_LAMBDA_MAX_CONCURRENCY.name in env,
        stream_check_path=read(Env.STREAM_CHECK_PATH),
        function_name=read(Env.AWS_LAMBDA_FUNCTION_NAME),
        stream_relay=read(Env.STREAM_RELAY),
        stream_relay_redis=relay_redis_url(env, problems),
        stream_relay_retention=read(Env.STREAM_RELAY_RETENTION),
        stream_relay_max_events=read(Env.STREAM_RELAY_MAX_EVENTS),
        stream_relay_heartbeat=read(Env.STREAM_RELAY_HEARTBEAT),
        snap_start=Env.AWS_LAMBDA_INITIALIZATION_TYPE.read(env, problems) == SNAP_START_INIT_TYPE,
    )
    if problems:
        raise SettingsError("Invalid runtime environment: " + "; ".join(problems))
    return settings


def relay_redis_url(env: Mapping[str, str], problems: list[str] | None = None) -> str | None:
    """The stream relay's Redis: STREAM_RELAY_REDIS, else LibreChat's own when it uses Redis
    (its job store must be shared for the stop button and reconnects to work anyway)."""
    problems = [] if problems is None else problems
    explicit = Env.STREAM_RELAY_REDIS.read(env, problems)
    if explicit or Env.STREAM_RELAY_REDIS.raw(env):
        return explicit
    if env.get("USE_REDIS", "").strip().lower() != "true" or not env.get("REDIS_URI", "").strip():
        return None
    uri = env["REDIS_URI"].strip()
    try:
        return RedisUrl()("REDIS_URI", uri)
    except Invalid as exc:
        problems.append(f"{exc} (the stream relay uses it; set STREAM_RELAY=off to leave it)")
        return None


def _host_of(url: str) -> str:
    """Host (and port) of DOMAIN_SERVER, which may be given with or without a scheme."""
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[0]
