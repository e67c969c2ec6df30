"""Runtime settings: defaults, and one error that lists every problem by variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from streaming_proxy.errors import InitError
from streaming_proxy.settings import SettingsError, load
from streaming_proxy.upstream import upstream_env
from streaming_proxy.variables import VARIABLES, Env, markdown

DOCS_PAGE = Path(__file__).resolve().parents[2] / "docs" / "runtime-variables.md"


def test_the_docs_page_is_the_table_printed():
    assert DOCS_PAGE.read_text() == markdown(), "docs/runtime-variables.md is stale: run make docs"


def test_every_default_in_the_table_parses():
    """A default is text, as the environment gives it: each must pass its own parser."""
    for variable in VARIABLES:
        if variable.default is not None:
            variable.parse(variable.name, variable.default)


def test_an_unset_environment_gives_the_table_defaults():
    s = load({"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"})
    assert s.upstream_command == Env.UPSTREAM_COMMAND.default_value
    assert s.ready_timeout == Env.UPSTREAM_READY_TIMEOUT.default_value
    assert s.upstream_dirs == Env.UPSTREAM_DIRS.default_value and len(s.upstream_dirs) == 3
    assert s.background_hold and s.background_hold_path.match("/api/agents/chat/openAI")
    assert not s.fetches_anything and not s.managed_instances


def test_ssm_secrets_and_domain_rewrite_are_parsed():
    s = load(
        {
            "AWS_LAMBDA_RUNTIME_API": "x:1",
            "SSM_SECRETS": '{"JWT_SECRET": "/ecs/genai/librechat/JWT_SECRET"}',
            "CONFIG_DOMAIN_FROM": "genai.example.com",
            "DOMAIN_SERVER": "https://lambda.example.com",
            "BASE_PATH": "chat/",
        }
    )
    assert dict(s.ssm_secrets) == {"JWT_SECRET": "/ecs/genai/librechat/JWT_SECRET"}
    assert s.domain_server_host == "lambda.example.com"
    assert s.base_path == "/chat"


def test_every_problem_is_named_in_one_error():
    with pytest.raises(SettingsError) as err:
        load(
            {
                "UPSTREAM_PORT": "eighty",
                "UPSTREAM_READY_TIMEOUT": "-1",
                "CONFIG_S3_BUCKET": "only-bucket",
                "SSM_SECRETS": '{"bad name": "/x"}',
                "CONFIG_DOMAIN_FROM": "a.example.com",
            }
        )
    message = str(err.value)
    for fragment in (
        "AWS_LAMBDA_RUNTIME_API is not set",
        "UPSTREAM_PORT='eighty' is not a number",
        "UPSTREAM_READY_TIMEOUT='-1' must be between",
        "CONFIG_S3_BUCKET and CONFIG_S3_KEY must be set together",
        "SSM_SECRETS key 'bad name'",
        "DOMAIN_SERVER",
    ):
        assert fragment in message


def test_ssm_secrets_must_be_a_json_object():
    with pytest.raises(SettingsError, match="SSM_SECRETS is not valid JSON"):
        load({"AWS_LAMBDA_RUNTIME_API": "x:1", "SSM_SECRETS": "{nope"})


def test_the_runtime_api_address_must_be_host_and_port():
    with pytest.raises(SettingsError, match="AWS_LAMBDA_RUNTIME_API must be host:port"):
        load({"AWS_LAMBDA_RUNTIME_API": "127.0.0.1"})


def test_upstream_env_leaves_out_the_plumbing_and_keeps_the_rest():
    base = {
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
        "SSM_SECRETS": '{"A": "/a"}',
        "UPSTREAM_COMMAND": "node x",
        "AWS_SESSION_TOKEN": "t",
        "DOMAIN_SERVER": "https://x",
        "MONGO_URI": "mongodb://db",
    }
    env = upstream_env(base, "127.0.0.1", 3080, "/tmp/c.yaml", {"A": "secret"})
    assert env == {
        "AWS_SESSION_TOKEN": "t",
        "DOMAIN_SERVER": "https://x",
        "MONGO_URI": "mongodb://db",
        "HOST": "127.0.0.1",
        "PORT": "3080",
        "CONFIG_PATH": "/tmp/c.yaml",
        "A": "secret",
    }


@pytest.mark.parametrize("value", ["a\x00b-hidden", "a\ud800b-hidden"])
def test_a_secret_no_environment_can_carry_is_an_init_error_naming_the_variable(value):
    with pytest.raises(InitError) as err:
        upstream_env({}, "127.0.0.1", 3080, None, {"OK": "fine", "JWT_SECRET": value})
    assert err.value.error_type == "Runtime.SecretsError"
    assert "JWT_SECRET" in err.value.message and "hidden" not in err.value.message


def test_stream_check_path_defaults_and_must_be_a_path():
    assert load({"AWS_LAMBDA_RUNTIME_API": "x:1"}).stream_check_path == "/_runtime/stream-check"
    assert load({"AWS_LAMBDA_RUNTIME_API": "x:1", "STREAM_CHECK_PATH": ""}).stream_check_path == ""
    with pytest.raises(SettingsError, match="STREAM_CHECK_PATH='check' must start with '/'"):
        load({"AWS_LAMBDA_RUNTIME_API": "x:1", "STREAM_CHECK_PATH": "check"})


@pytest.mark.parametrize(
    ("extra", "carries"),
    [
        ({"USE_REDIS": "true", "REDIS_URI": "redis://r:6379"}, True),  # standard Lambda
        ({"STREAM_RELAY_REDIS": "redis://r:6379"}, True),
        ({}, False),  # no Redis: LibreChat's own single-environment path
        ({"USE_REDIS": "true", "REDIS_URI": "redis://r:6379", "STREAM_RELAY": "off"}, False),
        ({"USE_REDIS": "true", "REDIS_URI": "redis://r:6379", "BACKGROUND_HOLD": "off"}, False),
        (
            {
                "USE_REDIS": "true",
                "REDIS_URI": "redis://r:6379",
                "AWS_LAMBDA_INITIALIZATION_TYPE": "lambda-managed-instances",
            },
            False,  # nothing freezes: one environment serves the POST and its stream
        ),
    ],
)
def test_the_runtime_carries_streams_only_where_environments_freeze_and_redis_exists(
    extra, carries
):
    settings = load({"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001", **extra})
    assert settings.carries_streams is carries
    env = upstream_env({}, "127.0.0.1", 3080, None, {}, settings.carries_streams)
    # LibreChat keeps its jobs in its own memory where the runtime carries their streams.
    assert env.get("USE_REDIS_STREAMS") == ("false" if carries else None)
