"""One execution environment: a runtime process (and everything it starts), its own Runtime
API, freezing between invocations, deadlines, init limits and restarts.

Standard Lambda freezes an environment while every worker waits in /next, gives init 10 s
before starting it again, and replaces the runtime when an invocation times out. Lambda
Managed Instances (lambda-managed-instances-execution-environment.html) run up to
AWS_LAMBDA_MAX_CONCURRENCY invocations at once in one environment, never freeze it, and do
not enforce per-invocation timeouts: the caller gets the timeout error, the other invocations
and the environment carry on, and the runtime's late answer for that request gets 410.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from emulator.invocation import Invocation
from emulator.runtime_api import RuntimeApi
from emulator.sandbox import Sandbox
from emulator.timers import Scheduler
from emulator.wire import WireLog

INIT_LIMIT = 10.0  # seconds Lambda allows the init phase of on-demand functions
MANAGED_INITIALIZATION_TYPE = "lambda-managed-instances"  # AWS_LAMBDA_INITIALIZATION_TYPE
SNAP_START_INITIALIZATION_TYPE = "snap-start"


@dataclass(frozen=True)
class Mode:
    """How Lambda runs the function's environments."""

    concurrency: int = 1  # invocations one environment serves at once
    managed: bool = False  # Lambda Managed Instances
    freeze: bool = True
    init_limit: float | None = INIT_LIMIT  # past it, init starts again without a limit
    snapstart: bool = False  # SnapStart: snapshot after init, restore on the first invocation

    @classmethod
    def managed_instances(cls, concurrency: int) -> Mode:
        return cls(concurrency=concurrency, managed=True, freeze=False, init_limit=None)

    def variables(self) -> dict[str, str]:
        """What Lambda sets in the runtime's environment for this mode (Managed Instances:
        lambda-managed-instances-runtimes.html, runtimes-api.html; SnapStart:
        snapstart-runtime-hooks-custom.html)."""
        if self.snapstart:
            return {"AWS_LAMBDA_INITIALIZATION_TYPE": SNAP_START_INITIALIZATION_TYPE}
        if not self.managed:
            return {"AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand"}
        return {
            "AWS_LAMBDA_INITIALIZATION_TYPE": MANAGED_INITIALIZATION_TYPE,
            "AWS_LAMBDA_MAX_CONCURRENCY": str(self.concurrency),
        }


class Router(Protocol):
    """What an environment tells whoever routes invocations to it."""

    def on_ready(self, env: Environment) -> None:
        """A worker of `env` waits in /next."""

    def on_released(self, env: Environment, inv: Invocation) -> None:
        """`inv` no longer occupies `env` (its client has not seen the end yet)."""

    def on_init_error(self, env: Environment, error: dict[str, Any]) -> None: ...


class Environment:
    """A runtime subprocess behind its own Runtime API; restarts keep the environment."""

    def __init__(
        self,
        number: int,
        *,
        command: Sequence[str],
        env: Mapping[str, str],
        cwd: str | None,
        mode: Mode,
        router: Router,
        scheduler: Scheduler,
        function_timeout: float,
        function_arn: str,
        host: str = "127.0.0.1",
        wire: WireLog | None = None,
        on_log: Callable[[Environment, str], None] | None = None,
        label: str = "",
        verbose: bool = False,
    ) -> None:
        self.number = number
        self.mode = mode
        self.label = label  # prefix of this environment's lines on stderr
        self.verbose = verbose
        self.in_flight = 0  # invocations routed here and not yet ended (the router's count)
        self.idle_since = 0.0  # when a worker last came back to /next
        self.logs: list[str] = []
        self.init_error: dict[str, Any] | None = None
        self.init_duration: float | None = None  # the first init's
        self.init_durations: list[float] = []
        self.init_event = threading.Event()  # the first init finished or failed
        self.restarts = 0
        self.init_limit_exceeded = False
        # SnapStart: when the snapshot was taken and the restore began (perf_counter), how
        # long each restore took to the runtime's first /next, and a restore's error.
        self.snapshot_at: float | None = None
        self.restored_at: float | None = None
        self.restore_durations: list[float] = []
        self.restore_error: dict[str, Any] | None = None
        self._restore = threading.Event()
        self._router = router
        self._scheduler = scheduler
        self._on_log_line = on_log
        self._initialized_generation = 0
        self._restart_pending = False
        self._stopping = False
        self.runtime = RuntimeApi(
            self,
            host=host,
            function_timeout=function_timeout,
            function_arn=function_arn,
            concurrency=mode.concurrency,
            scheduler=scheduler,
            wire=wire,
        )
        self.env = {**env, "AWS_LAMBDA_RUNTIME_API": self.runtime.address}
        self.sandbox = Sandbox(command, self.env, cwd, self._on_exit, self._on_log)

    @property
    def capacity(self) -> int:
        return self.mode.concurrency

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The current runtime process."""
        return self.sandbox.process

    def start(self) -> None:
        self.runtime.start()
        generation = self.sandbox.spawn()
        limit = self.mode.init_limit
        if limit is not None:
            self._scheduler.call_at(
                self.sandbox.spawned_at + limit, lambda: self._enforce_init_limit(generation)
            )

    def stop(self) -> None:
        """Stop the runtime (SIGCONT first if frozen) and close the Runtime API."""
        self._stopping = True
        self._restore.set()
        self.sandbox.stop()
        self.runtime.close()

    def _say(self, text: str) -> None:
        if self.verbose:
            print(f"emulator: {self.label}{text}", file=sys.stderr, flush=True)

    def _on_log(self, line: str) -> None:
        self.logs.append(line)
        if self._on_log_line is not None:
            self._on_log_line(self, line)

    def _enforce_init_limit(self, generation: int) -> None:
        """Lambda gives init 10 s; past that it starts init again, without that limit, for
        the first invocation (the runtime should end init early and keep starting async)."""
        if (
            self._stopping
            or generation != self.sandbox.generation
            or self._initialized_generation == generation
            or self.init_error is not None
        ):
            return
        self.init_limit_exceeded = True
        self._say(f"init took over {self.mode.init_limit:g} s; Lambda restarts it")
        self._restart_pending = True
        self.sandbox.kill()

    # -- RuntimeHooks ----------------------------------------------------------------------

    def on_init_done(self) -> None:
        now = time.perf_counter()
        self._initialized_generation = self.sandbox.generation
        if self.restored_at is not None:  # SnapStart: init ended at the snapshot
            self.restore_durations.append(now - self.restored_at)
            self._say(f"restored; the runtime asked for its first event after "
                      f"{(now - self.restored_at) * 1000:.0f} ms")  # fmt: skip
            self.restored_at = None
            return
        duration = now - self.sandbox.spawned_at
        self.init_durations.append(duration)
        if self.init_duration is None:
            self.init_duration = duration
        self.init_event.set()

    # -- SnapStart -------------------------------------------------------------------------

    def on_restore_next(self) -> bool:
        """The runtime is ready for its snapshot: freeze the whole process tree (the
        "snapshot") until an invocation restores it."""
        if not self.mode.snapstart or self._stopping:
            return False
        self.snapshot_at = now = time.perf_counter()
        self.init_durations.append(now - self.sandbox.spawned_at)
        if self.init_duration is None:
            self.init_duration = now - self.sandbox.spawned_at
        self._restore.clear()
        self.sandbox.freeze()
        self._say(
            f"snapshot taken {now - self.sandbox.spawned_at:.2f} s after spawn; frozen until "
            "an invocation restores it"
        )
        self.init_event.set()
        self._restore.wait()
        return not self._stopping

    def restore(self) -> None:
        """Restore a snapshotted environment: thaw it and answer its restore/next."""
        if self.snapshot_at is None or self._restore.is_set():
            return
        self.restored_at = time.perf_counter()
        self._say(f"restoring (frozen for {self.restored_at - self.snapshot_at:.2f} s)")
        self.sandbox.thaw()
        self._restore.set()

    def submit(self, inv: Invocation) -> None:
        """Hand `inv` to this environment's runtime, restoring it first if snapshotted."""
        self.restore()
        self.runtime.submit(inv)

    def on_restore_error(self, error: dict[str, Any]) -> None:
        self.restore_error = error
        self.runtime.set_broken(error)
        self._router.on_init_error(self, error)
        self._say(f"restore error: {json.dumps(error)}")

    def on_init_error(self, error: dict[str, Any]) -> None:
        self.init_error = error
        self.runtime.set_broken(error)
        self._router.on_init_error(self, error)
        self.init_event.set()
        self._say(f"init error: {json.dumps(error)}")

    def on_idle(self) -> None:
        if self.mode.freeze:
            self.sandbox.freeze()

    def on_busy(self) -> None:
        if self.sandbox.frozen:
            self.sandbox.thaw()

    def on_ready(self) -> None:
        self._router.on_ready(self)

    def on_released(self, inv: Invocation) -> None:
        self._router.on_released(self, inv)

    def on_timeout(self, inv: Invocation) -> None:
        if self.mode.managed:
            self._say(f"{inv.error}; Managed Instances leave the invocation running")
            return
        self._say(f"{inv.error}; restarting the runtime")
        self._restart_pending = True
        self.sandbox.kill()

    def on_finished(self, inv: Invocation) -> None:
        if not self.verbose or inv.source != "gateway":
            return
        event = inv.event if isinstance(inv.event, dict) else {}
        took = (inv.response_done_at or 0.0) - inv.submitted_at
        note = f" error={inv.error.get('errorType')}" if inv.error else ""
        if inv.gateway_error:
            note += f" gateway: {inv.gateway_error}"
        self._say(
            f"{event.get('httpMethod')} {event.get('path')} -> {inv.status} "
            f"({inv.bytes} bytes, {took * 1000:.1f} ms){note}"
        )

    def _on_exit(self, generation: int, returncode: int) -> None:
        if self._stopping or generation != self.sandbox.generation:
            return
        how = f"signal {-returncode}" if returncode < 0 else f"exit status {returncode}"
        error = {
            "errorType": "Runtime.ExitError",
            "errorMessage": f"Runtime exited with error: {how}",
        }
        self.runtime.reset(error)
        initialized = self._initialized_generation == generation
        if self._restart_pending or (initialized and self.init_error is None):
            self._restart_pending = False
            self.restarts += 1
            self._say(f"runtime ended ({how}); starting it again")
            self.sandbox.spawn()
            return
        if self.init_error is None:
            self.init_error = {
                **error,
                "errorMessage": f"Runtime exited during init with {how}",
                "logTail": self.logs[-20:],
            }
        self.runtime.set_broken(self.init_error)
        self._router.on_init_error(self, self.init_error)
        self.init_event.set()
