"""Acceptance: `make acceptance STACK=x` proves a real deploy of a stack, then removes it.

A throwaway copy of the stack (its own name and a subdomain of its domain, so nothing of the
real stack is touched) is brought up with the Pulumi Automation API and destroyed at the end,
whatever happened in between. In between: the stack file offline (`make check`), the account
(`make preflight`), the deploy, the stream check through the real domain (`make smoke`), the
user's journey against the real URL with a model the stack's LibreChat configures (register,
log in, chat with live tokens, follow-up, title, log out), and what only AWS can show (the
access log's transfer mode, the function's log lines, the metrics CloudWatch extracted).

It prints one report line per item that cannot be verified without AWS (PASS, FAIL, or
MANUAL with the command to run), and the figures: cold start, first token, per-token relay.

The deploy goes through a `StackDriver`: `AutomationDriver` (pulumi.automation, needs the
Pulumi CLI, Docker and credentials) in real use, another driver in the tests.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import yaml

from components.config import PROJECT
from components.contract import STREAM_CHECK_PATH
from components.names import default_name
from e2e.client import LibreChat
from ops import check, smoke
from ops.aws_evidence import aws_checks
from ops.journey import Journey

ROOT = Path(__file__).resolve().parent.parent


class AcceptanceError(Exception):
    """The stack cannot be copied for acceptance; the message says why."""


class StackDriver(Protocol):
    """Brings the throwaway stack up and down; `up` returns the stack's outputs."""

    def up(self, config: Mapping[str, Any]) -> dict[str, Any]: ...

    def destroy(self) -> None: ...


class AutomationDriver:
    """The Pulumi Automation API on this directory's program (the CLI's `up` and `destroy`)."""

    def __init__(self, stack_name: str, work_dir: Path = ROOT) -> None:
        self.stack_name = stack_name
        self.work_dir = work_dir
        self._stack: Any = None

    def up(self, config: Mapping[str, Any]) -> dict[str, Any]:
        from pulumi import automation as auto  # noqa: PLC0415 - only a real run needs the CLI

        self._stack = auto.create_or_select_stack(
            stack_name=self.stack_name, work_dir=str(self.work_dir)
        )
        self._stack.set_all_config(
            {
                key: auto.ConfigValue(
                    value=json.dumps(v) if isinstance(v, (dict, list, bool)) else str(v)
                )
                for key, v in config.items()
            }
        )
        result = self._stack.up(on_output=print)
        return {key: output.value for key, output in result.outputs.items()}

    def destroy(self) -> None:
        if self._stack is None:
            return
        self._stack.destroy(on_output=print)
        self._stack.workspace.remove_stack(self.stack_name)


# -- the throwaway copy ----------------------------------------------------------------------


def throwaway_config(stack: str, suffix: str, root: Path = ROOT) -> dict[str, Any]:
    """`Pulumi.<stack>.yaml`'s config with its own name and a subdomain of the stack's domain."""
    config = dict((yaml.safe_load((root / f"Pulumi.{stack}.yaml").read_text()) or {})["config"])
    encrypted = [k for k, v in config.items() if "secure:" in json.dumps(v).replace('"', "")]
    if encrypted:
        msg = (
            f"Pulumi.{stack}.yaml holds encrypted values ({', '.join(encrypted)}), which only "
            "its own stack can decrypt; move them to SSM (secrets.parameters) to run acceptance"
        )
        raise AcceptanceError(msg)

    def key(name: str) -> str:
        return f"{PROJECT}:{name}"

    name = str(config.get(key("name"), default_name(stack)))
    config[key("name")] = f"{name[: 40 - 10]}-acc{suffix}"
    image = dict(config.get(key("image")) or {})
    config[key("image")] = {**image, "forceDelete": True}  # destroy removes its images too
    monitoring = dict(config.get(key("monitoring")) or {})
    monitoring.pop("alarmEmail", None)  # no subscription email for a stack that lives minutes
    if monitoring:
        config[key("monitoring")] = monitoring
    domain = dict(config.get(key("domain")) or {})
    if domain.get("enabled", True) and domain.get("name"):
        old = f"https://{domain['name']}"
        first, _, zone = str(domain["name"]).partition(".")
        domain["name"] = f"acc{suffix}-{first}.{zone}"
        domain.pop("certificateArn", None)  # it covers the stack's own name: issue one
        config[key("domain")] = domain
        environment = dict(config.get(key("environment")) or {})
        for variable in ("DOMAIN_SERVER", "DOMAIN_CLIENT"):
            if str(environment.get(variable, "")).startswith(old):
                environment[variable] = (
                    f"https://{domain['name']}" + environment[variable][len(old) :]
                )
        if environment:
            config[key("environment")] = environment
    return config


# -- the report ------------------------------------------------------------------------------


@dataclass
class Report:
    lines: list[tuple[str, str, str]] = field(default_factory=list)  # verdict, item, evidence
    figures: dict[str, str] = field(default_factory=dict)

    def add(self, verdict: str, item: str, evidence: str) -> None:
        self.lines.append((verdict, item, evidence))
        print(f"{verdict:<7} {item}: {evidence}", flush=True)

    def check(self, item: str, action: Callable[[], tuple[bool, str]]) -> bool:
        try:
            ok, evidence = action()
        except Exception as exc:  # a failed item is evidence; the run goes on to the destroy
            ok, evidence = False, f"{type(exc).__name__}: {exc}"
        self.add("PASS" if ok else "FAIL", item, evidence)
        return ok

    @property
    def failed(self) -> bool:
        return any(verdict == "FAIL" for verdict, _, _ in self.lines)


#: What no automated check here can see, with what a person runs instead.
MANUAL = (
    (
        "the execute-api endpoint behind the custom domain answers 403",
        "curl -s -o /dev/null -w '%{http_code}' https://<api id>.execute-api.<region>."
        "amazonaws.com/<stage>/health  (during the run; <api id>: aws apigateway get-rest-apis)",
    ),
    (
        "alarms fire and notify (Errors counting streams ended with error trailers)",
        "aws cloudwatch set-alarm-state --alarm-name <name>-function-errors --state-value ALARM "
        "--state-reason test, on a stack with monitoring.alarmEmail",
    ),
    (
        "the saved Logs Insights queries run",
        "CloudWatch Logs Insights -> Queries -> folder <name>: run each",
    ),
    (
        "pull-request previews with the ci/ preview role and Pulumi's preview scope",
        "open a pull request: the preview workflow's comment",
    ),
    (
        "managed instances: the scaling configuration",
        "aws lambda get-function-scaling-config --function-name <name>-managed "
        "--qualifier '$LATEST.PUBLISHED'",
    ),
)


# -- figures ---------------------------------------------------------------------------------


def cold_start(url: str, wait: float, client: httpx.Client) -> tuple[float, int]:
    """Seconds until the fresh deployment's first /health 200, and the attempts it took."""
    started = time.monotonic()
    attempts = 0
    while True:
        attempts += 1
        try:
            if client.get(f"{url}/health").status_code == 200:
                return time.monotonic() - started, attempts
        except httpx.HTTPError:
            pass
        if time.monotonic() - started > wait:
            raise smoke.SmokeError(f"/health did not answer 200 within {wait:g} s of the deploy")
        time.sleep(1)


def relay_delays(arrivals: list[tuple[float, str]]) -> list[float]:
    """Each stream-check event's delay beyond the first's, in ms: its arrival spacing minus
    the runtime's sending spacing (two clocks, so only differences are compared)."""
    if len(arrivals) < 2:
        return []
    sent = [
        datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() for _, stamp in arrivals
    ]
    return [
        max(0.0, ((at - arrivals[0][0]) - (s - sent[0])) * 1000)
        for (at, _), s in zip(arrivals[1:], sent[1:], strict=True)
    ]


def figures(report: Report, cold: float, journey: Journey | None, relay: list[float]) -> None:
    report.figures["cold start (deploy done to first /health 200)"] = f"{cold:.1f} s"
    streams = [s for s in (journey.streams if journey else []) if s.delta_times]
    for label, stream in zip(("first chat", "follow-up"), streams, strict=False):
        first = (stream.delta_times[0] - stream.post_sent_at) * 1000
        report.figures[f"first token, {label}"] = f"{first:.0f} ms"
    if streams:
        gaps = [
            b - a for s in streams for a, b in zip(s.delta_times, s.delta_times[1:], strict=False)
        ]
        if gaps:
            report.figures["gap between live tokens p50"] = (
                f"{statistics.median(gaps) * 1000:.0f} ms"
            )
    if relay:
        report.figures["per-token relay (stream check, beyond the first event) p50 / max"] = (
            f"{statistics.median(relay):.0f} / {max(relay):.0f} ms"
        )


# -- the run ---------------------------------------------------------------------------------


@dataclass
class Steps:
    """What a run calls besides the driver; the tests give their own where AWS would answer."""

    check: Callable[[str], int] = field(default=lambda stack: check.main(["--stack", stack]))
    preflight: Callable[[str], int] = field(default=lambda stack: _preflight(stack))  # noqa: PLW0108 - defined below
    aws: Callable[[str], Any] | None = None  # boto3 client factory; None: boto3's
    wait: float = 180.0  # seconds for a cold start, and for CloudWatch to show logs and metrics


def _preflight(stack: str) -> int:
    from ops import preflight  # noqa: PLC0415 - boto3 and docker only for a real run

    return preflight.main(["--stack", stack])


def run(stack: str, driver: StackDriver, config: Mapping[str, Any], steps: Steps,
        model: str | None = None) -> int:  # fmt: skip
    report = Report()
    print(f"acceptance of stack {stack}: a throwaway copy named {config[f'{PROJECT}:name']}")
    if steps.check(stack) != 0:
        report.add("FAIL", "the stack file", "make check found problems (above); nothing deployed")
        return 1
    if steps.preflight(stack) != 0:
        report.add("FAIL", "the account", "make preflight found problems (above); nothing deployed")
        return 1
    since_ms = int(time.time() * 1000)
    deployed = False
    try:
        outputs = driver.up(config)
        deployed = True
        report.add("PASS", "pulumi up with your credentials", ", ".join(sorted(outputs)))
        _verify(report, outputs, config, steps, since_ms, model)
    except Exception as exc:  # reported, then the stack is destroyed all the same
        report.add(
            "FAIL", "deploy" if not deployed else "acceptance", f"{type(exc).__name__}: {exc}"
        )
    finally:
        try:
            driver.destroy()
            report.add("PASS", "pulumi destroy", "the throwaway stack is gone")
        except Exception as exc:
            report.add("FAIL", "pulumi destroy", f"{type(exc).__name__}: {exc}; destroy it by hand")
    for item, command in MANUAL:
        report.add("MANUAL", item, command)
    print("\nfigures:")
    for name, value in report.figures.items():
        print(f"  {name:66} {value}")
    verdict = "FAILED" if report.failed else "passed"
    passed = sum(v == "PASS" for v, _, _ in report.lines)
    failed = sum(v == "FAIL" for v, _, _ in report.lines)
    print(f"\nacceptance {verdict}: {passed} passed, {failed} failed, {len(MANUAL)} by hand")
    return 1 if report.failed else 0


def _verify(report: Report, outputs: Mapping[str, Any], config: Mapping[str, Any], steps: Steps,
            since_ms: int, model: str | None) -> None:  # fmt: skip
    url = str(outputs["url"]).rstrip("/")
    with httpx.Client(timeout=60) as http:
        cold, attempts = cold_start(url, steps.wait, http)
    report.add(
        "PASS", "the deployment answers", f"/health 200 after {cold:.1f} s ({attempts} tries)"
    )
    arrivals: list[tuple[float, str]] = []

    def stream_check() -> tuple[bool, str]:
        with httpx.Client(base_url=url, timeout=60) as http:
            found = smoke.check_streaming(http, smoke.Report(), STREAM_CHECK_PATH, 5, 500)
        arrivals.extend(found)
        return (
            True,
            f"5 events sent 500 ms apart arrived over {(found[-1][0] - found[0][0]) * 1000:.0f} ms",
        )

    report.check("streaming through API Gateway and the domain (smoke)", stream_check)
    client = LibreChat(url, timeout=60, stream_limit=300)
    journey = Journey(client, report, model=model)
    try:
        journey.run()
    finally:
        client.close()
    figures(report, cold, journey, relay_delays(arrivals))
    api = config.get(f"{PROJECT}:api") or {}
    stage = str(api.get("stageName", "live")) if isinstance(api, Mapping) else "live"
    aws = steps.aws or _boto3_clients(config)
    aws_checks(report, outputs, str(config[f"{PROJECT}:name"]), stage, aws, since_ms, steps.wait)


def _boto3_clients(config: Mapping[str, Any]) -> Callable[[str], Any]:
    import boto3  # noqa: PLC0415

    region = config.get("aws:region")
    return lambda service: boto3.client(service, region_name=region)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make acceptance", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="the stack to copy: Pulumi.<stack>.yaml")
    parser.add_argument("--model", help="endpoint/model to chat with (default: the first listed)")
    parser.add_argument("--wait", type=float, default=180.0, help="seconds for cold start, logs")
    args = parser.parse_args(argv)
    suffix = secrets.token_hex(3)
    try:
        config = throwaway_config(args.stack, suffix)
    except (AcceptanceError, FileNotFoundError) as exc:
        print(f"acceptance: {exc}", file=sys.stderr)
        return 2
    driver = AutomationDriver(f"{args.stack}-acceptance-{suffix}")
    return run(args.stack, driver, config, Steps(wait=args.wait), model=args.model)


if __name__ == "__main__":
    sys.exit(main())
