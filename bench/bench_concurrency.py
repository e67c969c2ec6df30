"""Benchmark: concurrent SSE streams through one Lambda Managed Instances environment.

One environment (`managed_instances=64`, never frozen) runs the runtime and one upstream;
1, 8, 32 and 64 streams of SSE events go through it at once, their starts spread evenly over
`--ramp` seconds (chat answers do not all start in the same instant; `--ramp 0.02` shows a
burst of simultaneous starts, whose cost is the runtime's ~1 ms of CPU per invocation).
Prints figures, asserts nothing:

- added latency per event, p50 / p99: when an event reaches the Runtime API (the runtime's
  output, as the emulator's relay receives it) minus when the upstream wrote it, less the median
  of the same delay for the same number of streams read directly from the upstream;
  also over the events written while every stream was running (no starts or ends then);
- the same, end to end through the emulated API Gateway (the gateway and its clients share
  this process, so this one includes the emulator's own cost under load);
- the runtime process's CPU time per event, its share of one core, the time its threads sat
  runnable waiting for a CPU (a busy machine's share of the latency), and its RSS (current
  after each level, and the peak over the whole run).

Each level runs `--repeat` times and every figure is the median of its runs. The direct p99
shows the machine's own noise: on a busy shared machine every hop waits for a CPU.

Run: ``make bench-concurrency`` (or ``uv run python bench/bench_concurrency.py --help``).
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import statistics
import sys
import time
from typing import Any

import h11
from bench_runtime import UPSTREAM_APP, pct, runtime_rss, start_upstream

from emulator import LocalStack
from emulator.events import build_rest_event
from emulator.http11 import free_port

LEVELS = (1, 8, 32, 64)
TARGETS = {
    "64 streams: added latency p99 (ms)": 5.0,
    "64 streams: added latency p99, all 64 running (ms)": 5.0,
    "64 streams: runtime RSS (MB)": 40.0,
}
TICKS = os.sysconf("SC_CLK_TCK")


class EventTimes:
    """Splits an SSE byte stream into events and records, for each, how long after the
    upstream wrote it (its "t") the bytes that completed it arrived."""

    def __init__(self) -> None:
        self.events: list[tuple[float, float]] = []  # (written at, delay)
        self._buffer = b""

    def feed(self, data: bytes | memoryview, arrived: float) -> None:
        self._buffer += data
        while b"\n\n" in self._buffer:
            event, self._buffer = self._buffer.split(b"\n\n", 1)
            if event.startswith(b"data: "):
                written = json.loads(event[len(b"data: ") :])["t"]
                self.events.append((written, arrived - written))


Streams = list[list[tuple[float, float]]]  # per stream: (written at, delay) of each event


def delays(streams: Streams) -> tuple[list[float], list[float]]:
    """Every event's delay (each stream's first left out: it carries the headers), and those
    of the events written while every stream was running."""
    first = max(s[0][0] for s in streams)
    last = min(s[-1][0] for s in streams)
    every = [d for s in streams for _, d in s[1:]]
    together = [d for s in streams for t, d in s[1:] if first <= t <= last]
    return every, together


class RecordingSink:
    """A response sink at the Runtime API: timestamps each piece the runtime sends."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.times = EventTimes()
        self._started = False

    @property
    def started(self) -> bool:
        return self._started

    def start(self, prelude: dict[str, Any], first: bytes | memoryview = b"") -> None:
        self.status = prelude.get("statusCode", 200)
        self._started = True
        if first:
            self.times.feed(first, time.time())

    def write(self, data: bytes | memoryview) -> None:
        self.times.feed(data, time.time())

    def finish(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def fail(self, status: int, body: dict[str, Any]) -> None:
        self.status = status


def sse_target(events: int, gap: float) -> str:
    return f"/sse?n={events}&gap={gap}"


def at_runtime_api(
    stack: LocalStack, streams: int, events: int, gap: float, ramp: float
) -> Streams:
    """Per-event delays of `streams` concurrent invocations, read at the Runtime API."""
    sinks = [RecordingSink() for _ in range(streams)]
    records = []
    for n, sink in enumerate(sinks):
        event = build_rest_event(
            method="GET",
            target=sse_target(events, gap),
            headers=[("Host", "bench"), ("Accept", "text/event-stream")],
            body=b"",
            source_ip="127.0.0.1",
            request_id=f"bench-{n}",
        )
        records.append(stack.submit(event, sink))
        time.sleep(ramp / streams)
    for record in records:
        record.done.wait(120)
        if record.error:
            raise SystemExit(f"a stream failed: {record.error}")
    return [sink.times.events for sink in sinks]


def over_http(port: int, streams: int, events: int, gap: float, ramp: float) -> Streams:
    """Per-event delays of `streams` concurrent GETs to `port`, read by one selector loop
    (h11 parses each response), the requests started evenly over `ramp` seconds. Connects do not
    block the loop: a server with a small accept backlog (the test upstream's is 5) drops
    SYNs under 64 simultaneous connects, and a blocking connect would stall every stream."""
    selector = selectors.DefaultSelector()
    times = [EventTimes() for _ in range(streams)]
    conns = [h11.Connection(h11.CLIENT) for _ in range(streams)]
    request = h11.Request(method="GET", target=sse_target(events, gap), headers=[("Host", "b")])
    open_streams = streams
    started = time.perf_counter()
    next_start = 0
    while open_streams:
        if next_start < streams and time.perf_counter() >= started + next_start * ramp / streams:
            sock = socket.socket()
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            selector.register(sock, selectors.EVENT_WRITE, next_start)
            next_start += 1
        wait = None if next_start >= streams else ramp / streams
        for key, mask in selector.select(wait):
            sock, n = key.fileobj, key.data
            assert isinstance(sock, socket.socket)
            if mask & selectors.EVENT_WRITE:  # connected: send the request, then read
                sock.setblocking(True)
                sock.sendall(conns[n].send(request) + conns[n].send(h11.EndOfMessage()))
                sock.setblocking(False)
                selector.modify(sock, selectors.EVENT_READ, n)
                continue
            data = sock.recv(262144)
            arrived = time.time()
            conns[n].receive_data(data)
            while (event := conns[n].next_event()) not in (h11.NEED_DATA, h11.PAUSED):
                if isinstance(event, h11.Data):
                    times[n].feed(bytes(event.data), arrived)
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    selector.unregister(sock)
                    sock.close()
                    open_streams -= 1
                    break
            if not data and sock.fileno() != -1:
                raise SystemExit(f"stream {n} closed before its end")
    return [t.events for t in times]


def runqueue_seconds(pid: int) -> float:
    """Time the process's threads spent runnable but waiting for a CPU (schedstat), so far:
    what a busy machine adds to every hop, whoever's code it is."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as fh:
                total += int(fh.read().split()[1])
        except OSError:
            continue  # the thread ended
    return total / 1e9


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as fh:
        fields = fh.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def measure_level(
    stack: LocalStack, direct_port: int, streams: int, args: argparse.Namespace
) -> dict[str, float]:
    events, gap, ramp = args.events, args.gap, args.ramp
    direct, direct_together = delays(over_http(direct_port, streams, events, gap, ramp))
    base = statistics.median(direct)
    runtime_pid = stack.first.process.pid if stack.first.process else 0
    cpu_before, wall_before = cpu_seconds(runtime_pid), time.perf_counter()
    waited_before = runqueue_seconds(runtime_pid)
    via_runtime, together = delays(at_runtime_api(stack, streams, events, gap, ramp))
    cpu = cpu_seconds(runtime_pid) - cpu_before
    waited = runqueue_seconds(runtime_pid) - waited_before
    wall = time.perf_counter() - wall_before
    via_gateway, _ = delays(over_http(stack.gateway.port, streams, events, gap, ramp))
    added = [d - base for d in via_runtime]
    added_together = [d - statistics.median(direct_together) for d in together]
    end_to_end = [d - base for d in via_gateway]
    label = f"{streams} streams"
    return {
        f"{label}: added latency p50 (ms)": pct(added, 0.5) * 1000,
        f"{label}: added latency p99 (ms)": pct(added, 0.99) * 1000,
        f"{label}: added latency p99, all {streams} running (ms)": pct(added_together, 0.99) * 1000,
        f"{label}: end to end incl. gateway p50 (ms)": pct(end_to_end, 0.5) * 1000,
        f"{label}: end to end incl. gateway p99 (ms)": pct(end_to_end, 0.99) * 1000,
        f"{label}: direct delay p50 (ms)": base * 1000,
        f"{label}: direct delay p99 (ms)": pct(direct, 0.99) * 1000,
        f"{label}: runtime CPU per event (us)": cpu / max(1, streams * events) * 1e6,
        f"{label}: runtime CPU (% of one core)": cpu / wall * 100,
        f"{label}: runtime waiting for a CPU (ms per s)": waited / wall * 1000,
        f"{label}: runtime RSS (MB)": runtime_rss(runtime_pid)[0],
        f"{label}: events measured": float(len(added)),
    }


def run(args: argparse.Namespace) -> dict[str, float]:
    figures: dict[str, float] = {}
    direct_process, direct_port, _ = start_upstream()
    env = {
        "UPSTREAM_COMMAND": f"{sys.executable} {UPSTREAM_APP}",
        "UPSTREAM_PORT": str(free_port()),
        "UPSTREAM_HEALTH_PATH": "/health",
        "UPSTREAM_DIRS": "",
    }
    try:
        with LocalStack(env=env, managed_instances=max(args.levels), function_timeout=900).start(
            init_timeout=60
        ) as stack:
            over_http(direct_port, 4, 10, args.gap, args.ramp)  # warm both paths
            at_runtime_api(stack, 4, 10, args.gap, args.ramp)
            for streams in args.levels:
                runs = []
                for run_number in range(args.repeat):
                    print(
                        f"... {streams} concurrent streams, run {run_number + 1}",
                        file=sys.stderr,
                        flush=True,
                    )
                    runs.append(measure_level(stack, direct_port, streams, args))
                figures.update({k: statistics.median(r[k] for r in runs) for k in runs[0]})
            pid = stack.first.process.pid if stack.first.process else 0
            figures["runtime peak RSS over the run (MB)"] = runtime_rss(pid)[1]
            figures["environments used"] = float(len(stack.environments))
    finally:
        direct_process.terminate()
        direct_process.wait()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=150, help="events per stream")
    parser.add_argument("--gap", type=float, default=0.02, help="seconds between events")
    parser.add_argument(
        "--ramp", type=float, default=1.0, help="seconds over which the streams start"
    )
    parser.add_argument(
        "--levels", type=int, nargs="+", default=list(LEVELS), help="concurrent streams"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per level; figures are their medians"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    figures = run(args)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"\n{'figure':52} {'measured':>10} {'target':>8}")
    for name, value in figures.items():
        target = TARGETS.get(name)
        verdict = "" if target is None else ("ok" if value <= target else "MISSED")
        print(f"{name:52} {value:10.3f} {target if target is not None else '':>8} {verdict}")


if __name__ == "__main__":
    main()
