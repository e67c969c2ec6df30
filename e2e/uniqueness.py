"""SnapStart uniqueness proof: two environments restored from one snapshot state must draw
different values from every random source afterwards, and not values the snapshot held.

    python -m e2e.uniqueness --modules DIR/node_modules [--node NODE]

Two Node processes play two environments restored from one snapshot: e2e/snapstart_probe/
frozen_state.cjs makes every random source JavaScript can reach a function of one seed, so
both hold the same state (pools, caches, ObjectId's process value and counter), as clones of
one memory image do. The probe (snapstart_probe/probe.cjs) loads every copy of uuid, nanoid
and bson under DIR, uses them as a booting LibreChat does, and prints the next value of each
source after the "restore". Control run: no after-restore step, and the two processes print
the same values (the model shares state, so the check below can fail). Restore run: the
runtime's real preload runs before/after over its real hook channel (streaming_proxy.snapstart
.HookChannel), and every value must differ between the two processes and from the control's
(what the snapshot state would have produced next).

OpenSSL's own generator (TLS key shares, key generation) cannot be made deterministic from
JavaScript: `openssl_state` checks instead, with strace, that Node started with the SnapStart
OpenSSL config never seeds an OpenSSL DRBG (the getrandom call of 32+ bytes that seeding
makes), so OpenSSL holds no generator state a snapshot could copy.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "runtime"))
from streaming_proxy import snapstart

PROBE_DIR = Path(__file__).resolve().parent / "snapstart_probe"
SEED_LINE = re.compile(rb"getrandom\(.*, (\d+), ")


def environment(
    node: str, modules: Path, *, restore: bool, seed: str = "one-snapshot"
) -> dict[str, str]:
    """One restored environment: its next value per source (after the steps if `restore`)."""
    channel = snapstart.HookChannel()
    env = {
        **os.environ,
        "PROBE_MODULES": str(modules),
        "SNAPSIM_SEED": seed,
        **channel.upstream_env({}),
    }
    env.pop("NODE_OPTIONS")
    command = [node, f"--openssl-config={snapstart.OPENSSL_CONFIG}",
               "--require", str(PROBE_DIR / "frozen_state.cjs"),
               "--require", str(snapstart.PRELOAD), str(PROBE_DIR / "probe.cjs")]  # fmt: skip
    process = subprocess.Popen(
        command, env=env, pass_fds=(channel.child_fd,), stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    channel.spawned()
    try:
        assert process.stdout is not None and process.stdin is not None
        if process.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"the probe failed: {process.stderr.read().decode()[-2000:]}"
                               if process.stderr else "the probe failed")  # fmt: skip
        if restore:
            snapstart.before_snapshot(channel, timeout=30)
            snapstart.after_restore(channel, deadline=time.monotonic() + 10)
        process.stdin.write(b"go\n")
        process.stdin.flush()
        line = process.stdout.readline()
        process.wait(30)
        values: dict[str, str] = json.loads(line)
        return values
    finally:
        if process.poll() is None:
            process.kill()
        channel.close()


def prove(node: str, modules: Path) -> dict[str, Any]:
    """Per source: the control's two values (equal) and the two restored ones (different)."""
    control = [environment(node, modules, restore=False) for _ in range(2)]
    restored = [environment(node, modules, restore=True) for _ in range(2)]
    sources: dict[str, Any] = {}
    for name in control[0]:
        a, b = restored[0].get(name), restored[1].get(name)
        sources[name] = {
            "snapshot_shared": control[0][name] == control[1][name],
            "restored_differ": a is not None and a != b,
            "not_from_snapshot": a != control[0][name] and b != control[0][name],
            "control": control[0][name],
            "restored": [a, b],
        }
    return sources


def openssl_state(node: str) -> dict[str, Any]:
    """getrandom calls of Node with and without the SnapStart OpenSSL config, doing TLS-like
    work (key generation, random bytes, signing). Seeding an OpenSSL DRBG reads 32+ bytes."""
    script = (
        "const c=require('crypto');c.randomBytes(64);"
        "const k=c.generateKeyPairSync('ec',{namedCurve:'P-256'});"
        "c.sign('sha256',Buffer.from('x'),k.privateKey);c.generateKeyPairSync('x25519');"
        "c.createECDH('prime256v1').generateKeys();"
    )
    strace = shutil.which("strace")
    if strace is None:
        raise RuntimeError("strace is needed to watch OpenSSL's seeding (apt-get install strace)")
    out: dict[str, Any] = {}
    for label, extra in (
        ("default", []),
        ("snapstart", [f"--openssl-config={snapstart.OPENSSL_CONFIG}"]),
    ):
        done = subprocess.run(
            [strace, "-f", "-e", "trace=getrandom", node, *extra, "-e", script],
            capture_output=True, check=True, timeout=60,
        )  # fmt: skip
        sizes = [int(m.group(1)) for m in SEED_LINE.finditer(done.stderr)]
        out[label] = {"getrandom_sizes": sizes, "drbg_seeded": any(n >= 32 for n in sizes)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m e2e.uniqueness", description=__doc__.splitlines()[0]
    )
    p.add_argument("--modules", required=True, help="a node_modules directory (LibreChat's)")
    p.add_argument("--node", default="node")
    p.add_argument("--out", help="write the evidence as JSON here")
    args = p.parse_args(argv)
    sources = prove(args.node, Path(args.modules).resolve())
    openssl = openssl_state(args.node)
    version = subprocess.run(
        [args.node, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    failed = [
        name
        for name, s in sources.items()
        if not (s["snapshot_shared"] and s["restored_differ"] and s["not_from_snapshot"])
    ]
    if not openssl["default"]["drbg_seeded"] or openssl["snapstart"]["drbg_seeded"]:
        failed.append("OpenSSL generator")
    print(f"== SnapStart uniqueness, Node {version}, {args.modules}")
    for name, s in sources.items():
        verdict = "fresh" if name not in failed else "NOT FRESH"
        a, b = s["restored"]
        print(f"  [{verdict}] {name}: snapshot {s['control']} -> restored {a} / {b}")
    verdict = "NOT FRESH" if "OpenSSL generator" in failed else "fresh"
    print(
        f"  [{verdict}] OpenSSL generator: getrandom sizes with the default config "
        f"{openssl['default']['getrandom_sizes']}, with the SnapStart config "
        f"{openssl['snapstart']['getrandom_sizes']} (seeding a DRBG reads >= 32 bytes)"
    )
    if args.out:
        evidence = {"node": version, "sources": sources, "openssl": openssl}
        Path(args.out).write_text(json.dumps(evidence, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
