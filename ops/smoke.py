"""Smoke test after a deploy: the public URL answers, and its responses really stream.

`make smoke STACK=dev` (or `--url https://...`) asks `/health` for a 200, then reads the
runtime's stream check (STREAM_CHECK_PATH): events sent `interval_ms` apart must also arrive
spread out. A buffering hop anywhere (API Gateway without STREAM mode, a proxy, a CDN) still
delivers every event, but all at once at the end, which nothing else notices. Prints the time
to first byte and each event's arrival; exits non-zero on any failure. A host name that does
not resolve fails at once (nothing answers there yet: retrying would only wait out `--wait`).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from components.config import ConfigError
from components.contract import STREAM_CHECK_PATH, TOKEN_HEADER
from ops.stack import load_stack

#: Arrivals must spread over at least this share of the time the runtime spread them over.
MIN_SPREAD = 0.5


class SmokeError(Exception):
    """A failed step; the message says what was expected and what came."""


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        self.lines.append(line)
        print(line, flush=True)


def stack_url(stack: str) -> str:
    """The stack's public URL from its custom domain (and base path)."""
    cfg = load_stack(stack).config
    if cfg.domain is None:
        raise SmokeError(
            f'stack {stack} has no custom domain; pass --url "$(pulumi stack output stage_url '
            f'-s {stack})"'
        )
    return cfg.domain.url


def check_resolves(base: str, report: Report) -> None:
    """The URL's host must resolve: a cold start does not delay DNS, so fail without retrying."""
    parts = urlsplit(base)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise SmokeError(f"{base!r} is not an http(s) URL")
    try:
        socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise SmokeError(
            f"{parts.hostname} does not resolve ({exc}): the stack is not deployed, its DNS "
            "records have not reached your resolver yet, or the domain is wrong; pass "
            'URL=... (e.g. "$(pulumi stack output url)") to smoke another address'
        ) from None
    report.say(f"ok    {parts.hostname} resolves")


def check_health(client: httpx.Client, report: Report, wait: float) -> None:
    """/health must answer 200; a cold start may answer 502/504 first, so retry until `wait`."""
    deadline = time.monotonic() + wait
    while True:
        started = time.monotonic()
        try:
            response = client.get("/health")
            outcome = f"{response.status_code}"
        except httpx.HTTPError as exc:
            response, outcome = None, f"{type(exc).__name__}: {exc}"
        elapsed = (time.monotonic() - started) * 1000
        if response is not None and response.status_code == 200:
            report.say(f"ok    /health 200 in {elapsed:.0f} ms")
            return
        if time.monotonic() >= deadline:
            raise SmokeError(f"/health answered {outcome} (expected 200) after {wait:.0f} s")
        report.say(f"wait  /health answered {outcome} in {elapsed:.0f} ms; trying again")
        time.sleep(min(5.0, max(deadline - time.monotonic(), 0)))


def stream_check_token(parameter: str) -> str:
    """The stream check's token, from the stack's SSM parameter (api.streamCheckTokenParameter),
    with the caller's AWS credentials; it is sent, never printed."""
    import boto3  # noqa: PLC0415 (only a smoke of a stack with the check on needs AWS)

    response = boto3.client("ssm").get_parameter(Name=parameter, WithDecryption=True)
    return str(response["Parameter"]["Value"])


def check_streaming(
    client: httpx.Client,
    report: Report,
    path: str,
    count: int,
    interval_ms: int,
    token: str | None = None,
) -> list[tuple[float, str]]:
    """Events `interval_ms` apart must arrive spread out, not all together; returns each
    event's arrival (monotonic seconds) with the runtime's clock when it sent it."""
    started = time.monotonic()
    first_byte: float | None = None
    arrivals: list[tuple[float, dict[str, object]]] = []
    params = {"n": count, "interval_ms": interval_ms}
    headers = {TOKEN_HEADER.decode(): token} if token else {}
    with client.stream("GET", path, params=params, headers=headers) as response:
        if response.status_code != 200:
            body = response.read()[:300].decode("utf-8", "replace")
            raise SmokeError(f"{path} answered {response.status_code} (expected 200): {body}")
        kind = response.headers.get("content-type", "")
        if not kind.startswith("text/event-stream"):
            raise SmokeError(f"{path} answered {kind!r}, not text/event-stream")
        buffer = b""
        for chunk in response.iter_raw():
            now = time.monotonic()
            first_byte = first_byte if first_byte is not None else now
            buffer += chunk
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                lines = [line[6:] for line in block.split(b"\n") if line.startswith(b"data: ")]
                if lines:
                    arrivals.append((now, stream_check_event(path, len(arrivals) + 1, lines[0])))
    if first_byte is None or len(arrivals) != count:
        raise SmokeError(f"{path} sent {len(arrivals)} events, expected {count}")
    report.say(f"ok    time to first byte {(first_byte - started) * 1000:.0f} ms")
    for at, data in arrivals:
        report.say(
            f"      event {data.get('seq')}/{count} arrived at {(at - started) * 1000:7.0f} ms "
            f"(runtime clock {data.get('runtimeTime')})"
        )
    spread = arrivals[-1][0] - arrivals[0][0]
    expected = (count - 1) * interval_ms / 1000
    if spread < expected * MIN_SPREAD:
        raise SmokeError(
            f"the events arrived within {spread * 1000:.0f} ms although the runtime sent them "
            f"over {expected * 1000:.0f} ms: a hop buffers the response (check API Gateway's "
            "responseTransferMode STREAM on the integration and any proxy or CDN in front)"
        )
    report.say(
        f"ok    streaming: first event {spread * 1000:.0f} ms before the last "
        f"(sent {expected * 1000:.0f} ms apart)"
    )
    return [(at, str(data.get("runtimeTime"))) for at, data in arrivals]


def stream_check_event(path: str, seq: int, data: bytes) -> dict[str, Any]:
    """One event's JSON; anything else means something other than the runtime answered."""
    try:
        event = json.loads(data)
    except ValueError:
        event = None
    if not isinstance(event, dict):
        raise SmokeError(
            f"{path} event {seq} is not the runtime's stream-check JSON: something in front of "
            "the function answered (a proxy's error page, an old image without the check?)"
        )
    return event


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", "-s", help="take the URL from Pulumi.<stack>.yaml's domain")
    where.add_argument("--url", help="the public base URL (e.g. the stage_url output)")
    parser.add_argument("--check-path", default=STREAM_CHECK_PATH)
    parser.add_argument("--events", type=int, default=5, help="2 to 20 (the runtime's limit)")
    parser.add_argument(
        "--interval-ms", type=int, default=500, help="1 to 1000; the whole check <= 3 s"
    )
    parser.add_argument(
        "--wait", type=float, default=120.0, help="seconds /health may take (a cold start)"
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.events < 2 or args.interval_ms < 1:
        parser.error("--events must be at least 2 and --interval-ms at least 1, or no spread shows")
    report = Report()
    try:
        base = args.url or stack_url(args.stack)
        report.say(f"smoke {base}")
        check_resolves(base, report)
        with httpx.Client(base_url=base.rstrip("/"), timeout=60, follow_redirects=False) as client:
            check_health(client, report, args.wait)
            parameter = (
                load_stack(args.stack).config.api.stream_check_token_parameter
                if args.stack
                else None
            )
            if args.stack and parameter is None:
                report.say(
                    "skip  stream check: off in this stack (api.streamCheckTokenParameter unset)"
                )
            else:
                token = stream_check_token(parameter) if parameter else None
                check_streaming(
                    client, report, args.check_path, args.events, args.interval_ms, token
                )
    except (SmokeError, ConfigError, httpx.HTTPError, OSError) as exc:
        report.say(f"FAIL  {exc}")
        return 1
    report.say("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
