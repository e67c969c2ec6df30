"""Monthly compute cost of one LibreChat stack in each compute mode, from AWS's published prices.

    uv run python -m bench.cost_modes        # prints the table in docs/compute-modes.md

Standard Lambda bills every environment for the wall-clock time it serves: a chat answer is a
long, mostly idle stream, and from LibreChat 0.8.2 on two environments are billed for it (the
chat POST held until generation ends, and the GET that streams the answer from Redis;
docs/runtime.md, "Work after the answer"). SnapStart adds a cache charge for every published
version kept and a charge per restore. Provisioned concurrency bills the environments kept
initialized all month and discounts the duration. Lambda Managed Instances bill EC2
instance-hours plus a 15 % management fee whether busy or idle, and one environment serves many
streams.

Model and its limits:
- Every mode on arm64 (Graviton) but SnapStart, on x86_64; API Gateway, NAT, logs and data
  transfer are left out: they do not depend on the mode. Free tiers and Savings Plans are left
  out, and so is the init of a standard cold start (billed as duration; a SnapStart restore
  replaces it).
- Standard: GB-seconds = (answers x billed environments per answer x answer seconds + other
  requests x their seconds) x function memory; plus requests (both legs of an answer count).
- SnapStart: standard on x86_64 (the runtime's SnapStart needs RDRAND, docs/snapstart.md), plus
  the cache of the versions `make prune-versions` keeps, all month,
  plus one restore per `ANSWERS_PER_RESTORE` answers (Lambda publishes no idle lifetime of an
  environment: a deliberately pessimistic guess).
- Provisioned: two environments per stream at the peak kept initialized all month (an upper
  bound, like managed: a schedule could lower it at night), the duration at its discounted rate.
- Managed: enough environments for the peak, never fewer than AWS's 3, held all month (an upper
  bound: the fleet shrinks after quiet periods, never to zero); each environment is the
  `compute.*` defaults (1 vCPU, 2 GiB, 32 streams). Lambda keeps 1 vCPU and 1 GiB of every
  instance for itself (AWS's sample calculator, aws-samples/sample-aws-lambda-managed-instances
  tools/pricing-calculator/docs/CALCULATOR_METHODOLOGY.md); the cheapest instance size that
  packs the environments is used, at least 3 instances (one per availability zone).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from components.config import ComputeConfig, FunctionConfig
from ops.prune_versions import DEFAULT_KEEP

HOURS_PER_MONTH = 730
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600


@dataclass(frozen=True)
class Price:
    usd: float
    unit: str
    source: str


#: Every price, with where it was read. All are US East (N. Virginia) list prices, read on
#: 2026-11-29 from the stored copies named; eu-west-1 (the committed stacks' region) has the same
#: Lambda prices and EC2 prices a few percent higher. The SnapStart prices were read on
#: 2026-12-04 (design.md §9); the arm64 provisioned-concurrency ones are x86's less 20 %, as the
#: page lists them, not re-read since.
LAMBDA_PRICING = "https://aws.amazon.com/lambda/pricing/"
EC2_PRICING = "https://aws.amazon.com/ec2/pricing/on-demand/ (Linux)"
PRICES = {
    "lambda_arm_gb_second": Price(
        0.0000133334, "per GB-second (arm64, first 7.5 billion GB-s a month)", LAMBDA_PRICING
    ),
    "lambda_x86_gb_second": Price(
        0.0000166667, "per GB-second (x86_64, first 6 billion GB-s a month)", LAMBDA_PRICING
    ),
    "lambda_request": Price(0.20 / 1e6, "per request ($0.20 per million)", LAMBDA_PRICING),
    "snapstart_cache_gb_second": Price(
        0.0000015046,
        "per GB-second, SnapStart cache of each version while it exists",
        LAMBDA_PRICING,
    ),
    "snapstart_restore_gb": Price(0.0001398, "per GB restored, SnapStart restore", LAMBDA_PRICING),
    "lambda_arm_provisioned_gb_second": Price(
        0.0000033334, "per GB-second configured, provisioned concurrency (arm64)", LAMBDA_PRICING
    ),
    "lambda_arm_provisioned_duration_gb_second": Price(
        0.0000077778,
        "per GB-second of duration on provisioned environments (arm64)",
        LAMBDA_PRICING,
    ),
    "lmi_request": Price(
        0.20 / 1e6, "per request, Managed Instances ($0.20 per million)", LAMBDA_PRICING
    ),
    "lmi_management_fee": Price(
        0.15, "of the EC2 on-demand price, Managed Instances management fee", LAMBDA_PRICING
    ),
    "c7g.large": Price(0.0725, "per hour, 2 vCPU / 4 GiB", EC2_PRICING),
    "c7g.xlarge": Price(0.1450, "per hour, 4 vCPU / 8 GiB", EC2_PRICING),
    "c7g.2xlarge": Price(0.2900, "per hour, 8 vCPU / 16 GiB", EC2_PRICING),
    "c7g.4xlarge": Price(0.5800, "per hour, 16 vCPU / 32 GiB", EC2_PRICING),
}
#: vCPUs and GiB of the instance types priced above.
INSTANCE_SIZES = {
    "c7g.large": (2, 4),
    "c7g.xlarge": (4, 8),
    "c7g.2xlarge": (8, 16),
    "c7g.4xlarge": (16, 32),
}
#: What Lambda keeps of every managed instance for itself: 1 vCPU and 1 GiB.
INSTANCE_OVERHEAD = (1, 1)

#: Both modes as this project deploys them by default (components/config/): the function's
#: memory; in managed mode one environment's vCPUs and streams, and AWS's minimum fleet.
_FUNCTION, _COMPUTE = FunctionConfig(), ComputeConfig()
STANDARD_MEMORY_GB = _FUNCTION.memory_mb / 1024
MANAGED_MEMORY_GIB = _FUNCTION.memory_mb // 1024
MANAGED_VCPUS = MANAGED_MEMORY_GIB // _COMPUTE.memory_per_vcpu_gib
MANAGED_STREAMS_PER_ENVIRONMENT = _COMPUTE.max_concurrency
MANAGED_MIN_ENVIRONMENTS = _COMPUTE.min_environments
#: Standard mode, LibreChat >= 0.8.2: environments billed for one answer (the held POST and the
#: streaming GET).
STANDARD_ENVIRONMENTS_PER_ANSWER = 2
#: SnapStart: versions whose cache is billed all month (`make prune-versions` keeps this many).
SNAPSTART_VERSIONS = DEFAULT_KEEP
#: SnapStart: answers per restore (a new environment), a pessimistic guess (see the docstring).
ANSWERS_PER_RESTORE = 5


@dataclass(frozen=True)
class Load:
    name: str
    answers_per_month: int
    answer_seconds: float
    """Average time from the chat POST to the last token of the answer."""
    peak_streams: int
    """Concurrent answers at the busiest moment."""
    other_requests_per_month: int
    """Page loads, conversation lists, settings: short requests around the answers."""
    other_seconds: float = 0.1


LOADS = (
    Load("Team (25 users)", 30_000, 20, 6, 300_000),
    Load("Department (250 users)", 300_000, 30, 40, 3_000_000),
    Load("Company (2,500 users)", 3_000_000, 30, 320, 30_000_000),
)


def price(key: str) -> float:
    return PRICES[key].usd


def standard_monthly(load: Load, gb_second: str = "lambda_arm_gb_second") -> float:
    """Duration and requests on standard Lambda, in USD a month."""
    answer_seconds = load.answers_per_month * STANDARD_ENVIRONMENTS_PER_ANSWER * load.answer_seconds
    seconds = answer_seconds + load.other_requests_per_month * load.other_seconds
    requests = load.answers_per_month * STANDARD_ENVIRONMENTS_PER_ANSWER
    requests += load.other_requests_per_month
    return seconds * STANDARD_MEMORY_GB * price(gb_second) + requests * price("lambda_request")


def snapstart_cache_monthly(versions: int = SNAPSTART_VERSIONS) -> float:
    """The SnapStart cache of `versions` published versions, in USD a month."""
    return versions * STANDARD_MEMORY_GB * SECONDS_PER_MONTH * price("snapstart_cache_gb_second")


def restore_cost() -> float:
    return STANDARD_MEMORY_GB * price("snapstart_restore_gb")


def snapstart_monthly(load: Load) -> float:
    """Standard on x86_64 (the runtime's SnapStart needs its RDRAND), the kept versions' cache
    and the restores, in USD a month."""
    restores = load.answers_per_month / ANSWERS_PER_RESTORE
    duration = standard_monthly(load, gb_second="lambda_x86_gb_second")
    return duration + snapstart_cache_monthly() + restores * restore_cost()


def provisioned_environments(load: Load) -> int:
    return load.peak_streams * STANDARD_ENVIRONMENTS_PER_ANSWER


def provisioned_per_environment() -> float:
    """One environment kept initialized all month, in USD."""
    return STANDARD_MEMORY_GB * SECONDS_PER_MONTH * price("lambda_arm_provisioned_gb_second")


def provisioned_monthly(load: Load) -> float:
    """Enough provisioned environments for the peak all month, duration at the discounted rate
    and requests, in USD a month."""
    answer_seconds = load.answers_per_month * STANDARD_ENVIRONMENTS_PER_ANSWER * load.answer_seconds
    seconds = answer_seconds + load.other_requests_per_month * load.other_seconds
    requests = load.answers_per_month * STANDARD_ENVIRONMENTS_PER_ANSWER
    requests += load.other_requests_per_month
    return (
        provisioned_environments(load) * provisioned_per_environment()
        + seconds * STANDARD_MEMORY_GB * price("lambda_arm_provisioned_duration_gb_second")
        + requests * price("lambda_request")
    )


def managed_environments(load: Load) -> int:
    return max(
        MANAGED_MIN_ENVIRONMENTS, math.ceil(load.peak_streams / MANAGED_STREAMS_PER_ENVIRONMENT)
    )


def environments_per_instance(instance: str) -> int:
    vcpus, gib = INSTANCE_SIZES[instance]
    return min(
        (vcpus - INSTANCE_OVERHEAD[0]) // MANAGED_VCPUS,
        (gib - INSTANCE_OVERHEAD[1]) // MANAGED_MEMORY_GIB,
    )


def managed_fleet(load: Load) -> tuple[str, int, float]:
    """The cheapest instance type and count for the load, and its monthly cost with the fee."""
    environments = managed_environments(load)
    options = []
    for instance in INSTANCE_SIZES:
        count = max(
            MANAGED_MIN_ENVIRONMENTS, math.ceil(environments / environments_per_instance(instance))
        )
        hourly = price(instance) * (1 + price("lmi_management_fee"))
        options.append((count * hourly * HOURS_PER_MONTH, instance, count))
    cost, instance, count = min(options)
    return instance, count, cost


def managed_monthly(load: Load) -> float:
    """Instances, management fee and requests on Lambda Managed Instances, in USD a month."""
    requests = load.answers_per_month + load.other_requests_per_month
    return managed_fleet(load)[2] + requests * price("lmi_request")


def breakeven_answers(answer_seconds: float) -> int:
    """Answers a month at which standard Lambda costs what the smallest managed fleet costs."""
    smallest = managed_monthly(Load("idle", 0, answer_seconds, 0, 0))
    per_answer = standard_monthly(Load("one", 1, answer_seconds, 0, 0))
    return round(smallest / per_answer)


def table() -> str:
    """docs/compute-modes.md's cost table, in Markdown."""
    rows = [
        "| Load | Answers / month | Avg answer | Peak streams | Standard | SnapStart "
        "| Provisioned (peak) | Managed instances (fleet) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for load in LOADS:
        instance, count, _ = managed_fleet(load)
        rows.append(
            f"| {load.name} | {load.answers_per_month:,} | {load.answer_seconds:g} s "
            f"| {load.peak_streams} | ${standard_monthly(load):,.0f} "
            f"| ${snapstart_monthly(load):,.0f} "
            f"| ${provisioned_monthly(load):,.0f} ({provisioned_environments(load)}) "
            f"| ${managed_monthly(load):,.0f} ({count} x {instance}, "
            f"{managed_environments(load)} environments) |"
        )
    return "\n".join(rows)


def breakeven() -> str:
    return (
        f"Managed instances cost at least ${managed_monthly(Load('idle', 0, 30, 0, 0)):,.0f} "
        f"a month; standard Lambda costs as much at {breakeven_answers(30):,} answers of 30 s."
    )


def snapstart() -> str:
    return (
        f"SnapStart adds ${snapstart_cache_monthly(1):,.2f} a month for every published version "
        f"kept at {STANDARD_MEMORY_GB:g} GB (${snapstart_cache_monthly():,.2f} for the "
        f"{SNAPSTART_VERSIONS} that make prune-versions keeps) and ${1000 * restore_cost():,.2f} "
        f"per 1,000 restores; provisioned concurrency keeping {STANDARD_MEMORY_GB:g} GB "
        f"environments initialized costs ${provisioned_per_environment():,.2f} a month for each."
    )


def sources() -> str:
    return "\n".join(f"- `{key}`: ${p.usd:.10g} {p.unit}; {p.source}" for key, p in PRICES.items())


if __name__ == "__main__":
    print(table())
    print()
    print(breakeven())
    print()
    print(snapstart())
    print()
    print(sources())
