"""Preflight: check, before a 10-minute `pulumi up`, everything it depends on in the account.

(Over 400 lines on purpose: one small function per check, in the order they print, so the
whole list an operator reads is one file.)

`make preflight STACK=dev` reads `Pulumi.<stack>.yaml` through the program's own config
parser, turns it into a small `Target` (the values the checks need) and checks each against
the account with the caller's credentials: one line per check, `ok` or `PROBLEM` with the fix,
and a non-zero exit on any problem. Every call only reads; SSM parameters are looked up by
name (DescribeParameters), never read, so no secret value is fetched or printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from components.aws_rules import MAX_SECURITY_GROUPS, acm_arn_region
from components.config import ConfigError, NetworkConfig
from components.domain import candidate_zones
from components.network import (
    boto3_filters,
    security_group_filters,
    subnet_filters,
    tag_filters,
)
from ops.stack import StackFile, load_stack

#: Lambda keeps this much of the account's concurrency unreserved (PutFunctionConcurrency).
MIN_UNRESERVED = 100
#: The containerd image store, as `docker info` reports it in DriverStatus.
CONTAINERD_SNAPSHOTTER = "io.containerd.snapshotter.v1"
#: Builder drivers that attach provenance attestations to pushed images by default.
ATTESTING_DRIVERS = ("docker-container", "kubernetes", "remote")


# -- input -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What `pulumi up` of one stack needs from the account; the checks read only this."""

    stack: str
    region: str | None
    function_name: str
    ssm_parameters: Mapping[str, str] = field(default_factory=dict)
    """Environment variable -> SSM parameter name or ARN."""
    config_object: tuple[str, str] | None = None
    """(bucket, key) of librechat.yaml."""
    network: NetworkConfig | None = None
    """The stack's `network` section; None: the function runs outside a VPC."""
    domain_name: str | None = None
    hosted_zone_id: str | None = None
    hosted_zone_name: str | None = None
    certificate_arn: str | None = None
    access_logging: bool = True
    reserved_concurrency: int | None = None
    provisioned_concurrency: int = 0


def target_from_config(found: StackFile) -> Target:
    """The checks' input from the program's validated stack configuration."""
    cfg, net, domain = found.config, found.config.network, found.config.domain
    location = cfg.librechat_config.location
    return Target(
        stack=found.stack,
        region=found.region,
        function_name=cfg.name,
        ssm_parameters=dict(cfg.secrets.parameters),
        config_object=(location.bucket, location.key) if location else None,
        network=net,
        domain_name=domain.name if domain else None,
        hosted_zone_id=domain.hosted_zone_id if domain else None,
        hosted_zone_name=domain.hosted_zone_name if domain else None,
        certificate_arn=domain.certificate_arn if domain else None,
        access_logging=cfg.api.access_logging,
        reserved_concurrency=cfg.reserved_concurrency,
        provisioned_concurrency=cfg.function.provisioned_concurrency,
    )


def read_stack(stack: str) -> Target:
    """`Pulumi.<stack>.yaml` through the program's schema, as the checks' input."""
    return target_from_config(load_stack(stack))


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    check: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        if self.ok:
            return f"ok       {self.check}: {self.detail}"
        return f"PROBLEM  {self.check}: {self.detail} -> fix: {self.fix}"


def ok(check: str, detail: str) -> Result:
    return Result(check, True, detail)


def problem(check: str, detail: str, fix: str) -> Result:
    return Result(check, False, detail, fix)


def _aws_error(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'Unknown')}: {err.get('Message', '')}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"


# -- checks against the account --------------------------------------------------------------


def check_credentials(t: Target, session: boto3.Session) -> Result:
    name = "credentials"
    try:
        identity = session.client("sts").get_caller_identity()
    except (ClientError, BotoCoreError) as exc:
        return problem(
            name,
            f"no working AWS credentials ({_aws_error(exc)})",
            "sign in (aws sso login, AWS_PROFILE=...) with the role that deploys this stack",
        )
    if t.region is None:
        return problem(
            name,
            f"account {identity['Account']}, but the stack sets no aws:region",
            f"pulumi config set aws:region <region> -s {t.stack}",
        )
    return ok(name, f"account {identity['Account']} as {identity['Arn']}, region {t.region}")


def check_ssm_parameters(t: Target, session: boto3.Session) -> Result:
    name = "ssm parameters"
    if not t.ssm_parameters:
        return ok(name, "none named (secrets.parameters is empty)")
    found: set[str] = set()
    ssm = session.client("ssm")
    names = sorted({n for p in t.ssm_parameters.values() for n in _parameter_names(p)})
    try:
        for start in range(0, len(names), 50):  # a filter takes at most 50 values
            pages = ssm.get_paginator("describe_parameters").paginate(
                ParameterFilters=[
                    {"Key": "Name", "Option": "Equals", "Values": names[start : start + 50]}
                ]
            )
            found |= {p["Name"] for page in pages for p in page["Parameters"]}
    except (ClientError, BotoCoreError) as exc:
        return problem(
            name,
            f"cannot list parameters ({_aws_error(exc)})",
            "grant the deploying role ssm:DescribeParameters",
        )
    missing = [
        f"{env} ({p})"
        for env, p in sorted(t.ssm_parameters.items())
        if not _parameter_names(p) & found
    ]
    if missing:
        return problem(
            name,
            f"{len(missing)} of {len(t.ssm_parameters)} not found in {t.region}: "
            + ", ".join(missing),
            "create them (aws ssm put-parameter --type SecureString --name ...) or fix "
            "secrets.parameters",
        )
    return ok(name, f"all {len(t.ssm_parameters)} exist (names only; no value read)")


def _parameter_names(parameter: str) -> set[str]:
    """The names DescribeParameters may report for a name or an ARN (`parameter/x` is the
    ARN of both `x` and `/x`)."""
    if parameter.startswith("arn:"):
        rest = parameter.split(":parameter", 1)[1]
        return {rest} if rest.count("/") > 1 else {rest, rest.lstrip("/")}
    return {parameter}


def check_config_object(t: Target, session: boto3.Session) -> Result:
    name = "config object"
    if t.config_object is None:
        return ok(name, "none (librechatConfig.s3Uri unset: LibreChat runs on its defaults)")
    bucket, key = t.config_object
    where = f"s3://{bucket}/{key}"
    try:
        head = session.client("s3").head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in {"404", "NoSuchKey", "NotFound"}:
            return problem(name, f"{where} does not exist", f"aws s3 cp librechat.yaml {where}")
        return problem(
            name,
            f"cannot read {where} ({_aws_error(exc)})",
            "check the bucket name and that the deploying role may s3:GetObject it",
        )
    except BotoCoreError as exc:
        return problem(name, f"cannot reach S3 ({_aws_error(exc)})", "check network and region")
    return ok(name, f"{where} exists ({head.get('ContentLength', 0)} bytes)")


def check_network(t: Target, session: boto3.Session) -> list[Result]:
    if t.network is None:
        return [ok("network", "off (network.enabled: false): the function runs outside a VPC")]
    net = t.network
    ec2 = session.client("ec2")
    results: list[Result] = []
    try:
        vpc_id = net.vpc_id
        if vpc_id:
            vpcs = ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Vpcs"]
            what = f"network.vpcId {vpc_id}"
        elif net.vpc_tags:
            vpcs = ec2.describe_vpcs(Filters=boto3_filters(tag_filters(net.vpc_tags)))["Vpcs"]
            what = f"network.vpcTags {dict(net.vpc_tags)}"
        else:
            vpcs = []
            what = ""
        if what:
            if len(vpcs) != 1:
                found = ", ".join(v["VpcId"] for v in vpcs) or "none"
                results.append(
                    problem(
                        "network vpc",
                        f"{what} matched {len(vpcs)} VPCs ({found}); exactly 1 is needed",
                        "narrow the tags, or give network.vpcId",
                    )
                )
                return results
            vpc_id = vpcs[0]["VpcId"]
            results.append(ok("network vpc", f"{what} -> {vpc_id} (1 match)"))
        results.append(_subnets(ec2, net, vpc_id))
        results.append(_security_groups(ec2, net, vpc_id))
    except (ClientError, BotoCoreError) as exc:
        results.append(
            problem(
                "network",
                f"EC2 lookups failed ({_aws_error(exc)})",
                "grant the deploying role ec2:DescribeVpcs, DescribeSubnets, "
                "DescribeSecurityGroups",
            )
        )
    return results


def _subnets(ec2: Any, net: NetworkConfig, vpc_id: str | None) -> Result:
    if net.subnet_ids:
        found = ec2.describe_subnets(
            Filters=[{"Name": "subnet-id", "Values": list(net.subnet_ids)}]
        )
        ids = sorted(s["SubnetId"] for s in found["Subnets"])
        missing = sorted(set(net.subnet_ids) - set(ids))
        if missing:
            return problem(
                "network subnets",
                f"network.subnetIds not found: {', '.join(missing)}",
                "fix the ids (aws ec2 describe-subnets)",
            )
        return ok("network subnets", f"{len(ids)} found: {', '.join(ids)}")
    found = ec2.describe_subnets(Filters=boto3_filters(subnet_filters(net, vpc_id)))["Subnets"]
    if not found:
        return problem(
            "network subnets",
            f"network.subnetTags {dict(net.subnet_tags)} matched no subnet in the VPC",
            "fix the tags, or give network.subnetIds",
        )
    zones = sorted({s["AvailabilityZone"] for s in found})
    listed = ", ".join(sorted(s["SubnetId"] for s in found))
    return ok("network subnets", f"{len(found)} matched in {len(zones)} AZs: {listed}")


def _security_groups(ec2: Any, net: NetworkConfig, vpc_id: str | None) -> Result:
    name = "network security groups"
    if net.security_group_ids:
        filters = [{"Name": "group-id", "Values": list(net.security_group_ids)}]
        what = f"network.securityGroupIds {list(net.security_group_ids)}"
    else:
        filters = boto3_filters(security_group_filters(net, vpc_id))
        what = f"network.securityGroupTags {dict(net.security_group_tags)}"
        if net.security_group_names:
            what = f"network.securityGroupNames {list(net.security_group_names)}"
    groups = ec2.describe_security_groups(Filters=filters)["SecurityGroups"]
    ids = sorted(g["GroupId"] for g in groups)
    if net.security_group_ids and len(ids) != len(set(net.security_group_ids)):
        missing = sorted(set(net.security_group_ids) - set(ids))
        return problem(name, f"{what}: not found {', '.join(missing)}", "fix the ids")
    if not ids:
        return problem(name, f"{what} matched none in the VPC", "fix the filter or give ids")
    if len(ids) > MAX_SECURITY_GROUPS:
        return problem(
            name,
            f"{what} matched {len(ids)} ({', '.join(ids)}); Lambda takes at most "
            f"{MAX_SECURITY_GROUPS}",
            "narrow the filter",
        )
    return ok(name, f"{what} -> {len(ids)}: {', '.join(ids)}")


def check_hosted_zone(t: Target, session: boto3.Session) -> Result:
    name = "hosted zone"
    if t.domain_name is None:
        return ok(name, "no custom domain (domain.name unset)")
    route53 = session.client("route53")
    try:
        if t.hosted_zone_id:
            zone = route53.get_hosted_zone(Id=t.hosted_zone_id)["HostedZone"]
            return ok(name, f"{t.hosted_zone_id} ({zone['Name'].rstrip('.')}) exists")
        tried = [t.hosted_zone_name] if t.hosted_zone_name else candidate_zones(t.domain_name)
        for candidate in tried:
            zones = route53.list_hosted_zones_by_name(DNSName=candidate, MaxItems="10")
            for zone in zones["HostedZones"]:
                public = not zone.get("Config", {}).get("PrivateZone", False)
                if zone["Name"].rstrip(".") == candidate and public:
                    zone_id = zone["Id"].rsplit("/", 1)[-1]
                    return ok(name, f"{zone_id} ({candidate}, public) holds {t.domain_name}")
    except (ClientError, BotoCoreError) as exc:
        return problem(
            name,
            f"Route53 lookup failed ({_aws_error(exc)})",
            "check domain.hostedZoneId, or grant route53:GetHostedZone / ListHostedZonesByName",
        )
    return problem(
        name,
        f"no public zone holds {t.domain_name} (tried {', '.join(tried)})",
        "create the public zone, or set domain.hostedZoneName / domain.hostedZoneId",
    )


def check_certificate(t: Target, session: boto3.Session) -> Result:
    name = "certificate"
    if t.domain_name is None:
        return ok(name, "no custom domain")
    if t.certificate_arn is None:
        return ok(name, f"none given: the stack issues one for {t.domain_name}, DNS-validated")
    arn_region = acm_arn_region(t.certificate_arn)
    if arn_region != t.region:
        return problem(
            name,
            f"the certificate is in {arn_region or '?'}, the REGIONAL domain is in {t.region}",
            f"request or import a certificate in {t.region}",
        )
    try:
        cert = session.client("acm").describe_certificate(CertificateArn=t.certificate_arn)
    except (ClientError, BotoCoreError) as exc:
        return problem(
            name, f"cannot describe it ({_aws_error(exc)})", "check domain.certificateArn"
        )
    cert = cert["Certificate"]
    names = [cert.get("DomainName", ""), *cert.get("SubjectAlternativeNames", [])]
    if cert.get("Status") != "ISSUED":
        return problem(
            name,
            f"status {cert.get('Status')}, not ISSUED",
            "complete its DNS validation, or unset domain.certificateArn to issue one",
        )
    if not any(covers(n, t.domain_name) for n in names):
        return problem(
            name,
            f"covers {', '.join(sorted(set(names)))}, not {t.domain_name}",
            "use a certificate for the domain (or a wildcard of its parent)",
        )
    return ok(name, f"ISSUED in {t.region}, covers {t.domain_name}")


def covers(certificate_name: str, domain: str) -> bool:
    """Whether a certificate name (maybe `*.parent`) covers `domain` (one label per `*`)."""
    certificate_name = certificate_name.lower()
    if certificate_name.startswith("*."):
        head, _, parent = domain.partition(".")
        return bool(head) and parent == certificate_name[2:]
    return certificate_name == domain


def check_api_gateway_account(t: Target, session: boto3.Session) -> Result:
    name = "api gateway logging role"
    if not t.access_logging:
        return ok(name, "not needed (api.accessLogging: false)")
    try:
        account = session.client("apigateway").get_account()
    except (ClientError, BotoCoreError) as exc:
        return problem(
            name, f"cannot read it ({_aws_error(exc)})", "grant apigateway:GET on /account"
        )
    role = account.get("cloudwatchRoleArn")
    if not role:
        return problem(
            name,
            f"the account has no API Gateway CloudWatch role in {t.region}; the stage's access "
            "logging would fail",
            "set it once per account and region (a role trusting apigateway.amazonaws.com with "
            "AmazonAPIGatewayPushToCloudWatchLogs): aws apigateway update-account "
            "--patch-operations op=replace,path=/cloudwatchRoleArn,value=<role-arn>; "
            "or api.accessLogging: false",
        )
    return ok(name, f"set ({role})")


def check_lambda_concurrency(t: Target, session: boto3.Session) -> Result:
    name = "lambda concurrency"
    client = session.client("lambda")
    try:
        limits = client.get_account_settings()["AccountLimit"]
        current = _current_reservation(client, t.function_name)
    except (ClientError, BotoCoreError) as exc:
        return problem(
            name,
            f"cannot read the account settings ({_aws_error(exc)})",
            "grant lambda:GetAccountSettings",
        )
    total = limits["ConcurrentExecutions"]
    unreserved = limits["UnreservedConcurrentExecutions"] + current
    wanted = max(t.reserved_concurrency or 0, t.provisioned_concurrency)
    room = unreserved - MIN_UNRESERVED
    summary = f"account limit {total}, {unreserved} unreserved"
    if wanted > room:
        return problem(
            name,
            f"the stack reserves {wanted} but only {max(room, 0)} can be ({summary}; Lambda keeps "
            f"{MIN_UNRESERVED} unreserved)",
            "request a higher 'Concurrent executions' quota (Service Quotas, L-B99A9384) or lower "
            "function.reservedConcurrency / function.provisionedConcurrency",
        )
    if wanted:
        return ok(name, f"{wanted} reserved/provisioned fits ({summary})")
    return ok(name, f"no reservation; {summary}")


def _current_reservation(client: Any, function_name: str) -> int:
    """This function's own reservation (already subtracted from the unreserved pool)."""
    try:
        found = client.get_function_concurrency(FunctionName=function_name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return 0
        raise
    return int(found.get("ReservedConcurrentExecutions") or 0)


AWS_CHECKS: Sequence[Callable[[Target, boto3.Session], Result | list[Result]]] = (
    check_ssm_parameters,
    check_config_object,
    check_network,
    check_hosted_zone,
    check_certificate,
    check_api_gateway_account,
    check_lambda_concurrency,
)


# -- the local Docker engine -------------------------------------------------------------------


def check_docker(env: Mapping[str, str] | None = None) -> list[Result]:
    """Engine reachable; an image store and builder that push one plain manifest."""
    env = os.environ if env is None else env
    docker = shutil.which("docker", path=env.get("PATH"))
    if docker is None:
        return [
            problem(
                "docker engine",
                "no docker CLI on PATH; pulumi up builds the image locally",
                "install Docker (Engine or Desktop)",
            )
        ]
    info = _run([docker, "info", "--format", "{{json .}}"], env)
    try:
        data = json.loads(info.stdout) if info.returncode == 0 else {}
    except ValueError:
        data = {}
    errors = data.get("ServerErrors") or ([] if data else [_first_line(info.stderr)])
    if errors or not data.get("ServerVersion"):
        return [
            problem(
                "docker engine",
                f"not reachable ({'; '.join(e for e in errors if e) or 'no server answer'})",
                "start Docker, or point DOCKER_HOST / the docker context at a running engine",
            )
        ]
    results = [ok("docker engine", f"reachable (server {data['ServerVersion']})")]
    status = {str(k): str(v) for k, v in (data.get("DriverStatus") or []) if k}
    if status.get("driver-type") == CONTAINERD_SNAPSHOTTER:
        results.append(
            problem(
                "docker image store",
                "the containerd image store is on: builds keep attestations and push an image "
                "index, which Lambda rejects (pulumi-docker 4.x cannot turn them off)",
                "turn it off: Docker Desktop > Settings > General > 'Use containerd for pulling "
                "and storing images'; Docker Engine: remove features.containerd-snapshotter from "
                "/etc/docker/daemon.json and restart dockerd",
            )
        )
    else:
        results.append(ok("docker image store", f"classic ({data.get('Driver', '?')})"))
    results.append(_attestations(docker, env))
    return results


def _attestations(docker: str, env: Mapping[str, str]) -> Result:
    name = "docker attestations"
    if env.get("BUILDX_NO_DEFAULT_ATTESTATIONS", "").strip() not in {"", "0", "false"}:
        return ok(name, "off (BUILDX_NO_DEFAULT_ATTESTATIONS is set)")
    inspect = _run([docker, "buildx", "inspect"], env)
    if inspect.returncode != 0:
        return ok(name, "no buildx builder: the engine's builder adds none")
    driver = next(
        (
            line.split(":", 1)[1].strip()
            for line in inspect.stdout.splitlines()
            if line.strip().lower().startswith("driver:")
        ),
        "docker",
    )
    if driver in ATTESTING_DRIVERS:
        return problem(
            name,
            f"the current buildx builder (driver {driver}) adds provenance attestations by "
            "default; Lambda rejects the resulting image index",
            "export BUILDX_NO_DEFAULT_ATTESTATIONS=1 before pulumi up (or docker buildx use "
            "default)",
        )
    return ok(name, f"none by default (builder driver {driver})")


def _run(argv: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv, env=dict(env), capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(argv, 1, "", f"{type(exc).__name__}: {exc}")


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


# -- running ---------------------------------------------------------------------------------


def run(
    target: Target, session: boto3.Session, env: Mapping[str, str] | None = None
) -> list[Result]:
    """Every check's result; the AWS checks only once the credentials work."""
    results = [check_credentials(target, session)]
    if results[0].ok:
        for check in AWS_CHECKS:
            found = check(target, session)
            results += found if isinstance(found, list) else [found]
    else:
        results.append(
            problem(
                "account checks",
                "skipped: they need working credentials and a region",
                "fix the credentials line above, then run preflight again",
            )
        )
    return results + check_docker(env)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", "-s", required=True, help="the stack (Pulumi.<stack>.yaml)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        target = read_stack(args.stack)
    except FileNotFoundError:
        print(f"PROBLEM  stack file: Pulumi.{args.stack}.yaml does not exist")
        return 2
    except ConfigError as exc:
        print(f"PROBLEM  stack configuration: {exc}")
        return 2
    results = run(target, boto3.Session(region_name=target.region))
    for result in results:
        print(result.line())
    failed = sum(not r.ok for r in results)
    print(f"{len(results) - failed} ok, {failed} problem{'s' if failed != 1 else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
