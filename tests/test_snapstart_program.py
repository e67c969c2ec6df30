"""`compute.snapStart`: the function publishes SnapStart versions, the API invokes them through
alias `live`, and the combinations Lambda refuses (or that would keep secrets in every
version) fail naming their key. The dev stack enables it."""

from __future__ import annotations

from typing import Any

import pytest

from components.config import ConfigError, parse
from tests.pulumi_mocks import DEFAULT_REGION, PulumiMocks, T, plain, run_main
from tests.stack_files import cli_config, stack_file
from tests.test_config import with_
from tests.test_function import FUNCTION_ARN, KMS_KEY, deploy

SNAP = {"snapStart": True}
SMALL_TMP = {"ephemeralStorageMb": 512}


def alias_streaming_arn(function_arn: str) -> str:
    return (
        f"arn:aws:apigateway:{DEFAULT_REGION}:lambda:path/2021-11-15/functions/"
        f"{function_arn}:live/response-streaming-invocations"
    )


# -- the component ------------------------------------------------------------------------


def test_snapstart_publishes_versions_and_the_api_targets_their_alias(mocks: PulumiMocks):
    out = deploy(snap_start=True, ephemeral_storage_mb=512)

    function = mocks.inputs_of(T.FUNCTION)
    assert function["publish"] is True
    assert function["snapStart"] == {"applyOn": "PublishedVersions"}
    alias = mocks.assert_res("function-alias", T.ALIAS)
    assert (alias["name"], alias["functionVersion"]) == ("live", "1")
    mocks.assert_no_res(T.PROVISIONED_CONCURRENCY)
    assert out["streaming_invoke_arn"] == alias_streaming_arn(FUNCTION_ARN)
    assert out["qualifier"] == "live"


def test_without_snapstart_the_function_carries_no_snapstart_setting(mocks: PulumiMocks):
    deploy()
    assert "snapStart" not in mocks.inputs_of(T.FUNCTION)


# -- configuration ------------------------------------------------------------------------


def problems(**sections: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(with_(**sections), stack="dev")
    return caught.value.problems


def test_snapstart_is_off_by_default_and_on_with_a_small_tmp():
    assert parse(with_(), stack="dev").compute.snap_start is False
    cfg = parse(with_(compute=SNAP, function=SMALL_TMP), stack="dev")
    assert cfg.compute.snap_start is True


def test_snapstart_refuses_provisioned_concurrency_naming_the_key():
    (problem,) = problems(compute=SNAP, function={**SMALL_TMP, "provisionedConcurrency": 2})
    assert problem.startswith("librechat-lambda:function.provisionedConcurrency cannot be combined")
    assert "compute.snapStart" in problem


def test_snapstart_refuses_more_than_512_mb_of_tmp_including_the_default():
    (problem,) = problems(compute=SNAP)
    assert problem == (
        "librechat-lambda:function.ephemeralStorageMb is 1024; compute.snapStart allows at most "
        "512 MB of /tmp: set it to 512"
    )


def test_snapstart_refuses_arm64_whose_cpus_lack_the_rdrand_the_runtime_needs():
    (problem,) = problems(compute=SNAP, function={**SMALL_TMP, "architecture": "arm64"})
    assert problem.startswith("librechat-lambda:function.architecture is arm64; compute.snapStart")
    assert "RDRAND" in problem


def test_snapstart_refuses_managed_instances_naming_the_key():
    (problem,) = problems(compute={**SNAP, "mode": "managedInstances"})
    assert problem.startswith("librechat-lambda:compute.snapStart does not exist with compute.mode")


def test_snapstart_refuses_deploy_time_secrets_and_says_why():
    (problem,) = problems(
        compute=SNAP,
        function={**SMALL_TMP, "kmsKeyArn": KMS_KEY},
        secrets={"mode": "deploy", "parameters": {"JWT_SECRET": "/app/jwt"}},
        pullRequestPreviews=False,  # which refuses deploy mode for a reason of its own
    )
    assert problem.startswith("librechat-lambda:secrets.mode must be runtime with")
    assert "every published version keeps the secret values" in problem


def test_snapstart_takes_deploy_mode_without_parameters_and_runtime_secrets():
    for secrets in ({"mode": "deploy"}, {"mode": "runtime", "parameters": {"A_B": "/a/b"}}):
        raw = with_(compute=SNAP, function=SMALL_TMP, secrets=secrets, pullRequestPreviews=False)
        cfg = parse(raw, stack="dev")
        assert cfg.compute.snap_start


# -- the program: the dev stack enables it ------------------------------------------------


@pytest.fixture
def dev(mocks: PulumiMocks) -> dict[str, Any]:
    mocks.zones = {"sandbox.data.apro.is": "ZSANDBOX"}
    return run_main(cli_config("dev"))


@pytest.mark.program
def test_the_dev_stack_enables_snapstart(mocks: PulumiMocks, dev: dict[str, Any]):
    assert stack_file("dev")["librechat-lambda:compute"]["snapStart"] is True
    function = plain(mocks.inputs_of(T.FUNCTION))
    assert function["snapStart"] == {"applyOn": "PublishedVersions"}
    assert function["ephemeralStorage"] == {"size": 512}
    assert function["publish"] is True


@pytest.mark.program
def test_dev_streams_and_permits_through_the_alias_of_the_newest_version(
    mocks: PulumiMocks, dev: dict[str, Any]
):
    alias = mocks.assert_res("function-alias", T.ALIAS)
    assert alias["functionVersion"] == mocks.outputs["function-function"]["version"]
    for integration in mocks.of_type(T.API_INTEGRATION):
        assert integration.inputs["uri"] == alias_streaming_arn(dev["function_arn"])
        assert integration.inputs["responseTransferMode"] == "STREAM"
    permission = mocks.inputs_of(T.PERMISSION)
    assert (permission["function"], permission["qualifier"]) == ("librechat-lambda-dev", "live")


@pytest.mark.program
def test_managed_prod_with_snapstart_fails_before_any_resource(mocks: PulumiMocks):
    compute = {**stack_file("prod")["librechat-lambda:compute"], **SNAP}
    with pytest.raises(ConfigError) as caught:
        run_main(cli_config("prod", compute=compute))
    assert [p.split(" ", 1)[0] for p in caught.value.problems] == [
        "librechat-lambda:compute.snapStart"
    ]
    assert [r for r in mocks.resources if r.custom] == []
