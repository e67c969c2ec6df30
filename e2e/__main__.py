"""`python -m e2e`: one cell of the supported-versions matrix against the real LibreChat.

    python -m e2e --librechat DIR --version v0.8.7 --mode standard|managed|snapstart [--no-browser]

DIR is a built LibreChat checkout of that version (api/server/index.js, client/dist). The run:
1. starts the backing services (MongoDB wire server, redis-server, the fake model);
2. boots LibreChat directly and measures boot time, first token and per-token latency;
3. starts the emulator (`python -m emulator`: API Gateway + Lambda) with the project's runtime
   serving LibreChat, in the given compute mode, and walks the user's journey through it;
4. drives LibreChat's own web client in headless Chromium through the same gateway;
5. prints the figures and writes everything under e2e/results/<version>-<mode>/.
Exit status 0 only if every step passed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "runtime"))
from streaming_proxy.readiness import librechat_version, startup_lines

from e2e.client import USER_AGENT, LibreChat
from e2e.scenario import PASSWORD, Journey, percentile, round_ms, token_latencies
from e2e.services import Services
from emulator.http11 import free_port

E2E_DIR = Path(__file__).resolve().parent
REPO_ROOT = E2E_DIR.parent
MODES = ("standard", "managed", "snapstart")
SNAPSHOTS = 4  # snapstart: environments snapshotted up front (two chats at once hold four)
FROZEN_FOR = 5.0  # snapstart: seconds between cutting the connections and the first request
ENVIRONMENTS = 8  # standard: environments Lambda may start; managed: invocations per environment
# standard: environments kept initialized (provisioned concurrency): two chats at once hold 4.
WARM_ENVIRONMENTS = 4
HTML_STARTS = ("<!doctype html", "<html")  # the web client's index.html, not a readiness answer
READY_LINE = re.compile(r"Local API Gateway ready \(init ([0-9.]+) s\)")


def mode_flags(mode: str) -> list[str]:
    """How a compute mode is emulated (`python -m emulator` flags). standard: Lambda as it is,
    each environment frozen whenever no invocation runs in it, and a request that finds every
    environment busy gets a new one. managed: Lambda Managed Instances, never frozen, several
    invocations at once in one environment."""
    if mode == "snapstart":  # every environment is restored from a snapshot by its first request
        return ["--snapstart", "--max-environments", str(SNAPSHOTS)]
    flag = "--managed-instances" if mode == "managed" else "--max-environments"
    return [flag, str(ENVIRONMENTS)]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    root = Path(args.librechat).resolve()
    problem = _check_checkout(root)
    if problem:
        print(f"e2e: {problem}", file=sys.stderr)
        return 2
    out = Path(args.results).resolve() / f"{args.version}-{args.mode}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    services = Services(out / "services", tokens=args.tokens, token_delay=args.token_delay)
    summary: dict[str, Any] = {"version": args.version, "mode": args.mode, "figures": {}}
    try:
        print(f"== LibreChat {args.version} directly (the baseline)", flush=True)
        summary["direct"] = direct_phase(root, services, out)
        print(f"== LibreChat {args.version} behind the emulator, {args.mode} mode", flush=True)
        baseline = percentile(summary["direct"].get("token_ms", []), 50)
        summary["front"] = front_phase(root, services, out, args, baseline)
    except Exception as exc:  # the summary still says how far the run got
        summary["aborted"] = f"{type(exc).__name__}: {exc}"
        print(f"e2e: run aborted: {summary['aborted']}", file=sys.stderr)
    finally:
        services.stop()
    summary["model_requests"] = services.llm.requests  # when LibreChat asked the model what
    summary["figures"] = figures(summary)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return report(summary, out)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m e2e", description=__doc__.splitlines()[0])
    p.add_argument("--librechat", required=True, help="a built LibreChat checkout")
    p.add_argument("--version", required=True, help="its release tag, e.g. v0.8.7")
    p.add_argument("--mode", choices=MODES, default="standard")
    p.add_argument("--results", default=str(E2E_DIR / "results"))
    p.add_argument("--no-browser", action="store_true", help="skip the web-client scenario")
    p.add_argument("--tokens", type=int, default=30, help="tokens per answer (default 30)")
    p.add_argument("--token-delay", type=float, default=0.05, help="seconds between tokens")
    p.add_argument(
        "--runtime-env",
        action="append",
        default=[],
        metavar="K=V",
        help="extra environment for the runtime (e.g. UPSTREAM_HEALTH_PATH=/readyz)",
    )
    return p


def _check_checkout(root: Path) -> str | None:
    for needed in ("api/server/index.js", "client/dist/index.html", "packages/api/dist"):
        if not (root / needed).exists():
            return (
                f"{root} is not a built LibreChat checkout ({needed} is missing); see "
                "docs/versions.md"
            )
    return None


# -- the baseline: LibreChat on its own ----------------------------------------------------------


def direct_phase(root: Path, services: Services, out: Path) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = os.environ | services.librechat_env(url, port)
    log = (out / "librechat-direct.log").open("wb")
    spawned = time.perf_counter()
    process = subprocess.Popen(
        ["node", "api/server/index.js"], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    result: dict[str, Any] = {}
    try:
        result["boot"] = wait_ready(url, process, spawned)
        result["boot"]["started_s"] = wait_started(root, out / "librechat-direct.log", spawned)
        print(f"  boot: {json.dumps(result['boot'])}", flush=True)
        client = LibreChat(url)
        journey = Journey(client, services.llm)
        journey.check("register", journey.register)
        journey.check("login", journey.login)
        for i in range(3):
            stream = journey.chat(f"direct {i}")
            journey.check(f"direct chat {i}", lambda s=stream: journey.streamed(s))
        result["steps"] = [vars(s) for s in journey.steps]
        result["first_token_ms"] = [s.first_token_ms for s in journey.streams]
        result["token_ms"] = token_latencies(journey.streams, services.llm)
        result["requests"] = client.log
        client.close()
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
    return result


def wait_ready(url: str, process: subprocess.Popen[bytes], spawned: float) -> dict[str, Any]:
    """Seconds from spawn to /health 200 and to /readyz 200, the latter only where /readyz
    is a readiness endpoint (older releases answer it with the web client's index.html)."""
    found: dict[str, Any] = {"health_s": None, "readyz_s": None, "readyz": "absent"}
    deadline = spawned + 120
    with httpx.Client(timeout=2) as http:
        while time.perf_counter() < deadline and process.poll() is None:
            for path, key in (("/health", "health_s"), ("/readyz", "readyz_s")):
                if found[key] is not None:
                    continue
                try:
                    r = http.get(url + path)
                except httpx.HTTPError:
                    continue
                if path == "/readyz" and r.text.lstrip().lower().startswith(HTML_STARTS):
                    found["readyz"] = "answers with index.html (no readiness endpoint)"
                    found["readyz_s"] = -1.0
                elif r.status_code == 200:
                    found[key] = round(time.perf_counter() - spawned, 3)
                    if path == "/readyz":
                        found["readyz"] = "readiness endpoint"
            if found["health_s"] is not None and found["readyz_s"] is not None:
                break
            time.sleep(0.02)
    if found["readyz_s"] == -1.0:
        found["readyz_s"] = None
    if process.poll() is not None:
        raise RuntimeError(f"LibreChat exited with status {process.returncode} while booting")
    if found["health_s"] is None:
        raise RuntimeError("LibreChat did not answer /health 200 within 120 s")
    return found


def wait_started(root: Path, log: Path, spawned: float, timeout: float = 180.0) -> float | None:
    """Seconds from spawn to the end of LibreChat's post-listen start-up, by the runtime's own
    rule (the baseline must not race it: v0.8.2 loses a chat job started before its job store
    is configured)."""
    lines = startup_lines(librechat_version(["node", str(root / "api/server/index.js")]))
    if not lines:
        return None  # /readyz (or nothing) says when it is ready
    deadline = spawned + timeout
    while time.perf_counter() < deadline:
        text = log.read_text(errors="replace")
        if any(line in text for line in lines):
            return round(time.perf_counter() - spawned, 3)
        time.sleep(0.05)
    raise RuntimeError(f"LibreChat did not log the end of its start-up ({lines}) in {timeout} s")


# -- behind the emulated API Gateway and Lambda ------------------------------------------------


class Emulator:
    """`python -m emulator` as a user runs it, with LibreChat as the upstream."""

    def __init__(self, root: Path, services: Services, out: Path, mode: str,
                 runtime_env: list[str]) -> None:  # fmt: skip
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        upstream = shlex.join(["node", str(root / "api/server/index.js")])
        cmd = [sys.executable, "-m", "emulator", "--port", str(self.port),
               "--upstream-command", upstream, *mode_flags(mode)]  # fmt: skip
        for pair in runtime_env:
            cmd += ["--env", pair]
        # LibreChat's settings (secrets among them) travel in the environment, not argv.
        env = os.environ | services.librechat_env(self.url)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        self.log_path = out / "emulator.log"
        self._log: IO[str] = self.log_path.open("w")
        self.lines: list[str] = []
        self._ready = threading.Event()
        self.init_s: float | None = None
        self.started = time.perf_counter()
        self._log.write("$ " + shlex.join(cmd) + "\n")
        self.process = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            stamp = f"{time.perf_counter() - self.started:9.3f} "
            self._log.write(stamp + line)
            self._log.flush()
            self.lines.append(line.rstrip("\n"))
            match = READY_LINE.search(line)
            if match:
                self.init_s = float(match.group(1))
                self._ready.set()
        self._ready.set()

    def wait_ready(self, timeout: float = 180) -> None:
        if not self._ready.wait(timeout) or self.init_s is None:
            tail = "\n".join(self.lines[-15:])
            raise RuntimeError(f"the emulator did not get ready within {timeout:g} s:\n{tail}")

    def lines_with(self, text: str) -> list[str]:
        return [line for line in self.lines if text in line]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(2)  # SIGINT: the emulator stops the runtime and LibreChat
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._reader.join(5)
        self._log.close()


def front_phase(
    root: Path,
    services: Services,
    out: Path,
    args: argparse.Namespace,
    baseline_ms: float | None = None,
) -> dict[str, Any]:
    emulator = Emulator(root, services, out, args.mode, args.runtime_env)
    result: dict[str, Any] = {}
    try:
        emulator.wait_ready()
        result["init_s"] = emulator.init_s
        if args.mode == "snapstart":
            result["snapstart"] = restore_phase(emulator, services)
        result["cold_start_s"] = first_answer(emulator)
        print(
            f"  emulator ready: init {emulator.init_s} s, first /health 200 through the gateway "
            f"{result['cold_start_s']} s after spawn",
            flush=True,
        )
        if args.mode == "standard":
            result["warm_environments_cold_s"] = provision(emulator, WARM_ENVIRONMENTS)
            print(
                f"  {WARM_ENVIRONMENTS} environments warm (provisioned concurrency); the new "
                f"ones answered their first request after {result['warm_environments_cold_s']} s",
                flush=True,
            )
        result["warm_health_ms"] = warm_health(emulator.url)
        client = LibreChat(emulator.url)
        journey = Journey(
            client,
            services.llm,
            lines=emulator.lines,
            baseline_ms=baseline_ms,
            across_environments=args.mode != "managed",
        )
        journey.run()
        result["cells"] = journey.cells()  # the relay per answer kind and direction
        result["steps"] = [vars(s) for s in journey.steps]
        result["first_token_ms"] = [s.first_token_ms for s in journey.streams]
        result["token_ms"] = token_latencies(journey.streams, services.llm)
        result["requests"] = client.log
        client.close()
        if not args.no_browser:
            result["browser"] = browser_phase(emulator.url, out)
        result["holds"] = emulator.lines_with("background hold")
    finally:
        emulator.stop()
    return result


def restore_phase(emulator: Emulator, services: Services) -> dict[str, Any]:
    """SnapStart as Lambda runs it: every environment inited and snapshotted (frozen); every
    MongoDB and Redis connection cut while frozen; time passes; then a request restores the
    first environment (restore to first byte), a user logs in there, and the first chat's
    stream restores the second one (time to first token of the first chat after restore)."""
    deadline = time.monotonic() + 300
    while len(emulator.lines_with("snapshot taken")) < SNAPSHOTS:
        if time.monotonic() > deadline or emulator.process.poll() is not None:
            raise RuntimeError(f"the emulator did not snapshot {SNAPSHOTS} environments")
        time.sleep(0.1)
    result: dict[str, Any] = {
        "snapshots": emulator.lines_with("snapshot taken"),
        "mongo_connections_cut": services.mongo.drop_connections(),
        "redis_clients_killed": services.redis.kill_clients(),
    }
    print(f"  {SNAPSHOTS} snapshots taken; cut {result['mongo_connections_cut']} MongoDB "
          f"connections and {result['redis_clients_killed']} Redis clients; frozen "
          f"{FROZEN_FOR:g} s", flush=True)  # fmt: skip
    time.sleep(FROZEN_FOR)
    with httpx.Client(timeout=60, headers={"User-Agent": USER_AGENT}) as http:
        started = time.perf_counter()
        with http.stream("GET", emulator.url + "/health") as r:
            next(r.iter_raw(), b"")
            result["restore_first_byte_ms"] = round((time.perf_counter() - started) * 1000, 1)
            result["restore_status"] = r.status_code
    client = LibreChat(emulator.url)
    journey = Journey(client, services.llm)
    journey.check("register after restore", journey.register)
    journey.check("login after restore", journey.login)
    stream = journey.chat("first chat after restore")
    journey.check("first chat after restore", lambda: journey.streamed(stream))
    result["first_chat_first_token_ms"] = stream.first_token_ms
    result["steps"] = [vars(s) for s in journey.steps]
    result["restores"] = emulator.lines_with("restored; the runtime asked")
    result["after_restore"] = emulator.lines_with("after-restore done")
    client.close()
    print(f"  restore to first byte {result['restore_first_byte_ms']} ms; first chat after "
          f"restore: first token {result['first_chat_first_token_ms']} ms", flush=True)  # fmt: skip
    return result


def provision(emulator: Emulator, n: int) -> list[float]:
    """Bring up n environments before the journey, as `function.provisionedConcurrency` does
    on AWS: on standard Lambda each resumable chat occupies two environments while it streams
    (the held POST, the stream GET), and a cold one boots for longer than a short answer
    takes. The emulator starts an environment for a request that finds every one busy for over
    a second, so warm-up users keep the running ones busy with title requests for a
    conversation that has none (each waits 15-20 s for it) while a /health lands on the new
    one and returns once that is ready. Returns each new environment's cold start in seconds,
    as its first caller saw it."""
    stop = threading.Event()
    loops: list[threading.Thread] = []
    cold: list[float] = []
    missing = str(uuid.uuid4())

    def keep_busy() -> None:
        warm = LibreChat(emulator.url)
        email = f"e2e-warmup-{uuid.uuid4().hex[:8]}@example.com"
        warm.register(email, PASSWORD)
        warm.login(email, PASSWORD)
        while not stop.is_set():  # GET from v0.8.2; v0.8.2-rc1 has the POST (the other 404s)
            warm.request("GET", f"/api/convos/gen_title/{missing}")
            warm.request("POST", "/api/convos/gen_title", json={"conversationId": missing})
        warm.close()

    try:
        with httpx.Client(timeout=120, headers={"User-Agent": USER_AGENT}) as http:
            for k in range(2, n + 1):
                loops.append(threading.Thread(target=keep_busy, daemon=True))
                loops[-1].start()
                for _ in range(5):
                    time.sleep(1.0)
                    started = time.perf_counter()
                    http.get(emulator.url + "/health")
                    if emulator.lines_with(f"starting environment {k} "):
                        cold.append(round(time.perf_counter() - started, 3))
                        break
                else:
                    raise RuntimeError(f"the emulator did not start environment {k}")
    finally:
        stop.set()
        for loop in loops:
            loop.join(60)
    return cold


def first_answer(emulator: Emulator) -> float | None:
    """Seconds from the emulator's start to the first /health 200 through the gateway: the
    cold start a user sees (init, plus any start-up the first invocation waits for)."""
    with httpx.Client(timeout=120, headers={"User-Agent": USER_AGENT}) as http:
        r = http.get(emulator.url + "/health")
    if r.status_code != 200:
        return None
    return round(time.perf_counter() - emulator.started, 3)


def warm_health(url: str, n: int = 20) -> float | None:
    times = []
    with httpx.Client(timeout=10, headers={"User-Agent": USER_AGENT}) as http:
        for _ in range(n):
            started = time.perf_counter()
            r = http.get(url + "/health")
            if r.status_code == 200:
                times.append((time.perf_counter() - started) * 1000)
    return percentile(times, 50)


def browser_phase(url: str, out: Path) -> dict[str, Any]:
    """LibreChat's own web client in headless Chromium (e2e/browser.mjs)."""
    print("== LibreChat's web client in headless Chromium", flush=True)
    email = f"e2e-browser-{uuid.uuid4().hex[:8]}@example.com"
    client = LibreChat(url)
    try:
        registered = client.register(email, PASSWORD)
    except httpx.HTTPError as exc:
        return {"ok": False, "detail": f"register: {type(exc).__name__}"}
    finally:
        client.close()
    if registered.status_code not in (200, 201):
        return {"ok": False, "detail": f"register -> {registered.status_code}"}
    cmd = ["node", str(E2E_DIR / "browser.mjs"), "--url", url, "--email", email,
           "--out", str(out)]  # fmt: skip
    env = os.environ | {"E2E_PASSWORD": PASSWORD}
    try:
        done = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=240, check=False
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "detail": "the browser scenario did not finish within 240 s"}
    (out / "browser.log").write_text(done.stderr)
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {
            "ok": False,
            "detail": f"browser.mjs exited {done.returncode}: {done.stderr[-500:]}",
        }
    print(
        f"  [{'PASS' if result.get('ok') else 'FAIL'}] browser: {result.get('detail')}", flush=True
    )
    return result


# -- the report ----------------------------------------------------------------------------------


def figures(summary: dict[str, Any]) -> dict[str, Any]:
    direct, front = summary.get("direct", {}), summary.get("front", {})
    d_tokens, f_tokens = direct.get("token_ms", []), front.get("token_ms", [])
    d_p50, f_p50 = percentile(d_tokens, 50), percentile(f_tokens, 50)
    # Warm first tokens: the first chat of a process pays for loading code paths once.
    firsts = [v for v in front.get("first_token_ms", [])[1:2] if v is not None]
    d_firsts = [v for v in direct.get("first_token_ms", [])[1:] if v is not None]
    return {
        "boot_health_s": (direct.get("boot") or {}).get("health_s"),
        "boot_readyz_s": (direct.get("boot") or {}).get("readyz_s"),
        "boot_startup_line_s": (direct.get("boot") or {}).get("started_s"),
        "init_s": front.get("init_s"),
        "cold_start_s": front.get("cold_start_s"),
        "warm_health_ms": round_ms(front.get("warm_health_ms")),
        "first_token_ms_front": round_ms(percentile(firsts, 50)),
        "first_token_ms_direct": round_ms(percentile(d_firsts, 50)),
        "token_ms_p50_direct": round_ms(d_p50),
        "token_ms_p50_front": round_ms(f_p50),
        "relay_ms_p50": round_ms(f_p50 - d_p50)
        if d_p50 is not None and f_p50 is not None
        else None,
        "token_ms_p90_front": round_ms(percentile(f_tokens, 90)),
        "relay_ms_p95": round_ms(percentile(f_tokens, 95) - d_p50)
        if d_p50 is not None and f_tokens
        else None,
        "restore_first_byte_ms": (front.get("snapstart") or {}).get("restore_first_byte_ms"),
        "first_chat_after_restore_first_token_ms": round_ms(
            (front.get("snapstart") or {}).get("first_chat_first_token_ms")
        ),
    }


def report(summary: dict[str, Any], out: Path) -> int:
    steps = summary.get("front", {}).get("steps", [])
    steps = [*summary.get("front", {}).get("snapstart", {}).get("steps", []), *steps]
    browser = summary.get("front", {}).get("browser")
    failed = [s["name"] for s in steps if not s["ok"]]
    passed = len(steps) - len(failed)
    if browser is not None and not browser.get("ok"):
        failed.append("browser")
    line = f"== {summary['version']} {summary['mode']}: {passed}/{len(steps)} steps passed"
    if browser is not None:
        line += f", browser {'passed' if browser.get('ok') else 'FAILED'}"
    print(line)
    for key, value in summary["figures"].items():
        print(f"  {key:24} {value}")
    for name, cell in summary.get("front", {}).get("cells", {}).items():
        print(f"  relay {name:30} {json.dumps(cell)}")
    print(f"  results: {out}")
    if summary.get("aborted"):
        failed.append(f"aborted ({summary['aborted']})")
    if failed:
        print("  FAILED: " + "; ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
