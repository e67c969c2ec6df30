"""The CI program's configuration: every mistake named by key before anything is created."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from github_ci.settings import SettingsError, StackTarget, parse, stack_files

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


def test_every_stack_file_is_served_with_its_own_keys_and_overrides(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.dev.yaml").write_text(
        "config:\n  aws:region: eu-west-1\n  librechat-lambda:name: chat-dev\n"
        "  librechat-lambda:domain:\n    name: chat.example.com\n"
    )
    (tmp_path / "Pulumi.new-one.yaml").write_text(
        "config:\n  librechat-lambda:domain:\n    enabled: false\n    name: x.example.com\n"
    )
    (tmp_path / "Pulumi.elsewhere.yaml").write_text("config: {}\n")
    raw = {
        "repository": GOOD["repository"],
        "stacks": {"dev": {"environment": "development"}, "elsewhere": False},
    }
    settings = parse(raw, default_region="us-east-1", main_stacks=stack_files(tmp_path))
    assert settings.stacks == (
        StackTarget.of(
            "dev",
            name="chat-dev",
            region="eu-west-1",
            environment="development",
            domain="chat.example.com",
        ),
        StackTarget.of(
            "new-one", name="librechat-new-one", region="us-east-1", environment="new-one"
        ),
    )


def test_an_override_for_a_stack_without_a_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  librechat-lambda:name: chat-dev\n")
    raw = {"repository": GOOD["repository"], "stacks": {"staging": {"name": "x"}}}
    with pytest.raises(SettingsError) as error:
        parse(raw, default_region="eu-west-1", main_stacks=stack_files(tmp_path))
    assert error.value.problems == [
        "librechat-lambda-ci:stacks.staging names no stack: there is no Pulumi.staging.yaml"
    ]
