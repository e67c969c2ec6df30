"""Benchmark of the streaming runtime: the same requests directly and through Lambda (emulated).

Prints figures, asserts nothing (these machines are shared and noisy):

- turnaround: event handed out by /next -> first body byte at the Runtime API, minus the
  upstream's own time to first byte for the same request asked directly;
- end-to-end overhead: client-measured total through the local API Gateway minus direct;
- added SSE latency: when each event reaches the client minus when the upstream wrote it,
  through the stack minus directly;
- streamed throughput of a large body through the Runtime API;
- cold-start overhead beyond the upstream's own readiness, with the config object from S3 and
  eleven secrets from SSM (moto);
- the runtime process's RSS (current and peak).

Each figure is a difference of two measurements (through the runtime minus direct) and the
runtime can only add time, so a sample the noise puts below zero counts as zero. The figures
with a target (`TARGETS`, the performance budget in docs/decisions.md) print `ok` or `MISSED`;
``--strict`` (``make bench STRICT=1``) exits non-zero on a miss.

Run: ``make bench`` (or ``uv run python bench/bench_runtime.py --help``). ``--runtime-command``
measures another runtime the same way, e.g. the original Node.js handler (bench/node_reference).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import h11
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "runtime")]

from emulator import LocalStack  # noqa: E402
from emulator.http11 import free_port  # noqa: E402
from emulator.sandbox import descendants  # noqa: E402

UPSTREAM_APP = ROOT / "tests" / "runtime" / "upstream_app.py"
TARGETS = {
    "turnaround p50 (ms)": 0.5,
    "turnaround p99 (ms)": 2.0,
    "added SSE latency p99 (ms)": 1.0,
    "throughput (MB/s)": 300.0,
    "cold-start overhead (ms)": 200.0,
    "runtime RSS (MB)": 60.0,
}
SECRETS = [
    "CREDS_IV", "CREDS_KEY", "JWT_SECRET", "JWT_REFRESH_SECRET", "MONGO_URI", "LITELLM_API_KEY",
    "MEILI_MASTER_KEY", "OPENID_CLIENT_ID", "OPENID_CLIENT_SECRET", "OPENID_SESSION_SECRET",
    "FIRECRAWL_API_KEY",
]  # fmt: skip
MIX = [
    ("GET", "/status/200"),
    ("GET", "/echo?a=1&a=2&b=3"),
    ("POST", "/echo"),
    ("GET", "/cookies"),
    ("GET", "/binary"),
    ("GET", "/status/204"),
]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def wait_healthy(port: int, poll: float = 0.001, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(poll)
    raise TimeoutError(f"upstream on {port} did not become healthy")


def start_upstream() -> tuple[subprocess.Popen[bytes], int, float]:
    """Start the upstream directly; returns it, its port and its own time to healthy."""
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, str(UPSTREAM_APP)],
        env={**os.environ, "PORT": str(port)},
        stdout=subprocess.DEVNULL,
    )
    wait_healthy(port)
    return process, port, time.perf_counter() - started


def timed(client: httpx.Client, method: str, path: str, body: bytes) -> tuple[float, float]:
    """(time to first body byte or end of headers for empty bodies, total time) in seconds."""
    started = time.perf_counter()
    with client.stream(method, path, content=body if method == "POST" else None) as response:
        first = None
        for _ in response.iter_raw():
            if first is None:
                first = time.perf_counter()
        end = time.perf_counter()
    return (first or end) - started, end - started


class RawClient:
    """A lean keep-alive HTTP/1.1 client (h11) for the upstream's own time to first byte.

    httpx costs ~0.3 ms per request here; measured with it, the upstream's time to first byte
    would absorb part of the runtime's turnaround and flatter it. It sends the headers the
    upstream receives through the gateway, so both paths cost the upstream the same parsing.
    """

    def __init__(self, port: int, headers: list[tuple[str, str]]) -> None:
        self.port = port
        self.headers = [(k, v) for k, v in headers if k.lower() not in {"host", "content-length"}]
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn = h11.Connection(h11.CLIENT)

    def ttfb(self, method: str, path: str, body: bytes) -> float:
        content = body if method == "POST" else b""
        headers = [("Host", f"127.0.0.1:{self.port}"), ("Content-Length", str(len(content)))]
        headers += self.headers
        out = self.conn.send(h11.Request(method=method, target=path, headers=headers))
        out += self.conn.send(h11.Data(data=content)) if content else b""
        out += self.conn.send(h11.EndOfMessage())
        started = time.perf_counter()
        self.sock.sendall(out)
        first = None
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(self.sock.recv(262144))
            elif isinstance(event, h11.Data) and first is None:
                first = time.perf_counter()
            elif isinstance(event, h11.EndOfMessage):
                break
        end = time.perf_counter()
        self.conn.start_next_cycle()
        return (first or end) - started


def measure_requests(stack: LocalStack, direct: httpx.Client, rounds: int) -> dict[str, float]:
    body = os.urandom(2048)
    turnaround: list[float] = []
    overhead: list[float] = []
    by_path: dict[str, list[float]] = {}
    with httpx.Client(base_url=stack.url, timeout=60) as via:
        seen = via.get("/echo").json()["headers"]  # what the upstream receives through Lambda
        raw = RawClient(direct.base_url.port, [(k, v) for k, v in seen])
        for method, path in MIX * 5:  # warm both paths
            timed(direct, method, path, body)
            timed(via, method, path, body)
        for _ in range(rounds):
            for method, path in MIX:
                _, d_total = timed(direct, method, path, body)
                before = len(stack.invocations)
                _, v_total = timed(via, method, path, body)
                record = stack.invocations[before]
                if record.first_body_byte_at is not None and record.next_handed_out_at is not None:
                    runtime_ttfb = record.first_body_byte_at - record.next_handed_out_at
                    turnaround.append(max(0.0, runtime_ttfb - raw.ttfb(method, path, body)))
                    by_path.setdefault(f"  turnaround p50 {method} {path} (ms)", []).append(
                        turnaround[-1]
                    )
                overhead.append(max(0.0, v_total - d_total))
    return {
        "turnaround p50 (ms)": pct(turnaround, 0.5) * 1000,
        "turnaround p99 (ms)": pct(turnaround, 0.99) * 1000,
        "end-to-end overhead p50 (ms)": pct(overhead, 0.5) * 1000,
        "end-to-end overhead p99 (ms)": pct(overhead, 0.99) * 1000,
        "requests measured": float(len(turnaround)),
        **{name: pct(values, 0.5) * 1000 for name, values in by_path.items()},
    }


def sse_delays(client: httpx.Client, events: int, gap: float) -> list[float]:
    delays = []
    buffer = b""
    with client.stream("GET", "/sse", params={"n": events, "gap": gap}) as response:
        for chunk in response.iter_raw():
            now = time.time()
            buffer += chunk
            while b"\n\n" in buffer:
                event, buffer = buffer.split(b"\n\n", 1)
                delays.append(now - json.loads(event[len(b"data: ") :])["t"])
    return delays


def measure_sse(stack: LocalStack, direct: httpx.Client, streams: int) -> dict[str, float]:
    added: list[float] = []
    with httpx.Client(base_url=stack.url, timeout=60) as via:
        for _ in range(streams):
            d = sse_delays(direct, 20, 0.01)
            v = sse_delays(via, 20, 0.01)
            base = statistics.median(d)
            added += [max(0.0, x - base) for x in v[1:]]  # the first also carries the headers
    return {
        "added SSE latency p50 (ms)": pct(added, 0.5) * 1000,
        "added SSE latency p99 (ms)": pct(added, 0.99) * 1000,
    }


def measure_throughput(stack: LocalStack, megabytes: int) -> dict[str, float]:
    size = megabytes * 1_000_000
    results = {}
    with httpx.Client(base_url=stack.url, timeout=120) as via:
        best_runtime = best_client = 0.0
        for _ in range(3):
            before = len(stack.invocations)
            started = time.perf_counter()
            received = 0
            with via.stream("GET", "/bytes", params={"n": size, "chunk": 65536}) as response:
                for chunk in response.iter_raw():
                    received += len(chunk)
            client_s = time.perf_counter() - started
            assert received == size, f"received {received} of {size} bytes"
            record = stack.invocations[before]
            record.done.wait(10)
            runtime_s = record.response_done_at - record.first_body_byte_at
            best_runtime = max(best_runtime, size / runtime_s / 1e6)
            best_client = max(best_client, size / client_s / 1e6)
    results["throughput (MB/s)"] = best_runtime
    results["throughput end-to-end incl. gateway (MB/s)"] = best_client
    return results


def start_moto() -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """moto in a process of its own, as AWS would be: not sharing this process's GIL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(endpoint, timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    return process, env


def measure_cold_start(
    runs: int, runtime_command: list[str] | None, cwd: str | None
) -> dict[str, float]:
    import boto3  # noqa: PLC0415

    moto, aws = start_moto()
    session = boto3.session.Session(
        aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
        region_name=aws["AWS_REGION"],
    )
    s3 = session.client("s3", endpoint_url=aws["AWS_ENDPOINT_URL"])
    ssm = session.client("ssm", endpoint_url=aws["AWS_ENDPOINT_URL"])
    s3.create_bucket(
        Bucket="bench-config", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    s3.put_object(Bucket="bench-config", Key="librechat.yaml", Body=b"version: 1.2.1\n" * 200)
    for name in SECRETS:
        ssm.put_parameter(Name=f"/bench/{name}", Value=f"value-of-{name}", Type="SecureString")

    own, init, cold, rss = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(runs):
            process, _, ready = start_upstream()
            process.terminate()
            process.wait()
            own.append(ready)
            env = {
                **aws,
                "UPSTREAM_COMMAND": f"{sys.executable} {UPSTREAM_APP}",
                "UPSTREAM_PORT": str(free_port()),
                "UPSTREAM_HEALTH_PATH": "/health",
                "CONFIG_S3_BUCKET": "bench-config",
                "CONFIG_S3_KEY": "librechat.yaml",
                "CONFIG_PATH": os.path.join(tmp, "librechat.yaml"),
                "SSM_SECRETS": json.dumps({name: f"/bench/{name}" for name in SECRETS}),
            }
            stack = LocalStack(runtime_command, env=env, cwd=cwd)
            with stack.start(init_timeout=60):
                if stack.init_error:
                    raise SystemExit(f"cold start failed: {stack.init_error}")
                # Until the first response: a runtime may start its upstream only when the
                # first event comes (the Node.js handler does), after init.
                httpx.get(f"{stack.url}/health", timeout=60).raise_for_status()
                cold.append(time.perf_counter() - stack.sandbox.spawned_at)
                init.append(stack.init_duration)
                rss.append(runtime_rss(stack.process.pid)[0])
    moto.terminate()
    moto.wait()
    return {
        "upstream's own readiness (ms)": statistics.median(own) * 1000,
        "init phase (ms)": statistics.median(init) * 1000,
        "cold start to first response (ms)": statistics.median(cold) * 1000,
        "cold-start overhead (ms)": (statistics.median(cold) - statistics.median(own)) * 1000,
        "RSS after cold start (MB)": statistics.median(rss),
    }


def read_rss(pid: int) -> tuple[float, float]:
    fields = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            fields[key] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def runtime_rss(root: int) -> tuple[float, float]:
    """RSS (current, peak) summed over the runtime's processes, the upstream's excluded.

    A runtime may be several processes (npx -> sh -> node for aws-lambda-ric), all resident
    beside LibreChat in the sandbox; the upstream is found by its command line.
    """
    pids = [root, *descendants(root)]
    upstream: set[int] = set()
    for pid in pids:
        try:
            if str(UPSTREAM_APP).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                upstream.update([pid, *descendants(pid)])
        except OSError:
            continue
    sizes = [read_rss(pid) for pid in pids if pid not in upstream]
    return sum(c for c, _ in sizes), sum(p for _, p in sizes)


def run(args: argparse.Namespace) -> dict[str, float]:
    figures: dict[str, float] = {}
    runtime_command = shlex.split(args.runtime_command) if args.runtime_command else None
    direct_process, direct_port, _ = start_upstream()
    env = {
        "UPSTREAM_COMMAND": f"{sys.executable} {UPSTREAM_APP}",
        "UPSTREAM_PORT": str(free_port()),
        "UPSTREAM_HEALTH_PATH": "/health",
    }
    try:
        with (
            LocalStack(
                runtime_command, env=env, freeze=not args.no_freeze, cwd=args.runtime_cwd
            ).start(init_timeout=60) as stack,
            httpx.Client(base_url=f"http://127.0.0.1:{direct_port}", timeout=60) as direct,
        ):
            steps: list[tuple[str, Callable[[], dict[str, float]]]] = [
                ("requests", lambda: measure_requests(stack, direct, args.rounds)),
                ("sse", lambda: measure_sse(stack, direct, args.sse_streams)),
                ("throughput", lambda: measure_throughput(stack, args.megabytes)),
            ]
            for name, step in steps:
                print(f"... {name}", file=sys.stderr, flush=True)
                figures.update(step())
            current, peak = runtime_rss(stack.process.pid)
            figures["runtime RSS (MB)"] = current
            figures["runtime peak RSS (MB)"] = peak
    finally:
        direct_process.terminate()
        direct_process.wait()
    print("... cold start", file=sys.stderr, flush=True)
    figures.update(measure_cold_start(args.cold_starts, runtime_command, args.runtime_cwd))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=300, help="rounds of the request mix")
    parser.add_argument("--sse-streams", type=int, default=20, help="SSE streams of 20 events")
    parser.add_argument("--megabytes", type=int, default=200, help="size of the throughput body")
    parser.add_argument(
        "--cold-starts", type=int, default=5, help="cold starts to take the median of"
    )
    parser.add_argument(
        "--no-freeze", action="store_true", help="do not freeze the runtime between events"
    )
    parser.add_argument(
        "--runtime-command",
        help="the runtime to measure, a shell-style command line (default: our runtime)",
    )
    parser.add_argument("--runtime-cwd", help="working directory of --runtime-command")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a figure misses its target"
    )
    args = parser.parse_args()
    figures = run(args)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    return report(figures, strict=args.strict)


def report(figures: dict[str, float], strict: bool = False) -> int:
    """Print the figures beside their targets and say what a miss means; 1 if strict and missed."""
    print(f"\n{'figure':46} {'measured':>10} {'target':>10}")
    missed = []
    for name, value in figures.items():
        target = TARGETS.get(name)
        verdict = ""
        if target is not None:
            ok = value >= target if "MB/s" in name else value <= target
            verdict = "ok" if ok else "MISSED"
            if not ok:
                missed.append(name)
        shown = f"{target:g}" if target is not None else ""
        print(f"{name:46} {value:10.3f} {shown:>10} {verdict}")
    print(
        "\ntarget: the performance budget (docs/decisions.md), a ceiling (a floor for MB/s);"
        "\nok: within it; MISSED: outside it on this run. Figures are through the runtime minus"
        "\ndirect, so a busy machine inflates them: rerun on a quiet one before calling it the"
        "\nruntime's. make bench STRICT=1 exits non-zero on a miss."
    )
    if missed:
        print(f"{len(missed)} of {len(TARGETS)} targets missed: {', '.join(missed)}")
    else:
        print(f"every target met ({len(TARGETS)})")
    return 1 if strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
