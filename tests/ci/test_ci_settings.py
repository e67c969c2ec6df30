"""The CI program's configuration: every mistake named by key before anything is created."""

from __future__ import annotations

from typing import Any

import pytest

from github_ci.settings import SettingsError, StackTarget, parse

GOOD: dict[str, Any] = {
    "repository": "aprochat/librechat-lambda",
    "stacks": {"dev": {"name": "librechat-lambda-dev", "domain": "chat.example.com"}},
}


def test_defaults_region_and_environment_from_the_stack() -> None:
    settings = parse(GOOD, default_region="eu-west-1")
    assert settings.oidc_provider_arn is None
    assert settings.stacks == (
        StackTarget.of(
            "dev",
            name="librechat-lambda-dev",
            region="eu-west-1",
            environment="dev",
            domain="chat.example.com",
        ),
    )


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"repository": "librechat-lambda"}, "librechat-lambda-ci:repository"),
        ({"repository": None}, "librechat-lambda-ci:repository"),
        (
            {"oidcProviderArn": "arn:aws:iam::123456789012:oidc-provider/accounts.google.com"},
            "librechat-lambda-ci:oidcProviderArn",
        ),
        ({"stacks": {}}, "librechat-lambda-ci:stacks"),
        (
            {"stacks": {"dev": {"domain": "chat.example.com"}}},
            "librechat-lambda-ci:stacks.dev.name",
        ),
        ({"stacks": {"dev": {"name": "Bad_Name"}}}, "librechat-lambda-ci:stacks.dev.name"),
        (
            {"stacks": {"dev": {"name": "n", "region": "Ireland"}}},
            "librechat-lambda-ci:stacks.dev.region",
        ),
        (
            {"stacks": {"dev": {"name": "n", "environment": "a b"}}},
            "librechat-lambda-ci:stacks.dev.environment",
        ),
        (
            {"stacks": {"dev": {"name": "n", "domain": "Chat.Example"}}},
            "librechat-lambda-ci:stacks.dev.domain",
        ),
        (
            {
                "stacks": {
                    "dev": {"name": "n", "webAclArn": "arn:aws:wafv2:eu-west-1:1:global/webacl/a/b"}
                }
            },
            "librechat-lambda-ci:stacks.dev.webAclArn",
        ),
        (
            {"stacks": {"dev": {"name": "n", "memoryMb": 1}}},
            "librechat-lambda-ci:stacks.dev.memoryMb",
        ),
        ({"stacks": {"dev": {"name": "n"}, "prod": {"name": "n"}}}, "librechat-lambda-ci:stacks"),
    ],
)
def test_each_mistake_is_reported_by_its_key(change: dict[str, Any], key: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse({**GOOD, **change}, default_region="eu-west-1")
    assert any(p.startswith(f"{key} ") for p in caught.value.problems), caught.value.problems


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        parse({"repository": "x", "stacks": {"dev": {"name": "n"}}}, default_region=None)
    assert len(caught.value.problems) == 2
    assert "2 problems" in str(caught.value)
