"""API Gateway REST API that streams the function's response to the client.

One REST API with `ANY /` and `ANY /{proxy+}`, both Lambda proxy integrations in STREAM
transfer mode against the function's `InvokeWithResponseStream` URI, one stage with JSON
access logs, throttling and optionally an existing WAFv2 web ACL, and the permission for this
API alone to invoke the function.

With a custom domain in front, the API's default `execute-api` endpoint can be disabled, so the
domain (its TLS policy, its web ACL) is the only way in; a disabled endpoint answers 403. The
switch takes effect with a new deployment, so it is part of the deployment's fingerprint.

Access logging needs the account-wide API Gateway CloudWatch role (`aws.apigateway.Account`,
one per account and region). This component does not manage that shared setting: another
stack may own it and two owners would overwrite each other. Where the account has no role yet,
set it once outside this project, or pass `access_logging=False`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components import names
from components.aws_rules import EndpointType

#: API Gateway's maximum integration timeout in STREAM mode (15 minutes).
STREAM_TIMEOUT_MS = 900_000

#: One JSON object per request. Every value is quoted: API Gateway writes "-" for an empty
#: variable, which would break unquoted JSON numbers. Streaming integrations write no execution
#: logs, so these records are the only per-request trace; the transfer mode (BUFFERED or
#: STREAMED) and the time to first content byte show whether a response really streamed.
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "extendedRequestId": "$context.extendedRequestId",
        "requestTime": "$context.requestTime",
        "ip": "$context.identity.sourceIp",
        "userAgent": "$context.identity.userAgent",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "path": "$context.path",
        "protocol": "$context.protocol",
        "domainName": "$context.domainName",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "responseLatency": "$context.responseLatency",
        "integrationStatus": "$context.integration.status",
        "integrationLatency": "$context.integrationLatency",
        "integrationError": "$context.integration.error",
        "responseTransferMode": "$context.integration.responseTransferMode",
        "timeToAllHeaders": "$context.integration.timeToAllHeaders",
        "timeToFirstContent": "$context.integration.timeToFirstContent",
        "errorMessage": "$context.error.message",
        "errorType": "$context.error.responseType",
    },
    separators=(",", ":"),
)


@dataclass(frozen=True)
class StreamingApiArgs:
    """Inputs of `StreamingApi`."""

    function_name: pulumi.Input[str]
    """Name (or ARN) of the function the API invokes."""
    invoke_arn: pulumi.Input[str]
    """`response_streaming_invoke_arn` of the function, or `LambdaFunction.streaming_invoke_arn`
    (which covers the alias); the plain invoke ARN fails."""
    # Settings from the stack config's `api` section, whose schema states their defaults.
    stage_name: str
    endpoint_type: EndpointType
    binary_media_types: Sequence[str]
    """`*/*` passes every request body through unaltered (base64 with `isBase64Encoded`)."""
    throttling_burst_limit: int
    throttling_rate_limit: float
    log_retention_days: int
    access_logging: bool
    """Needs the account's API Gateway CloudWatch role; see the module docstring."""
    qualifier: pulumi.Input[str] | None = None
    """Alias or version the API invokes (provisioned concurrency, SnapStart, managed mode), else
    None; the permission then names it."""
    tags: Mapping[str, str] = field(default_factory=dict)
    api_name: str | None = None
    """Physical name of the REST API, also naming its access log group
    `/aws/apigateway/<api_name>/<stage>/access`; None: generated, the log group by API id."""
    disable_execute_api_endpoint: bool = False
    """Turn off the default `https://<id>.execute-api...` URL (when a custom domain serves)."""
    web_acl_arn: str | None = None
    """An existing regional WAFv2 web ACL to associate with the stage."""
    rate_limit_per_ip: int | None = None
    """Set: the stage gets a web ACL of its own blocking a client IP above this many requests
    in 5 minutes (`api.rateLimitPerIp`); excludes `web_acl_arn`."""


def _fingerprint(*parts: object) -> str:
    """A stable digest of the deployed configuration, for the deployment's triggers."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def rate_limited_web_acl(
    name: str,
    api_name: str,
    limit: int,
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> aws.wafv2.WebAcl:
    """A regional web ACL that allows everything but a client IP over `limit` requests in
    WAF's 5-minute window (`names.web_acl_name`: the CI deploy roles may manage it)."""
    metric = f"{api_name}-rate".replace("-", "")
    return aws.wafv2.WebAcl(
        name,
        name=names.web_acl_name(api_name),
        scope="REGIONAL",
        default_action={"allow": {}},
        rules=[
            {
                "name": "per-ip-rate",
                "priority": 0,
                "action": {"block": {}},
                "statement": {"rate_based_statement": {"limit": limit, "aggregate_key_type": "IP"}},
                "visibility_config": {
                    "cloudwatch_metrics_enabled": True,
                    "metric_name": f"{metric}PerIp",
                    "sampled_requests_enabled": True,
                },
            }
        ],
        visibility_config={
            "cloudwatch_metrics_enabled": True,
            "metric_name": metric,
            "sampled_requests_enabled": False,
        },
        tags=dict(tags),
        opts=opts,
    )


class StreamingApi(pulumi.ComponentResource):
    """REST API whose every route streams from one Lambda function."""

    rest_api: aws.apigateway.RestApi
    stage: aws.apigateway.Stage
    web_acl: aws.wafv2.WebAcl | None
    rest_api_id: pulumi.Output[str]
    stage_name: pulumi.Output[str]
    stage_url: pulumi.Output[str]
    execution_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: StreamingApiArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("librechat:components:StreamingApi", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)

        # 1. The API. Binary media types make API Gateway pass request bodies unaltered.
        self.rest_api = aws.apigateway.RestApi(
            f"{name}-api",
            name=args.api_name,
            description="LibreChat API on Lambda, responses streamed",
            disable_execute_api_endpoint=args.disable_execute_api_endpoint,
            endpoint_configuration=aws.apigateway.RestApiEndpointConfigurationArgs(
                types=args.endpoint_type
            ),
            binary_media_types=list(args.binary_media_types),
            tags=tags,
            opts=child,
        )

        # 2. ANY on the root and on {proxy+}, each a streaming Lambda proxy integration.
        proxy = aws.apigateway.Resource(
            f"{name}-proxy",
            rest_api=self.rest_api.id,
            parent_id=self.rest_api.root_resource_id,
            path_part="{proxy+}",
            opts=child,
        )
        routes = {"root": self.rest_api.root_resource_id, "proxy": proxy.id}
        methods: list[aws.apigateway.Method] = []
        integrations: list[aws.apigateway.Integration] = []
        for route, resource_id in routes.items():
            method = aws.apigateway.Method(
                f"{name}-{route}-any",
                rest_api=self.rest_api.id,
                resource_id=resource_id,
                http_method="ANY",
                authorization="NONE",
                opts=child,
            )
            integration = aws.apigateway.Integration(
                f"{name}-{route}-lambda",
                rest_api=self.rest_api.id,
                resource_id=resource_id,
                http_method=method.http_method,
                type="AWS_PROXY",
                integration_http_method="POST",
                uri=args.invoke_arn,
                response_transfer_mode="STREAM",
                timeout_milliseconds=STREAM_TIMEOUT_MS,
                opts=child,
            )
            methods.append(method)
            integrations.append(integration)

        # 3. A deployment replaced whenever what it serves changes. Pulumi creates the
        #    replacement before deleting the old one, so the stage never points at nothing.
        served = pulumi.Output.all(
            self.rest_api.binary_media_types,
            self.rest_api.disable_execute_api_endpoint,
            proxy.path_part,
            *[pulumi.Output.all(m.http_method, m.authorization) for m in methods],
            *[
                pulumi.Output.all(
                    i.type,
                    i.integration_http_method,
                    i.uri,
                    i.response_transfer_mode,
                    i.timeout_milliseconds,
                )
                for i in integrations
            ],
        )
        deployment = aws.apigateway.Deployment(
            f"{name}-deployment",
            rest_api=self.rest_api.id,
            description="Managed by Pulumi; replaced when methods or integrations change",
            triggers={"redeployment": served.apply(lambda values: _fingerprint(*values))},
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*methods, *integrations],
                replace_on_changes=["triggers"],
                delete_before_replace=False,
            ),
        )

        # 4. The stage, with JSON access logs to its own log group and throttling.
        access_log_settings = None
        if args.access_logging:
            log_group = aws.cloudwatch.LogGroup(
                f"{name}-access-logs",
                name=pulumi.Output.concat(
                    "/aws/apigateway/",
                    args.api_name or self.rest_api.id,
                    "/",
                    args.stage_name,
                    "/access",
                ),
                retention_in_days=args.log_retention_days,
                tags=tags,
                opts=child,
            )
            access_log_settings = aws.apigateway.StageAccessLogSettingsArgs(
                destination_arn=log_group.arn, format=ACCESS_LOG_FORMAT
            )
        self.stage = aws.apigateway.Stage(
            f"{name}-stage",
            rest_api=self.rest_api.id,
            deployment=deployment.id,
            stage_name=args.stage_name,
            access_log_settings=access_log_settings,
            tags=tags,
            opts=child,
        )
        aws.apigateway.MethodSettings(
            f"{name}-throttling",
            rest_api=self.rest_api.id,
            stage_name=self.stage.stage_name,
            method_path="*/*",
            settings=aws.apigateway.MethodSettingsSettingsArgs(
                throttling_burst_limit=args.throttling_burst_limit,
                throttling_rate_limit=args.throttling_rate_limit,
            ),
            opts=child,
        )

        web_acl_arn: pulumi.Input[str] | None = args.web_acl_arn
        self.web_acl = None
        if args.rate_limit_per_ip is not None:
            self.web_acl = rate_limited_web_acl(
                f"{name}-rate", args.api_name or name, args.rate_limit_per_ip, tags, child
            )
            web_acl_arn = self.web_acl.arn
        if web_acl_arn is not None:
            aws.wafv2.WebAclAssociation(
                f"{name}-web-acl",
                resource_arn=self.stage.arn,
                web_acl_arn=web_acl_arn,
                opts=child,
            )

        # 5. Only this API (any stage, method and path) may invoke the function or alias.
        aws.lambda_.Permission(
            f"{name}-invoke",
            function=args.function_name,
            qualifier=args.qualifier,
            action="lambda:InvokeFunction",
            principal="apigateway.amazonaws.com",
            source_arn=pulumi.Output.concat(self.rest_api.execution_arn, "/*/*"),
            opts=child,
        )

        self.rest_api_id = self.rest_api.id
        self.stage_name = self.stage.stage_name
        self.stage_url = self.stage.invoke_url
        self.execution_arn = self.rest_api.execution_arn
        self.register_outputs(
            {
                "rest_api_id": self.rest_api_id,
                "stage_name": self.stage_name,
                "stage_url": self.stage_url,
                "execution_arn": self.execution_arn,
            }
        )
