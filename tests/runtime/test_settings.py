"""Runtime settings: defaults, and one error that lists every problem by variable."""

from __future__ import annotations

import pytest
from streaming_proxy.settings import SettingsError, load


def test_defaults_follow_the_contract():
    s = load({"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"})
    assert s.upstream_command == ("node", "/app/api/server/index.js")
    assert (s.upstream_host, s.upstream_port, s.health_path) == ("127.0.0.1", 3080, "/health")
    assert s.ready_timeout == 60 and s.sse_keepalive_interval == 20 and s.max_concurrency == 1
    assert s.config_path == "/tmp/librechat.yaml" and not s.fetches_anything
    assert s.background_hold and s.background_hold_path.match("/api/agents/chat/openAI")
    assert s.upstream_dirs == (
        "/tmp/librechat/uploads",
        "/tmp/librechat/images",
        "/tmp/librechat/logs",
    )


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


def test_stream_check_path_defaults_and_must_be_a_path():
    assert load({"AWS_LAMBDA_RUNTIME_API": "x:1"}).stream_check_path == "/_runtime/stream-check"
    assert load({"AWS_LAMBDA_RUNTIME_API": "x:1", "STREAM_CHECK_PATH": ""}).stream_check_path == ""
    with pytest.raises(SettingsError, match="STREAM_CHECK_PATH='check' must start with '/'"):
        load({"AWS_LAMBDA_RUNTIME_API": "x:1", "STREAM_CHECK_PATH": "check"})
