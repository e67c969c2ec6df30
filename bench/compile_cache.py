"""Cold start of the real LibreChat with and without the image's baked compile cache.

    PATH=/work/node24/bin:$PATH uv run --frozen --group e2e python -m bench.compile_cache \
        --librechat ../lcbuild/v0.8.7 [--runs 5]

1. Fills a cache the way the image build does (runtime/fill-compile-cache.sh: LibreChat's
   start-up graph, with no database reachable), with the `node` on PATH (the image runs Node
   24.16 from LibreChat v0.8.7 on).
2. Boots LibreChat against the end-to-end suite's services (MongoDB wire server, redis-server, the
   fake model) and times spawn -> `/health` 200 and -> `/readyz` 200, alternating two variants:
   `none` (no compile cache) and `baked` (the cache through runtime/preload/compile-cache.cjs, as
   the image runs it: a fresh temporary directory per start, the cache read-only; a read-only
   bind mount when run as root with `unshare`, as Lambda's file system is).
3. Prints each variant's median and range, with LibreChat's CPU time until ready (on a busy
   machine the steadier figure), and what copying the cache into /tmp would add.

Prints figures and asserts nothing (docs/decisions.md quotes them).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from e2e.__main__ import wait_ready
from e2e.services import Services
from emulator.http11 import free_port

ROOT = Path(__file__).resolve().parent.parent
FILL = ROOT / "runtime" / "fill-compile-cache.sh"
PRELOAD = ROOT / "runtime" / "preload" / "compile-cache.cjs"
#: A private mount namespace in which the cache directory ($0) is remounted read-only.
READ_ONLY = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'


def fill(librechat: Path, cache: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["sh", str(FILL), str(librechat / "api"), str(cache)], check=True)
    return time.perf_counter() - started


def read_only_prefix(cache: Path) -> list[str]:
    """How to run a command with `cache` read-only: a bind mount as root, else file modes."""
    if os.geteuid() == 0 and shutil.which("unshare"):
        return ["unshare", "-m", "sh", "-c", READ_ONLY, str(cache)]
    subprocess.run(["chmod", "-R", "a-w", str(cache)], check=True)
    return []


def boot(
    librechat: Path, services: Services, variant: str, cache: Path, log: Path
) -> dict[str, Any]:
    """One cold start: spawn to /health and /readyz, then stop LibreChat."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = os.environ | services.librechat_env(url, port)
    prefix: list[str] = []
    with tempfile.TemporaryDirectory(prefix="lambda-tmp-") as tmp:
        if variant == "baked":
            env |= {
                "NODE_OPTIONS": f"--require {PRELOAD}",
                "NODE_COMPILE_CACHE_BAKED": str(cache),
                "TMPDIR": tmp,
            }
            prefix = read_only_prefix(cache)
        with log.open("ab") as out:
            spawned = time.perf_counter()
            process = subprocess.Popen(
                [*prefix, "node", "api/server/index.js"],
                cwd=librechat,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            try:
                found = wait_ready(url, process, spawned)
                found["cpu_s"] = cpu_seconds(process.pid)
                return found
            finally:
                process.terminate()
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used: on a busy machine the wall-clock boot time
    mostly measures the neighbours, its CPU time the work the cache saves."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def copy_seconds(cache: Path) -> float:
    """What copying the baked cache into a fresh /tmp at every cold start would cost."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        shutil.copytree(cache, Path(tmp) / "copy", symlinks=True)
        return time.perf_counter() - started


def summary(values: list[float]) -> str:
    if not values:
        return "no value"
    return (
        f"median {statistics.median(values):.2f} s "
        f"(min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--librechat", type=Path, required=True, help="a built LibreChat checkout")
    parser.add_argument("--runs", type=int, default=5, help="cold starts per variant")
    args = parser.parse_args()
    librechat = args.librechat.resolve()
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)
    load = os.getloadavg()[0]  # a busy machine slows both variants; the pairs stay comparable
    work = Path(tempfile.mkdtemp(prefix="compile-cache-bench-"))
    cache = work / "node-compile-cache"
    services = Services(work / "services")
    try:
        fill_s = fill(librechat, cache)
        files = [p for p in cache.rglob("*") if p.is_file()]
        size_mb = sum(p.stat().st_size for p in files) / 1e6
        print(f"node {node.stdout.strip()}, LibreChat {librechat.name}")
        print(f"fill (image build step): {fill_s:.1f} s, {len(files)} modules, {size_mb:.0f} MB")
        print(f"copying the cache into /tmp would add {copy_seconds(cache):.2f} s per cold start")
        results: dict[str, dict[str, list[float]]] = {
            v: {"health_s": [], "readyz_s": [], "cpu_s": []} for v in ("none", "baked")
        }
        boot(librechat, services, "none", cache, work / "warm-up.log")  # page cache, DB seed
        for run in range(args.runs):
            order = ("none", "baked") if run % 2 == 0 else ("baked", "none")
            for variant in order:
                found = boot(librechat, services, variant, cache, work / f"{variant}.log")
                print(
                    f"  run {run + 1} {variant}: /health {found['health_s']} s, /readyz "
                    f"{found['readyz_s']} s, CPU {found['cpu_s']:.2f} s",
                    flush=True,
                )
                for key in ("health_s", "readyz_s", "cpu_s"):
                    if found[key] is not None:
                        results[variant][key].append(found[key])
        print(f"load average at the end: {os.getloadavg()[0]:.1f} (at the start: {load:.1f})")
        for variant, figures in results.items():
            print(f"{variant:>5}: spawn -> /health {summary(figures['health_s'])}")
            print(f"{'':>5}  spawn -> /readyz {summary(figures['readyz_s'])}")
            print(f"{'':>5}  CPU until ready  {summary(figures['cpu_s'])}")
    finally:
        services.stop()
        subprocess.run(["chmod", "-R", "u+w", str(work)], check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
