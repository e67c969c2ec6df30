"""LocalStack: API Gateway + Lambda (its execution environments, each a Runtime API and a
runtime process), wired together.

This is the Python API the runtime tests and the benchmarks drive; `python -m emulator`
wraps it as the local demo.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from emulator.environment import INIT_LIMIT, Environment, Mode
from emulator.gateway import IDLE_TIMEOUT, Gateway
from emulator.http11 import free_port
from emulator.invocation import Invocation, InvokeResult, MemorySink, ResponseSink
from emulator.pool import Pool
from emulator.runtime_api import RuntimeApi
from emulator.sandbox import Sandbox
from emulator.timers import Scheduler
from emulator.wire import WireLog

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RUNTIME_COMMAND = (sys.executable, "-m", "streaming_proxy")
FUNCTION_NAME = "librechat-local"
# Each Lambda environment has a network namespace of its own; locally they share one, so
# every environment after the first gets a free port here (the runtime's upstream port).
PER_ENVIRONMENT_PORT = "UPSTREAM_PORT"


class LocalStack:
    """A local REST API (streaming) in front of a local Lambda running `runtime_command`.

    - `env` is merged over os.environ for the runtime (every environment gets the same);
      AWS_LAMBDA_RUNTIME_API is set per environment, AWS_LAMBDA_MAX_CONCURRENCY (if given)
      sets how many /next calls one environment may have waiting at once.
    - `function_timeout`: seconds per invocation; past it the client gets 504 (or is cut if
      the response started) and the runtime is killed and started again (Managed Instances:
      it keeps running, and its late answer gets 410).
    - `freeze`: SIGSTOP an environment's processes while every worker waits in /next.
    - `max_environments`: environments Lambda may start when every one is busy (reserved
      concurrency); beyond it invocations are throttled (API Gateway answers 500).
    - `managed_instances`: Lambda Managed Instances with that many concurrent invocations
      per environment: never frozen, a timed-out invocation answered 504 while the environment
      keeps running, no init restart.
    - `snapstart`: Lambda SnapStart. Every environment (all `max_environments` start at
      once, as a published version's snapshot serves any number) inits, runs its
      before-snapshot work and calls restore/next; then its whole process tree is frozen (the
      snapshot) until an invocation routed to it restores it (SIGCONT, restore/next answered).
    - `port`: the gateway's port (0 picks a free one); each Runtime API picks its own.
    - `stage`: emulate a stage path prefix (`/{stage}/...`, stripped from `path`).
    - `idle_timeout`: cut a started stream that sent nothing for this long (None: never).
    - `init_limit`: if the first init takes longer, kill the runtime and init again without
      a limit, as Lambda does (`init_limit_exceeded` records it; None disables).
    - `event_format`: "rest" (API Gateway REST, payload 1.0) or "function-url" (payload 2.0).
    - `wire`: record everything the runtimes send to the Runtime API (as h11 parses it).
    - `verbose`: echo runtime logs and one line per request to stderr (each runtime log line
      through `log_formatter` when given: `make local LOG=pretty`).
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
        max_environments: int = 1,
        managed_instances: int | None = None,
        wire: WireLog | None = None,
        log_formatter: Callable[[str], str] | None = None,
        snapstart: bool = False,
    ) -> None:
        self.runtime_command = list(runtime_command or DEFAULT_RUNTIME_COMMAND)
        self.function_timeout = function_timeout
        self.verbose = verbose
        self._log_formatter = log_formatter
        self.invocations: list[Invocation] = []
        self.logs: list[str] = []
        self._env = self._runtime_env(env or {})
        if managed_instances is not None:
            if managed_instances < 1:
                raise ValueError(f"managed_instances must be at least 1, not {managed_instances}")
            self.mode = Mode.managed_instances(managed_instances)
        else:
            concurrency = int(self._env.get("AWS_LAMBDA_MAX_CONCURRENCY") or 1)
            self.mode = Mode(
                concurrency=concurrency,
                freeze=freeze,
                init_limit=None if snapstart else init_limit,
                snapstart=snapstart,
            )
        self._env.update(self.mode.variables())
        self._cwd = os.fspath(cwd) if cwd is not None else None
        self._host = host
        self._wire = wire
        self._log_cond = threading.Condition()
        self._lock = threading.Lock()
        self._stopping = False
        self._started = False
        self.scheduler = Scheduler()
        self.pool = Pool(self._new_environment, max_environments, verbose=verbose)
        self.gateway = Gateway(
            self.pool.submit,
            self._new_invocation,
            host=host,
            port=port,
            stage=stage,
            forwarded_proto=forwarded_proto,
            idle_timeout=idle_timeout,
            scheduler=self.scheduler,
            event_format=event_format,
        )
        self.url = self.gateway.url

    @staticmethod
    def _runtime_env(extra: Mapping[str, str]) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "2048",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{FUNCTION_NAME}",
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

    def _new_environment(self, number: int) -> Environment:
        env = {**self._env, "AWS_LAMBDA_LOG_STREAM_NAME": f"local-{number}"}
        if number > 1:
            env[PER_ENVIRONMENT_PORT] = str(free_port(self._host))
        return Environment(
            number,
            command=self.runtime_command,
            env=env,
            cwd=self._cwd,
            mode=self.mode,
            router=self.pool,
            scheduler=self.scheduler,
            function_timeout=self.function_timeout,
            function_arn=(
                f"arn:aws:lambda:{env['AWS_REGION']}:123456789012:function:"
                f"{env['AWS_LAMBDA_FUNCTION_NAME']}"
            ),
            host=self._host,
            wire=self._wire,
            on_log=self._on_log,
            label=f"env {number}: " if self.pool.max_environments > 1 else "",
            verbose=self.verbose,
        )

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, wait_init: bool = True, init_timeout: float = 30.0) -> LocalStack:
        """Start the gateway and the first environment; by default wait until its init
        finished (first /next) or failed. Raises TimeoutError (with the log tail) if it hangs."""
        if self._started:
            raise RuntimeError("LocalStack.start() was already called")
        self._started = True
        self.scheduler.start()
        self.gateway.start()
        for _ in range(self.pool.max_environments if self.mode.snapstart else 1):
            self.pool.add()
        if wait_init and not self.wait_init(init_timeout):
            tail = "\n".join(self.logs[-20:])
            raise TimeoutError(
                f"the runtime did not call /next within {init_timeout} s; last log lines:\n{tail}"
            )
        return self

    def wait_init(self, timeout: float = 30.0) -> bool:
        """True once the first init finished (first /next) or failed; False on timeout."""
        return self.environments[0].init_event.wait(timeout) if self.environments else False

    def stop(self) -> None:
        """Stop every environment (SIGCONT first if frozen) and close the servers."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
        self.pool.stop()
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

    # -- the environments ------------------------------------------------------------------

    @property
    def environments(self) -> list[Environment]:
        return self.pool.environments

    @property
    def first(self) -> Environment:
        if not self.environments:
            raise RuntimeError("LocalStack.start() has not been called")
        return self.environments[0]

    @property
    def sandbox(self) -> Sandbox:
        return self.first.sandbox

    @property
    def runtime(self) -> RuntimeApi:
        return self.first.runtime

    @property
    def runtime_api(self) -> str:
        """The first environment's AWS_LAMBDA_RUNTIME_API (host:port)."""
        return self.first.runtime.address

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The first environment's current runtime process."""
        return self.first.process

    @property
    def frozen(self) -> bool:
        return self.first.sandbox.frozen

    @property
    def init_error(self) -> dict[str, Any] | None:
        return self.pool.init_error

    @property
    def init_duration(self) -> float | None:
        return self.first.init_duration

    @property
    def init_durations(self) -> list[float]:
        return [d for env in self.environments for d in env.init_durations]

    @property
    def restarts(self) -> int:
        return sum(env.restarts for env in self.environments)

    @property
    def init_limit_exceeded(self) -> bool:
        return any(env.init_limit_exceeded for env in self.environments)

    # -- direct invoke ---------------------------------------------------------------------

    def invoke(self, event: Any, timeout: float | None = None) -> InvokeResult:
        """Send `event` (any JSON value, or raw bytes) straight to the function."""
        sink = MemorySink()
        inv = self.submit(event, sink)
        wait = timeout if timeout is not None else self.function_timeout + 10.0
        if not inv.done.wait(wait):
            raise TimeoutError(f"invocation {inv.request_id} did not finish within {wait} s")
        return InvokeResult(prelude=inv.prelude, body=sink.body, error=inv.error, record=inv)

    def submit(self, event: Any, sink: ResponseSink) -> Invocation:
        """Invoke without waiting: the response goes to `sink`; `record.done` tells the end."""
        inv = self._new_invocation(event, sink, "invoke")
        self.pool.submit(inv)
        return inv

    def _new_invocation(self, event: Any, sink: ResponseSink, source: str) -> Invocation:
        payload = event if isinstance(event, bytes) else json.dumps(event).encode()
        inv = Invocation(
            request_id=str(uuid.uuid4()), event=event, payload=payload, sink=sink, source=source
        )
        self.invocations.append(inv)
        return inv

    # -- logs ------------------------------------------------------------------------------

    def _on_log(self, env: Environment, line: str) -> None:
        with self._log_cond:
            self.logs.append(line)
            self._log_cond.notify_all()
        if self.verbose:
            shown = self._log_formatter(line) if self._log_formatter is not None else line
            print(f"{env.label}{shown}" if env.label else shown, file=sys.stderr, flush=True)

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
