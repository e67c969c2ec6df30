"""LambdaFunction's security settings: a role named after the function (what deploy roles are
scoped to) and a customer-managed key for its environment."""

from __future__ import annotations

from typing import Any

from components.function import LambdaFunction, LambdaFunctionArgs
from components.names import function_role_name
from tests.config_defaults import function_settings
from tests.pulumi_mocks import ACCOUNT_ID, C, PulumiMocks, T, run_program

KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT_ID}:key/0a1b2c3d-4e5f-4a1b-8c2d-3e4f5a6b7c8d"


def build(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "image_uri": f"{ACCOUNT_ID}.dkr.ecr.eu-west-1.amazonaws.com/r@sha256:{'a' * 64}",
        "function_name": "librechat-test",
        **function_settings(),
        **overrides,
    }
    fn = LambdaFunction("function", LambdaFunctionArgs(**args))
    return {"role_arn": fn.role.arn, "function_arn": fn.function_arn}


def test_the_role_is_named_after_the_function(mocks: PulumiMocks) -> None:
    out = run_program(build)
    assert function_role_name("librechat-test") == "librechat-test-function"
    assert mocks.inputs_of(T.ROLE)["name"] == "librechat-test-function"
    assert out["role_arn"] == f"arn:aws:iam::{ACCOUNT_ID}:role/librechat-test-function"


def test_the_environment_is_encrypted_with_the_given_key(mocks: PulumiMocks) -> None:
    run_program(lambda: build(environment_kms_key_arn=KEY))
    assert mocks.inputs_of(T.FUNCTION)["kmsKeyArn"] == KEY


def test_without_a_key_lambdas_managed_key_is_used(mocks: PulumiMocks) -> None:
    run_program(build)
    assert "kmsKeyArn" not in mocks.inputs_of(T.FUNCTION)


def test_secrets_stay_names_unless_deploy_mode_is_asked_for(mocks: PulumiMocks) -> None:
    """The component's default is the config's: no parameter value is read or stored."""
    run_program(lambda: build(secrets={"MONGO_URI": "/app/mongo"}))
    assert mocks.calls_to(C.SSM_PARAMETER) == []
    variables = mocks.inputs_of(T.FUNCTION)["environment"]["variables"]
    assert variables["SSM_SECRETS"] == '{"MONGO_URI":"/app/mongo"}'
    assert "MONGO_URI" not in variables
