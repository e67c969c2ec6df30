"""The upstream server's lifecycle: start, forward its output, wait until healthy, restart.

Readiness is polled every 10 ms with a raw socket, and a child that exits is noticed on the
next poll, so a crash fails init at once with its exit code and the tail of its stderr.
Healthy means the health path answers 200 and start-up is complete (readiness.py).
"""

from __future__ import annotations

import collections
import os
import subprocess
import threading
import time
from collections.abc import Mapping
from typing import IO

from streaming_proxy import log, metrics
from streaming_proxy.errors import InitError, UpstreamFailed, UpstreamStarting
from streaming_proxy.readiness import Boot, http_get, librechat_version
from streaming_proxy.variables import RUNTIME_ONLY

POLL_INTERVAL = 0.01
_STDERR_TAIL_LINES = 20


class Upstream:
    def __init__(
        self,
        command: tuple[str, ...],
        host: str,
        port: int,
        health_path: str,
        env: Mapping[str, str],
        dirs: tuple[str, ...] = (),
    ) -> None:
        self.command = command
        self.dirs = dirs  # created before every start: the image links writable paths here
        self.host = host
        self.port = port
        self.health_path = health_path
        self._version = librechat_version(command)
        self._boot = Boot(host, port, self._version)
        self._env = dict(env)
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL_LINES)
        self._lock = threading.Lock()
        self._stderr_reader: threading.Thread | None = None
        self.healthy = False
        self.waited = 0.0  # seconds spent waiting for health since the last start or health
        self.restarts = 0

    def start(self, pass_fds: tuple[int, ...] = (), extra_env: Mapping[str, str] = {}) -> None:
        """Start the child; ``pass_fds`` and ``extra_env`` reach this start only, not restarts
        (SnapStart's hook channel belongs to the process that was snapshotted)."""
        for directory in self.dirs:
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as exc:
                message = f"cannot create {directory} for the upstream: {exc.strerror}"
                raise UpstreamFailed(message + "; check UPSTREAM_DIRS") from None
        self._stderr_tail.clear()
        self.healthy = False
        self.waited = 0.0
        self._boot = Boot(self.host, self.port, self._version)  # nothing carries over a restart
        try:
            self._process = subprocess.Popen(
                self.command,
                env={**self._env, **extra_env},
                pass_fds=pass_fds,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:
            raise UpstreamFailed(
                f"cannot start the upstream {self.command[0]!r}: {exc.strerror or exc}; "
                "check UPSTREAM_COMMAND"
            ) from None
        log.info("upstream started", pid=self._process.pid, command=self.command[0])
        for stream, name in ((self._process.stdout, "stdout"), (self._process.stderr, "stderr")):
            reader = threading.Thread(
                target=self._forward,
                args=(stream, name, self._boot),
                name=f"upstream-{name}",
                daemon=True,
            )
            reader.start()
        self._stderr_reader = reader

    def _forward(self, stream: IO[bytes], name: str, boot: Boot) -> None:
        """Forward the child's output line by line; keep the stderr tail for error messages."""
        tail = self._stderr_tail if name == "stderr" else None
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if tail is not None:
                tail.append(line)
            boot.observe(line)
            log.log("INFO", line, always=True, source="upstream", stream=name)

    def exit_code(self) -> int | None:
        return None if self._process is None else self._process.poll()

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def wait_healthy(self, until: float) -> bool:
        """Poll until healthy (True) or ``until`` passes (False); raise if the child exits.

        Only time spent here counts against UPSTREAM_READY_TIMEOUT: between invocations
        Lambda freezes the upstream too, so wall-clock time since the start means nothing.
        The budget is one boot's: once healthy, later waits (after a transient error) probe
        a running server, and each healthy answer gives the next one the whole budget.
        """
        began = time.monotonic()
        try:
            while True:
                code = self.exit_code()
                if code is not None:
                    raise UpstreamFailed(self._exit_message(code), self._exit_summary(code))
                if self._probe():
                    self.healthy = True
                    waited_ms = round((self.waited + time.monotonic() - began) * 1000, 1)
                    log.info(
                        "upstream healthy",
                        emf=metrics.upstream_boot(waited_ms),
                        waitedMs=waited_ms,
                        signal=self._boot.signal,
                    )
                    return True
                remaining = until - time.monotonic()
                if remaining <= 0:
                    return False
                time.sleep(min(POLL_INTERVAL, remaining))
        finally:
            self.waited = 0.0 if self.healthy else self.waited + time.monotonic() - began

    def ensure_ready(self, until: float, ready_timeout: float) -> None:
        """Make sure a healthy upstream is there before ``until``, restarting a dead one once."""
        if self.healthy and self.alive:
            return
        if not self._lock.acquire(timeout=max(until - time.monotonic(), 0.0)):
            raise UpstreamStarting(
                "the deadline came while another invocation started the upstream"
            )
        try:
            restarted = False
            while True:
                if not self.alive:
                    if restarted:
                        code = self.exit_code() or 0
                        raise UpstreamFailed(self._exit_message(code), self._exit_summary(code))
                    self._restart()
                    restarted = True
                if self.healthy:
                    return
                budget = ready_timeout - self.waited
                if budget <= 0:
                    raise self.not_ready(ready_timeout)
                try:
                    if self.wait_healthy(min(until, time.monotonic() + budget)):
                        return
                except UpstreamFailed:
                    if restarted:
                        raise
                    continue  # it died while we waited: restart it once
                if time.monotonic() >= until:
                    raise UpstreamStarting(
                        f"the upstream was still starting when the invocation deadline came "
                        f"({self.waited:.1f} s of its {ready_timeout:g} s readiness budget used)"
                    )
        finally:
            self._lock.release()

    def not_ready(self, ready_timeout: float) -> UpstreamFailed:
        """The readiness budget is spent: stop the upstream (a fresh start comes next)."""
        self.stop()
        summary = (
            f"the upstream did not become healthy on {self.host}:{self.port} within "
            f"UPSTREAM_READY_TIMEOUT={ready_timeout:g} s of waiting; it was stopped "
            "and the next request starts it again"
        ) + self._boot.pending()
        return UpstreamFailed(summary + self._tail_suffix(), summary)

    def mark_unhealthy(self) -> None:
        """A request could not reach it: probe (and maybe restart) before the next one."""
        self.healthy = False

    def _restart(self) -> None:
        code = self.exit_code()
        if code is not None:
            log.warning(
                "upstream exited; restarting it",
                exitCode=code,
                restarts=self.restarts + 1,
                stderrTail=list(self._stderr_tail)[-5:],
            )
        self.restarts += 1
        self.start()

    def _probe(self) -> bool:
        answer = http_get(self.host, self.port, self.health_path)
        return answer is not None and answer[0] == 200 and self._boot.ready()

    def _exit_summary(self, code: int) -> str:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return f"the upstream ({self.command[0]}) {how} before it became healthy"

    def _exit_message(self, code: int) -> str:
        return self._exit_summary(code) + self._tail_suffix()

    def _tail_suffix(self) -> str:
        # The stderr reader may still be draining the pipe of a child that just exited.
        if self._stderr_reader is not None and not self.alive:
            self._stderr_reader.join(timeout=0.5)
        tail = [line for line in self._stderr_tail if line.strip()][-10:]
        return (
            "; last stderr lines: " + " | ".join(tail) if tail else "; it wrote nothing to stderr"
        )

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._process.kill()


def upstream_env(
    base: Mapping[str, str],
    host: str,
    port: int,
    config_path: str | None,
    secrets: Mapping[str, str],
    carries_streams: bool = False,
) -> dict[str, str]:
    """The child's environment: ours minus the runtime's own plumbing, plus its settings.

    Where the runtime carries resumable streams (``carries_streams``), LibreChat keeps its
    generation jobs in its own memory (``USE_REDIS_STREAMS=false``): its reader then gets
    each event in order at once, where its Redis transport would wait out reorder timeouts
    (docs/decisions.md), and the runtime routes what concerns a job to the environment that
    runs it (forward.py).

    Without AWS_LAMBDA_RUNTIME_API, neither LibreChat nor an MCP server it starts can take
    events meant for the runtime. A secret the OS cannot put in an environment fails init
    here, naming the variable, rather than as a traceback from the process start.
    """
    for name, value in secrets.items():
        problem = "a NUL byte" if "\0" in value else None
        try:
            os.fsencode(value)
        except UnicodeEncodeError:
            problem = "text that is not valid Unicode (a lone UTF-16 surrogate)"
        if problem:
            raise InitError(
                "Runtime.SecretsError",
                f"the secret for {name} (SSM_SECRETS) holds {problem}, which no environment "
                "variable can carry; store the value without it",
            )
    env = {k: v for k, v in base.items() if k not in RUNTIME_ONLY}
    env.update(PORT=str(port), HOST=host)
    if config_path:
        env["CONFIG_PATH"] = config_path
    env.update(secrets)
    if carries_streams:
        env["USE_REDIS_STREAMS"] = "false"
    return env
