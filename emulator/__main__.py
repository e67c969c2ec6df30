"""`python -m emulator`: the local demo (API Gateway + Lambda + runtime + an upstream).

    python -m emulator [--port 8080] [--upstream-command CMD] [--function-timeout S]
        [--no-freeze] [--env K=V ...] [--runtime-command CMD] [--stage NAME]
        [--max-environments N] [--managed-instances N] [--idle-timeout S] [--log pretty]

Standard Lambda: one invocation per environment; a request that finds every environment
busy starts another (each with its own runtime and upstream) up to --max-environments, and
is throttled beyond it. --managed-instances N: Lambda Managed Instances, N concurrent
invocations per environment, never frozen. The URL to call is the last line it prints at start.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import threading
from collections.abc import Sequence

from emulator.http11 import free_port
from emulator.stack import DEFAULT_RUNTIME_COMMAND, LocalStack

DEMO_UPSTREAM = f"{shlex.quote(sys.executable)} -m emulator.demo_upstream"


def parse_env(pairs: Sequence[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--env expects KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


#: Runtime log fields `--log pretty` leaves out: the timestamp and level lead the line, `_aws`
#: (CloudWatch's metric declaration) only repeats fields the line carries anyway.
PRETTY_SKIPS = {"timestamp", "level", "message", "_aws", "FunctionName", "source", "stream"}


def readable(line: str) -> str:
    """A runtime JSON log line as `HH:MM:SS.mmm LEVEL message key=value ...`; other lines as
    they are."""
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict) or "message" not in record:
        return line
    clock = str(record.get("timestamp", ""))[11:23]
    fields = " ".join(
        f"{k}={json.dumps(v) if isinstance(v, (bool, str, list, dict)) or v is None else v}"
        for k, v in record.items()
        if k not in PRETTY_SKIPS
    )
    text = f"{clock} {record.get('level', ''):<5} {record['message']}"
    return f"{text}  {fields}" if fields else text


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m emulator",
        description="Local API Gateway (REST, streaming) + Lambda Runtime API running the "
        "streaming runtime in front of an upstream (a demo SSE server by default).",
    )
    p.add_argument("--host", default="127.0.0.1", help="gateway bind address (default %(default)s)")
    p.add_argument("--port", type=int, default=8080, help="gateway port (default %(default)s)")
    p.add_argument(
        "--upstream-command",
        default=DEMO_UPSTREAM,
        help="UPSTREAM_COMMAND for the runtime (default: the demo SSE upstream)",
    )
    p.add_argument(
        "--runtime-command",
        default=shlex.join(DEFAULT_RUNTIME_COMMAND),
        help="the Lambda runtime to run (default: %(default)s)",
    )
    p.add_argument("--function-timeout", type=float, default=900.0, help="seconds (default 900)")
    p.add_argument("--no-freeze", action="store_true", help="do not SIGSTOP the idle runtime")
    p.add_argument(
        "--max-environments",
        type=positive,
        default=1,
        metavar="N",
        help="execution environments Lambda may run at once (reserved concurrency; Managed "
        "Instances: maximum execution environments); a request that finds all N busy gets "
        "500, as API Gateway answers a throttled invoke, with the reason added to its body "
        "(default %(default)s)",
    )
    p.add_argument(
        "--managed-instances",
        type=positive,
        default=None,
        metavar="N",
        help="Lambda Managed Instances: N concurrent invocations per environment "
        "(AWS_LAMBDA_MAX_CONCURRENCY=N), never frozen; --function-timeout still applies (the "
        "caller gets 504) but the environment keeps running, and the late answer gets 410",
    )
    p.add_argument(
        "--snapstart",
        action="store_true",
        help="Lambda SnapStart: every environment inits, is frozen as its snapshot, and is "
        "restored by the first invocation routed to it",
    )
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=300.0,
        help="cut streams silent this long, like API Gateway (default %(default)s s)",
    )
    p.add_argument("--stage", default=None, help="emulate a stage path prefix, e.g. prod")
    p.add_argument(
        "--event-format",
        choices=["rest", "function-url"],
        default="rest",
        help="events as API Gateway REST (default) or a Lambda Function URL sends them",
    )
    p.add_argument("--init-timeout", type=float, default=120.0, help="seconds to wait for init")
    p.add_argument(
        "--env", action="append", default=[], metavar="K=V", help="extra runtime environment"
    )
    p.add_argument(
        "--log",
        choices=["json", "pretty"],
        default="json",
        help="runtime log lines as Lambda writes them (json, default) or one short line each "
        "(pretty: time, level, message, fields; no metric declarations)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env = {"UPSTREAM_COMMAND": args.upstream_command, "UPSTREAM_PORT": str(free_port())}
    env.update(parse_env(args.env))
    try:
        stack = LocalStack(
            runtime_command=shlex.split(args.runtime_command),
            env=env,
            function_timeout=args.function_timeout,
            freeze=not args.no_freeze,
            host=args.host,
            port=args.port,
            stage=args.stage,
            event_format=args.event_format,
            idle_timeout=args.idle_timeout or None,
            max_environments=args.max_environments,
            managed_instances=args.managed_instances,
            snapstart=args.snapstart,
            verbose=True,
            log_formatter=readable if args.log == "pretty" else None,
        )
    except OSError as exc:
        print(
            f"emulator: cannot listen on {args.host}:{args.port} ({exc.strerror}); "
            "pick another port with --port",
            file=sys.stderr,
        )
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stack.start(wait_init=False)
    waited = 0.0
    while not stack.wait_init(0.25):
        waited += 0.25
        if stop.is_set() or waited >= args.init_timeout:
            if not stop.is_set():
                tail = "\n".join(stack.logs[-20:])
                print(f"emulator: no init within {args.init_timeout} s:\n{tail}", file=sys.stderr)
            stack.stop()
            return 1
    if stack.init_error is not None:
        print(
            f"emulator: the runtime failed to initialize: {json.dumps(stack.init_error)}",
            file=sys.stderr,
        )
        stack.stop()
        return 1
    base = stack.url + (f"/{args.stage}" if args.stage else "")
    demo = args.upstream_command == DEMO_UPSTREAM
    mode = (
        f"Lambda Managed Instances, {args.managed_instances} concurrent invocations per environment"
        if args.managed_instances
        else "standard Lambda, one invocation per environment"
        + ("" if args.no_freeze else ", frozen between invocations")
        + (", SnapStart (each environment restored by its first request)" if args.snapstart else "")
    )
    print(f"emulator: {mode}; at most {args.max_environments} environment(s)", file=sys.stderr)
    sys.stderr.flush()
    # The URL last, below a blank line: the one thing to copy out of the lines above it.
    print(file=sys.stderr, flush=True)
    print(
        f"Local API Gateway ready (init {stack.init_duration:.2f} s): "
        + (f"curl -N {base}/api/demo/chat" if demo else f"curl -N {base}/"),
        flush=True,
    )
    if demo:
        print(f"  or open {base}/ in a browser. Ctrl-C stops everything.", flush=True)
    # Wake up regularly: a signal that lands on another thread is only handled when the
    # main thread runs Python code again.
    rc = 0
    while not stop.wait(0.25):
        if stack.init_error is not None:  # set by the pool's threads meanwhile
            print(  # type: ignore[unreachable]
                f"emulator: the runtime failed to re-initialize: {json.dumps(stack.init_error)}",
                file=sys.stderr,
            )
            rc = 1
            break
    print("emulator: stopping", file=sys.stderr)
    stack.stop()
    return rc


if __name__ == "__main__":
    sys.exit(main())
