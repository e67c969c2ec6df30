"""Cold-start fetch against moto: config rewrite, batched SSM, and errors that name the cause."""

from __future__ import annotations

import json

import pytest
from streaming_proxy.coldstart import ColdStartFetch, fetch_config, fetch_secrets
from streaming_proxy.errors import InitError
from streaming_proxy.settings import load


def settings(tmp_path, **env):
    return load(
        {
            "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:1",
            "CONFIG_PATH": str(tmp_path / "cfg" / "librechat.yaml"),
            **env,
        }
    )


def test_config_is_downloaded_and_domain_rewritten(aws, tmp_path):
    s3 = aws("s3")
    s3.create_bucket(
        Bucket="cfg-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    s3.put_object(
        Bucket="cfg-bucket",
        Key="lc/librechat.yaml",
        Body=b"url: https://genai.example.com/x\nother: genai.example.com\n",
    )
    s = settings(
        tmp_path,
        CONFIG_S3_BUCKET="cfg-bucket",
        CONFIG_S3_KEY="lc/librechat.yaml",
        CONFIG_DOMAIN_FROM="genai.example.com",
        DOMAIN_SERVER="https://lambda.example.com",
    )
    fetch_config(s)
    assert (tmp_path / "cfg" / "librechat.yaml").read_bytes() == (
        b"url: https://lambda.example.com/x\nother: lambda.example.com\n"
    )


def test_missing_config_object_names_bucket_and_key(aws, tmp_path):
    aws("s3").create_bucket(
        Bucket="cfg-empty", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    s = settings(tmp_path, CONFIG_S3_BUCKET="cfg-empty", CONFIG_S3_KEY="missing.yaml")
    with pytest.raises(InitError, match=r"s3://cfg-empty/missing\.yaml: NoSuchKey"):
        fetch_config(s)


def test_secrets_resolve_in_batches_of_ten_with_decryption(aws, tmp_path):
    ssm = aws("ssm")
    wanted = {}
    for i in range(23):
        ssm.put_parameter(Name=f"/app/secret/{i}", Value=f"value-{i}", Type="SecureString")
        wanted[f"SECRET_{i}"] = f"/app/secret/{i}"
    s = settings(tmp_path, SSM_SECRETS=json.dumps(wanted))
    resolved = fetch_secrets(s)
    assert resolved == {f"SECRET_{i}": f"value-{i}" for i in range(23)}


def test_missing_ssm_parameters_are_named_without_values(aws, tmp_path):
    aws("ssm").put_parameter(Name="/app/present", Value="top-secret-value", Type="SecureString")
    s = settings(tmp_path, SSM_SECRETS=json.dumps({"PRESENT": "/app/present", "GONE": "/app/gone"}))
    with pytest.raises(InitError) as err:
        fetch_secrets(s)
    assert "/app/gone" in err.value.message and "GONE" in err.value.message
    assert "top-secret-value" not in err.value.message


def test_forked_fetch_reports_secrets_and_errors_to_the_parent(aws, tmp_path):
    aws("ssm").put_parameter(Name="/app/forked", Value="v", Type="SecureString")
    ok = ColdStartFetch(settings(tmp_path, SSM_SECRETS='{"F": "/app/forked"}'))
    assert ok.result() == {"F": "v"}
    bad = ColdStartFetch(settings(tmp_path, SSM_SECRETS='{"F": "/app/nope"}'))
    with pytest.raises(InitError, match="/app/nope"):
        bad.result()


def test_config_and_secret_failures_together_report_without_crashing(aws, tmp_path):
    aws("s3").create_bucket(
        Bucket="cfg-both", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    s = settings(
        tmp_path,
        CONFIG_S3_BUCKET="cfg-both",
        CONFIG_S3_KEY="nope.yaml",
        SSM_SECRETS='{"A": "/app/absent"}',
    )
    with pytest.raises(InitError) as err:
        ColdStartFetch(s).result()
    assert "/app/absent" in err.value.message
    assert "s3://cfg-both/nope.yaml" in err.value.message
