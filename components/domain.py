"""Custom domain in front of the streaming API.

A REGIONAL API Gateway domain name (TLS 1.2 policy, dualstack so the AAAA record resolves)
with an ACM certificate validated through Route53 (or an existing certificate), a base path
mapping to the API's stage, and Route53 A and AAAA alias records. The certificate must live in
the API's region, so it is created with the same provider as everything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.aws_rules import acm_arn_region, domain_url

#: API Gateway's TLS 1.2 security policy for custom domain names.
SECURITY_POLICY = "TLS_1_2"


@dataclass(frozen=True)
class CustomDomainArgs:
    """Inputs of `CustomDomain`. Give `hosted_zone_id` or `hosted_zone_name`, or neither to
    look up the public zone holding the domain."""

    domain_name: str
    rest_api_id: pulumi.Input[str]
    stage_name: pulumi.Input[str]
    hosted_zone_id: pulumi.Input[str] | None = None
    hosted_zone_name: str | None = None
    certificate_arn: str | None = None
    """An issued ACM certificate in the API's region; None to create and validate one."""
    base_path: str | None = None
    """Path segment the API is mapped under (e.g. "api"); None maps it at the root."""
    tags: Mapping[str, str] = field(default_factory=dict)


def check_certificate_region(args: CustomDomainArgs, region: str) -> None:
    """A REGIONAL domain name accepts only a certificate from the API's own region, which is the
    provider's region (known at deploy time, whether or not the stack sets aws:region)."""
    if args.certificate_arn is None or acm_arn_region(args.certificate_arn) == region:
        return
    msg = (
        f"certificate_arn {args.certificate_arn!r} is in region "
        f"{acm_arn_region(args.certificate_arn)}, but a REGIONAL domain needs a certificate in "
        f"the API's region {region}; request or import one there (stack key "
        "domain.certificateArn)."
    )
    raise pulumi.RunError(msg)


def candidate_zones(domain: str) -> list[str]:
    """The domain and each parent domain, most specific first, down to two labels."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


def find_public_zone_id(domain: str, opts: pulumi.InvokeOptions | None = None) -> str:
    """ID of the most specific public Route53 zone that holds `domain`.

    Invoke failures (zone not found) are caught per candidate; if none matches, the error
    names every zone tried and the argument to set instead.
    """
    tried = candidate_zones(domain)
    last_error: Exception | None = None
    for zone in tried:
        try:
            found = aws.route53.get_zone(name=zone, private_zone=False, opts=opts)
        except Exception as exc:  # the provider signals "no matching zone" as an invoke error
            last_error = exc
            continue
        return found.zone_id
    raise pulumi.RunError(
        f"No public Route53 hosted zone holds {domain!r} (tried {', '.join(tried)}; last "
        f"error: {last_error}). Create the zone, or name the zone that serves the domain: "
        "stack key domain.hostedZoneId or domain.hostedZoneName (hosted_zone_id or "
        "hosted_zone_name of CustomDomainArgs)."
    )


class CustomDomain(pulumi.ComponentResource):
    """HTTPS custom domain mapped to one API Gateway stage."""

    domain_name_resource: aws.apigateway.DomainName
    certificate_arn: pulumi.Output[str]
    url: pulumi.Output[str]

    def __init__(
        self, name: str, args: CustomDomainArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("librechat:components:CustomDomain", name, None, opts)
        invoke_opts = pulumi.InvokeOptions(parent=self)
        check_certificate_region(args, aws.get_region(opts=invoke_opts).region)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        domain = args.domain_name

        # 1. The hosted zone: given by ID, by name, or the public zone holding the domain.
        zone_id: pulumi.Input[str]
        if args.hosted_zone_id is not None:
            zone_id = args.hosted_zone_id
        elif args.hosted_zone_name is not None:
            try:
                zone_id = aws.route53.get_zone(
                    name=args.hosted_zone_name, private_zone=False, opts=invoke_opts
                ).zone_id
            except Exception as exc:  # the provider reports "no matching zone" as an invoke error
                msg = (
                    f"No public Route53 hosted zone is named {args.hosted_zone_name!r} ({exc}); "
                    "fix the stack key domain.hostedZoneName (hosted_zone_name) or give "
                    "domain.hostedZoneId."
                )
                raise pulumi.RunError(msg) from exc
        else:
            zone_id = find_public_zone_id(domain, invoke_opts)

        # 2. The certificate: an existing one, or a new one validated through DNS.
        if args.certificate_arn is not None:
            certificate_arn: pulumi.Output[str] = pulumi.Output.from_input(args.certificate_arn)
        else:
            certificate = aws.acm.Certificate(
                f"{name}-cert",
                domain_name=domain,
                validation_method="DNS",
                tags=tags,
                opts=child,
            )
            option = certificate.domain_validation_options[0]
            validation_record = aws.route53.Record(
                f"{name}-cert-validation",
                zone_id=zone_id,
                name=option.resource_record_name,
                type=option.resource_record_type,
                records=[option.resource_record_value],
                ttl=300,
                allow_overwrite=True,
                opts=child,
            )
            validation = aws.acm.CertificateValidation(
                f"{name}-cert-validated",
                certificate_arn=certificate.arn,
                validation_record_fqdns=[validation_record.fqdn],
                opts=child,
            )
            certificate_arn = validation.certificate_arn

        # 3. The REGIONAL domain name (TLS 1.2, IPv4 and IPv6) and the mapping to the stage.
        self.domain_name_resource = aws.apigateway.DomainName(
            f"{name}-domain",
            domain_name=domain,
            regional_certificate_arn=certificate_arn,
            endpoint_configuration=aws.apigateway.DomainNameEndpointConfigurationArgs(
                types="REGIONAL", ip_address_type="dualstack"
            ),
            security_policy=SECURITY_POLICY,
            tags=tags,
            opts=child,
        )
        aws.apigateway.BasePathMapping(
            f"{name}-mapping",
            domain_name=self.domain_name_resource.domain_name,
            rest_api=args.rest_api_id,
            stage_name=args.stage_name,
            base_path=args.base_path,
            opts=child,
        )

        # 4. A and AAAA alias records pointing the domain at the regional endpoint.
        for record_type in ("A", "AAAA"):
            aws.route53.Record(
                f"{name}-{record_type.lower()}",
                zone_id=zone_id,
                name=domain,
                type=record_type,
                aliases=[
                    aws.route53.RecordAliasArgs(
                        name=self.domain_name_resource.regional_domain_name,
                        zone_id=self.domain_name_resource.regional_zone_id,
                        evaluate_target_health=False,
                    )
                ],
                opts=child,
            )

        self.certificate_arn = certificate_arn
        # The same form as DOMAIN_SERVER and the stage URL: no trailing slash.
        self.url = pulumi.Output.from_input(domain_url(domain, args.base_path))
        self.register_outputs({"url": self.url, "certificate_arn": self.certificate_arn})
