"""CustomDomain: a REGIONAL TLS 1.2 domain with a validated certificate, mapped and aliased."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from pulumi.runtime import set_all_config

from components.api import StreamingApi, StreamingApiArgs
from components.domain import CustomDomain, CustomDomainArgs, candidate_zones
from tests.config_defaults import api_settings
from tests.pulumi_mocks import (
    APIGATEWAY_REGIONAL_ZONE_IDS,
    DEFAULT_REGION,
    HOSTED_ZONE_ID,
    C,
    PulumiMocks,
    T,
    run_program,
)

DOMAIN = "lambda-test.sandbox.data.apro.is"
EXISTING_CERT = f"arn:aws:acm:{DEFAULT_REGION}:123456789012:certificate/0a1b2c3d-4e5f-6789"


def build_domain(**overrides: Any) -> dict[str, pulumi.Input[Any]]:
    values: dict[str, Any] = {
        "domain_name": DOMAIN,
        "rest_api_id": "abc123",
        "stage_name": "live",
        "hosted_zone_id": HOSTED_ZONE_ID,
    }
    domain = CustomDomain("site", CustomDomainArgs(**(values | overrides)))
    return {
        "url": domain.url,
        "certificate_arn": domain.certificate_arn,
        "domain_urn": domain.domain_name_resource.urn,
    }


def records_of_type(mocks: PulumiMocks, record_type: str) -> list[dict[str, Any]]:
    return [r.inputs for r in mocks.of_type(T.ROUTE53_RECORD) if r.inputs["type"] == record_type]


def test_domain_is_regional_with_tls_1_2(mocks: PulumiMocks) -> None:
    out = run_program(build_domain)

    domain = mocks.one(T.API_DOMAIN_NAME).inputs
    assert domain["domainName"] == DOMAIN
    assert domain["endpointConfiguration"]["types"] == "REGIONAL"
    assert domain["endpointConfiguration"]["ipAddressType"] == "dualstack"
    assert domain["securityPolicy"] == "TLS_1_2"
    assert "certificateArn" not in domain  # that one is for EDGE domains
    assert (
        "::librechat:components:CustomDomain$aws:apigateway/domainName:DomainName::"
        in (out["domain_urn"])
    )


def test_created_certificate_is_validated_through_route53(mocks: PulumiMocks) -> None:
    out = run_program(build_domain)

    certificate = mocks.one(T.CERTIFICATE)
    cert_out = mocks.outputs[certificate.name]
    assert certificate.inputs["domainName"] == DOMAIN
    assert certificate.inputs["validationMethod"] == "DNS"

    option = cert_out["domainValidationOptions"][0]
    (cname,) = records_of_type(mocks, "CNAME")
    assert cname["zoneId"] == HOSTED_ZONE_ID
    assert cname["name"] == option["resourceRecordName"]
    assert cname["records"] == [option["resourceRecordValue"]]

    validation = mocks.one(T.CERTIFICATE_VALIDATION).inputs
    assert validation["certificateArn"] == cert_out["arn"]
    assert validation["validationRecordFqdns"] == [option["resourceRecordName"].rstrip(".")]
    # The domain waits for validation: it takes the validated certificate's ARN.
    assert mocks.one(T.API_DOMAIN_NAME).inputs["regionalCertificateArn"] == cert_out["arn"]
    assert "site-cert-validated" in mocks.depends_on("site-domain")
    assert out["certificate_arn"] == cert_out["arn"]


def test_existing_certificate_creates_no_certificate_resources(mocks: PulumiMocks) -> None:
    out = run_program(lambda: build_domain(certificate_arn=EXISTING_CERT))

    assert mocks.of_type(T.CERTIFICATE) == []
    assert mocks.of_type(T.CERTIFICATE_VALIDATION) == []
    assert records_of_type(mocks, "CNAME") == []
    assert mocks.one(T.API_DOMAIN_NAME).inputs["regionalCertificateArn"] == EXISTING_CERT
    assert out["certificate_arn"] == EXISTING_CERT


def test_base_path_maps_the_domain_to_the_stage(mocks: PulumiMocks) -> None:
    out = run_program(lambda: build_domain(base_path="chat"))

    mapping = mocks.one(T.API_BASE_PATH_MAPPING).inputs
    assert mapping == {
        "domainName": DOMAIN,
        "restApi": "abc123",
        "stageName": "live",
        "basePath": "chat",
    }
    assert out["url"] == f"https://{DOMAIN}/chat"


def test_without_base_path_the_api_sits_at_the_root(mocks: PulumiMocks) -> None:
    out = run_program(build_domain)

    assert "basePath" not in mocks.one(T.API_BASE_PATH_MAPPING).inputs
    assert out["url"] == f"https://{DOMAIN}"  # no trailing slash, like DOMAIN_SERVER


@pytest.mark.parametrize("record_type", ["A", "AAAA"])
def test_alias_record_points_at_the_regional_endpoint(mocks: PulumiMocks, record_type: str) -> None:
    run_program(build_domain)

    domain_out = mocks.outputs[mocks.one(T.API_DOMAIN_NAME).name]
    (record,) = records_of_type(mocks, record_type)
    assert record["name"] == DOMAIN
    assert record["zoneId"] == HOSTED_ZONE_ID
    assert record["aliases"] == [
        {
            "name": domain_out["regionalDomainName"],
            "zoneId": APIGATEWAY_REGIONAL_ZONE_IDS[DEFAULT_REGION],
            "evaluateTargetHealth": False,
        }
    ]
    assert domain_out["regionalDomainName"].endswith(f".execute-api.{DEFAULT_REGION}.amazonaws.com")


def test_zone_given_by_id_needs_no_lookup(mocks: PulumiMocks) -> None:
    run_program(lambda: build_domain(hosted_zone_id="ZGIVEN"))

    assert mocks.calls_to(C.ROUTE53_ZONE) == []
    assert {r.inputs["zoneId"] for r in mocks.of_type(T.ROUTE53_RECORD)} == {"ZGIVEN"}


def test_zone_given_by_name_is_looked_up_as_a_public_zone(mocks: PulumiMocks) -> None:
    mocks.call_results[C.ROUTE53_ZONE] = lambda a: {"zoneId": "ZBYNAME", "name": a["name"]}
    run_program(lambda: build_domain(hosted_zone_id=None, hosted_zone_name="apro.is"))

    assert mocks.calls_to(C.ROUTE53_ZONE) == [{"name": "apro.is", "privateZone": False}]
    assert {r.inputs["zoneId"] for r in mocks.of_type(T.ROUTE53_RECORD)} == {"ZBYNAME"}


def test_zone_named_but_missing_says_which_key_to_fix(mocks: PulumiMocks) -> None:
    mocks.zones = {"apro.is": "ZTOP"}
    with pytest.raises(pulumi.RunError, match=r"domain\.hostedZoneName") as error:
        run_program(lambda: build_domain(hosted_zone_id=None, hosted_zone_name="data.apro.is"))

    assert "'data.apro.is'" in str(error.value)
    assert mocks.of_type(T.API_DOMAIN_NAME) == []


def test_zone_lookup_finds_the_nearest_public_parent_zone(mocks: PulumiMocks) -> None:
    mocks.zones = {"data.apro.is": "ZPARENT", "apro.is": "ZTOP"}
    run_program(lambda: build_domain(hosted_zone_id=None))

    assert [a["name"] for a in mocks.calls_to(C.ROUTE53_ZONE)] == [
        DOMAIN,
        "sandbox.data.apro.is",
        "data.apro.is",
    ]
    assert all(a["privateZone"] is False for a in mocks.calls_to(C.ROUTE53_ZONE))
    assert {r.inputs["zoneId"] for r in mocks.of_type(T.ROUTE53_RECORD)} == {"ZPARENT"}


def test_zone_lookup_without_a_zone_says_what_to_set(mocks: PulumiMocks) -> None:
    mocks.zones = {}
    with pytest.raises(pulumi.RunError, match=r"domain\.hostedZoneId") as error:
        run_program(lambda: build_domain(hosted_zone_id=None))

    assert "sandbox.data.apro.is" in str(error.value)
    assert "hosted_zone_id" in str(error.value)
    assert mocks.of_type(T.API_DOMAIN_NAME) == []


def test_candidate_zones_run_from_the_domain_to_its_registrable_parent() -> None:
    assert candidate_zones("a.b.example.com") == ["a.b.example.com", "b.example.com", "example.com"]


def test_domain_maps_to_the_streaming_api_stage(mocks: PulumiMocks) -> None:
    def build() -> dict[str, pulumi.Input[Any]]:
        api = StreamingApi(
            "chat",
            StreamingApiArgs(
                function_name="librechat",
                invoke_arn="arn:aws:apigateway:eu-west-1:lambda:path/2021-11-15/functions/"
                "arn:aws:lambda:eu-west-1:123456789012:function:librechat/"
                "response-streaming-invocations",
                **api_settings(),
            ),
        )
        CustomDomain(
            "site",
            CustomDomainArgs(
                domain_name=DOMAIN,
                rest_api_id=api.rest_api_id,
                stage_name=api.stage_name,
                hosted_zone_id=HOSTED_ZONE_ID,
            ),
        )
        return {"api_id": api.rest_api_id}

    out = run_program(build)

    mapping = mocks.one(T.API_BASE_PATH_MAPPING).inputs
    assert mapping["restApi"] == out["api_id"]
    assert mapping["stageName"] == mocks.one(T.API_STAGE).inputs["stageName"] == "live"


def test_certificate_region_is_checked_against_the_providers_region(mocks: PulumiMocks) -> None:
    set_all_config({})  # no aws:region in the stack: the provider's region still counts
    other_region = EXISTING_CERT.replace(DEFAULT_REGION, "us-east-1")
    with pytest.raises(pulumi.RunError, match=f"API's region {DEFAULT_REGION}"):
        run_program(lambda: build_domain(certificate_arn=other_region))
    assert mocks.calls_to(C.REGION) != []
