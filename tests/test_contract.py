"""The deploy/runtime contract round trip: the environment every committed stack gives its
function loads cleanly in the runtime's own `settings.load()`, with the stack's values. (The
defaults both sides use are declared once, in runtime/streaming_proxy/variables.py.)"""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest
from streaming_proxy import settings

from components import contract
from components.aws_rules import S3Location
from components.config import RuntimeConfig
from components.function import LambdaFunctionArgs, plain_environment
from tests.config_defaults import function_settings
from tests.pulumi_mocks import PulumiMocks, T, plain, run_main
from tests.stack_files import STACKS, cli_config, stack_file

#: What Lambda adds to the function's environment at run time.
LAMBDA_ADDS = {"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}


def deployed_environment(mocks: PulumiMocks, config: dict[str, str]) -> dict[str, str]:
    """The variables the program gives the function (secret values as the mocks read them)."""
    run_main(config)
    return plain(mocks.one(T.FUNCTION).inputs["environment"])["variables"]


@pytest.mark.program
@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_environment_loads_in_the_runtime_with_the_agreed_values(
    mocks: PulumiMocks, stack: str
):
    env = deployed_environment(mocks, cli_config(stack))
    loaded = settings.load({**env, **LAMBDA_ADDS})

    assert loaded.upstream_command == tuple(shlex.split(contract.UPSTREAM_COMMAND))
    assert loaded.upstream_port == contract.UPSTREAM_PORT
    assert loaded.health_path == contract.UPSTREAM_HEALTH_PATH
    assert loaded.upstream_dirs == contract.WRITABLE_DIRS
    keys = stack_file(stack)
    runtime = RuntimeConfig.model_validate(keys.get("librechat-lambda:runtime", {}))
    assert loaded.ready_timeout == runtime.ready_timeout_seconds
    assert loaded.sse_keepalive_interval == runtime.sse_keepalive_seconds
    assert loaded.background_hold is runtime.background_hold
    assert loaded.log_level == runtime.log_level
    uri = keys["librechat-lambda:librechatConfig"]["s3Uri"]
    assert f"s3://{loaded.config_bucket}/{loaded.config_key}" == uri
    assert loaded.config_path == contract.CONFIG_PATH
    secrets = keys["librechat-lambda:secrets"]
    runtime_mode = secrets["mode"] == "runtime"
    assert dict(loaded.ssm_secrets) == (secrets["parameters"] if runtime_mode else {})


@pytest.mark.program
def test_every_option_the_program_sets_loads_in_the_runtime(mocks: PulumiMocks):
    config = cli_config(
        "prod",
        domain={"name": "lambda.data.apro.is", "basePath": "v1/chat"},
        runtime={"readyTimeoutSeconds": 1.5, "sseKeepaliveSeconds": 0, "backgroundHold": False,
                 "logLevel": "DEBUG"},
    )  # fmt: skip
    loaded = settings.load({**deployed_environment(mocks, config), **LAMBDA_ADDS})
    assert loaded.base_path == "/v1/chat"
    assert loaded.domain_server_host == "lambda.data.apro.is"
    assert (loaded.ready_timeout, loaded.sse_keepalive_interval) == (1.5, 0.0)
    assert (loaded.background_hold, loaded.log_level) == (False, "DEBUG")


def every_option() -> LambdaFunctionArgs:
    return LambdaFunctionArgs(
        image_uri="repo@sha256:0",
        function_name="f",
        **function_settings(),
        environment={"DOMAIN_SERVER": "https://chat.example.com"},
        secrets={"JWT_SECRET": "/app/jwt"},
        config_object=S3Location("bucket", "librechat.yaml"),
        config_domain_from="old.example.com",
        base_path="chat",
    )


def test_the_variables_the_program_sets_are_the_ones_stacks_may_not_set():
    """SET_BY_PROGRAM is what config refuses in `environment`; it must name every variable
    `plain_environment` adds, or a stack could set one and see it silently overwritten."""
    args = every_option()
    added = set(plain_environment(args)) - set(args.environment)
    assert added == set(contract.SET_BY_PROGRAM)


def test_ssm_secrets_round_trip_as_the_runtime_reads_them():
    env: dict[str, Any] = plain_environment(every_option())
    assert json.loads(env["SSM_SECRETS"]) == dict(settings.load({**env, **LAMBDA_ADDS}).ssm_secrets)
