"""SnapStart: before the snapshot, wait for the restore, after the restore.

With AWS_LAMBDA_INITIALIZATION_TYPE=snap-start, Lambda snapshots the environment once init
is done and restores that memory image in every new environment (docs: lambda/latest/dg/
snapstart-runtime-hooks-custom.html). The runtime then: runs the before-snapshot step (LibreChat
closes its MongoDB and Redis connections), calls GET /runtime/restore/next (it returns only
in a restored environment), runs the after-restore step (fresh randomness, connections back,
LibreChat ready again) inside the 10 s restore budget, and enters the /invocation/next loop.
A failure before the snapshot goes to /init/error (Runtime.BeforeSnapshotError), one after it
to /restore/error (Runtime.AfterRestoreError); either way the message names what failed.

The steps run inside LibreChat's Node process through runtime/preload/snapstart.cjs, which the
runtime loads with NODE_OPTIONS; they talk over one end of a socketpair the upstream inherits
(SNAPSTART_HOOK_FD), a channel no HTTP request can reach.
"""

from __future__ import annotations

import json
import random
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streaming_proxy import log
from streaming_proxy.errors import LambdaError

HOOK_FD_VAR = "SNAPSTART_HOOK_FD"
# runtime/Dockerfile copies runtime/preload/ to IMAGE_PRELOAD_DIR; from a checkout (the
# emulator, the tests) it sits next to the package.
IMAGE_PRELOAD_DIR = Path("/opt/librechat-preload")
_CHECKOUT_PRELOAD_DIR = Path(__file__).resolve().parent.parent / "preload"
PRELOAD_DIR = IMAGE_PRELOAD_DIR if IMAGE_PRELOAD_DIR.is_dir() else _CHECKOUT_PRELOAD_DIR
PRELOAD = PRELOAD_DIR / "snapstart.cjs"
OPENSSL_CONFIG = PRELOAD_DIR / "openssl-snapstart.cnf"
RESTORE_BUDGET = 10.0  # seconds Lambda allows restore plus after-restore work
RESTORE_MARGIN = 0.5  # the part of it kept for reporting a failure in time
HELLO_WAIT = 5.0  # seconds the preload's first line may take once the upstream is healthy
BEFORE_TIMEOUT = 60.0  # before-snapshot work may take up to the function timeout or 130 s
BEFORE_SNAPSHOT_ERROR = "Runtime.BeforeSnapshotError"
AFTER_RESTORE_ERROR = "Runtime.AfterRestoreError"


class HookFailed(LambdaError):
    """A SnapStart step failed; ``error_type`` says which side of the snapshot."""


class HookChannel:
    """The runtime's end of the socketpair to the preload; the upstream inherits the other."""

    def __init__(self) -> None:
        self._ours, self._theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._buf = bytearray()
        self.hello: dict[str, Any] | None = None

    @property
    def child_fd(self) -> int:
        return self._theirs.fileno()

    def upstream_env(self, env: Mapping[str, str]) -> dict[str, str]:
        """What the upstream's environment gains: the channel, the preload in NODE_OPTIONS."""
        options = env.get("NODE_OPTIONS", "")
        extra = f'--require "{PRELOAD}" --openssl-config="{OPENSSL_CONFIG}"'
        return {HOOK_FD_VAR: str(self.child_fd), "NODE_OPTIONS": f"{options} {extra}".strip()}

    def spawned(self) -> None:
        """The upstream holds its end now; ours must not keep it open."""
        self._theirs.close()

    def close(self) -> None:
        self._ours.close()
        self._theirs.close()

    def call(self, step: str, timeout: float, error_type: str) -> dict[str, Any]:
        """Run one step in the upstream; its answer, or HookFailed naming what failed."""
        deadline = time.monotonic() + timeout
        if self.hello is None:  # written as the preload loads: long there if it is there
            self.hello = self._read(min(deadline, time.monotonic() + HELLO_WAIT), step, error_type)
        try:
            self._ours.sendall(json.dumps({"step": step}).encode() + b"\n")
        except OSError as exc:
            raise HookFailed(
                error_type, f"SnapStart {step}: the hook channel broke ({exc})"
            ) from None
        answer = self._read(deadline, step, error_type)
        if not answer.get("ok"):
            raise HookFailed(error_type, f"SnapStart {step}: {answer.get('error', 'failed')}")
        return answer

    def _read(self, deadline: float, step: str, error_type: str) -> dict[str, Any]:
        while (end := self._buf.find(b"\n")) < 0:
            left = deadline - time.monotonic()
            if left <= 0:
                raise HookFailed(
                    error_type,
                    f"SnapStart {step}: no answer from the upstream's preload in time"
                    + ("" if self.hello else f" (is {PRELOAD.name} loaded through NODE_OPTIONS?)"),
                )
            self._ours.settimeout(left)
            try:
                data = self._ours.recv(65536)
            except TimeoutError:
                continue
            except OSError as exc:
                raise HookFailed(
                    error_type, f"SnapStart {step}: the hook channel broke ({exc})"
                ) from None
            if not data:
                raise HookFailed(
                    error_type,
                    f"SnapStart {step}: the upstream closed the hook channel (did it exit, or "
                    f"is {PRELOAD.name} not loaded?)",
                )
            self._buf += data
        line = bytes(self._buf[:end])
        del self._buf[: end + 1]
        try:
            value = json.loads(line)
        except ValueError:
            raise HookFailed(error_type, f"SnapStart {step}: the preload sent no JSON") from None
        if not isinstance(value, dict):
            raise HookFailed(error_type, f"SnapStart {step}: the preload sent no JSON object")
        return value


def before_snapshot(channel: HookChannel, timeout: float = BEFORE_TIMEOUT) -> dict[str, Any]:
    """LibreChat is ready: close its connections (HookFailed: Runtime.BeforeSnapshotError)."""
    answer = channel.call("before", timeout, BEFORE_SNAPSHOT_ERROR)
    log.info(
        "SnapStart: before-snapshot done",
        primed=answer.get("primed"),
        closed=answer.get("closed"),
        ms=answer.get("ms"),
    )
    return answer


def after_restore(channel: HookChannel, deadline: float) -> dict[str, Any]:
    """Fresh randomness and connections in the upstream, and in this process's own
    ``random`` (nothing here draws from it, but nothing should inherit its state either)."""
    random.seed()
    try:
        answer = channel.call("after", max(deadline - time.monotonic(), 0.0), AFTER_RESTORE_ERROR)
    except HookFailed as exc:
        if "in time" in exc.message:
            exc.message += f" (the restore budget is {RESTORE_BUDGET:g} s)"
        raise
    log.info(
        "SnapStart: after-restore done",
        fresh=answer.get("fresh"),
        reconnected=answer.get("reconnected"),
        ms=answer.get("ms"),
    )
    return answer
