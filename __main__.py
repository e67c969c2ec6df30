"""librechat-lambda: LibreChat's API on Lambda behind a streaming REST API and a custom domain.

Reads the stack configuration (components/config/) and wires the components; the request
path is browser -> custom domain -> REST API (STREAM) -> function (image from runtime/).
"""

from __future__ import annotations

import pulumi

from components import names
from components.api import StreamingApi, StreamingApiArgs
from components.capacity_provider import CapacityProvider, CapacityProviderArgs
from components.config import load
from components.domain import CustomDomain, CustomDomainArgs
from components.function import (
    LambdaFunction,
    LambdaFunctionArgs,
    ManagedCompute,
)
from components.image import ContainerImage, ContainerImageArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.network import resolve_network

cfg = load()
for advice in cfg.advice():
    pulumi.log.warn(advice)
tags = {
    "Project": names.PROJECT,
    "Stack": pulumi.get_stack(),
    **cfg.tags,
    names.SCOPE_TAG: cfg.name,
}
function_name = names.function_name(cfg.name, managed=cfg.compute.managed)

image = ContainerImage(
    "image",
    ContainerImageArgs(
        base_image=cfg.image.base_image,
        architecture=cfg.function.architecture,
        repository_name=names.repository_name(cfg.name),
        lambda_function_name=function_name,
        keep_last_images=cfg.image.keep_last_images,
        force_delete=cfg.image.force_delete,
        tags=tags,
    ),
)

network = resolve_network(cfg.network) if cfg.network else None

# Managed instances: the capacity provider holds the network; the function runs on it.
managed = None
if cfg.compute.managed and network is not None:
    capacity = CapacityProvider(
        "compute",
        CapacityProviderArgs(
            name=cfg.name,
            subnet_ids=network.subnet_ids,
            security_group_ids=network.security_group_ids,
            architecture=cfg.function.architecture,
            allowed_instance_types=cfg.compute.allowed_instance_types,
            max_vcpu_count=cfg.compute.max_vcpus,
            target_cpu_utilization=cfg.compute.target_cpu_utilization,
            kms_key_arn=cfg.compute.kms_key_arn,
            tags=tags,
        ),
    )
    managed = ManagedCompute(
        capacity_provider_arn=capacity.arn,
        memory_per_vcpu_gib=cfg.compute.memory_per_vcpu_gib,
        max_concurrency=cfg.compute.max_concurrency,
        min_environments=cfg.compute.min_environments,
        max_environments=cfg.compute.max_environments,
    )
    pulumi.export("capacity_provider_arn", capacity.arn)

function = LambdaFunction(
    "function",
    LambdaFunctionArgs(
        image_uri=image.image_uri,
        function_name=function_name,
        log_group_name=names.function_log_group(cfg.name),
        architecture=cfg.function.architecture,
        memory_mb=cfg.function.memory_mb,
        timeout_seconds=cfg.function.timeout_seconds,
        ephemeral_storage_mb=cfg.function.ephemeral_storage_mb,
        log_retention_days=cfg.function.log_retention_days,
        environment=cfg.app_environment,
        environment_is_secret=cfg.environment_is_secret,
        secrets=cfg.secret_parameters,
        secrets_mode=cfg.secrets.mode,
        secrets_kms_key_arn=cfg.secrets.kms_key_arn,
        environment_kms_key_arn=cfg.function.kms_key_arn,
        config_object=cfg.librechat_config.location,
        config_domain_from=cfg.librechat_config.domain_from,
        base_path=cfg.domain.base_path if cfg.domain else None,
        files_bucket=cfg.files_bucket,
        runtime=cfg.runtime,
        subnet_ids=network.subnet_ids if network else (),
        security_group_ids=network.security_group_ids if network else (),
        tracing=cfg.function.tracing,
        reserved_concurrency=cfg.reserved_concurrency,
        provisioned_concurrency=cfg.function.provisioned_concurrency,
        snap_start=cfg.compute.snap_start,
        managed=managed,
        permissions_boundary=(
            names.permissions_boundary_name(cfg.name) if cfg.function.permissions_boundary else None
        ),
        tags=tags,
    ),
)

api = StreamingApi(
    "api",
    StreamingApiArgs(
        function_name=function.function_name,
        invoke_arn=function.streaming_invoke_arn,
        qualifier=function.qualifier,
        stage_name=cfg.api.stage_name,
        endpoint_type=cfg.api.endpoint_type,
        binary_media_types=list(cfg.api.binary_media_types),
        throttling_burst_limit=cfg.api.throttling_burst_limit,
        throttling_rate_limit=cfg.api.throttling_rate_limit,
        log_retention_days=cfg.api.log_retention_days or cfg.function.log_retention_days,
        access_logging=cfg.api.access_logging,
        api_name=cfg.name,
        disable_execute_api_endpoint=not cfg.execute_api_endpoint,
        web_acl_arn=cfg.api.web_acl_arn,
        rate_limit_per_ip=cfg.api.rate_limit_per_ip,
        tags=tags,
    ),
)

if cfg.domain is not None:
    domain = CustomDomain(
        "domain",
        CustomDomainArgs(
            domain_name=cfg.domain.name,
            rest_api_id=api.rest_api_id,
            stage_name=api.stage_name,
            hosted_zone_id=cfg.domain.hosted_zone_id,
            hosted_zone_name=cfg.domain.hosted_zone_name,
            certificate_arn=cfg.domain.certificate_arn,
            base_path=cfg.domain.base_path,
            tags=tags,
        ),
    )
    pulumi.export("custom_url", domain.url)

if cfg.monitoring is not None:
    monitoring = Monitoring(
        "monitoring",
        MonitoringArgs(
            name=cfg.name,
            function_name=function.function_name,
            log_group_name=function.log_group_name,
            api_name=api.rest_api.name,
            stage_name=api.stage_name,
            concurrency_limit=cfg.concurrency_limit,
            settings=cfg.monitoring,
            tags=tags,
        ),
    )
    pulumi.export("dashboard_name", monitoring.dashboard.dashboard_name)
    pulumi.export("alarm_topic_arn", monitoring.topic_arn)

# `url` is where the API answers; `stage_url` is exported only while that endpoint answers too.
pulumi.export("url", domain.url if cfg.domain is not None else api.stage_url)
if cfg.execute_api_endpoint:
    pulumi.export("stage_url", api.stage_url)
pulumi.export("function_name", function.function_name)
pulumi.export("function_arn", function.function_arn)
pulumi.export("image_uri", image.image_uri)
pulumi.export("base_image", image.base_image)
pulumi.export("log_group_name", function.log_group_name)
