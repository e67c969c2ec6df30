"""LocalStack: API Gateway + Lambda Runtime API + the runtime process, wired together.

This is the Python API the runtime tests and the benchmark drive; `python -m emulator` wraps
it as the local demo.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from emulator.gateway import IDLE_TIMEOUT, ClientSink, Gateway
from emulator.invocation import Invocation, InvokeResult, MemorySink, ResponseSink
from emulator.runtime_api import RuntimeApi
from emulator.sandbox import Sandbox
from emulator.timers import Scheduler

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RUNTIME_COMMAND = (sys.executable, "-m", "streaming_proxy")
FUNCTION_NAME = "librechat-local"
INIT_LIMIT = 10.0  # seconds Lambda allows the init phase of on-demand functions


class LocalStack:
    """A local REST API (streaming) in front of a local Lambda running `runtime_command`.

    - `env` is merged over os.environ for the runtime; AWS_LAMBDA_RUNTIME_API is set here,
      AWS_LAMBDA_MAX_CONCURRENCY (if given) sets how many /next calls may wait at once.
    - `function_timeout`: seconds per invocation; past it the client gets 504 (or is cut if
      the response started) and the runtime is killed and started again.
    - `freeze`: SIGSTOP the runtime and its descendants while every worker waits in /next.
    - `port`: the gateway's port (0 picks a free one); the Runtime API always picks its own.
    - `stage`: emulate a stage path prefix (`/{stage}/...`, stripped from `path`).
    - `idle_timeout`: cut a started stream that sent nothing for this long (None: never).
    - `init_limit`: if the first init takes longer, kill the runtime and init again without
      a limit, as Lambda does (`init_limit_exceeded` records it; None disables).
    - `event_format`: "rest" (API Gateway REST, payload 1.0) or "function-url" (payload 2.0).
    - `verbose`: echo runtime logs and one line per request to stderr.
    """

    def __init__(
        self,
        runtime_command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        function_timeout: float = 900.0,
        freeze: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        cwd: str | os.PathLike[str] | None = None,
        *,
        stage: str | None = None,
        verbose: bool = False,
        forwarded_proto: str = "http",
        idle_timeout: float | None = IDLE_TIMEOUT,
        init_limit: float | None = INIT_LIMIT,
        event_format: str = "rest",
    ) -> None:
        self.runtime_command = list(runtime_command or DEFAULT_RUNTIME_COMMAND)
        self.function_timeout = function_timeout
        self.freeze = freeze
        self.verbose = verbose
        self.invocations: list[Invocation] = []
        self.logs: list[str] = []
        self.init_error: dict[str, Any] | None = None
        self.init_duration: float | None = None
        self.init_durations: list[float] = []
        self.restarts = 0
        self.init_limit = init_limit
        self.init_limit_exceeded = False
        self._env = self._runtime_env(env or {})
        concurrency = int(self._env.get("AWS_LAMBDA_MAX_CONCURRENCY") or 1)
        self._lock = threading.Lock()
        self._log_cond = threading.Condition()
        self._init_event = threading.Event()
        self._stopping = False
        self._initialized_generation = 0
        self._restart_pending = False
        self._started = False
        self.scheduler = Scheduler()
        self.runtime = RuntimeApi(
            self,
            host=host,
            function_timeout=function_timeout,
            function_arn=(
                f"arn:aws:lambda:{self._env['AWS_REGION']}:123456789012:function:"
                f"{self._env['AWS_LAMBDA_FUNCTION_NAME']}"
            ),
            concurrency=concurrency,
            scheduler=self.scheduler,
        )
        self.runtime_api = self.runtime.address
        self._env["AWS_LAMBDA_RUNTIME_API"] = self.runtime_api
        try:
            self.gateway = Gateway(
                self.runtime.submit,
                self._new_invocation,
                host=host,
                port=port,
                stage=stage,
                forwarded_proto=forwarded_proto,
                idle_timeout=idle_timeout,
                scheduler=self.scheduler,
                event_format=event_format,
            )
        except BaseException:
            self.runtime.close()  # e.g. the gateway port is taken: release the Runtime API's
            raise
        self.url = self.gateway.url
        self.sandbox = Sandbox(
            self.runtime_command,
            self._env,
            os.fspath(cwd) if cwd is not None else None,
            self._on_exit,
            self._on_log,
        )

    @staticmethod
    def _runtime_env(extra: Mapping[str, str]) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "2048",
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{FUNCTION_NAME}",
                "AWS_LAMBDA_LOG_STREAM_NAME": "local",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.setdefault("AWS_REGION", "us-east-1")
        env.setdefault("AWS_DEFAULT_REGION", env["AWS_REGION"])
        env.update(extra)
        # The runtime package (runtime/) and this repo (emulator.demo_upstream) importable.
        paths = [str(REPO_ROOT / "runtime"), str(REPO_ROOT)]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        return env

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, wait_init: bool = True, init_timeout: float = 30.0) -> LocalStack:
        """Start both servers and the runtime; by default wait until init finished (first
        /next) or failed. Raises TimeoutError (with the log tail) if init hangs."""
        if self._started:
            raise RuntimeError("LocalStack.start() was already called")
        self._started = True
        self.scheduler.start()
        self.runtime.start()
        self.gateway.start()
        generation = self.sandbox.spawn()
        if self.init_limit is not None:
            self.scheduler.call_at(
                self.sandbox.spawned_at + self.init_limit,
                lambda: self._enforce_init_limit(generation),
            )
        if wait_init and not self._init_event.wait(init_timeout):
            tail = "\n".join(self.logs[-20:])
            raise TimeoutError(
                f"the runtime did not call /next within {init_timeout} s; last log lines:\n{tail}"
            )
        return self

    def wait_init(self, timeout: float = 30.0) -> bool:
        """True once the first init finished (first /next) or failed; False on timeout."""
        return self._init_event.wait(timeout)

    def stop(self) -> None:
        """Stop the runtime (SIGCONT first if frozen) and close both servers."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
        self.sandbox.stop()
        self.runtime.close()
        self.gateway.close()
        self.scheduler.stop()

    def __enter__(self) -> LocalStack:
        if not self._started:
            try:
                self.start()
            except BaseException:
                self.stop()  # __exit__ does not run when __enter__ fails
                raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def process(self) -> Any:
        """The current runtime `subprocess.Popen`."""
        return self.sandbox.process

    @property
    def frozen(self) -> bool:
        return self.sandbox.frozen

    # -- direct invoke ---------------------------------------------------------------------

    def invoke(self, event: Any, timeout: float | None = None) -> InvokeResult:
        """Send `event` (any JSON value, or raw bytes) straight to the runtime."""
        sink = MemorySink()
        inv = self._new_invocation(event, sink, "invoke")
        self.runtime.submit(inv)
        wait = timeout if timeout is not None else self.function_timeout + 10.0
        if not inv.done.wait(wait):
            raise TimeoutError(f"invocation {inv.request_id} did not finish within {wait} s")
        return InvokeResult(prelude=inv.prelude, body=sink.body, error=inv.error, record=inv)

    def _new_invocation(
        self, event: Any, sink: ResponseSink | ClientSink, source: str
    ) -> Invocation:
        payload = event if isinstance(event, bytes) else json.dumps(event).encode()
        inv = Invocation(
            request_id=str(uuid.uuid4()), event=event, payload=payload, sink=sink, source=source
        )
        self.invocations.append(inv)
        return inv

    # -- logs ------------------------------------------------------------------------------

    def _on_log(self, line: str) -> None:
        with self._log_cond:
            self.logs.append(line)
            self._log_cond.notify_all()
        if self.verbose:
            print(line, file=sys.stderr, flush=True)

    def wait_for_log(self, text: str, timeout: float = 10.0) -> str:
        """The first runtime log line containing `text`; TimeoutError if none comes."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._log_cond:
            while True:
                for line in self.logs[seen:]:
                    if text in line:
                        return line
                seen = len(self.logs)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no runtime log line containing {text!r} in {timeout} s")
                self._log_cond.wait(left)

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
        if self.verbose:
            print(
                f"emulator: init took over {self.init_limit:g} s; Lambda restarts it",
                file=sys.stderr,
                flush=True,
            )
        self._restart_pending = True
        self.sandbox.kill()

    # -- RuntimeHooks ----------------------------------------------------------------------

    def on_init_done(self) -> None:
        duration = time.perf_counter() - self.sandbox.spawned_at
        self._initialized_generation = self.sandbox.generation
        self.init_durations.append(duration)
        if self.init_duration is None:
            self.init_duration = duration
        self._init_event.set()

    def on_init_error(self, error: dict[str, Any]) -> None:
        self.init_error = error
        self.runtime.set_broken(error)
        self._init_event.set()
        if self.verbose:
            print(f"emulator: init error: {json.dumps(error)}", file=sys.stderr, flush=True)

    def on_idle(self) -> None:
        if self.freeze:
            self.sandbox.freeze()

    def on_busy(self) -> None:
        if self.sandbox.frozen:
            self.sandbox.thaw()

    def on_timeout(self, inv: Invocation) -> None:
        if self.verbose:
            print(f"emulator: {inv.error}; restarting the runtime", file=sys.stderr, flush=True)
        self._restart_pending = True
        self.sandbox.kill()

    def on_finished(self, inv: Invocation) -> None:
        if self.verbose and inv.source == "gateway":
            event = inv.event if isinstance(inv.event, dict) else {}
            took = (inv.response_done_at or 0.0) - inv.submitted_at
            note = f" error={inv.error.get('errorType')}" if inv.error else ""
            if inv.gateway_error:
                note += f" gateway: {inv.gateway_error}"
            print(
                f"emulator: {event.get('httpMethod')} {event.get('path')} -> {inv.status} "
                f"({inv.bytes} bytes, {took * 1000:.1f} ms){note}",
                file=sys.stderr,
                flush=True,
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
            if self.verbose:
                print(f"emulator: runtime ended ({how}); starting it again", file=sys.stderr)
            self.sandbox.spawn()
            return
        if self.init_error is None:
            self.init_error = {
                **error,
                "errorMessage": f"Runtime exited during init with {how}",
                "logTail": self.logs[-20:],
            }
        self.runtime.set_broken(self.init_error)
        self._init_event.set()
