"""Benchmark: a resumable answer's tokens carried between two environments by the runtime.

The stand-in LibreChat (tests/runtime/librechat_app.py, as v0.8.7) shares its jobs through a
real redis-server; the chat POST is held by one emulated environment and the stream GET
served by another, through the emulated API Gateway, as on standard Lambda. Each token
carries the time the stand-in sent it; the client stamps when it read it. Prints figures,
asserts nothing:

- direct: the same stand-in's stream read in-process (its own port, no gateway, no runtime);
- relay, first answers and follow-ups (same conversation, same stream id): through the front,
  held on one environment and read from another, with the environments of each answer;
- relay less direct at p50 and p95: what the cross-environment path adds per token.

Only tokens sent after the reader was receiving count (the earlier ones are replayed, their
wait is the subscription's). On a busy shared machine every hop waits for a CPU: the direct
figures show the machine's own noise.

Run: ``uv run python bench/bench_relay.py [--answers 6 --tokens 100 --delay-ms 50]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / d) for d in ("tests/runtime", "runtime", ".")]
from redis_server import RedisServer  # noqa: E402
from test_readiness import librechat  # noqa: E402

from emulator import LocalStack  # noqa: E402
from emulator.http11 import free_port  # noqa: E402

NO_PARENT = "00000000-0000-0000-0000-000000000000"
HEADERS = {"Authorization": "Bearer bench-user", "User-Agent": "Mozilla/5.0 bench"}


def pct(values: list[float], q: int) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1]
        if len(values) > 1
        else values[0]
    )


def answer(
    base: str, conversation: str | None, tokens: int, delay_ms: int
) -> tuple[str, list[float]]:
    """POST a chat, read its stream; the conversation id and each live token's latency (ms)."""
    body = {"text": "hi", "parentMessageId": "m" if conversation else NO_PARENT}
    if conversation:
        body["conversationId"] = conversation
    params = {"tokens": tokens, "delay": delay_ms, "work": 0}
    started = httpx.post(f"{base}/api/agents/chat/openAI", params=params, json=body,
                         headers=HEADERS, timeout=60).json()  # fmt: skip
    stream_id = started["streamId"]
    latencies: list[float] = []
    receiving = None
    url = f"{base}/api/agents/chat/stream/{stream_id}"
    with httpx.stream("GET", url, headers=HEADERS, timeout=60) as response:
        for line in response.iter_lines():
            now = time.time()
            receiving = receiving or now
            if line.startswith("data: ") and "on_message_delta" in line:
                sent = json.loads(line[6:])["sentAt"]
                if sent >= receiving:
                    latencies.append((now - sent) * 1000)
    return stream_id, latencies


def baseline(env: dict[str, str], tokens: int, delay_ms: int) -> list[float]:
    """Two answers read from a stand-in of its own, in-process (Lambda freezes env 1's)."""
    port = free_port()
    child = dict(os.environ, **env, HOST="127.0.0.1", PORT=str(port))
    server = subprocess.Popen(shlex.split(env["UPSTREAM_COMMAND"]), env=child)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/health", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        return answer(base, None, tokens, delay_ms)[1] + answer(base, None, tokens, delay_ms)[1]
    finally:
        server.terminate()
        server.wait(5)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--answers", type=int, default=6, help="answers per conversation")
    p.add_argument("--tokens", type=int, default=100)
    p.add_argument("--delay-ms", type=int, default=50)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(Path(tmp) / "redis")
        try:
            env = librechat(Path(tmp) / "lc", "v0.8.7", STARTUP="0", TITLE_AFTER="0.1",
                            USE_REDIS="true", REDIS_URI=redis.url)  # fmt: skip
            with LocalStack(env=env, max_environments=3).start(init_timeout=60) as st:
                direct = baseline(env, args.tokens, args.delay_ms)
                first: list[float] = []
                follow: list[float] = []
                conversation = None
                for n in range(args.answers):
                    conversation, latencies = answer(st.url, conversation, args.tokens,
                                                     args.delay_ms)  # fmt: skip
                    (first if n == 0 else follow).extend(latencies)
                    time.sleep(0.3)
                posts = [i.environment for i in st.invocations if i.event["httpMethod"] == "POST"]
                gets = [i.environment for i in st.invocations if "/stream/" in i.event["path"]]
        finally:
            redis.stop()
    base50 = pct(direct, 50)
    pairs = ", ".join(f"{a}->{b}" for a, b in zip(posts, gets, strict=False))
    print(f"environments (POST->GET): {pairs}")
    for name, values in (("direct (in-process)", direct), ("relay: first answer", first),
                         ("relay: follow-ups", follow)):  # fmt: skip
        if not values:
            continue
        p50, p95 = pct(values, 50), pct(values, 95)
        print(
            f"{name:22} n={len(values):4}  p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  "
            f"less direct p50: p50 {p50 - base50:6.2f} ms  p95 {p95 - base50:6.2f} ms"
        )


if __name__ == "__main__":
    main()
