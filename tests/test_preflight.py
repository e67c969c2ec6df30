"""Preflight: each check's ok and problem paths against moto, Docker through a fake CLI."""

from __future__ import annotations

import datetime
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from moto import mock_aws

from components.config import NetworkConfig
from ops import preflight
from ops.preflight import Target
from tests import moto_lambda_account

REGION = "eu-west-1"
moto_lambda_account.install()
pytestmark = pytest.mark.slow  # moto, and a fake docker executable (tests/conftest.py)
#: One model loader for every test's session: service models load once (test speed).
LOADER = botocore.session.get_session().get_component("data_loader")


@pytest.fixture
def session(monkeypatch, moto_credentials):
    monkeypatch.delenv("MOTO_LAMBDA_CONCURRENCY_QUOTA", raising=False)
    core = botocore.session.get_session()
    core.register_component("data_loader", LOADER)
    with mock_aws():
        yield boto3.Session(region_name=REGION, botocore_session=core)


def target(**overrides) -> Target:
    values = {"stack": "dev", "region": REGION, "function_name": "librechat-lambda-dev"}
    return Target(**{**values, **overrides})


def only(result):
    return result[0] if isinstance(result, list) and len(result) == 1 else result


# -- credentials ------------------------------------------------------------------------------


def test_credentials_name_the_account_and_region(session):
    result = preflight.check_credentials(target(), session)
    assert result.ok and "account 123456789012" in result.detail and REGION in result.detail


def test_missing_credentials_are_a_problem_and_skip_the_account_checks(monkeypatch, tmp_path):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker either
    results = preflight.run(target(), boto3.Session(region_name=REGION))
    assert [r.check for r in results if not r.ok] == [
        "credentials",
        "account checks",
        "docker engine",
    ]
    assert "aws sso login" in results[0].fix


def test_a_stack_without_region_is_a_problem(session):
    result = preflight.check_credentials(target(region=None), session)
    assert not result.ok and "pulumi config set aws:region" in result.fix


# -- SSM parameters ---------------------------------------------------------------------------


def test_ssm_parameters_found_by_name_and_arn_without_reading_values(session):
    ssm = session.client("ssm")
    ssm.put_parameter(Name="/app/jwt", Value="very-secret-value", Type="SecureString")
    ssm.put_parameter(Name="plain", Value="x", Type="String")
    arn = f"arn:aws:ssm:{REGION}:123456789012:parameter/app/jwt"
    t = target(ssm_parameters={"JWT": "/app/jwt", "PLAIN": "plain", "BY_ARN": arn})
    result = preflight.check_ssm_parameters(t, session)
    assert result.ok, result.line()
    assert "all 3 exist" in result.detail
    assert "very-secret-value" not in result.line()


def test_missing_ssm_parameters_are_named_with_their_variable(session):
    session.client("ssm").put_parameter(Name="/app/jwt", Value="v", Type="SecureString")
    t = target(ssm_parameters={"JWT": "/app/jwt", "MONGO_URI": "/app/mongo"})
    result = preflight.check_ssm_parameters(t, session)
    assert not result.ok
    assert "1 of 2 not found" in result.detail and "MONGO_URI (/app/mongo)" in result.detail
    assert "JWT (" not in result.detail


def test_ssm_lookup_never_decrypts(session, monkeypatch):
    calls = []
    original = session.client

    def recording_client(service, **kwargs):
        client = original(service, **kwargs)
        client.meta.events.register("before-call.*", lambda model, **_: calls.append(model.name))
        return client

    monkeypatch.setattr(session, "client", recording_client)
    session.client("ssm").put_parameter(Name="/a", Value="v", Type="SecureString")
    preflight.check_ssm_parameters(target(ssm_parameters={"A": "/a"}), session)
    assert calls[-1:] == ["DescribeParameters"]
    assert not {"GetParameter", "GetParameters", "GetParametersByPath"} & set(calls)


# -- config object ----------------------------------------------------------------------------


@pytest.fixture
def bucket(session):
    s3 = session.client("s3")
    s3.create_bucket(Bucket="cfg", CreateBucketConfiguration={"LocationConstraint": REGION})
    return s3


def test_config_object_exists(bucket, session):
    bucket.put_object(Bucket="cfg", Key="lc/librechat.yaml", Body=b"version: 1.2.1\n")
    result = preflight.check_config_object(
        target(config_object=("cfg", "lc/librechat.yaml")), session
    )
    assert result.ok and "15 bytes" in result.detail


def test_missing_config_object_says_how_to_upload_it(bucket, session):
    result = preflight.check_config_object(target(config_object=("cfg", "nope.yaml")), session)
    assert not result.ok
    assert "s3://cfg/nope.yaml does not exist" in result.detail
    assert "aws s3 cp librechat.yaml s3://cfg/nope.yaml" in result.fix


def test_missing_bucket_is_a_problem(session):
    result = preflight.check_config_object(target(config_object=("no-bucket", "k")), session)
    assert not result.ok and "s3://no-bucket/k" in result.detail


# -- network ----------------------------------------------------------------------------------


@pytest.fixture
def vpc(session):
    ec2 = session.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": "Name", "Value": "dev-core-vpc"}])
    for n, zone in enumerate(("a", "b")):
        subnet = ec2.create_subnet(
            VpcId=vpc_id, CidrBlock=f"10.0.{n}.0/24", AvailabilityZone=f"{REGION}{zone}"
        )["Subnet"]["SubnetId"]
        ec2.create_tags(Resources=[subnet], Tags=[{"Key": "Name", "Value": f"core-private-{zone}"}])
    ec2.create_security_group(GroupName="core-librechat", Description="lc", VpcId=vpc_id)
    return ec2, vpc_id


def network(**keys: Any) -> NetworkConfig:
    """The stack's `network` section, as a stack file writes it (camelCase keys)."""
    return NetworkConfig.model_validate(keys)


NETWORK = network(
    vpcTags={"Name": "dev-core*"},
    subnetTags={"Name": "*private*"},
    securityGroupNames=["*librechat*"],
)


def test_network_lookups_resolve_with_counts(vpc, session):
    _, vpc_id = vpc
    results = preflight.check_network(target(network=NETWORK), session)
    assert all(r.ok for r in results), [r.line() for r in results]
    assert [r.check for r in results] == [
        "network vpc",
        "network subnets",
        "network security groups",
    ]
    assert f"-> {vpc_id} (1 match)" in results[0].detail
    assert "2 matched in 2 AZs" in results[1].detail
    assert "-> 1: sg-" in results[2].detail


def test_no_matching_vpc_is_a_problem(vpc, session):
    lookup = network(
        vpcTags={"Name": "prod-*"}, subnetTags={"Name": "*"}, securityGroupNames=["*librechat*"]
    )
    (result,) = preflight.check_network(target(network=lookup), session)
    assert not result.ok and "matched 0 VPCs (none)" in result.detail


def test_an_ambiguous_vpc_match_is_a_problem(vpc, session):
    ec2, _ = vpc
    other = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[other], Tags=[{"Key": "Name", "Value": "dev-core-vpc-2"}])
    (result,) = preflight.check_network(target(network=NETWORK), session)
    assert not result.ok and "matched 2 VPCs" in result.detail and "exactly 1" in result.detail


def test_subnet_and_group_filters_that_match_nothing_are_problems(vpc, session):
    lookup = network(
        vpcTags={"Name": "dev-core*"},
        subnetTags={"Name": "*public*"},
        securityGroupNames=["*redis*"],
    )
    results = preflight.check_network(target(network=lookup), session)
    assert [r.ok for r in results] == [True, False, False]
    assert "matched no subnet" in results[1].detail
    assert "matched none" in results[2].detail


def test_too_many_security_groups_is_a_problem(vpc, session):
    ec2, vpc_id = vpc
    for n in range(5):
        ec2.create_security_group(GroupName=f"extra-librechat-{n}", Description="x", VpcId=vpc_id)
    results = preflight.check_network(target(network=NETWORK), session)
    assert (
        not results[2].ok and "matched 6" in results[2].detail and "at most 5" in results[2].detail
    )


def test_unknown_subnet_ids_are_named(vpc, session):
    ec2, vpc_id = vpc
    real = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    lookup = network(
        vpcId=vpc_id,
        subnetIds=[real, "subnet-0123456789abcdef0"],
        securityGroupNames=["*librechat*"],
    )
    results = preflight.check_network(target(network=lookup), session)
    assert not results[1].ok and "subnet-0123456789abcdef0" in results[1].detail
    assert real not in results[1].detail


def test_no_network_needs_no_lookup(session):
    (result,) = preflight.check_network(target(network=None), session)
    assert result.ok and "outside a VPC" in result.detail


# -- hosted zone and certificate --------------------------------------------------------------


def test_the_public_parent_zone_holds_the_domain(session):
    r53 = session.client("route53")
    r53.create_hosted_zone(Name="example.com", CallerReference="1")
    result = preflight.check_hosted_zone(target(domain_name="chat.dev.example.com"), session)
    assert result.ok and "(example.com, public) holds chat.dev.example.com" in result.detail


def test_a_private_zone_does_not_hold_a_public_domain(session):
    ec2 = session.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    session.client("route53").create_hosted_zone(
        Name="example.com",
        CallerReference="2",
        HostedZoneConfig={"PrivateZone": True},
        VPC={"VPCRegion": REGION, "VPCId": vpc_id},
    )
    result = preflight.check_hosted_zone(target(domain_name="chat.example.com"), session)
    assert not result.ok and "tried chat.example.com, example.com" in result.detail


def test_a_named_zone_must_exist(session):
    session.client("route53").create_hosted_zone(Name="example.com", CallerReference="3")
    t = target(domain_name="chat.example.com", hosted_zone_name="other.com")
    assert not preflight.check_hosted_zone(t, session).ok
    t = target(domain_name="chat.example.com", hosted_zone_name="example.com")
    assert preflight.check_hosted_zone(t, session).ok


def test_a_zone_id_is_looked_up(session):
    zone = session.client("route53").create_hosted_zone(Name="example.com", CallerReference="4")
    zone_id = zone["HostedZone"]["Id"].rsplit("/", 1)[-1]
    assert preflight.check_hosted_zone(
        target(domain_name="chat.example.com", hosted_zone_id=zone_id), session
    ).ok


def self_signed(*names: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .sign(key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def imported_certificate(session, *names: str) -> str:
    cert, key = self_signed(*names)
    return session.client("acm").import_certificate(Certificate=cert, PrivateKey=key)[
        "CertificateArn"
    ]


def test_an_issued_wildcard_certificate_covers_the_domain(session):
    arn = imported_certificate(session, "*.example.com")
    t = target(domain_name="chat.example.com", certificate_arn=arn)
    result = preflight.check_certificate(t, session)
    assert result.ok and "covers chat.example.com" in result.detail


def test_a_certificate_for_another_name_is_a_problem(session):
    arn = imported_certificate(session, "*.other.com", "other.com")
    result = preflight.check_certificate(
        target(domain_name="chat.example.com", certificate_arn=arn), session
    )
    assert not result.ok and "not chat.example.com" in result.detail
    # A wildcard covers one label only.
    arn = imported_certificate(session, "*.example.com")
    result = preflight.check_certificate(
        target(domain_name="a.chat.example.com", certificate_arn=arn), session
    )
    assert not result.ok


def test_a_certificate_still_pending_validation_is_a_problem(session):
    arn = session.client("acm").request_certificate(
        DomainName="chat.example.com", ValidationMethod="DNS"
    )["CertificateArn"]
    result = preflight.check_certificate(
        target(domain_name="chat.example.com", certificate_arn=arn), session
    )
    assert not result.ok and "PENDING_VALIDATION" in result.detail


def test_a_certificate_in_another_region_is_a_problem(session):
    arn = "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"
    result = preflight.check_certificate(
        target(domain_name="chat.example.com", certificate_arn=arn), session
    )
    assert not result.ok and "in us-east-1" in result.detail and REGION in result.fix


def test_without_a_certificate_arn_one_is_issued(session):
    assert preflight.check_certificate(target(domain_name="chat.example.com"), session).ok


# -- API Gateway account role, Lambda concurrency ------------------------------------------


def test_access_logging_needs_the_account_cloudwatch_role(session):
    result = preflight.check_api_gateway_account(target(), session)
    assert not result.ok and "update-account" in result.fix and "accessLogging" in result.fix
    role = "arn:aws:iam::123456789012:role/apigw-logs"
    session.client("apigateway").update_account(
        patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": role}]
    )
    result = preflight.check_api_gateway_account(target(), session)
    assert result.ok and role in result.detail


def test_without_access_logging_the_role_is_not_needed(session):
    assert preflight.check_api_gateway_account(target(access_logging=False), session).ok


def create_function(session, name: str, reserved: int | None = None) -> None:
    iam = session.client("iam")
    role = iam.create_role(
        RoleName=f"{name}-role",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    lam = session.client("lambda")
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="h.h",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
    )
    if reserved:
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=reserved)


def test_reserved_concurrency_that_fits_is_ok(session):
    result = preflight.check_lambda_concurrency(target(reserved_concurrency=50), session)
    assert result.ok and "50 reserved/provisioned fits" in result.detail


def test_reserved_concurrency_beyond_the_quota_is_a_problem(session):
    create_function(session, "someone-else", reserved=400)
    result = preflight.check_lambda_concurrency(target(reserved_concurrency=550), session)
    assert not result.ok
    assert "only 500 can be" in result.detail and "L-B99A9384" in result.fix


def test_the_functions_own_reservation_counts_as_available(session):
    create_function(session, "librechat-lambda-dev", reserved=550)
    result = preflight.check_lambda_concurrency(target(reserved_concurrency=600), session)
    assert result.ok, result.line()


def test_provisioned_concurrency_needs_room_too(session, monkeypatch):
    monkeypatch.setenv("MOTO_LAMBDA_CONCURRENCY_QUOTA", "10")  # a new account's quota
    result = preflight.check_lambda_concurrency(target(provisioned_concurrency=2), session)
    assert not result.ok and "account limit 10" in result.detail


# -- Docker -----------------------------------------------------------------------------------


def fake_docker(tmp_path: Path, info: dict | None, builder_driver: str | None = "docker") -> dict:
    """A `docker` executable on PATH answering `info` and `buildx inspect` as given."""
    script = tmp_path / "docker"
    answers = {
        "info": json.dumps(info) if info is not None else None,
        "buildx": f"Name: default\nDriver: {builder_driver}\n" if builder_driver else None,
    }
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"answers = {answers!r}\n"
        "out = answers.get(sys.argv[1])\n"
        "if out is None:\n"
        "    sys.stderr.write('Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
        "Is the docker daemon running?\\n')\n"
        "    sys.exit(1)\n"
        "print(out)\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return {"PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}


CLASSIC = {
    "ServerVersion": "27.3.1",
    "Driver": "overlay2",
    "DriverStatus": [["Backing Filesystem", "extfs"]],
}
CONTAINERD = {
    "ServerVersion": "28.0.0",
    "Driver": "overlayfs",
    "DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]],
}


def test_a_classic_engine_with_the_default_builder_is_ok(tmp_path):
    results = preflight.check_docker(fake_docker(tmp_path, CLASSIC))
    assert all(r.ok for r in results), [r.line() for r in results]
    assert "server 27.3.1" in results[0].detail


def test_an_unreachable_engine_is_a_problem(tmp_path):
    (result,) = preflight.check_docker(fake_docker(tmp_path, None))
    assert not result.ok and "Cannot connect to the Docker daemon" in result.detail
    assert "DOCKER_HOST" in result.fix


def test_no_docker_cli_is_a_problem(tmp_path):
    (result,) = preflight.check_docker({"PATH": str(tmp_path)})
    assert not result.ok and "no docker CLI" in result.detail


def test_the_containerd_image_store_is_a_problem_with_the_switch_to_flip(tmp_path):
    results = preflight.check_docker(fake_docker(tmp_path, CONTAINERD))
    store = next(r for r in results if r.check == "docker image store")
    assert not store.ok and "containerd" in store.detail
    assert "Use containerd for pulling and storing images" in store.fix


def test_a_builder_that_attests_by_default_is_a_problem_unless_switched_off(tmp_path):
    env = fake_docker(tmp_path, CLASSIC, builder_driver="docker-container")
    attest = preflight.check_docker(env)[-1]
    assert not attest.ok and "BUILDX_NO_DEFAULT_ATTESTATIONS=1" in attest.fix
    assert preflight.check_docker({**env, "BUILDX_NO_DEFAULT_ATTESTATIONS": "1"})[-1].ok


# -- the stack file and the whole run ---------------------------------------------------------


def test_the_dev_stack_file_becomes_the_checks_input():
    t = preflight.read_stack("dev")
    assert t.region == "eu-west-1" and t.function_name == "librechat-lambda-dev"
    assert t.ssm_parameters["JWT_SECRET"] == "/ecs/genai/librechat/JWT_SECRET"
    assert t.config_object == ("genai-shared-config", "lambda-test/librechat/librechat.yaml")
    assert t.network is not None and dict(t.network.vpc_tags) == {"Name": "dev-aprochat-core*"}
    assert t.domain_name == "lambda-test.sandbox.data.apro.is" and t.access_logging


def test_a_prepared_account_passes_and_a_bare_one_fails(session, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", fake_docker(tmp_path, CLASSIC)["PATH"])
    assert preflight.main(["--stack", "dev"]) == 1
    out = capsys.readouterr().out
    assert "PROBLEM  ssm parameters: 11 of 11 not found" in out
    assert out.strip().endswith("problems")

    t = preflight.read_stack("dev")
    ssm = session.client("ssm")
    for name in t.ssm_parameters.values():
        ssm.put_parameter(Name=name, Value="secret-value-never-printed", Type="SecureString")
    s3 = session.client("s3")
    s3.create_bucket(
        Bucket=t.config_object[0], CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    s3.put_object(Bucket=t.config_object[0], Key=t.config_object[1], Body=b"version: 1\n")
    ec2 = session.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": "Name", "Value": "dev-aprochat-core-vpc"}])
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    ec2.create_tags(Resources=[subnet], Tags=[{"Key": "Name", "Value": "core-private-a"}])
    ec2.create_security_group(GroupName="dev-librechat", Description="lc", VpcId=vpc_id)
    session.client("route53").create_hosted_zone(Name="sandbox.data.apro.is", CallerReference="x")
    session.client("apigateway").update_account(
        patchOperations=[
            {"op": "replace", "path": "/cloudwatchRoleArn", "value": "arn:aws:iam::1:role/x"}
        ]
    )
    assert preflight.main(["--stack", "dev"]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "PROBLEM" not in out and "secret-value-never-printed" not in out
    assert len([line for line in out.splitlines() if line.startswith("ok ")]) == 13
