"""Two restores in a row from one snapshot state of the real LibreChat, with CRIU standing in
for Lambda's microVM snapshot.

    uv run --frozen --group e2e python -m e2e.criu_restores --librechat ../lcbuild/v0.8.7 \
        --version v0.8.7 --criu /path/to/criu

Why: the emulator's SnapStart mode freezes a process tree (SIGSTOP) and thaws it once, so one
snapshot state is never restored twice, and the uniqueness evidence (e2e/uniqueness.py) is a
two-process model of plain Node. Here one booted LibreChat is checkpointed with CRIU
(`criu dump` kills it) and the same image directory is restored twice, one restore after the
other, as two Lambda environments restored from one snapshot would be. Per restore: restore
command start to the first byte of `GET /health` (after the after-restore step), and the first
token of a chat by a user who logs in afresh. Uniqueness is judged on values LibreChat itself
produced after each restore (the new conversation's and answer's ids, a share link's nanoid,
the ObjectIds of the documents it saved, read from the MongoDB wire server). Two control
images, each restored twice without either SnapStart step, show values repeat there, so the
check can fail: `control` starts LibreChat as snap-start mode does, `bare` as on-demand mode
does (no preload, no OpenSSL config). Exit status 0 only if every step passed and every
source differed between the two restores with the steps.

The checkpointed tree is a small holder process (this module with --hold, standing in for
the runtime) and LibreChat, its child: the holder makes the runtime's HookChannel socketpair
(streaming_proxy.snapstart, the runtime's own code) and starts Node exactly as the runtime
does in snap-start mode (the preload and the OpenSSL config in NODE_OPTIONS, SNAPSTART_HOOK_FD).
Both ends of the channel are inside the image, as the runtime and LibreChat are both inside a
Lambda snapshot; the driver reaches the holder over a loopback listening socket (restored
with the image) and asks it for the before and after steps. CRIU cannot dump io_uring, and
Node 24's libuv sets up io_uring rings even with UV_USE_IO_URING=0, so the holder starts Node
under a seccomp filter that fails io_uring_setup with ENOSYS (libuv then uses epoll and its
thread pool). LibreChat's stdout goes to a file, which CRIU checks by size at restore, so the
file as it was at dump time is put back before each restore. Dump and restore use --tcp-close:
established TCP connections are not kept (Lambda keeps none across a snapshot either), so the
control's open MongoDB and Redis connections come back closed and the drivers reconnect.

CRIU: built from source, tag v4.2 (commit 3c7d4fa013297b431da48eff821db7f2e8b90c27, from
github checkpoint-restore/criu), outside this repository, with `make -j2 criu` (no docs), on the
Debian 12 packages libprotobuf-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
python3-protobuf libnl-3-dev libcap-dev libnet1-dev libgnutls28-dev libnftables-dev
pkg-config libbsd-dev uuid-dev libdrm-dev. Debian's criu 3.17.1 fails `criu check` on kernel
6.18 ("vdso: Unexpected rt vDSO area bounds"). Run as root.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "runtime"))
import bson
import httpx
from streaming_proxy import snapstart

from e2e.__main__ import wait_ready, wait_started
from e2e.client import USER_AGENT, LibreChat
from e2e.scenario import Journey, round_ms
from e2e.services import Services
from emulator.http11 import free_port
from emulator.sandbox import process_state

E2E_DIR = Path(__file__).resolve().parent
REPO_ROOT = E2E_DIR.parent
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
BPF_LD_W_ABS, BPF_JEQ_K, BPF_RET_K = 0x20, 0x15, 0x06
AUDIT_ARCH_X86_64, NR_IO_URING_SETUP = 0xC000003E, 425
SECCOMP_RET_ERRNO, SECCOMP_RET_ALLOW = 0x00050000, 0x7FFF0000
LIBRECHAT_DB = "LibreChat"
PAIRS = {  # one image each, restored twice
    "snapstart": "started as in snap-start mode; before step, dump, restore + after step (x2)",
    "control": "started as in snap-start mode; dump, restore (x2): no SnapStart step",
    "bare": "started as on demand (no preload, no OpenSSL config); dump, restore (x2)",
}


# -- the holder: the runtime's side of the hook channel, inside the checkpointed tree ----------


def hold(port: int, command: list[str], bare: bool = False) -> int:
    """Start LibreChat as the runtime does in snap-start mode (`bare`: as it does on demand,
    without the preload and its OpenSSL config) and serve the driver's requests (one JSON line
    per connection) on 127.0.0.1:port until LibreChat exits or `stop`."""
    channel = snapstart.HookChannel()
    env = dict(os.environ) if bare else os.environ | channel.upstream_env(os.environ)
    node = subprocess.Popen(
        command,
        env=env,
        pass_fds=() if bare else (channel.child_fd,),
        preexec_fn=refuse_io_uring,  # noqa: PLW1509 (no threads yet)
    )
    channel.spawned()
    listener = socket.create_server(("127.0.0.1", port))
    listener.settimeout(0.2)
    while node.poll() is None:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        with conn:
            conn.settimeout(60)
            request = json.loads(conn.makefile("rb").readline() or b"{}")
            answer = _hold_step(str(request.get("step")), channel, node)
            conn.sendall(json.dumps(answer).encode() + b"\n")
        if request.get("step") == "stop":
            break
    if node.poll() is None:
        node.kill()
    node.wait()
    return 0


def refuse_io_uring() -> None:
    """A seccomp filter that fails io_uring_setup with ENOSYS, as a kernel without io_uring
    would, so libuv falls back to epoll and thread-pool file I/O: CRIU cannot dump an io_uring
    instance, and Node 24's libuv (1.52) sets up its rings whatever UV_USE_IO_URING says."""
    program = [
        (BPF_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        (BPF_JEQ_K, 0, 3, AUDIT_ARCH_X86_64),
        (BPF_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
        (BPF_JEQ_K, 0, 1, NR_IO_URING_SETUP),
        (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.ENOSYS),
        (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
    ]
    code = ctypes.create_string_buffer(b"".join(struct.pack("<HBBI", *op) for op in program))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(program), ctypes.addressof(code))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


def _hold_step(
    step: str, channel: snapstart.HookChannel, node: subprocess.Popen[bytes]
) -> dict[str, Any]:
    try:
        if step == "before":
            return snapstart.before_snapshot(channel)
        if step == "after":
            deadline = time.monotonic() + snapstart.RESTORE_BUDGET - snapstart.RESTORE_MARGIN
            return snapstart.after_restore(channel, deadline)
        if step == "pid":
            return {"ok": True, "holder": os.getpid(), "node": node.pid}
        if step == "stop":
            node.kill()
            node.wait()
            return {"ok": True}
    except snapstart.HookFailed as exc:
        return {"ok": False, "error": exc.message}
    return {"ok": False, "error": f"unknown step {step!r}"}


def ask(port: int, step: str, timeout: float = 90.0) -> dict[str, Any]:
    """One request to the holder."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(json.dumps({"step": step}).encode() + b"\n")
        line = s.makefile("rb").readline()
    answer: dict[str, Any] = json.loads(line)
    if not answer.get("ok"):
        raise RuntimeError(f"holder step {step}: {answer.get('error')}")
    return answer


# -- the driver ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--hold"]:  # --hold PORT [--bare] -- COMMAND...
        rest = argv[2:]
        bare = rest[:1] == ["--bare"]
        rest = rest[1:] if bare else rest
        return hold(int(argv[1]), rest[1:] if rest[:1] == ["--"] else rest, bare)
    args = _parser().parse_args(argv)
    # Orphans of the checkpointed tree (LibreChat when criu kills the holder first) come to us
    # to be reaped, so their PIDs are free for the restores.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    root = Path(args.librechat).resolve()
    out = Path(args.results).resolve() / f"criu-{args.version}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    criu_version = subprocess.run(
        [args.criu, "--version"], capture_output=True, text=True, check=False
    ).stdout.split()
    summary: dict[str, Any] = {
        "version": args.version,
        "criu": " ".join(criu_version),
        "node": subprocess.run(
            ["node", "--version"], capture_output=True, text=True, check=False
        ).stdout.strip(),
    }
    services = Services(out / "services")
    try:
        for label, what in PAIRS.items():
            if label != "snapstart" and args.no_control:
                continue
            print(f"== {args.version}: {label} image: {what}", flush=True)
            summary[label] = Pair(args, root, services, out / label, label).run()
    except Exception as exc:  # the summary still says how far the run got
        summary["aborted"] = f"{type(exc).__name__}: {exc}"
        print(f"criu_restores: aborted: {summary['aborted']}", file=sys.stderr, flush=True)
    finally:
        services.stop()
    summary["uniqueness"] = uniqueness(summary)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return report(summary, out)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m e2e.criu_restores", description=__doc__.splitlines()[0]
    )
    p.add_argument("--librechat", required=True, help="a built LibreChat checkout")
    p.add_argument("--version", required=True, help="its release tag, e.g. v0.8.7")
    p.add_argument("--criu", default="criu", help="the criu binary (4.x)")
    p.add_argument("--results", default=str(E2E_DIR / "results"))
    images = "/dev/shm/criu-restores"  # noqa: S108 (memory, not disk: the restore reads it)
    p.add_argument("--images", default=images, help="where the images go")
    p.add_argument("--no-control", action="store_true", help="skip the control image")
    return p


class Pair:
    """One LibreChat booted, checkpointed into one image, and restored from it twice."""

    def __init__(
        self, args: argparse.Namespace, root: Path, services: Any, out: Path, label: str
    ) -> None:
        self.args, self.root, self.services, self.out = args, root, services, out
        self.hooks = label == "snapstart"  # the before and after steps
        self.bare = label == "bare"  # LibreChat without the preload and its OpenSSL config
        self.out.mkdir(parents=True)
        self.images = Path(args.images) / f"{args.version}-{out.name}"
        shutil.rmtree(self.images, ignore_errors=True)
        self.images.mkdir(parents=True)
        self.port, self.control_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.out / "librechat.log"
        self.node_pid = 0

    def run(self) -> dict[str, Any]:
        result: dict[str, Any] = {"hooks": self.hooks, "preload": not self.bare}
        try:
            result["boot"], result["user"] = self.boot()
            result["dump"] = self.dump()
        except BaseException:  # a failed dump leaves the tree running: it must not outlive us
            holder: subprocess.Popen[bytes] | None = getattr(self, "holder", None)
            if holder is not None and holder.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(holder.pid, signal.SIGKILL)
                holder.wait(30)
                _reap(self.node_pid)
            raise
        result["restores"] = []
        for n in (1, 2):
            restore = self.restore(n, result["user"])
            result["restores"].append(restore)
            print(f"  restore {n}: {json.dumps(_headline(restore))}", flush=True)
        shutil.rmtree(self.images, ignore_errors=True)  # hundreds of MB in memory
        return result

    def boot(self) -> tuple[dict[str, Any], dict[str, Any]]:
        env = os.environ | self.services.librechat_env(self.url, self.port)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        bare = ["--bare"] if self.bare else []
        command = [sys.executable, "-m", "e2e.criu_restores", "--hold", str(self.control_port),
                   *bare, "--", "node", "api/server/index.js"]  # fmt: skip
        # O_APPEND: each restore writes on at the end of the dump-time log, put back before it.
        log = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        spawned = time.perf_counter()
        self.holder = subprocess.Popen(
            command, cwd=self.root, env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        os.close(log)
        boot = wait_ready(self.url, self.holder, spawned)
        boot["started_s"] = wait_started(self.root, self.log, spawned)
        print(f"  boot: {json.dumps(boot)}", flush=True)
        client = LibreChat(self.url)
        journey = Journey(client, self.services.llm)
        if not (
            journey.check("register", journey.register) and journey.check("login", journey.login)
        ):
            raise RuntimeError(f"register/login before the snapshot failed: {journey.steps}")
        user = {"email": journey.email, "token": client.token}
        client.close()
        if self.hooks:
            boot["before"] = ask(self.control_port, "before")
            print(f"  before-snapshot step: {json.dumps(boot['before'])}", flush=True)
        pids = ask(self.control_port, "pid")
        self.node_pid = int(pids["node"])
        boot["pids"] = pids
        return boot, user

    def dump(self) -> dict[str, Any]:
        cmd = [self.args.criu, "dump", "-t", str(self.holder.pid), "-D", str(self.images),
               "-W", str(self.out), "-o", "dump.log", "-v4", "--tcp-close"]  # fmt: skip
        started = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        took = round((time.perf_counter() - started) * 1000, 1)
        if done.returncode != 0:
            raise RuntimeError(
                f"criu dump failed ({done.returncode}):\n{_errors(self.out / 'dump.log')}"
            )
        self.holder.wait(30)
        _reap(self.node_pid)
        shutil.copyfile(self.log, self.out / "librechat.at-dump.log")
        size = sum(f.stat().st_size for f in self.images.iterdir())
        result = {"ms": took, "images_mb": round(size / 2**20, 1), "cmd": cmd}
        if not self.hooks:  # connections open at dump: the peers drop them, as a network would
            result["mongo_connections_cut"] = self.services.mongo.drop_connections()
            result["redis_clients_killed"] = self.services.redis.kill_clients()
        print(f"  dump: {took} ms, {result['images_mb']} MB of images", flush=True)
        return result

    def restore(self, n: int, user: dict[str, Any]) -> dict[str, Any]:
        shutil.copyfile(self.out / "librechat.at-dump.log", self.log)
        before = self._object_ids()
        cmd = [self.args.criu, "restore", "-D", str(self.images), "-W", str(self.out),
               "-o", f"restore-{n}.log", "-v4", "--tcp-close"]  # fmt: skip
        result: dict[str, Any] = {"n": n}
        started = time.perf_counter()
        criu = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            self._wait_restored(criu, started, self.out / f"restore-{n}.log")
            # The kernel accepts on a restored listening socket before the tasks run again,
            # so this is when the holder's socket was back, not when the restore was done.
            result["listener_back_ms"] = _ms(started)
            if self.hooks:
                result["after"] = ask(self.control_port, "after")
                result["after_done_ms"] = _ms(started)
            with (
                httpx.Client(timeout=60, headers={"User-Agent": USER_AGENT}) as http,
                http.stream("GET", self.url + "/health") as r,
            ):
                next(r.iter_raw(), b"")
                result["first_byte_ms"] = _ms(started)
                result["health_status"] = r.status_code
            client = LibreChat(self.url)
            journey = Journey(client, self.services.llm, email=user["email"])
            journey.check(f"restore {n}: login afresh", journey.login)
            stream = journey.chat(f"first chat after restore {n}")
            journey.check(f"restore {n}: first chat", lambda: journey.streamed(stream))
            result["first_token_ms"] = round_ms(stream.first_token_ms)
            result["steps"] = [vars(s) for s in journey.steps]
            message = stream.response_message
            result["values"] = {
                "conversationId (new conversation)": stream.conversation_id,
                "responseMessage.messageId": message.get("messageId"),
            }
            # A public link to the conversation: its shareId is nanoid's (a pooled source).
            share = client.request("POST", f"/api/share/{stream.conversation_id}", json={})
            result["share_status"] = share.status_code
            if share.status_code == 200:
                result["values"]["shareId (nanoid)"] = share.json().get("shareId")
            client.close()
            time.sleep(1.0)  # the answer's last saves
            result["object_ids"] = self._new_object_ids(before)
        finally:
            with contextlib.suppress(Exception):
                ask(self.control_port, "stop", timeout=10)
            try:
                criu.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.holder.pid, signal.SIGKILL)
                criu.wait(30)
            _reap(self.node_pid)
            shutil.copyfile(self.log, self.out / f"librechat.restore-{n}.log")
            result["criu_restore_ms"] = _criu_done_ms(self.out / f"restore-{n}.log")
        return result

    def _wait_restored(self, criu: subprocess.Popen[bytes], started: float, log: Path) -> None:
        """Until the holder's listening socket (restored with the image) accepts."""
        while time.perf_counter() - started < 60:
            if criu.poll() is not None:
                raise RuntimeError(f"criu restore exited {criu.returncode}:\n{_errors(log)}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.control_port), 0.5),
            ):
                return
            time.sleep(0.005)
        raise RuntimeError("the restored holder did not accept within 60 s")

    def _object_ids(self) -> dict[str, set[bytes]]:
        backend = self.services.mongo.backend
        with backend.lock:
            db = backend.client[LIBRECHAT_DB]
            return {
                name: {
                    d["_id"].binary
                    for d in db[name].find({}, {"_id": 1})
                    if hasattr(d["_id"], "binary")
                }
                for name in db.list_collection_names()
            }

    def _new_object_ids(self, before: dict[str, set[bytes]]) -> dict[str, list[str]]:
        """ObjectIds saved since `before` that LibreChat's bson made (not mongomock's: those
        carry this process's own 5-byte value), oldest counter first, as hex."""
        ours = bson.ObjectId().binary[4:9]
        new: dict[str, list[str]] = {}
        for name, ids in self._object_ids().items():
            made = sorted(
                (i for i in ids - before.get(name, set()) if i[4:9] != ours), key=lambda i: i[9:]
            )
            if made:
                new[name] = [i.hex() for i in made]
        return new


# -- uniqueness and the report -------------------------------------------------------------------


def sources(restore: dict[str, Any]) -> dict[str, Any]:
    """The values one restore produced, by source."""
    values: dict[str, Any] = dict(restore.get("values") or {})
    for name, ids in (restore.get("object_ids") or {}).items():
        values[f"ObjectId process value ({name})"] = sorted({i[8:18] for i in ids})
        values[f"ObjectId counter, first ({name})"] = ids[0][18:24]
    return values


def uniqueness(summary: dict[str, Any]) -> dict[str, Any]:
    """Per source: restore 1's and 2's values with the SnapStart steps (must differ), and for
    each control pair its two values and whether they repeated (they should, for the sources
    the steps are there for: so the check can fail)."""
    by_pair = {
        label: [sources(r) for r in (summary.get(label) or {}).get("restores", [])]
        for label in PAIRS
    }
    table: dict[str, Any] = {}
    for name in sorted(set().union(*(v for pair in by_pair.values() for v in pair))):
        row: dict[str, Any] = {}
        for label, pair in by_pair.items():
            values = [v.get(name) for v in pair] if len(pair) > 1 else [None, None]
            row[label] = values
            row[f"{label}_repeated"] = values[0] is not None and values[0] == values[1]
        a, b = row["snapstart"]
        row["fresh"] = a is not None and b is not None and a != b
        table[name] = row
    return table


def report(summary: dict[str, Any], out: Path) -> int:
    print(f"== {summary['version']} (CRIU {summary['criu']}, Node {summary['node']})")
    for label in PAIRS:
        for r in (summary.get(label) or {}).get("restores", []):
            print(f"  {label} restore {r['n']}: {json.dumps(_headline(r))}")
    table = summary["uniqueness"]
    counts = ", ".join(
        f"{sum(1 for s in table.values() if s[f'{label}_repeated'])} repeated in {label}"
        for label in PAIRS
        if label != "snapstart"
    )
    fresh = sum(1 for s in table.values() if s["fresh"])
    print(f"  uniqueness, {len(table)} sources: {fresh} fresh with the steps; {counts}")
    for name, s in table.items():
        print(f"    [{'fresh' if s['fresh'] else 'SAME'}] {name}: {_pair(s['snapstart'])}")
        for label in PAIRS:
            if label != "snapstart" and s[label][0] is not None:
                said = "repeated" if s[f"{label}_repeated"] else "differed"
                print(f"        {label} {said}: {_pair(s[label])}")
    print(f"  results: {out / 'summary.json'}")
    restores = [r for label in PAIRS for r in (summary.get(label) or {}).get("restores", [])]
    steps = [s for r in restores for s in r.get("steps", [])]
    failed = [s["name"] for s in steps if not s["ok"]]
    if summary.get("aborted"):
        failed.append(f"aborted ({summary['aborted']})")
    if any(not s["fresh"] for s in table.values() if s["snapstart"][0] is not None):
        failed.append("uniqueness")
    if failed:
        print("  FAILED: " + "; ".join(failed))
    return 1 if failed else 0


def _pair(values: list[Any]) -> str:
    return f"{values[0]} / {values[1]}"


def _headline(r: dict[str, Any]) -> dict[str, Any]:
    keys = ("criu_restore_ms", "after_done_ms", "first_byte_ms", "first_token_ms")
    head = {k: r.get(k) for k in keys if k in r}
    if "after" in r:
        head["after_step_ms"] = round_ms(r["after"].get("ms"))
    return head


def _criu_done_ms(log: Path) -> float | None:
    """When criu says the tasks were resumed, in ms from its start (its own log clock)."""
    for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
        if "Restore finished successfully" in line:
            return round(float(line[1 : line.index(")")]) * 1000, 1)
    return None


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _reap(pid: int) -> None:
    """Wait for an orphan of the tree that came to us (we are its subreaper), if it did."""
    if pid <= 0:
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not ours: its parent reaped it, or it was never orphaned
            if process_state(pid) in ("", "Z"):  # gone, or a zombie of another parent
                return
        else:
            if done:
                return
        time.sleep(0.05)


def _errors(log: Path) -> str:
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    picked = [line for line in lines if "Error" in line or "rror (" in line]
    return "\n".join((picked or lines)[-25:])


if __name__ == "__main__":
    sys.exit(main())
