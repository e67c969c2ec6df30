"""Shared Pulumi mocks: fake resource outputs and invoke results, recorded for assertions.

Every test of a component or of the whole program runs its Pulumi code through
`run_program(build)` (or `run_main(config)` for `__main__.py`) against `PulumiMocks`, installed
by the `mocks` fixture in `tests/conftest.py`, then asserts on the resolved outputs and on what
the mocks recorded: `assert_res` / `assert_no_res` / `assert_res_counts` for resources,
`depends_on` for the order the engine would create them in, `calls_to` for invokes.
`new_resource` echoes a resource's inputs and adds the outputs the real provider computes
(ARNs, URLs, digests), shaped like AWS's, so code that formats or parses them is exercised.
Output names are camelCase, Pulumi's wire format.

Extending: add a type token to `T` (or a call token to `C`), then either an entry in
`OUTPUT_BUILDERS` / `CALL_HANDLERS` or, for outputs owned by another component's tests, a
function in the marked "component-specific outputs" section at the bottom. Tests may also
override one invoke with `mocks.call_results[C.X] = {...}` (or a callable taking the args), or
make it fail with `mocks.call_failures[C.X] = "reason"`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import runpy
from collections import Counter
from collections.abc import Callable, Mapping
from functools import cache
from importlib import import_module
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import MockCallArgs, MockResourceArgs, Mocks, set_all_config, set_mocks
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.rpc import _special_secret_sig, _special_sig_key

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "eu-west-1"
PARTITION = "aws"

# Hosted zone IDs API Gateway uses for regional custom domains (AWS general reference, "Amazon
# API Gateway endpoints and quotas"); anything else falls back to a recognisable fake.
APIGATEWAY_REGIONAL_ZONE_IDS: dict[str, str] = {
    "eu-west-1": "ZLY8HYME6SFDD",
    "eu-central-1": "Z1U9ULNL0V5AJ3",
    "us-east-1": "Z1UJRXOUMOOFQ8",
}
HOSTED_ZONE_ID = "Z0FAKEHOSTEDZONE1"
VPC_ID = "vpc-0a1b2c3d4e5f60718"


class T:
    """Resource type tokens used in this project's programs."""

    # Monitoring
    ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
    TOPIC = "aws:sns/topic:Topic"
    SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
    METRIC_FILTER = "aws:cloudwatch/logMetricFilter:LogMetricFilter"
    DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
    QUERY = "aws:cloudwatch/queryDefinition:QueryDefinition"
    # Lambda
    FUNCTION = "aws:lambda/function:Function"
    ALIAS = "aws:lambda/alias:Alias"
    PROVISIONED_CONCURRENCY = "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig"
    PERMISSION = "aws:lambda/permission:Permission"
    CAPACITY_PROVIDER = "aws:lambda/capacityProvider:CapacityProvider"
    FUNCTION_SCALING_CONFIG = "aws:lambda/functionScalingConfig:FunctionScalingConfig"
    # IAM
    ROLE = "aws:iam/role:Role"
    ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
    ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
    # CloudWatch Logs
    LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
    # ECR / Docker
    ECR_REPOSITORY = "aws:ecr/repository:Repository"
    ECR_LIFECYCLE_POLICY = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
    ECR_REPOSITORY_POLICY = "aws:ecr/repositoryPolicy:RepositoryPolicy"
    DOCKER_IMAGE = "docker:index/image:Image"
    # API Gateway (REST)
    REST_API = "aws:apigateway/restApi:RestApi"
    API_RESOURCE = "aws:apigateway/resource:Resource"
    API_METHOD = "aws:apigateway/method:Method"
    API_INTEGRATION = "aws:apigateway/integration:Integration"
    API_DEPLOYMENT = "aws:apigateway/deployment:Deployment"
    API_STAGE = "aws:apigateway/stage:Stage"
    API_METHOD_SETTINGS = "aws:apigateway/methodSettings:MethodSettings"
    API_ACCOUNT = "aws:apigateway/account:Account"
    API_DOMAIN_NAME = "aws:apigateway/domainName:DomainName"
    API_BASE_PATH_MAPPING = "aws:apigateway/basePathMapping:BasePathMapping"
    # ACM / Route53
    CERTIFICATE = "aws:acm/certificate:Certificate"
    CERTIFICATE_VALIDATION = "aws:acm/certificateValidation:CertificateValidation"
    ROUTE53_RECORD = "aws:route53/record:Record"
    # Providers
    AWS_PROVIDER = "pulumi:providers:aws"
    DOCKER_PROVIDER = "pulumi:providers:docker"


class C:
    """Invoke (data source) tokens."""

    SSM_PARAMETER = "aws:ssm/getParameter:getParameter"
    ECR_AUTH_TOKEN = "aws:ecr/getAuthorizationToken:getAuthorizationToken"
    SUBNETS = "aws:ec2/getSubnets:getSubnets"
    SECURITY_GROUPS = "aws:ec2/getSecurityGroups:getSecurityGroups"
    VPC = "aws:ec2/getVpc:getVpc"
    ROUTE53_ZONE = "aws:route53/getZone:getZone"
    CALLER_IDENTITY = "aws:index/getCallerIdentity:getCallerIdentity"
    REGION = "aws:index/getRegion:getRegion"
    PARTITION = "aws:index/getPartition:getPartition"
    REGISTRY_IMAGE = "docker:index/getRegistryImage:getRegistryImage"


def run_program(build: Callable[[], Mapping[str, pulumi.Input[Any]]]) -> dict[str, Any]:
    """Run `build` as a Pulumi program under the mocks and return its outputs, resolved.

    The one way tests run Pulumi code: `pulumi.runtime.test` waits for every registration and
    output, so the caller then asserts on the returned values and on what the mocks recorded
    (`assert_res`, `assert_res_counts`, `depends_on`), never inside an `apply`. An exception
    raised while the program runs reaches the caller.
    """
    resolved: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> pulumi.Output[None]:
        return pulumi.Output.all(**build()).apply(resolved.update)

    program()
    return resolved


def run_main(config: Mapping[str, str]) -> dict[str, Any]:
    """Run `__main__.py` with the CLI-shaped stack `config`, as `pulumi preview` would; return
    its stack outputs, resolved."""
    set_all_config(dict(config))

    def build() -> Mapping[str, pulumi.Input[Any]]:
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
        root = pulumi.runtime.get_root_resource()
        assert root is not None, "the program registered no stack"
        return root.outputs  # type: ignore[attr-defined,no-any-return]

    return run_program(build)


def is_secret_input(value: Any) -> bool:
    """True when a recorded input arrived as a Pulumi secret (the engine's wire wrapper)."""
    return isinstance(value, dict) and value.get(_special_sig_key) == _special_secret_sig


def plain(value: Any) -> Any:
    """A recorded input with every secret wrapper removed, for comparing values."""
    if is_secret_input(value):
        return plain(value["value"])
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def fake_hex(seed: str, length: int) -> str:
    """Deterministic hex derived from `seed`: same program, same fake IDs, run after run."""
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


def fake_ssm_value(name: str) -> str:
    """The value the mocked `aws.ssm.get_parameter` returns for parameter `name`."""
    return f"fake-secret-{fake_hex(name, 16)}"


def ssm_parameter_arn(name: str, region: str = DEFAULT_REGION) -> str:
    """ARN of an SSM parameter; names with a leading `/` keep it after `parameter`."""
    path = name if name.startswith("/") else f"/{name}"
    return f"arn:{PARTITION}:ssm:{region}:{ACCOUNT_ID}:parameter{path}"


@cache
def output_properties(typ: str) -> frozenset[str]:
    """Output property names of a resource type, read from the installed provider SDK."""
    try:
        provider, module_path, class_name = typ.split(":")
        module = module_path.split("/")[0]
        module = {"lambda": "lambda_", "index": ""}.get(module, module)
        mod = import_module(f"pulumi_{provider}.{module}".rstrip("."))
        cls = getattr(mod, class_name)
    except (ValueError, ImportError, AttributeError):
        return frozenset()
    return frozenset(n for n in dir(cls) if isinstance(getattr(cls, n, None), property))


class Ctx:
    """What an output builder knows: the resource, its fake name and id, region and account.

    `inputs` are plain (secret wrappers removed); the echoed outputs keep the wrappers, so a
    secret input stays a secret output as it does with a real provider.
    """

    def __init__(self, args: MockResourceArgs, region: str, physical_name: str) -> None:
        self.args = args
        self.inputs: dict[str, Any] = plain(args.inputs)
        self.region = region
        self.account = ACCOUNT_ID
        self.name = physical_name
        self.hex = fake_hex(f"{args.typ}::{args.name}", 10)


OutputBuilder = Callable[[Ctx], dict[str, Any]]


def _function(c: Ctx) -> dict[str, Any]:
    arn = f"arn:{PARTITION}:lambda:{c.region}:{c.account}:function:{c.name}"
    version = "1" if c.inputs.get("publish") else "$LATEST"
    api = f"arn:{PARTITION}:apigateway:{c.region}:lambda:path"
    return {
        "arn": arn,
        "version": version,
        "qualifiedArn": f"{arn}:{version}",
        "invokeArn": f"{api}/2015-03-31/functions/{arn}/invocations",
        "qualifiedInvokeArn": f"{api}/2015-03-31/functions/{arn}:{version}/invocations",
        "responseStreamingInvokeArn": (
            f"{api}/2021-11-15/functions/{arn}/response-streaming-invocations"
        ),
    }


def _alias(c: Ctx) -> dict[str, Any]:
    # pulumi-aws 7.x Alias has `arn` and `invokeArn` but no responseStreamingInvokeArn.
    fn = str(c.inputs.get("functionName", "fn"))
    fn_arn = (
        fn
        if fn.startswith("arn:")
        else (f"arn:{PARTITION}:lambda:{c.region}:{c.account}:function:{fn}")
    )
    arn = f"{fn_arn}:{c.name}"
    api = f"arn:{PARTITION}:apigateway:{c.region}:lambda:path"
    return {"arn": arn, "invokeArn": f"{api}/2015-03-31/functions/{arn}/invocations"}


def _role(c: Ctx) -> dict[str, Any]:
    return {
        "arn": f"arn:{PARTITION}:iam::{c.account}:role/{c.name}",
        "uniqueId": f"AROA{fake_hex(c.name, 17).upper()}",
    }


def _log_group(c: Ctx) -> dict[str, Any]:
    # The provider strips the API's trailing ":*" from log group ARNs.
    return {"arn": f"arn:{PARTITION}:logs:{c.region}:{c.account}:log-group:{c.name}"}


def _ecr_repository(c: Ctx) -> dict[str, Any]:
    return {
        "arn": f"arn:{PARTITION}:ecr:{c.region}:{c.account}:repository/{c.name}",
        "registryId": c.account,
        "repositoryUrl": f"{c.account}.dkr.ecr.{c.region}.amazonaws.com/{c.name}",
    }


def _docker_image(c: Ctx) -> dict[str, Any]:
    image_name = str(c.inputs.get("imageName", c.args.name))
    repository = image_name.rsplit(":", 1)[0] if "/" in image_name else image_name
    build = c.inputs.get("build") or {}
    digest = hashlib.sha256(json.dumps([image_name, build], sort_keys=True).encode()).hexdigest()
    return {
        "imageName": image_name,
        "baseImageName": image_name,
        "platform": build.get("platform"),
        "repoDigest": f"{repository}@sha256:{digest}",
    }


def _rest_api(c: Ctx) -> dict[str, Any]:
    return {
        "id": c.hex,
        "arn": f"arn:{PARTITION}:apigateway:{c.region}::/restapis/{c.hex}",
        "executionArn": f"arn:{PARTITION}:execute-api:{c.region}:{c.account}:{c.hex}",
        "rootResourceId": fake_hex(f"root::{c.args.name}", 10),
    }


def _api_resource(c: Ctx) -> dict[str, Any]:
    return {"id": fake_hex(c.args.name, 6), "path": f"/{c.inputs.get('pathPart', '')}"}


def _api_stage(c: Ctx) -> dict[str, Any]:
    api_id = c.inputs.get("restApi", "api")
    stage = c.inputs.get("stageName", "stage")
    return {
        "arn": f"arn:{PARTITION}:apigateway:{c.region}::/restapis/{api_id}/stages/{stage}",
        "executionArn": f"arn:{PARTITION}:execute-api:{c.region}:{c.account}:{api_id}/{stage}",
        "invokeUrl": f"https://{api_id}.execute-api.{c.region}.amazonaws.com/{stage}",
    }


def _api_domain_name(c: Ctx) -> dict[str, Any]:
    domain = c.inputs.get("domainName", "example.com")
    return {
        "id": domain,
        "arn": f"arn:{PARTITION}:apigateway:{c.region}::/domainnames/{domain}",
        "regionalDomainName": f"d-{c.hex}.execute-api.{c.region}.amazonaws.com",
        "regionalZoneId": APIGATEWAY_REGIONAL_ZONE_IDS.get(c.region, "ZFAKEAPIGWZONE"),
    }


def _certificate(c: Ctx) -> dict[str, Any]:
    names = [
        c.inputs.get("domainName", "example.com"),
        *c.inputs.get("subjectAlternativeNames", []),
    ]
    options = [
        {
            "domainName": n,
            "resourceRecordName": f"_{fake_hex('name' + n, 32)}.{n}.",
            "resourceRecordType": "CNAME",
            "resourceRecordValue": f"_{fake_hex('value' + n, 32)}.xlfgrmvvlj.acm-validations.aws.",
        }
        for n in dict.fromkeys(names)
    ]
    arn = f"arn:{PARTITION}:acm:{c.region}:{c.account}:certificate/{fake_hex(c.name, 32)}"
    return {"arn": arn, "domainValidationOptions": options, "status": "PENDING_VALIDATION"}


def _route53_record(c: Ctx) -> dict[str, Any]:
    return {"fqdn": str(c.inputs.get("name", "")).rstrip(".")}


OUTPUT_BUILDERS: dict[str, OutputBuilder] = {
    T.FUNCTION: _function,
    T.ALIAS: _alias,
    T.ROLE: _role,
    T.LOG_GROUP: _log_group,
    T.ECR_REPOSITORY: _ecr_repository,
    T.DOCKER_IMAGE: _docker_image,
    T.REST_API: _rest_api,
    T.API_RESOURCE: _api_resource,
    T.API_STAGE: _api_stage,
    T.API_DOMAIN_NAME: _api_domain_name,
    T.CERTIFICATE: _certificate,
    T.ROUTE53_RECORD: _route53_record,
}


class PulumiMocks(Mocks):
    """Mocks that echo inputs, add realistic outputs and record every resource and invoke."""

    def install(self, project: str, stack: str) -> None:
        """Make these the process's mocks, with a monitor that records dependencies."""
        set_mocks(self, project=project, stack=stack, preview=False, monitor=_Monitor(self))

    def __init__(self, region: str = DEFAULT_REGION) -> None:
        super().__init__()
        self.region = region
        self.resources: list[MockResourceArgs] = []
        self.outputs: dict[str, dict[str, Any]] = {}
        self.calls: list[MockCallArgs] = []
        self.call_outputs: list[tuple[str, dict[str, Any]]] = []
        self.call_results: dict[str, dict[str, Any] | Callable[[dict[str, Any]], dict]] = {}
        #: Public hosted zones by name -> id that getZone finds; None finds any name asked for.
        self.zones: dict[str, str] | None = None
        #: Invokes that fail as the provider fails them: token -> reason.
        self.call_failures: dict[str, str] = {}
        #: Logical name -> logical names of the resources it waits for (explicit `depends_on`
        #: and every resource whose outputs its inputs use), as the engine would order them.
        self.dependencies: dict[str, set[str]] = {}

    # -- engine hooks --------------------------------------------------------------------
    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        # Outputs are kept by logical name: two resources sharing one would make every lookup
        # by name depend on registration order (the engine allows it across types; we do not).
        assert args.name not in self.outputs, f"two resources are named {args.name!r}"
        self.resources.append(args)
        outputs = dict(args.inputs)
        props = output_properties(args.typ)
        physical = str(plain(args.inputs.get("name")) or f"{args.name}-{fake_hex(args.name, 7)}")
        if "name" in props and "name" not in outputs:
            outputs["name"] = physical
        ctx = Ctx(args, self.region, physical)
        builder = OUTPUT_BUILDERS.get(args.typ)
        if builder is not None:
            outputs |= builder(ctx)
        for extra in EXTRA_OUTPUT_BUILDERS.get(args.typ, []):
            outputs |= extra(ctx)
        if "arn" in props and "arn" not in outputs:
            service = args.typ.split(":")[1].split("/")[0]
            outputs["arn"] = f"arn:{PARTITION}:{service}:{self.region}:{ACCOUNT_ID}:{physical}"
        resource_id = str(outputs.pop("id", None) or f"{args.name}-id")
        if not args.custom:
            resource_id = ""
        self.outputs[args.name] = {**outputs, "id": resource_id}
        return resource_id or None, outputs

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        result, failures = self._answer(args)
        self.call_outputs.append((args.token, result))
        return result, failures

    def _answer(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        self.calls.append(args)
        if args.token in self.call_failures:
            return {}, [("", self.call_failures[args.token])]
        override = self.call_results.get(args.token)
        if override is not None:
            return (override(args.args) if callable(override) else dict(override)), []
        if args.token == C.ROUTE53_ZONE and self.zones is not None:
            name = str(args.args.get("name", "")).rstrip(".")
            if name not in self.zones:
                # The provider reports a missing zone as an invoke failure.
                return {}, [("name", f"no matching Route 53 Hosted Zone found for {name}")]
            return {**_route53_zone(self, {**args.args, "zoneId": self.zones[name]})}, []
        handler = CALL_HANDLERS.get(args.token)
        if handler is None:
            msg = (
                f"No mock for invoke {args.token}: add it to CALL_HANDLERS in tests/pulumi_mocks.py"
            )
            raise NotImplementedError(msg)
        return handler(self, args.args), []

    # -- assertions ------------------------------------------------------------------------
    def assert_res(
        self,
        name: str,
        typ: str | None = None,
        inputs: Mapping[str, Any] | None = None,
        *,
        partial: bool = False,
    ) -> dict[str, Any]:
        """Exactly one resource is named `name` (of type `typ`); return its plain inputs.

        `inputs` are compared whole, or only the keys given with `partial=True`.
        """
        __tracebackhide__ = True
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, f"{name!r}: registered {sorted(r.name for r in self.resources)}"
        if typ is not None:
            assert found[0].typ == typ
        actual: dict[str, Any] = plain(found[0].inputs)
        if inputs is not None:
            assert ({k: actual.get(k) for k in inputs} if partial else actual) == dict(inputs)
        return actual

    def assert_no_res(self, *types: str) -> None:
        """No resource of these types was registered."""
        __tracebackhide__ = True
        assert [(r.typ, r.name) for r in self.resources if r.typ in types] == []

    def assert_res_counts(self, expected: Mapping[str, int]) -> None:
        """The custom resources registered, counted by type, are exactly `expected`."""
        __tracebackhide__ = True
        actual = Counter(r.typ for r in self.resources if r.custom)
        assert dict(actual) == dict(expected)

    def depends_on(self, name: str) -> set[str]:
        """Logical names of the resources `name` waits for."""
        assert name in self.dependencies, f"no resource named {name!r} was registered"
        return self.dependencies[name]

    # -- lookups ---------------------------------------------------------------------------
    def of_type(self, typ: str) -> list[MockResourceArgs]:
        """Every registered resource of type `typ`, in registration order."""
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str) -> MockResourceArgs:
        """The single resource of type `typ`; fails the test if there are none or several."""
        found = self.of_type(typ)
        assert len(found) == 1, f"expected one {typ}, found {[r.name for r in found]}"
        return found[0]

    def named(self, name: str) -> MockResourceArgs:
        """The resource registered with logical name `name`."""
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, f"expected one resource named {name}, found {len(found)}"
        return found[0]

    def inputs_of(self, typ: str) -> dict[str, Any]:
        """Plain inputs of the single resource of type `typ`."""
        return plain(self.one(typ).inputs)

    def calls_to(self, token: str) -> list[dict[str, Any]]:
        """Arguments of every invoke of `token`."""
        return [c.args for c in self.calls if c.token == token]

    def results_of(self, token: str) -> list[dict[str, Any]]:
        """What every invoke of `token` returned, in order."""
        return [result for t, result in self.call_outputs if t == token]


class _Monitor(MockMonitor):
    """The mock monitor, also recording what each resource waits for."""

    def __init__(self, mocks: PulumiMocks) -> None:
        super().__init__(mocks)
        self.recorder = mocks

    def RegisterResource(self, request: Any) -> Any:
        waits_for = {urn.rsplit("::", 1)[-1] for urn in request.dependencies}
        self.recorder.dependencies[request.name] = waits_for
        return super().RegisterResource(request)


# -- invoke handlers ---------------------------------------------------------------------
CallHandler = Callable[[PulumiMocks, dict[str, Any]], dict[str, Any]]


def _ssm_parameter(m: PulumiMocks, a: dict[str, Any]) -> dict[str, Any]:
    name = a["name"]
    value = fake_ssm_value(name)
    return {
        "id": name,
        "name": name,
        "arn": ssm_parameter_arn(name, m.region),
        "type": "SecureString",
        "value": value
        if a.get("withDecryption", True)
        else base64.b64encode(value.encode()).decode(),
        "insecureValue": "",
        "version": 1,
        "withDecryption": a.get("withDecryption", True),
        "region": m.region,
    }


def _ecr_auth_token(m: PulumiMocks, a: dict[str, Any]) -> dict[str, Any]:
    registry = a.get("registryId") or ACCOUNT_ID
    password = f"fake-ecr-password-{fake_hex(registry, 8)}"
    return {
        "id": m.region,
        "authorizationToken": base64.b64encode(f"AWS:{password}".encode()).decode(),
        "userName": "AWS",
        "password": password,
        "proxyEndpoint": f"https://{registry}.dkr.ecr.{m.region}.amazonaws.com",
        "expiresAt": "2030-01-01T00:00:00Z",
        "registryId": registry,
        "region": m.region,
    }


def _subnets(m: PulumiMocks, a: dict[str, Any]) -> dict[str, Any]:
    seed = json.dumps(a, sort_keys=True)
    ids = [f"subnet-{fake_hex(seed + str(i), 17)}" for i in range(3)]
    return {"id": m.region, "ids": ids, "filters": a.get("filters"), "tags": a.get("tags")}


def _security_groups(m: PulumiMocks, a: dict[str, Any]) -> dict[str, Any]:
    seed = json.dumps(a, sort_keys=True)
    ids = [f"sg-{fake_hex(seed, 17)}"]
    arns = [f"arn:{PARTITION}:ec2:{m.region}:{ACCOUNT_ID}:security-group/{i}" for i in ids]
    return {
        "id": m.region,
        "ids": ids,
        "arns": arns,
        "vpcIds": [VPC_ID],
        "filters": a.get("filters"),
        "tags": a.get("tags"),
    }


def _vpc(m: PulumiMocks, a: dict[str, Any]) -> dict[str, Any]:
    vpc_id = a.get("id") or VPC_ID
    return {
        "id": vpc_id,
        "arn": f"arn:{PARTITION}:ec2:{m.region}:{ACCOUNT_ID}:vpc/{vpc_id}",
        "cidrBlock": "10.20.0.0/16",
        "default": False,
        "tags": a.get("tags") or {},
    }


def _route53_zone(m: PulumiMocks, a: dict[str, Any]) -> dict[str, Any]:
    zone_id = a.get("zoneId") or HOSTED_ZONE_ID
    name = str(a.get("name") or "sandbox.data.apro.is").rstrip(".")
    return {
        "id": zone_id,
        "zoneId": zone_id,
        "name": name,
        "arn": f"arn:{PARTITION}:route53:::hostedzone/{zone_id}",
        "privateZone": bool(a.get("privateZone", False)),
        "nameServers": ["ns-1.awsdns-01.org", "ns-2.awsdns-02.co.uk"],
    }


def _caller_identity(m: PulumiMocks, a: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": ACCOUNT_ID,
        "accountId": ACCOUNT_ID,
        "arn": f"arn:{PARTITION}:iam::{ACCOUNT_ID}:user/test",
        "userId": "AIDAFAKEUSERID",
    }


def fake_registry_digest(reference: str) -> str:
    """The digest the mocked `docker.get_registry_image` returns for `reference`."""
    return f"sha256:{fake_hex('registry::' + reference, 64)}"


def _registry_image(m: PulumiMocks, a: dict[str, Any]) -> dict[str, Any]:
    name = a["name"]
    return {"id": name, "name": name, "sha256Digest": fake_registry_digest(name)}


def _region(m: PulumiMocks, a: dict[str, Any]) -> dict[str, Any]:
    region = a.get("region") or a.get("name") or m.region
    return {
        "id": region,
        "name": region,
        "region": region,
        "description": region,
        "endpoint": f"ec2.{region}.amazonaws.com",
    }


def _partition(m: PulumiMocks, a: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": PARTITION,
        "partition": PARTITION,
        "dnsSuffix": "amazonaws.com",
        "reverseDnsPrefix": "com.amazonaws",
    }


CALL_HANDLERS: dict[str, CallHandler] = {
    C.SSM_PARAMETER: _ssm_parameter,
    C.ECR_AUTH_TOKEN: _ecr_auth_token,
    C.SUBNETS: _subnets,
    C.SECURITY_GROUPS: _security_groups,
    C.VPC: _vpc,
    C.ROUTE53_ZONE: _route53_zone,
    C.CALLER_IDENTITY: _caller_identity,
    C.REGION: _region,
    C.PARTITION: _partition,
    C.REGISTRY_IMAGE: _registry_image,
}

# ==== component-specific outputs ==========================================================
# Helpers that own other components may register extra output builders here, per type:
#     EXTRA_OUTPUT_BUILDERS.setdefault(T.SOMETHING, []).append(builder)
# A builder takes a `Ctx` and returns outputs merged over the ones above.
EXTRA_OUTPUT_BUILDERS: dict[str, list[OutputBuilder]] = {}


def _capacity_provider(c: Ctx) -> dict[str, Any]:
    # Lambda API reference, LambdaManagedInstancesCapacityProviderConfig.CapacityProviderArn.
    return {"arn": f"arn:{PARTITION}:lambda:{c.region}:{c.account}:capacity-provider:{c.name}"}


EXTRA_OUTPUT_BUILDERS.setdefault(T.CAPACITY_PROVIDER, []).append(_capacity_provider)
# ==== end of component-specific outputs ===================================================
